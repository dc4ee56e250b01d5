"""Offline-first chat through the Python bindings against cubeserver: a send queue that
survives SIGKILL of the process (100 messages, each delivered once and in order after a
restart on the same store), live dialog-list and timeline views (the snapshot first, then
positional diffs, applied as an app applies them), backward paging, cancel and edit of queued messages, and typed store errors."""
import asyncio
import json
import pathlib
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import cubechat

from conftest import APP_ID, PASSWORD, client_config, eventually, new_user, unique
from test_realtime import online_user

CHILD = pathlib.Path(__file__).with_name("offline_child.py")
DONE = (cubechat.MessageState.SENT(), cubechat.MessageState.DELIVERED(), cubechat.MessageState.READ())


class Views(cubechat.DialogListListener, cubechat.TimelineListener):
    """A dialog list and a timeline kept up to date from their events (called on cubechat
    threads), plus every event received."""

    def __init__(self):
        self.lock = threading.Lock()
        self.dialogs, self.timeline = [], []
        self.dialog_events, self.timeline_events = [], []

    def on_dialog_list_event(self, event):
        with self.lock:
            self.dialog_events.append(event)
            cubechat.apply_event(self.dialogs, event)

    def on_timeline_event(self, event):
        with self.lock:
            self.timeline_events.append(event)
            cubechat.apply_event(self.timeline, event)

    def dialog(self, dialog_id):
        """The dialog as the live list shows it now (None if not in it)."""
        with self.lock:
            return next((d for d in self.dialogs if d.id == dialog_id), None)

    def message(self, message_id):
        """The message as the live timeline shows it now (None if not in it)."""
        with self.lock:
            return next((m for m in self.timeline if m.id == message_id), None)

    def timeline_ids(self):
        with self.lock:
            return [m.id for m in self.timeline]


def private(a_client, b_id):
    return a_client.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b_id]))


async def alice_and_bob(make_client, prefix):
    """Alice (logged in, store in memory), bob (offline) and their private dialog, synced into
    alice's store."""
    alice, a = await new_user(make_client, prefix + "a")
    _bob, b = await new_user(make_client, prefix + "b")
    dialog = await private(alice, b.id)
    await alice.sync_local()
    return alice, a, b, dialog


def outgoing(dialog, to, body):
    return cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=to, body=body)


def received(rec, dialog_id):
    with rec.lock:
        return [m for m in rec.messages if m.dialog_id == dialog_id]


async def test_queue_survives_sigkill_and_restart(make_client, server, tmp_path):
    alice_rest, a = await new_user(make_client, "ka")
    bob, b, rb, _hb = await online_user(make_client, "kb")
    dialog = await private(alice_rest, b.id)
    store = tmp_path / "store"
    expected = [f"m{i:03d}" for i in range(100)]

    # A child process queues 100 messages offline and is killed without any cleanup.
    with open(tmp_path / "child.log", "w") as log:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(client_config(server, store_dir=str(store))),
             a.login, PASSWORD, dialog.id, str(b.id), "100"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
    assert line.strip() == "queued 100", (tmp_path / "child.log").read_text()[-2000:]
    assert child.returncode == -signal.SIGKILL

    # A new client on the same store finds the queue as it was.
    alice = make_client(store_dir=str(store))
    await alice.log_in(cubechat.LoginId.LOGIN(a.login), PASSWORD)
    pending = alice.pending_messages()
    assert [m.body for m in pending] == expected
    assert all((m.state, m.outgoing, m.dialog_id, m.sender_id, m.recipient_id)
               == (cubechat.MessageState.QUEUED(), True, dialog.id, a.id, b.id) for m in pending)
    ids = [m.id for m in pending]
    assert len(set(ids)) == 100
    assert received(rb, dialog.id) == [], "nothing left before chat was connected"

    # Connecting drains it: bob gets each message once, in order, with its queued id.
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    await eventually(lambda: len(received(rb, dialog.id)) >= 100, 60)
    await eventually(lambda: alice.pending_messages() == [], 30)
    await asyncio.sleep(1.5)  # room for a duplicate to show up
    got = received(rb, dialog.id)
    assert [m.body for m in got] == expected
    assert [m.id for m in got] == ids

    history = await bob.history(dialog.id, cubechat.ListParams(limit=100), False)
    assert sorted(m.id for m in history) == sorted(ids)
    assert await bob.history(dialog.id, cubechat.ListParams(limit=100, skip=100), False) == []

    timeline = await alice.load_older(dialog.id, None, 100)
    assert [m.id for m in timeline] == ids
    assert all(m.state in DONE for m in timeline), {str(m.state) for m in timeline}

    # Offline start: another client opens the same store before any log-in and shows it.
    alice.close_store()
    reader = make_client(store_dir=str(store))
    reader.open_store(a.id)
    views = Views()
    _h = reader.watch_timeline(dialog.id, 100, views)
    await eventually(lambda: views.timeline_events)
    [snapshot] = views.timeline_events
    assert [m.id for m in snapshot.messages] == ids
    assert reader.pending_messages() == []


