"""Cloud storage through the Python bindings against cubeserver: a 5 MB attachment uploaded
and downloaded with progress events, sent in a message, fetched by another user; cancellation
from a token and from asyncio; bad input rejected before any request."""
import asyncio
import os
import threading
import urllib.error
import urllib.request

import pytest

import cubechat

from conftest import new_user


async def user(make_client):
    return await new_user(make_client, "s")


class Progress(cubechat.TransferListener):
    """Records every progress event (called from a cubechat thread)."""

    def __init__(self, cancel_at=None, token=None):
        self.events = []
        self.lock = threading.Lock()
        self.cancel_at, self.token = cancel_at, token

    def on_progress(self, done, total):
        with self.lock:
            self.events.append((done, total))
        if self.cancel_at is not None and total and done >= total * self.cancel_at:
            self.token.cancel()


def check_progress(events, total):
    assert events[0] == (0, total)
    assert events[-1] == (total, total)
    dones = [d for d, _ in events]
    assert dones == sorted(set(dones)), "progress only grows"
    assert 3 <= len(events) <= 102


def pattern(n):
    return bytes((i * 31) % 251 for i in range(n))


async def test_five_megabyte_attachment_round_trip(make_client, tmp_path):
    alice, a = await user(make_client)
    bob, b = await user(make_client)
    data = os.urandom(5 * 1024 * 1024)
    src = tmp_path / "report.pdf"
    src.write_bytes(data)

    up = Progress()
    blob = await alice.upload_file(str(src), cubechat.UploadOptions(), up, None)
    assert (blob.size, blob.name, blob.content_type, blob.public) == (len(data), "report.pdf", "application/pdf", False)
    check_progress(up.events, len(data))

    # The blob travels as an attachment; the other occupant downloads it from the history.
    group = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.GROUP, name="Files", occupants_ids=[b.id]))
    attachment = cubechat.attachment_from_blob(blob)
    assert (attachment.kind, attachment.uid, attachment.size) == ("file", blob.uid, len(data))
    await alice.create_message(cubechat.NewMessage(dialog_id=group.id, body="", attachments=[attachment]))
    [message] = await bob.history(group.id, cubechat.ListParams(), False)
    got = message.attachments[0]
    assert (got.uid, got.name, got.size, got.content_type, got.id) == (blob.uid, "report.pdf", len(data), "application/pdf", str(blob.id))

    down = Progress()
    dest = tmp_path / "copy.pdf"
    assert await bob.download_file(got.uid, str(dest), down, None) == len(data)
    assert dest.read_bytes() == data
    check_progress(down.events, len(data))

    # The private URL (with bob's token) works for any HTTP client; without it, 401.
    private = bob.blob_url(blob.uid, True)
    public = bob.blob_url(blob.uid, False)
    assert public.endswith(f"/blobs/{blob.uid}") and private.startswith(public + "?token=")
    assert (await asyncio.to_thread(lambda: urllib.request.urlopen(private).read())) == data
    with pytest.raises(urllib.error.HTTPError) as err:
        await asyncio.to_thread(lambda: urllib.request.urlopen(public).read())
    assert err.value.code == 401
    assert (await bob.blob_by_uid(blob.uid)).id == blob.id
    with pytest.raises(cubechat.ChatError.Forbidden):
        await bob.delete_blob(blob.id)
    renamed = await alice.rename_blob(blob.id, "final.pdf")
    assert renamed.name == "final.pdf"
    page = await alice.list_blobs(1, 10)
    assert (page.total_entries, [x.uid for x in page.items]) == (1, [blob.uid])
    await alice.delete_blob(blob.id)
    with pytest.raises(cubechat.ChatError.NotFound):
        await bob.download_file(blob.uid, str(tmp_path / "gone"), None, None)
    assert not (tmp_path / "gone").exists()


async def test_cancellation_leaves_nothing_behind(make_client, tmp_path):
    alice, _ = await user(make_client)
    data = pattern(2 * 1024 * 1024)

    token = cubechat.CancelToken()
    listener = Progress(cancel_at=0.25, token=token)
    with pytest.raises(cubechat.ChatError.Cancelled):
        await alice.upload_bytes(data, cubechat.UploadOptions(name="a.bin"), listener, token)
    assert token.is_cancelled()
    assert (await alice.list_blobs(1, 10)).total_entries == 0

    blob = await alice.upload_bytes(data, cubechat.UploadOptions(name="a.bin", public=True), None, None)
    assert blob.public and blob.content_type == "application/octet-stream"
    token = cubechat.CancelToken()
    listener = Progress(cancel_at=0.5, token=token)
    with pytest.raises(cubechat.ChatError.Cancelled):
        await alice.download_file(blob.uid, str(tmp_path / "half.bin"), listener, token)
    assert list(tmp_path.iterdir()) == []

    # Cancelling the asyncio task also stops the transfer.
    task = asyncio.ensure_future(alice.download_file(blob.uid, str(tmp_path / "t.bin"), None, None))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    assert not (tmp_path / "t.bin").exists() or (tmp_path / "t.bin").read_bytes() == data


async def test_bad_input_is_typed(make_client, tmp_path):
    alice, _ = await user(make_client)
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.upload_file(str(tmp_path / "missing.jpg"), cubechat.UploadOptions(), None, None)
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.upload_bytes(b"", cubechat.UploadOptions(), None, None)
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.download_file("../etc", str(tmp_path / "x"), None, None)
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.download_file("abc", str(tmp_path / "no" / "dir" / "x"), None, None)
    with pytest.raises(cubechat.ChatError.NotFound):
        await alice.blob_by_uid("0" * 32)
    assert (await alice.list_blobs(1, 10)).total_entries == 0
