"""The Python column of docs/guide/chat.md: each `[guide:NAME]` region below is copied into the
guide by scripts/snippets.py, and this file runs them against cubeserver, so a snippet that
stops working fails `make test`."""
import asyncio
import functools
import pathlib

import cubechat

from conftest import APP_ID, AUTH_KEY, AUTH_SECRET, PASSWORD, unique


def local_chat(server) -> dict:
    """cubeserver's chat host, ports and CA (the ConnectyCube cloud needs none of these)."""
    info = server.info
    return dict(chat_domain=info["chat_domain"], chat_host="127.0.0.1", chat_port=info["xmpp_port"],
                chat_tls_port=info["xmpp_tls_port"], extra_ca_pem=pathlib.Path(info["ca_cert"]).read_text())


async def signed_up(server, prefix: str) -> str:
    """A login that exists on the server."""
    c = cubechat.ChatClient(cubechat.ClientConfig(app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET,
                                                  api_url=server.api_url))
    login = unique(prefix)
    await c.sign_up(cubechat.NewUser(login=login), PASSWORD)
    return login


async def online(server, login: str, **config) -> "tuple[cubechat.ChatClient, cubechat.User]":
    API_URL, LOCAL_CHAT = server.api_url, local_chat(server)  # noqa: N806
    password = PASSWORD
    # [guide:connect]
    client = cubechat.ChatClient(cubechat.ClientConfig(
        app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET, api_url=API_URL,
        **LOCAL_CHAT, **config))  # LOCAL_CHAT: a local server's host, ports and CA
    me = await client.log_in(cubechat.LoginId.LOGIN(login), password)
    await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())  # or PASSWORD(user_id, password)
    assert client.state == cubechat.ConnectionState.CONNECTED()
    # [/guide]
    await client.privacy_list_names()  # one round trip: the server has read the initial presence
    return client, me


def bounded(seconds: float):
    """Fails the test (instead of hanging) when it takes longer than `seconds`."""
    def wrap(test):
        @functools.wraps(test)
        async def run(*args, **kwargs):
            await asyncio.wait_for(test(*args, **kwargs), seconds)
        return run
    return wrap


async def next_of(stream, predicate, seconds=10.0):
    """The first item of `stream` that `predicate` accepts (bounded in time)."""
    async def first():
        async for item in stream:
            if predicate(item):
                return item
    return await asyncio.wait_for(first(), seconds)


@bounded(60)
async def test_connection_states_and_reconnection(server):
    login = await signed_up(server, "gc")
    client, _me = await online(server, login, reconnect=cubechat.ReconnectConfig(
        enabled=True, initial_delay_ms=200, max_delay_ms=5000, multiplier=2.0, jitter=0.1, max_attempts=None))
    # [guide:states]
    states = client.connection_states()  # the state now, then every change
    async for state in states:
        print("chat is", state)
        if state == cubechat.ConnectionState.CONNECTED():
            break  # leaving the loop ends the subscription
    # [/guide]
    states = client.connection_states()
    # [guide:reconnect]
    await client.set_network_available(False)  # e.g. from the OS's connectivity callback
    await client.set_network_available(True)   # reconnects at once, no backoff wait
    await client.reconnect_now()               # or ask for it yourself
    # [/guide]
    # The stream starts with the current state (Connected): the connection really went down
    # and came back only if a Disconnected/Reconnecting comes before the next Connected.
    assert await next_of(states, lambda s: True) == cubechat.ConnectionState.CONNECTED()
    await next_of(states, lambda s: isinstance(s, (cubechat.ConnectionState.DISCONNECTED,
                                                  cubechat.ConnectionState.RECONNECTING)))
    await next_of(states, lambda s: s == cubechat.ConnectionState.CONNECTED())
    states.close()
    # [guide:disconnect]
    await client.disconnect_chat()  # until connect_chat or reconnect_now
    await client.destroy_chat()     # for good: the connection and its reconnection end
    await client.log_out()
    # [/guide]