async def test_live_dialog_list_and_timeline(make_client):
    alice, a = await new_user(make_client, "la")  # store in memory
    bob, b, rb, _hb = await online_user(make_client, "lb")
    dialog = await private(bob, a.id)  # created elsewhere: alice's store does not know it yet

    # The dialog list: the (empty) store at once, then the background sync finds the dialog.
    views = Views()
    h_dialogs = alice.watch_dialogs(20, views)
    await eventually(lambda: views.dialog_events)
    assert views.dialog_events[0] == cubechat.DialogListEvent.RESET(dialogs=[])
    await eventually(lambda: views.dialog(dialog.id))
    assert alice.dialogs_page(20, None)[0].id == dialog.id
    assert views.dialogs == alice.dialogs_page(20, None)
    assert alice.dialogs_page(20, dialog.id) == []

    h_timeline = alice.watch_timeline(dialog.id, 50, views)
    await eventually(lambda: views.timeline_events)
    assert views.timeline_events[0] == cubechat.TimelineEvent.RESET(messages=[])

    # Offline: queued messages appear at once; one is cancelled, one edited before sending.
    first = alice.enqueue_message(outgoing(dialog, b.id, "queued hello"), [])
    assert (first.state, first.body, first.outgoing) == (cubechat.MessageState.QUEUED(), "queued hello", True)
    await eventually(lambda: views.message(first.id))
    assert views.timeline == [first]
    assert views.timeline_events[1] == cubechat.TimelineEvent.PUSH_BACK(message=first)
    await eventually(lambda: views.dialog(dialog.id).last_message == "queued hello")

    dropped = alice.enqueue_message(outgoing(dialog, b.id, "never sent"), [])
    draft = alice.enqueue_message(outgoing(dialog, b.id, "draft"), [])
    alice.cancel_message(dropped.id)
    await eventually(lambda: views.timeline_ids() == [first.id, draft.id])
    edited = alice.edit_local_message(draft.id, "final text")
    assert (edited.id, edited.body, edited.state) == (draft.id, "final text", cubechat.MessageState.QUEUED())
    await eventually(lambda: views.message(draft.id).body == "final text")
    assert views.timeline_events[-1] == cubechat.TimelineEvent.SET(index=1, message=edited)
    assert [m.id for m in alice.pending_messages()] == [first.id, draft.id]
    with pytest.raises(cubechat.ChatError.NotFound):
        alice.cancel_message(dropped.id)

    # Online: the queue drains, states move to Sent, bob gets the edited body only.
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    # Sent (the server's ack) normally comes first; bob's receipt may beat it (Delivered).
    for m in (first, draft):
        await eventually(lambda: views.message(m.id).state in DONE)
    assert views.timeline_ids() == [first.id, draft.id]
    await eventually(lambda: len(received(rb, dialog.id)) >= 2)
    await asyncio.sleep(1)
    assert [(m.id, m.body) for m in received(rb, dialog.id)] == [(first.id, "queued hello"), (draft.id, "final text")]
    assert alice.pending_messages() == []
    with pytest.raises(cubechat.ChatError.InvalidInput):
        alice.cancel_message(first.id)  # sent: delete it instead

    # Sent messages: an edit and a delete go out through the queue too.
    changed = alice.edit_local_message(first.id, "hello, edited")
    assert (changed.body, changed.edited) == ("hello, edited", True)
    alice.delete_local_message(draft.id)
    await eventually(lambda: views.timeline_ids() == [first.id])
    assert views.message(first.id).body == "hello, edited"
    await eventually(lambda: any(isinstance(c, cubechat.MessageChange.EDITED) and c.message_id == first.id
                                 and c.body == "hello, edited" for c in rb.changes))
    await eventually(lambda: any(isinstance(c, cubechat.MessageChange.DELETED) and c.message_id == draft.id
                                 for c in rb.changes))
    await eventually(lambda: alice.pending_messages() == [])

    # A message from bob: added to the timeline as received, the dialog list hears it.
    mid = await bob.send_message(outgoing(dialog, a.id, "hi alice"))
    await eventually(lambda: views.message(mid))
    assert views.timeline_ids() == [first.id, mid]
    incoming = views.message(mid)
    assert (incoming.state, incoming.outgoing, incoming.sender_id, incoming.body) == (
        cubechat.MessageState.RECEIVED(), False, b.id, "hi alice")
    await eventually(lambda: views.dialog(dialog.id).last_message_id == mid)
    assert views.dialog(dialog.id).unread_count == 1
    await alice.mark_dialog_read(dialog.id)
    await eventually(lambda: views.dialog(dialog.id).unread_count == 0)
    # Rebuilt from its events, each view equals a fresh read of the store.
    fresh = await alice.load_older(dialog.id, None, 50)  # may refresh the store from the server
    await eventually(lambda: views.timeline == fresh)
    await eventually(lambda: views.dialogs == alice.dialogs_page(20, None))

    # Cancelled handles stop deliveries.
    h_dialogs.cancel()
    h_timeline.cancel()
    assert not h_dialogs.is_active() and not h_timeline.is_active()
    n = len(views.timeline_events)
    await bob.send_message(outgoing(dialog, a.id, "unheard"))
    await asyncio.sleep(1)
    assert len(views.timeline_events) == n


