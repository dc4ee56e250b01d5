"""Real-time chat through the Python bindings against cubeserver's XMPP side: connection
events, 1-1 and group messages with every field, sent/delivered/read statuses, typing, edits,
deletes, reactions, system messages, offline delivery on reconnect, typed errors."""
import asyncio
import threading

import pytest

import cubechat

from conftest import eventually, new_user


class Recorder(cubechat.ConnectionListener, cubechat.MessageListener, cubechat.StatusListener,
               cubechat.TypingListener, cubechat.MessageChangeListener, cubechat.SystemMessageListener,
               cubechat.MessageErrorListener):
    """Records every event of every family (called on cubechat threads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.states, self.messages, self.statuses, self.typing = [], [], [], []
        self.changes, self.system, self.errors = [], [], []

    def _add(self, where, item):
        with self.lock:
            where.append(item)

    def on_state(self, state):
        self._add(self.states, state)

    def on_message(self, message):
        self._add(self.messages, message)

    def on_status(self, status):
        self._add(self.statuses, status)

    def on_typing(self, dialog_id, user_id, composing):
        self._add(self.typing, (dialog_id, user_id, composing))

    def on_change(self, change):
        self._add(self.changes, change)

    def on_system_message(self, message):
        self._add(self.system, message)

    def on_message_error(self, message_id, code, text):
        self._add(self.errors, (message_id, code, text))

    def subscribe(self, client):
        return [client.subscribe_connection(self), client.subscribe_messages(self),
                client.subscribe_statuses(self), client.subscribe_typing(self),
                client.subscribe_message_changes(self), client.subscribe_system_messages(self),
                client.subscribe_message_errors(self)]

    def message(self, mid):
        with self.lock:
            return [m for m in self.messages if m.id == mid]


async def online_user(make_client, prefix):
    client, me = await new_user(make_client, prefix)
    rec = Recorder()
    handles = rec.subscribe(client)
    await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    assert client.connection_state() == cubechat.ConnectionState.CONNECTED()
    # CONNECTED means the initial presence is sent; cubeserver routes live messages only to
    # available resources. One IQ round trip on the same stream proves it read the presence,
    # so a message sent right after arrives live (not flushed from storage as delayed).
    await client.privacy_list_names()
    return client, me, rec, handles


async def test_private_chat_statuses_typing_edit_delete(make_client):
    alice, a, ra, _ha = await online_user(make_client, "ra")
    bob, b, rb, _hb = await online_user(make_client, "rb")
    # The connection listener heard the snapshot first, then the way to Connected.
    assert ra.states[0] == cubechat.ConnectionState.IDLE()
    assert ra.states[-1] == cubechat.ConnectionState.CONNECTED()

    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    attachment = cubechat.Attachment(kind="image", uid="0" * 32, name="a.png", size=5, content_type="image/png")
    mid = await alice.send_message(cubechat.OutgoingMessage(
        dialog_id=dialog.id, recipient_id=b.id, body="hello bob 👋", attachments=[attachment],
        custom={"mood": "sunny", "n": "1"}, date_sent=1_700_000_000))
    assert len(mid) == 24 and int(mid, 16) >= 0
    await eventually(lambda: rb.message(mid))
    [got] = rb.message(mid)
    assert (got.dialog_id, got.sender_id, got.recipient_id, got.body) == (dialog.id, a.id, b.id, "hello bob 👋")
    assert got.custom == {"mood": "sunny", "n": "1"} and got.date_sent == 1_700_000_000
    assert got.attachments == [attachment]
    assert (got.group, got.carbon, got.delayed, got.save_to_history, got.markable) == (False, False, False, True, True)

    # Sent (server ack), delivered (bob's SDK answers markable messages), read (explicit).
    await eventually(lambda: cubechat.MessageStatus.SENT(message_id=mid) in ra.statuses)
    await eventually(lambda: cubechat.MessageStatus.DELIVERED(message_id=mid, dialog_id=dialog.id, user_id=b.id) in ra.statuses)
    await bob.send_read(dialog.id, mid, a.id)
    await eventually(lambda: cubechat.MessageStatus.READ(message_id=mid, dialog_id=dialog.id, user_id=b.id) in ra.statuses)

    # The message is in the REST history too, with its fields.
    [stored] = await bob.history(dialog.id, cubechat.ListParams(), False)
    assert (stored.id, stored.body, stored.custom["mood"], stored.attachments[0].uid) == (mid, "hello bob 👋", "sunny", "0" * 32)

    await alice.send_typing(dialog.id, b.id, True)
    await eventually(lambda: (dialog.id, a.id, True) in rb.typing)
    await alice.send_typing(dialog.id, b.id, False)
    await eventually(lambda: (dialog.id, a.id, False) in rb.typing)

    await alice.send_edit(dialog.id, b.id, mid, "hello again", True)
    await eventually(lambda: any(isinstance(c, cubechat.MessageChange.EDITED) and c.message_id == mid
                                 and c.body == "hello again" and c.user_id == a.id for c in rb.changes))
    await alice.send_delete(dialog.id, b.id, mid)
    await eventually(lambda: any(isinstance(c, cubechat.MessageChange.DELETED) and c.message_id == mid for c in rb.changes))
    assert len(rb.message(mid)) == 1, "each message arrives once"


async def test_group_reactions_system_and_offline(make_client):
    alice, a, ra, _ha = await online_user(make_client, "ga")
    bob, b, rb, _hb = await online_user(make_client, "gb")
    group = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.GROUP, name="G", occupants_ids=[b.id]))

    mid = await alice.send_message(cubechat.OutgoingMessage(dialog_id=group.id, body="hi all"))
    await eventually(lambda: rb.message(mid))
    [got] = rb.message(mid)
    assert (got.group, got.dialog_id, got.sender_id, got.recipient_id) == (True, group.id, a.id, None)

    # A reaction over REST reaches the other occupant as a change event.
    await bob.add_reaction(mid, "🔥")
    await eventually(lambda: any(isinstance(c, cubechat.MessageChange.REACTIONS) and c.message_id == mid
                                 and c.user_id == b.id and c.add == ["🔥"] for c in ra.changes))

    sid = await alice.send_chat_system_message(b.id, "dialog/UPDATE", {"photo": "p1"})
    await eventually(lambda: any(m.id == sid for m in rb.system))
    [sysmsg] = [m for m in rb.system if m.id == sid]
    assert (sysmsg.sender_id, sysmsg.body, sysmsg.custom) == (a.id, "dialog/UPDATE", {"photo": "p1"})

    # Bob goes offline; a private message waits for him and arrives once, marked delayed.
    private = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    await bob.disconnect_chat()
    await eventually(lambda: isinstance(bob.connection_state(), cubechat.ConnectionState.DISCONNECTED))
    await bob.disconnect_chat()  # idempotent
    late = await alice.send_message(cubechat.OutgoingMessage(dialog_id=private.id, recipient_id=b.id, body="while away"))
    await eventually(lambda: cubechat.MessageStatus.SENT(message_id=late) in ra.statuses)
    await bob.reconnect_now()
    await eventually(lambda: rb.message(late))
    assert rb.message(late)[0].delayed
    await eventually(lambda: bob.connection_state() == cubechat.ConnectionState.CONNECTED())
    assert len(rb.message(late)) == 1

    await bob.destroy_chat()
    await bob.destroy_chat()
    assert bob.connection_state() == cubechat.ConnectionState.IDLE()


async def test_typed_errors(make_client):
    client, me = await new_user(make_client, "re")
    with pytest.raises(cubechat.ChatError.ChatNotConnected):
        await client.send_message(cubechat.OutgoingMessage(dialog_id="0" * 24, body="x"))
    bad = make_client()
    with pytest.raises(cubechat.ChatError.InvalidCredentials):
        await bad.connect_chat(cubechat.ChatAuth.PASSWORD(user_id=me.id, password="wrong-password"))
    await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await client.send_message(cubechat.OutgoingMessage(dialog_id="0" * 24, body=""))
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await client.send_message(cubechat.OutgoingMessage(dialog_id="0" * 24, body="x", custom={"bad key": "v"}))
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())  # already connected
    await client.destroy_chat()


class StallFirst:
    """A loopback TCP forwarder to cubeserver's STARTTLS port whose first connection is held
    open without an answer (a stalled handshake); later ones are forwarded."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.accepted = 0
        self.stalled_closed = asyncio.Event()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer):
        self.accepted += 1
        if self.accepted == 1:
            while await reader.read(4096):
                pass  # never answer; the client closing ends this
            self.stalled_closed.set()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self):
        self.server.close()


async def test_cancelled_connect_chat_leaves_the_client_reusable(make_client, server):
    """Issue 12 item 9: cancelling connect_chat (here by asyncio.wait_for's timeout) drops
    the Rust future: the attempt's connection is closed, the client is Disconnected, and the
    next connect_chat works instead of failing with "already connected"."""
    proxy = StallFirst(server.info["xmpp_port"])
    port = await proxy.start()
    try:
        client, _me = await new_user(lambda: make_client(chat_port=port), "rc")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN()), 1.0)
        # the abandoned attempt closes its half-made connection
        await asyncio.wait_for(proxy.stalled_closed.wait(), 10)
        state = client.connection_state()
        assert isinstance(state, cubechat.ConnectionState.DISCONNECTED), state
        await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
        assert client.connection_state() == cubechat.ConnectionState.CONNECTED()
        assert proxy.accepted == 2
        await client.destroy_chat()
    finally:
        proxy.close()