@bounded(60)
async def test_dialogs_history_and_messages(server):
    alice, a = await online(server, await signed_up(server, "ga"))
    bob, b = await online(server, await signed_up(server, "gb"))
    bob_messages, bob_typing = bob.messages(), bob.typing()
    statuses = alice.statuses()
    # [guide:dialogs]
    private = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    group = await alice.create_dialog(cubechat.NewDialog(
        kind=cubechat.DialogType.GROUP, name="Weekend", occupants_ids=[b.id], extensions={"location": "Sun bar"}))
    group = await alice.update_dialog(group.id, cubechat.DialogUpdate(name="Long weekend"))
    changed = await alice.list_dialogs(cubechat.ListParams(
        filters=[cubechat.Filter(field="updated_at", op=cubechat.FilterOp.GT, value="1700000000")], limit=50))
    # [/guide]
    assert {d.id for d in changed.items} >= {private.id, group.id}
    # [guide:send]
    message_id = await alice.send_message(cubechat.OutgoingMessage(
        dialog_id=private.id, recipient_id=b.id, body="How are you today?", custom={"mood": "sunny"}))
    # returns once the server has acknowledged it; it is in alice's local store from the start
    # [/guide]
    # [guide:receive]
    async for message in bob_messages:
        print(message.sender_id, "says", message.body)
        await bob.send_read(message.dialog_id, message.id, message.sender_id)
        break
    # [/guide]
    # [guide:statuses]
    async for status in statuses:
        if isinstance(status, cubechat.MessageStatus.READ) and status.message_id == message_id:
            break  # SENT (the server has it), then DELIVERED, then READ
    # [/guide]
    # [guide:typing]
    await alice.send_typing(private.id, b.id, True)   # "stopped" follows by itself after 30 s idle
    typing = await next_of(bob_typing, lambda t: t.composing)
    print(typing.user_id, "is typing in", typing.dialog_id)
    await alice.send_typing(private.id, b.id, False)
    # [/guide]
    # [guide:history]
    page = await bob.history(private.id, cubechat.ListParams(limit=50, sort_by="date_sent", sort_descending=True),
                             True)  # True: mark what it returns as read
    # [/guide]
    assert page[0].id == message_id
    # [guide:silent]
    await alice.send_message(cubechat.OutgoingMessage(
        dialog_id=group.id, body="no push for this one", silent=True))
    # [/guide]
    for s in (bob_messages, bob_typing, statuses):
        s.close()
    await alice.destroy_chat()
    await bob.destroy_chat()


@bounded(60)
async def test_edit_delete_react_unread_search(server):
    alice, a = await online(server, await signed_up(server, "ge"))
    bob, b = await online(server, await signed_up(server, "gf"))
    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    changes = bob.message_changes()
    message_id = await alice.send_message(cubechat.OutgoingMessage(
        dialog_id=dialog.id, recipient_id=b.id, body="see you at 5"))
    # [guide:edit]
    await alice.send_edit(dialog.id, b.id, message_id, "see you at 6", True)  # True: it is the last message
    # [/guide]
    # [guide:changes]
    async for change in changes:
        if isinstance(change, cubechat.MessageChange.EDITED):
            print(change.message_id, "now reads", change.body)
            break
    # [/guide]
    # [guide:reactions]
    await bob.add_reaction(message_id, "🔥")
    reactions = await alice.reactions(message_id)  # {"🔥": [bob's id]}
    # [/guide]
    assert reactions == {"🔥": [b.id]}
    # [guide:unread]
    counts = await bob.unread_counts([dialog.id])
    print(counts.total, counts.per_dialog[dialog.id])
    await bob.mark_all_read(dialog.id)
    # [/guide]
    assert counts.per_dialog[dialog.id] >= 1
    assert (await bob.unread_counts([dialog.id])).per_dialog[dialog.id] == 0
    # [guide:search]
    found = await bob.search(cubechat.SearchQuery(text="see you", dialog_ids=[dialog.id]))
    # [/guide]
    assert [m.id for m in found.messages] == [message_id]
    other_id = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b.id, body="ok"))
    # [guide:delete]
    await alice.send_delete(dialog.id, b.id, message_id)  # for everyone, over chat
    result = await bob.delete_messages([other_id], False)  # only from bob's history, over REST
    # [/guide]
    assert result.deleted == [other_id]
    changes.close()
    await alice.destroy_chat()
    await bob.destroy_chat()