async def test_send_message_shows_in_the_senders_timeline_in_order(make_client):
    """send_message goes through the store like enqueue_message: the sender's open timeline
    gets each message (state QUEUED) before its acknowledgement turns it SENT, in call order
    with queued ones, and the call returns once the server acknowledged it."""
    alice, a, _ra, _ha = await online_user(make_client, "sma")
    _bob, b, rb, _hb = await online_user(make_client, "smb")
    dialog = await private(alice, b.id)
    views = Views()
    _h = alice.watch_timeline(dialog.id, 50, views)
    await eventually(lambda: views.timeline_events)
    assert views.timeline_events[0] == cubechat.TimelineEvent.RESET(messages=[])

    first = await alice.send_message(outgoing(dialog, b.id, "one"))
    queued = alice.enqueue_message(outgoing(dialog, b.id, "two"), []).id
    third = await alice.send_message(outgoing(dialog, b.id, "three"))
    ids = [first, queued, third]
    # Returned after the acknowledgement: the store says SENT (or beyond) already.
    for mid in (first, third):
        [m] = [m for m in await alice.load_older(dialog.id, None, 50) if m.id == mid]
        assert m.state in DONE, m.state

    await eventually(lambda: all((m := views.message(mid)) and m.state in DONE for mid in ids))
    assert views.timeline_ids() == ids
    with views.lock:
        events = list(views.timeline_events[1:])
    with_message = [e for e in events if hasattr(e, "message")]
    for mid, body in zip(ids, ["one", "two", "three"]):
        mine = [e for e in with_message if e.message.id == mid]
        # Told first as a new item, still QUEUED: the echo before the acknowledgement.
        assert not isinstance(mine[0], cubechat.TimelineEvent.SET), mine
        assert (mine[0].message.body, mine[0].message.state, mine[0].message.outgoing) == (
            body, cubechat.MessageState.QUEUED(), True)

    await eventually(lambda: len(received(rb, dialog.id)) >= 3)
    await asyncio.sleep(1)  # room for a duplicate to show up
    assert [m.id for m in received(rb, dialog.id)] == ids
    assert [m.id for m in await alice.load_older(dialog.id, None, 50)] == ids
    assert alice.pending_messages() == []


async def test_paging_dialogs_and_history(make_client):
    alice, a, b, dialog = await alice_and_bob(make_client, "p")
    groups = [await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.GROUP, name=f"g{i}", occupants_ids=[b.id]))
              for i in range(5)]

    # The dialog list from the store, page by page: each dialog once, newest activity first.
    await alice.sync_local()
    listed, after = [], None
    while page := alice.dialogs_page(2, after):
        listed += page
        after = page[-1].id
        assert len(listed) <= 6, "paging does not end"
    assert sorted(d.id for d in listed) == sorted([g.id for g in groups] + [dialog.id])
    assert listed == alice.dialogs_page(100, None)
    with pytest.raises(cubechat.ChatError.NotFound):
        alice.dialogs_page(2, "0" * 24)

    # History created over REST, read backwards in pages of 10 (store first, then server).
    base = int(time.time()) - 10_000
    for i in range(130):
        await alice.create_message(cubechat.NewMessage(dialog_id=dialog.id, body=f"h{i:03d}", date_sent=base + i))

    pages, before = [], None
    while True:
        page = await alice.load_older(dialog.id, before, 10)
        pages.append([m.body for m in page])
        if len(page) < 10:
            break
        before = page[0].id
        assert len(pages) < 20, "paging does not end"
    bodies = [b for p in reversed(pages) for b in p]
    assert bodies == [f"h{i:03d}" for i in range(130)], "every message once, in order"
    assert pages[0] == [f"h{i:03d}" for i in range(120, 130)]
    assert pages[-1] == []
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.load_older(dialog.id, None, 0)
    with pytest.raises(cubechat.ChatError.NotFound):
        await alice.load_older(dialog.id, "0" * 24, 10)


