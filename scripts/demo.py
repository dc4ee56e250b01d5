"""cubechat demo: starts cubeserver on free local ports and, through the Python bindings, signs
up two users, creates a group, exchanges a conversation over REST, reacts, sends an attachment
through cloud storage and downloads it on the other side; then the two chat in real time over
XMPP (typing, delivered/read, an edit, a reaction, a network drop that loses nothing); alice
writes a message while offline, it waits in her local store (SQLite) and arrives after the
reconnect; and the server stops."""
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid

import cubechat

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("CUBESERVER_BIN", str(ROOT / "target" / "debug" / "cubeserver"))
APP_ID, AUTH_KEY, AUTH_SECRET = 1, "demo-auth-key", "demo-auth-secret"


class Printer(cubechat.ConnectionListener, cubechat.MessageListener, cubechat.StatusListener,
              cubechat.TypingListener, cubechat.MessageChangeListener):
    """Prints what one user's SDK reports, and keeps it for the demo's checks."""

    def __init__(self, name):
        self.name, self.events = name, []

    def _show(self, text, event):
        self.events.append(event)
        print(f"  [{self.name:<5}] {text}")

    def on_state(self, state):
        self._show(f"connection: {state}", state)

    def on_message(self, m):
        self._show(f"message from {m.sender_id}: {m.body!r}{' (delayed)' if m.delayed else ''}", m)

    def on_status(self, status):
        self._show(f"status: {status}", status)

    def on_typing(self, dialog_id, user_id, composing):
        self._show(f"user {user_id} {'is typing…' if composing else 'stopped typing'}", (user_id, composing))

    def on_change(self, change):
        self._show(f"change: {change}", change)

    def subscribe(self, client):
        return [client.subscribe_connection(self), client.subscribe_messages(self), client.subscribe_statuses(self),
                client.subscribe_typing(self), client.subscribe_message_changes(self)]