@bounded(60)
async def test_attachments_system_messages_presence(server, tmp_path):
    alice, a = await online(server, await signed_up(server, "gh"))
    bob, b = await online(server, await signed_up(server, "gi"))
    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8" + bytes(1000))
    system = bob.system_messages()
    presence = alice.presence()

    class Progress(cubechat.TransferListener):
        def on_progress(self, done: int, total: int) -> None:
            print(f"{done}/{total} bytes")

    # [guide:attachments]
    blob = await alice.upload_file(str(photo), cubechat.UploadOptions(content_type="image/jpeg"), Progress(), None)
    await alice.send_message(cubechat.OutgoingMessage(
        dialog_id=dialog.id, recipient_id=b.id, attachments=[cubechat.attachment_from_blob(blob)]))
    # the receiver: download by uid (or hand blob_url(uid, True) to an image loader)
    await bob.download_file(blob.uid, str(tmp_path / "received.jpg"), None, None)
    # [/guide]
    assert (tmp_path / "received.jpg").read_bytes() == photo.read_bytes()
    # [guide:system]
    await alice.send_chat_system_message(b.id, "dialog/UPDATE", {"photo": "new.png"})
    async for sysmsg in system:
        print(sysmsg.sender_id, sysmsg.body, sysmsg.custom)
        break
    # [/guide]
    # [guide:active]
    await alice.mark_inactive()  # the app went to the background: offline pushes resume
    await alice.mark_active()    # back in the foreground
    # [/guide]
    # [guide:privacy]
    await alice.create_privacy_list(cubechat.PrivacyList(name="blocked", items=[cubechat.PrivacyListItem(user_id=b.id)]))
    await alice.set_default_privacy_list("blocked")  # a list applies once it is the default
    await alice.set_default_privacy_list(None)
    await alice.delete_privacy_list("blocked")
    # [/guide]
    # [guide:last-activity]
    seconds = await alice.last_activity(b.id)  # 0 while bob is online
    await alice.subscribe_last_activity(b.id)
    # [/guide]
    assert seconds == 0
    await bob.disconnect_chat()
    # [guide:last-activity-events]
    async for event in presence:
        if isinstance(event, cubechat.PresenceEvent.LAST_ACTIVITY) and event.user_id == b.id:
            print("bob was last seen", event.seconds, "s ago")
            break
    # [/guide]
    for s in (system, presence):
        s.close()
    await alice.destroy_chat()
    await bob.destroy_chat()


@bounded(60)
async def test_offline_store_and_queue(server, tmp_path):
    API_URL, LOCAL_CHAT = server.api_url, local_chat(server)  # noqa: N806
    alice_login, bob_login = await signed_up(server, "gj"), await signed_up(server, "gk")
    bob, b = await online(server, bob_login)
    # [guide:store]
    client = cubechat.ChatClient(cubechat.ClientConfig(
        app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET, api_url=API_URL, **LOCAL_CHAT,
        store_dir=str(tmp_path / "cubechat")))  # one SQLite file per user
    me = await client.log_in(cubechat.LoginId.LOGIN(alice_login), PASSWORD)  # opens me's store
    await client.sync_local()  # dialogs and messages changed since the last sync
    dialogs = client.dialogs_page(20, None)  # from the store, no network
    # [/guide]
    assert dialogs == []
    dialog = await client.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    await client.sync_local()
    # [guide:queue]
    echo = client.enqueue_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b.id,
                                                           body="sent when we are back online"), [])
    assert echo.state == cubechat.MessageState.QUEUED()  # saved; survives a restart of the app
    print(len(client.pending_messages()), "waiting")
    # [/guide]
    # [guide:live-timeline]
    async with client.timeline(dialog.id, 50) as timeline:
        await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())  # the queue drains once connected
        async for messages in timeline:  # the whole list first, then the list after each change
            print([(m.body, m.state) for m in messages])
            if messages and messages[-1].state in (cubechat.MessageState.SENT(), cubechat.MessageState.DELIVERED()):
                break
    # [/guide]
    assert me.id != b.id
    await client.destroy_chat()
    await bob.destroy_chat()