async def test_invalid_message_and_corrupt_store(make_client, tmp_path):
    alice, a, b, dialog = await alice_and_bob(make_client, "e")
    for body in ("", "   "):
        with pytest.raises(cubechat.ChatError.InvalidInput):
            alice.enqueue_message(outgoing(dialog, b.id, body), [])
    assert alice.pending_messages() == []
    views = Views()
    _h = alice.watch_timeline(dialog.id, 10, views)
    await eventually(lambda: views.timeline_events)
    assert views.timeline_events == [cubechat.TimelineEvent.RESET(messages=[])], "nothing was stored"

    # A store file that is not a database: typed error from every store call, file untouched.
    store = tmp_path / "corrupt"
    store.mkdir()
    client = make_client(store_dir=str(store))
    login = unique("ec")
    user = await client.sign_up(cubechat.NewUser(login=login), PASSWORD)
    junk = b"this is not a database, just junk bytes\n" * 200
    path = store / f"cubechat-{APP_ID}-{user.id}.sqlite3"
    path.write_bytes(junk)
    await client.log_in(cubechat.LoginId.LOGIN(login), PASSWORD)
    with pytest.raises(cubechat.ChatError.StoreCorrupt):
        client.pending_messages()
    with pytest.raises(cubechat.ChatError.StoreCorrupt):
        client.open_store(user.id)
    with pytest.raises(cubechat.ChatError.StoreCorrupt):
        client.watch_dialogs(10, Views())
    with pytest.raises(cubechat.ChatError.StoreCorrupt):
        client.enqueue_message(outgoing(dialog, b.id, "lost"), [])
    assert path.read_bytes() == junk
    assert sorted(p.name for p in store.iterdir()) == [path.name]

    # A store written by a newer cubechat: typed, untouched too.
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    before = path.read_bytes()
    with pytest.raises(cubechat.ChatError.StoreTooNew) as err:
        client.open_store(user.id)
    assert err.value.found == 99 and err.value.supported >= 1
    assert path.read_bytes() == before


async def test_failed_upload_then_retry(make_client, tmp_path):
    alice, a = await new_user(make_client, "fa")
    bob, b, rb, _hb = await online_user(make_client, "fb")
    dialog = await private(alice, b.id)
    views = Views()
    _h = alice.watch_timeline(dialog.id, 10, views)
    note = tmp_path / "note.txt"
    m = alice.enqueue_message(outgoing(dialog, b.id, "see file"),
                              [cubechat.QueuedFile(path=str(note), content_type="text/plain")])

    # The file is missing when the queue gets to it: the message fails with a reason.
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    failed = lambda: isinstance(getattr(views.message(m.id), "state", None), cubechat.MessageState.FAILED)
    await eventually(failed, 20)
    assert "upload" in views.message(m.id).state.reason
    with pytest.raises(cubechat.ChatError.InvalidInput):
        alice.edit_local_message(m.id, "")

    # Once the file is there, a retry uploads it and sends the message with the attachment.
    note.write_text("hello file")
    assert alice.retry_message(m.id).state == cubechat.MessageState.QUEUED()
    await eventually(lambda: received(rb, dialog.id), 20)
    [got] = received(rb, dialog.id)
    assert (got.id, got.body, [x.content_type for x in got.attachments]) == (m.id, "see file", ["text/plain"])
    await eventually(lambda: views.message(m.id).state in DONE and views.message(m.id).attachments)
    with pytest.raises(cubechat.ChatError.InvalidInput):
        alice.retry_message(m.id)  # not failed any more


async def test_live_views_as_async_iterators(make_client):
    alice, a, b, dialog = await alice_and_bob(make_client, "it")
    first = alice.enqueue_message(outgoing(dialog, b.id, "one"), [])
    step = lambda it: asyncio.wait_for(it.__anext__(), 10)
    async with cubechat.live.timeline(alice, dialog.id, 10) as tl:
        assert [m.id for m in await step(tl)] == [first.id], "the snapshot first"
        second = alice.enqueue_message(outgoing(dialog, b.id, "two"), [])
        assert [m.id for m in await step(tl)] == [first.id, second.id]
        alice.cancel_message(first.id)
        assert [m.id for m in await step(tl)] == [second.id]
        edited = alice.edit_local_message(second.id, "two, edited")
        assert await step(tl) == [edited]
    with pytest.raises(StopAsyncIteration):
        await step(tl)
    async with cubechat.live.dialog_list(alice, 10) as dl:
        assert await step(dl) == alice.dialogs_page(10, None)
    with pytest.raises(IndexError):
        cubechat.apply_event([], cubechat.TimelineEvent.REMOVE(index=0))