class Timeline(cubechat.TimelineListener):
    """Alice's live timeline as an app keeps it: a list, updated in place by each event."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []

    def on_timeline_event(self, event):
        with self.lock:
            cubechat.apply_event(self.messages, event)

    def state_of(self, message_id):
        with self.lock:
            m = next((m for m in self.messages if m.id == message_id), None)
        return None if m is None else str(m.state).split(".")[-1].split("(")[0]


async def until(what, predicate, seconds=10):
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise SystemExit(f"demo failed: {what} did not happen in {seconds} s")


async def realtime(clients, users, tmp):
    """The same two users over XMPP: typing, a message, delivered/read, an edit, a reaction and
    a reconnect that loses nothing."""
    alice, bob = clients["alice"], clients["bob"]
    a, b = users["alice"].id, users["bob"].id
    print("real-time chat:")
    pa, pb = Printer("alice"), Printer("bob")
    handles = pa.subscribe(alice) + pb.subscribe(bob)
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    await bob.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    dialog = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b]))

    await alice.send_typing(dialog.id, b, True)
    await until("bob sees alice typing", lambda: any(e == (a, True) for e in pb.events if isinstance(e, tuple)))
    mid = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b,
                                                            body="Are you at the trailhead?"))
    await until("bob gets the message", lambda: any(getattr(e, "id", None) == mid for e in pb.events))
    await until("alice sees delivered", lambda: any(isinstance(e, cubechat.MessageStatus.DELIVERED) for e in pa.events))
    await bob.send_read(dialog.id, mid, a)
    await until("alice sees read", lambda: any(isinstance(e, cubechat.MessageStatus.READ) for e in pa.events))
    await alice.send_edit(dialog.id, b, mid, "Are you at the trailhead yet?", True)
    await until("bob sees the edit", lambda: any(isinstance(e, cubechat.MessageChange.EDITED) for e in pb.events))
    await bob.add_reaction(mid, "👍")
    await until("alice sees the reaction", lambda: any(isinstance(e, cubechat.MessageChange.REACTIONS) for e in pa.events))

    print("  bob's network drops and comes back; alice writes meanwhile")
    await bob.set_network_available(False)
    later = await alice.send_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b,
                                                              body="Parking is full, take the bus"))
    await bob.set_network_available(True)
    await until("bob gets the message sent while away",
                lambda: sum(1 for e in pb.events if getattr(e, "id", None) == later) == 1)
    await until("bob is connected again", lambda: bob.connection_state() == cubechat.ConnectionState.CONNECTED())

    print("offline-first: alice loses her network and writes anyway")
    timeline = Timeline()
    handles.append(alice.watch_timeline(dialog.id, 5, timeline))
    await alice.set_network_available(False)
    await until("alice is offline", lambda: alice.connection_state() != cubechat.ConnectionState.CONNECTED())
    queued = alice.enqueue_message(cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=b,
                                                            body="Written in the tunnel, sent when out"), [])
    print(f"  [alice] queued {queued.id} in her local store: {queued.state}; "
          f"pending: {len(alice.pending_messages())}")
    await asyncio.sleep(1)
    if any(getattr(e, "id", None) == queued.id for e in pb.events):
        raise SystemExit("demo failed: a message left while offline")
    await alice.set_network_available(True)
    await until("bob gets the message written offline",
                lambda: sum(1 for e in pb.events if getattr(e, "id", None) == queued.id) == 1)
    await until("alice's timeline shows it sent", lambda: timeline.state_of(queued.id) not in (None, "QUEUED"))
    print(f"  [alice] after the reconnect: {timeline.state_of(queued.id)}; pending: {len(alice.pending_messages())}")
    for h in handles:
        h.cancel()


async def users_and_push(clients, users, info, tmp):
    """A name lookup, and a push recorded for the offline user, parsed without a client."""
    alice, bob = clients["alice"], clients["bob"]
    print("users and push:")
    found = await bob.users().get_by_login(users["alice"].login)
    print(f"  [bob  ] looked up login {users['alice'].login}: {found.full_name} (id {found.id}); "
          f"kept in his store: {bob.users().cached(found.id).full_name}")
    subs = await bob.push().subscribe(cubechat.NewSubscription(
        channel="apns", environment=cubechat.PushEnvironment.DEVELOPMENT, token="bob-device-token",
        udid="bobs-iphone", bundle_identifier="com.example.trip"))
    print(f"  [bob  ] subscribed his iPhone for pushes: subscription {subs[0].id} ({subs[0].channel})")
    private = await alice.create_dialog(cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE,
                                                           occupants_ids=[users["bob"].id]))
    await alice.create_message(cubechat.NewMessage(dialog_id=private.id, body="Are you awake?",
                                                   send_to_chat=True))
    url = f"{info['api_url']}/_admin/push_outbox?user_id={users['bob'].id}"
    with urllib.request.urlopen(url, timeout=10) as r:
        items = json.loads(r.read())["items"]
    item = items[-1]
    print(f"  [server] bob is offline: push recorded for subscription {item['subscription_id']} "
          f"({item['channel']}, {item['environment']})")
    push = cubechat.parse_chat_push(json.dumps(item["payload"]))
    lookup = cubechat.PushSenderLookup(os.path.join(tmp, "store"), APP_ID, users["bob"].id)
    print(f"  [bob's notification extension] '{push.text}' from {lookup.sender_name(push.sender_id)} "
          f"(user {push.sender_id}) in dialog {push.dialog_id}, message {push.message_id}")
    if push.dialog_id != private.id or push.sender_id != users["alice"].id:
        raise SystemExit("demo failed: the push does not match the message")


def start_server(tmp):
    proc = subprocess.Popen([BIN, "--api-port", "0", "--cert-dir", tmp, "--db", os.path.join(tmp, "demo.sqlite")],
                            stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    return proc, info


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        proc, info = start_server(tmp)
        try:
            print(f"cubeserver up: REST {info['api_url']}, chat domain {info['chat_domain']}")
            cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.WARN), None)
            cfg = dict(app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET, api_url=info["api_url"],
                       chat_domain=info["chat_domain"], chat_host="127.0.0.1", chat_port=info["xmpp_port"],
                       chat_tls_port=info["xmpp_tls_port"], extra_ca_pem=pathlib.Path(info["ca_cert"]).read_text())
            suffix = uuid.uuid4().hex[:6]
            clients, users = {}, {}
            for name in ("alice", "bob"):
                client = cubechat.ChatClient(cubechat.ClientConfig(**cfg, store_dir=os.path.join(tmp, "store")))
                login = f"{name}-{suffix}"
                user = await client.sign_up(cubechat.NewUser(login=login, full_name=name.title()), "demo-password")
                print(f"signed up  {user.full_name:<6} id={user.id} login={user.login}")
                try:
                    await client.log_in(cubechat.LoginId.LOGIN(login), "not-the-password")
                except cubechat.ChatError.InvalidCredentials:
                    print(f"wrong password for {login}: rejected with ChatError.InvalidCredentials")
                me = await client.log_in(cubechat.LoginId.LOGIN(login), "demo-password")
                session = await client.get_session()
                print(f"logged in  {me.full_name:<6} session id={session.id} user_id={session.user_id}")
                clients[name], users[name] = client, me
            alice, bob = clients["alice"], clients["bob"]

            group = await alice.create_dialog(cubechat.NewDialog(
                kind=cubechat.DialogType.GROUP, name="Weekend trip", occupants_ids=[users["bob"].id]))
            print(f"group      '{group.name}' id={group.id} occupants={sorted(group.occupants_ids)}")
            lines = [("alice", "Shall we go hiking on Saturday?"), ("bob", "Yes! Which trail?"),
                     ("alice", "The ridge loop, 14 km."), ("bob", "Perfect, I'll bring snacks.")]
            for who, text in lines:
                await clients[who].create_message(cubechat.NewMessage(dialog_id=group.id, body=text))
            counts = await bob.unread_counts([group.id])
            print(f"bob unread before reading: {counts.per_dialog[group.id]}")
            history = await bob.history(group.id, cubechat.ListParams(limit=50), True)
            for m in history:
                sender = "Alice" if m.sender_id == users["alice"].id else "Bob"
                print(f"  {sender:<5} {m.body}")
            print(f"bob unread after reading:  {(await bob.unread_counts([group.id])).per_dialog[group.id]}")

            await bob.add_reaction(history[2].id, "👍")
            await alice.add_reaction(history[3].id, "🎉")
            print(f"reactions on '{history[2].body}': {await alice.reactions(history[2].id)}")

            class Progress(cubechat.TransferListener):
                def __init__(self, label):
                    self.label, self.shown = label, -1

                def on_progress(self, done, total):
                    pct = 100 * done // total if total else 0
                    if pct // 25 > self.shown:
                        self.shown = pct // 25
                        print(f"  {self.label} {pct:3d}% ({done}/{total} bytes)")

            route = pathlib.Path(tmp) / "ridge-loop.gpx"
            route.write_text("<gpx>" + "<trkpt lat='46.5' lon='7.9'/>" * 40000 + "</gpx>")
            blob = await alice.upload_file(str(route), cubechat.UploadOptions(content_type="application/gpx+xml"),
                                           Progress("upload  "), None)
            await alice.create_message(cubechat.NewMessage(dialog_id=group.id, body="Route attached",
                                                           attachments=[cubechat.attachment_from_blob(blob)]))
            print(f"alice sent '{blob.name}' ({blob.size} bytes, uid {blob.uid})")
            newest = await bob.history(group.id, cubechat.ListParams(limit=1, sort_by="date_sent",
                                                                      sort_descending=True), True)
            attachment = newest[0].attachments[0]
            copy = pathlib.Path(tmp) / "bob-copy.gpx"
            size = await bob.download_file(attachment.uid, str(copy), Progress("download"), None)
            same = copy.read_bytes() == route.read_bytes()
            print(f"bob downloaded {size} bytes; identical to alice's file: {same}")
            if not same:
                raise SystemExit("demo failed: the downloaded attachment differs")

            await users_and_push(clients, users, info, tmp)
            await realtime(clients, users, tmp)
            for client in clients.values():
                await client.destroy_chat()
                await client.destroy_session()
            print("demo finished")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
