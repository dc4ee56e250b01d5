"""Privacy lists, last activity and its subscription, active/inactive with the server's push
outbox, and group presence through the Python bindings against cubeserver."""
import json
import threading
import urllib.request

import pytest

import cubechat

from conftest import eventually, new_user


class Events(cubechat.MessageListener, cubechat.MessageErrorListener, cubechat.PresenceListener):
    def __init__(self):
        self.lock = threading.Lock()
        self.messages, self.errors, self.presence = [], [], []

    def on_message(self, message):
        with self.lock:
            self.messages.append(message)

    def on_message_error(self, message_id, code, text):
        with self.lock:
            self.errors.append((message_id, code))

    def on_presence(self, event):
        with self.lock:
            self.presence.append(event)


async def online(make_client, prefix):
    client, me = await new_user(make_client, prefix)
    ev = Events()
    handles = [client.subscribe_messages(ev), client.subscribe_message_errors(ev), client.subscribe_presence(ev)]
    await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    return client, me, ev, handles


def pushes(server, user_id):
    url = f"{server.api_url}/_admin/pushes?user_id={user_id}"
    return json.loads(urllib.request.urlopen(url, timeout=10).read())["items"]


async def test_privacy_list_blocks_one_way(make_client):
    alice, a, ea, _h1 = await online(make_client, "pa")
    bob, b, eb, _h2 = await online(make_client, "pb")
    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))

    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.create_privacy_list(cubechat.PrivacyList(name="empty", items=[]))
    await alice.create_privacy_list(cubechat.PrivacyList(name="block", items=[cubechat.PrivacyListItem(user_id=b.id)]))
    await alice.set_default_privacy_list("block")
    names = await alice.privacy_list_names()
    assert (names.default, names.names) == ("block", ["block"])
    got = await alice.privacy_list("block")
    assert [(i.user_id, i.allow, i.mutual_block) for i in got.items] == [(b.id, False, False)]

    # Bob's message bounces with an error; Alice can still write to Bob (one-way).
    blocked = await bob.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=a.id, body="hey"))
    await eventually(lambda: any(mid == blocked for mid, _ in eb.errors))
    assert dict(eb.errors)[blocked] == 503
    ok = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b.id, body="still here"))
    await eventually(lambda: any(m.id == ok for m in eb.messages))
    assert not any(m.id == blocked for m in ea.messages)

    # Update (decline → replace → default again in one call), then unblock and delete.
    await alice.update_privacy_list(cubechat.PrivacyList(name="block", items=[cubechat.PrivacyListItem(user_id=b.id, allow=True)]))
    assert (await alice.privacy_list_names()).default == "block"
    allowed = await bob.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=a.id, body="again"))
    await eventually(lambda: any(m.id == allowed for m in ea.messages))
    await alice.set_default_privacy_list(None)
    await alice.delete_privacy_list("block")
    assert (await alice.privacy_list_names()).names == []
    with pytest.raises(cubechat.ChatError.NotFound):
        await alice.privacy_list("block")


async def test_last_activity_and_its_subscription(make_client):
    alice, a, ea, _h1 = await online(make_client, "la")
    bob, b, eb, _h2 = await online(make_client, "lb")
    assert await alice.last_activity(b.id) == 0
    await alice.subscribe_last_activity(b.id)
    await bob.disconnect_chat()
    await eventually(lambda: any(isinstance(e, cubechat.PresenceEvent.LAST_ACTIVITY) and e.user_id == b.id for e in ea.presence))
    assert await alice.last_activity(b.id) >= 1
    await bob.reconnect_now()
    await eventually(lambda: cubechat.PresenceEvent.LAST_ACTIVITY(user_id=b.id, seconds=0) in ea.presence)
    await alice.unsubscribe_last_activity(b.id)

    # A per-user callback: only Bob's logins and logouts reach it.
    class Watch(cubechat.LastActivityListener):
        def __init__(self):
            self.seen = []

        def on_last_activity(self, user_id, seconds):
            self.seen.append((user_id, seconds))

    watch = Watch()
    handle = await alice.watch_last_activity(b.id, watch)
    await bob.disconnect_chat()
    await eventually(lambda: len(watch.seen) == 1)
    assert watch.seen[0][0] == b.id and watch.seen[0][1] >= 1
    await bob.reconnect_now()
    await eventually(lambda: watch.seen[-1] == (b.id, 0))
    handle.cancel()
    await alice.unsubscribe_last_activity(b.id)


async def test_inactive_gets_pushes_and_group_presence(make_client, server):
    alice, a, ea, _h1 = await online(make_client, "ia")
    bob, b, eb, _h2 = await online(make_client, "ib")
    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    first = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b.id, body="active"))
    await eventually(lambda: any(m.id == first for m in eb.messages))
    assert pushes(server, b.id) == []
    await bob.mark_inactive()
    await bob.privacy_list_names()  # a round trip on bob's stream: the server has the mark now
    second = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b.id, body="background"))
    await eventually(lambda: any(m.id == second for m in eb.messages))
    await eventually(lambda: [p["message_id"] for p in pushes(server, b.id)] == [second])
    silent = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b.id, body="shh", silent=True))
    await eventually(lambda: any(m.id == silent for m in eb.messages))
    assert [p["message_id"] for p in pushes(server, b.id)] == [second]
    await bob.mark_active()

    group = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.GROUP, name="P", occupants_ids=[b.id]))
    await alice.join_room(group.id)
    await bob.join_room(group.id)
    await eventually(lambda: cubechat.PresenceEvent.OCCUPANT_JOINED(dialog_id=group.id, user_id=b.id) in ea.presence)
    assert sorted(await alice.room_occupants(group.id)) == sorted([a.id, b.id])
    await bob.leave_room(group.id)
    await eventually(lambda: cubechat.PresenceEvent.OCCUPANT_LEFT(dialog_id=group.id, user_id=b.id) in ea.presence)