# Regressions of engine bugs these tests found: failed messages in pending_messages, the
# dialog's last message after cancel/edit and after a sync.

async def test_pending_messages_lists_failed_ones(make_client, tmp_path):
    alice, a, b, dialog = await alice_and_bob(make_client, "pf")
    views = Views()
    _h = alice.watch_timeline(dialog.id, 10, views)
    m = alice.enqueue_message(outgoing(dialog, b.id, "x"), [cubechat.QueuedFile(path=str(tmp_path / "missing"))])
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    await eventually(lambda: isinstance(getattr(views.message(m.id), "state", None), cubechat.MessageState.FAILED), 20)
    assert [x.id for x in alice.pending_messages()] == [m.id], "documented: queued or failed"


async def test_dialog_last_message_follows_cancel_and_edit(make_client):
    alice, a, b, dialog = await alice_and_bob(make_client, "d")
    first = alice.enqueue_message(outgoing(dialog, b.id, "A"), [])
    last = alice.enqueue_message(outgoing(dialog, b.id, "B"), [])
    assert alice.dialogs_page(1, None)[0].last_message == "B"
    alice.cancel_message(last.id)
    [d] = alice.dialogs_page(1, None)
    assert (d.last_message, d.last_message_id) == ("A", first.id)
    alice.edit_local_message(first.id, "A2")
    assert alice.dialogs_page(1, None)[0].last_message == "A2"


async def test_sync_keeps_newer_local_last_message(make_client):
    alice, a, b, dialog = await alice_and_bob(make_client, "s")
    queued = alice.enqueue_message(outgoing(dialog, b.id, "queued"), [])
    assert alice.dialogs_page(1, None)[0].last_message_id == queued.id
    await alice.sync_local()
    [d] = alice.dialogs_page(1, None)
    assert (d.last_message, d.last_message_id) == ("queued", queued.id)


class OpenOnMessage(cubechat.MessageListener):
    """Opens a timeline of the dialog the moment a message of it arrives (as a chat screen
    opened from a notification does); keeps each view and its handle."""

    def __init__(self, client, dialog_id):
        self.client, self.dialog_id = client, dialog_id
        self.lock = threading.Lock()
        self.arrived, self.views = [], []

    def on_message(self, message):
        if message.dialog_id != self.dialog_id:
            return
        views = Views()
        handle = self.client.watch_timeline(self.dialog_id, 100, views)
        with self.lock:
            self.arrived.append(message.id)
            self.views.append((views, handle))


async def test_timeline_opened_as_a_message_arrives_has_it_once(make_client, tmp_path):
    tries = 50
    # A store on disk: a write takes as long as in an app.
    _signup, a = await new_user(make_client, "oa")
    alice = make_client(store_dir=str(tmp_path))
    await alice.log_in(cubechat.LoginId.LOGIN(a.login), PASSWORD)
    bob, b, _rb, _hb = await online_user(make_client, "ob")
    dialog = await private(bob, a.id)
    opener = OpenOnMessage(alice, dialog.id)
    _h = alice.subscribe_messages(opener)
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    for i in range(tries):
        mid = await bob.send_message(outgoing(dialog, a.id, f"race{i:02d}"))
        await eventually(lambda: mid in opener.arrived)
    # The applier handles events in order: a view that has the end marker has every
    # earlier change.
    opened = opener.views
    end = await bob.send_message(outgoing(dialog, a.id, "end"))
    await eventually(lambda: len(opener.arrived) == tries + 1)
    for views, _handle in opened[:tries]:
        await eventually(lambda: views.message(end))
    fresh = [m.id for m in await alice.load_older(dialog.id, None, 100)]
    doubled = []
    for n, (views, _handle) in enumerate(opened[:tries]):
        with views.lock:
            events = list(views.timeline_events)
        assert isinstance(events[0], cubechat.TimelineEvent.RESET)
        # Rebuilt from its events: each message once, in the store's order.
        ids = views.timeline_ids()
        if len(ids) != len(set(ids)):
            doubled.append(n)
        assert ids == fresh[len(fresh) - len(ids):], f"view {n}"
    assert doubled == [], f"{len(doubled)} of {tries} views saw a message twice"
