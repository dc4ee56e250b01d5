"""Users, the address book and push through the Python bindings against cubeserver: lookups
and search, the own profile, the stored users with a live view, contacts with typed
rejections, push subscriptions and events, a message to an offline user recorded in the push
outbox and parsed without a client, with the sender's name from the receiver's store; bad
input rejected before any request."""
import json
import random
import threading
import urllib.request

import pytest

import cubechat

from conftest import APP_ID, PASSWORD, eventually, new_user, unique


def outbox(server, user_id):
    with urllib.request.urlopen(f"{server.api_url}/_admin/push_outbox?user_id={user_id}", timeout=10) as r:
        return json.loads(r.read())["items"]


class Watcher(cubechat.UserListener):
    """Records every copy of the watched user (called from a cubechat thread)."""

    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def on_user(self, user):
        with self.lock:
            self.seen.append(user)


async def test_lookups_search_and_a_watched_user(make_client):
    alice, a = await new_user(make_client, "ann")
    bob, b = await new_user(make_client, "bob")
    tag = unique("t")
    me = await alice.users().update_profile(cubechat.ProfileUpdate(
        full_name=f"Ann {tag}", email=f"{tag}@example.com", tags=[tag, "extra"]))
    assert me.full_name == f"Ann {tag}"
    assert set(me.tags) == {tag, "extra"}

    users = bob.users()
    watcher = Watcher()
    handle = users.watch(a.id, watcher)
    await eventually(lambda: len(watcher.seen) >= 1)
    assert watcher.seen[0] is None

    ids = [1_000_000 + i for i in range(150)] + [a.id, b.id, a.id]
    got = await users.get_by_ids(ids)
    assert [u.id for u in got] == [a.id, b.id]
    await eventually(lambda: len(watcher.seen) >= 2)
    assert watcher.seen[1].full_name == f"Ann {tag}"
    assert (await users.get_by_login(a.login)).id == a.id
    assert (await users.get_by_email(f"{tag}@example.com")).id == a.id
    assert await users.get_by_login(unique("nobody")) is None
    page = await users.search_by_full_name(tag, 1, 10)
    assert (page.total, [u.id for u in page.users]) == (1, [a.id])
    page = await users.search_by_tags([tag], 1, 10)
    assert [u.id for u in page.users] == [a.id]
    assert users.cached(a.id).full_name == f"Ann {tag}"
    assert [u.id for u in users.cached_many([b.id, a.id, 999_999_999])] == [b.id, a.id]
    assert await users.online_count() >= 0
    assert isinstance(await users.online(10, 0), list)
    handle.cancel()

    with pytest.raises(cubechat.ChatError.InvalidInput):
        await users.get_by_ids([])
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await users.search_by_tags(["a,b"], 1, 10)
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await users.update_profile(cubechat.ProfileUpdate())


async def test_password_and_account(make_client):
    client, me = await new_user(make_client, "carl")
    users = client.users()
    with pytest.raises(cubechat.ChatError):
        await users.change_password("wrong-password-1", "new-password-22")
    await users.change_password(PASSWORD, "new-password-22")
    again = make_client()
    await again.log_in(cubechat.LoginId.LOGIN(me.login), "new-password-22")
    await users.delete_account()
    other, _ = await new_user(make_client, "dora")
    assert await other.users().get_by_ids([me.id]) == []


async def test_contacts_with_typed_rejections(make_client):
    phone = f"+1555{random.randrange(10_000_000):07d}"
    friend, f = await new_user(make_client, "eve")
    await friend.users().update_profile(cubechat.ProfileUpdate(phone=phone, full_name="Eve"))
    client, _ = await new_user(make_client, "fay")
    book = client.contacts()
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await book.upload([cubechat.Contact(name="X", phone="call me")], None, cubechat.UploadMode.MERGE)
    r = await book.upload([cubechat.Contact(name="Eve", phone=phone),
                           cubechat.Contact(name="Short", phone="12")], "py-1", cubechat.UploadMode.MERGE)
    assert r.created == 1
    assert [(x.index, x.contact.phone) for x in r.rejected] == [(1, "12")]
    assert r.rejected[0].reasons
    assert [c.name for c in await book.get("py-1")] == ["Eve"]
    reg = await book.registered_users("py-1", False)
    assert [(x.user.id, x.address_book_name) for x in reg] == [(f.id, "Eve")]
    r = await book.upload([cubechat.Contact(name="Eve", phone=phone, destroy=True)], "py-1",
                          cubechat.UploadMode.MERGE)
    assert r.deleted == 1
    assert await book.get("py-1") == []


def subscription(channel, udid):
    return cubechat.NewSubscription(channel=channel, environment=cubechat.PushEnvironment.DEVELOPMENT,
                                    token=f"{udid}-token", udid=udid, bundle_identifier="com.example.chat")


async def test_push_to_an_offline_user_and_the_client_less_parser(server, make_client, tmp_path):
    alice, a = await new_user(make_client, "al")
    await alice.users().update_profile(cubechat.ProfileUpdate(full_name="Alice Py"))
    bob = make_client(store_dir=str(tmp_path))
    bob_login = unique("bo")
    await bob.sign_up(cubechat.NewUser(login=bob_login), PASSWORD)
    b = await bob.log_in(cubechat.LoginId.LOGIN(bob_login), PASSWORD)
    push = bob.push()

    with pytest.raises(cubechat.ChatError.InvalidInput):
        await push.subscribe(subscription("pager", "d1"))
    apns = await push.subscribe(subscription("apns", "d1"))
    fcm = await push.subscribe(subscription("fcm", "d2"))
    assert (apns[0].channel, apns[0].platform, fcm[0].channel) == ("apns", "ios", "gcm")
    assert sorted(s.id for s in await push.subscriptions()) == sorted([apns[0].id, fcm[0].id])
    await bob.users().get(a.id)

    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    m = await alice.create_message(cubechat.NewMessage(dialog_id=dialog.id, body="lunch?", custom={"mood": "ok"},
                                                       send_to_chat=True))
    deliveries = [i for i in outbox(server, b.id) if i["kind"] == "message"]
    assert sorted(i["channel"] for i in deliveries) == ["apns", "gcm"]
    lookup = cubechat.PushSenderLookup(str(tmp_path), APP_ID, b.id)
    for item in deliveries:
        p = cubechat.parse_chat_push(json.dumps(item["payload"]))
        assert (p.dialog_id, p.message_id, p.sender_id, p.text) == (dialog.id, m.id, a.id, "lunch?")
        assert p.custom["mood"] == "ok"
        assert lookup.sender_name(p.sender_id) == "Alice Py"
    with pytest.raises(cubechat.ChatError.NotChatPush):
        cubechat.parse_chat_push('{"aps": {"alert": "elsewhere"}}')
    with pytest.raises(cubechat.ChatError.NotChatPush):
        cubechat.parse_chat_push("[" * 100_000)

    before = len(outbox(server, b.id))
    sent = await alice.push().send_event(cubechat.PushEvent(user_ids=[b.id], message="ping",
                                                            environment=cubechat.PushEnvironment.DEVELOPMENT))
    assert len(sent) == 1
    events = [i for i in outbox(server, b.id)[before:] if i["kind"] == "event"]
    assert len(events) == 2
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await alice.push().send_event(cubechat.PushEvent(user_ids=[], message="x",
                                                         environment=cubechat.PushEnvironment.PRODUCTION))
    await push.unsubscribe(fcm[0].id)
    assert [s.id for s in await push.subscriptions()] == [apns[0].id]
