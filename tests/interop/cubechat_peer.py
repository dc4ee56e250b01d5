"""One cubechat user (through the Python bindings) on cubeserver's XMPP side, driven over JSON
lines by xmpp.test.js, the counterpart of js_peer.js.

stdin, one command a line:   {"id": 1, "cmd": "send_message", "args": {...}}
stdout, one JSON a line:     {"reply": 1, "ok": <value>} | {"reply": 1, "error": "<ChatError variant>", "reason": "..."}
                             {"event": "<family>", "kind": "<variant>", "value": {...}}   (any time)

Event families, one per listener interface: "connection" (ConnectionListener), "message"
(MessageListener), "status" (StatusListener), "typing" (TypingListener), "change"
(MessageChangeListener), "system" (SystemMessageListener), "error" (MessageErrorListener),
"presence" (PresenceListener: LAST_ACTIVITY, OCCUPANT_JOINED, OCCUPANT_LEFT, KICKED).
`kind` is the variant of enum values (e.g. "DELIVERED"), else null; `value` holds the
bindings' record or variant fields with their Python names, unconverted (see
cubechat_probe.plain). REST ops of cubechat_probe (history, add_reaction, …) run as
{"cmd": "rest", "args": {"op": "history", "args": [...]}}.
"""
import asyncio
import json
import os
import sys
import threading

import cubechat

from cubechat_probe import APP_ID, AUTH_KEY, AUTH_SECRET, OPS, attachment, plain

_out = threading.Lock()


def emit(obj):
    line = json.dumps(obj, ensure_ascii=False) + "\n"
    with _out:
        sys.stdout.write(line)
        sys.stdout.flush()


def variant(v):
    """(variant name, fields) of a bindings enum value or record."""
    name = type(v).__name__.rsplit(".", 1)[-1]
    return (name if name.isupper() else None), plain(v)


class Listeners(cubechat.ConnectionListener, cubechat.MessageListener, cubechat.StatusListener,
                cubechat.TypingListener, cubechat.MessageChangeListener, cubechat.SystemMessageListener,
                cubechat.MessageErrorListener, cubechat.PresenceListener):
    """Every listener interface; each event becomes one JSON line."""

    def _emit(self, family, v):
        kind, value = variant(v)
        emit({"event": family, "kind": kind, "value": value})

    def on_state(self, state):
        self._emit("connection", state)

    def on_message(self, message):
        self._emit("message", message)

    def on_status(self, status):
        self._emit("status", status)

    def on_typing(self, dialog_id, user_id, composing):
        emit({"event": "typing", "kind": None,
              "value": {"dialog_id": dialog_id, "user_id": user_id, "composing": composing}})

    def on_change(self, change):
        self._emit("change", change)

    def on_system_message(self, message):
        self._emit("system", message)

    def on_message_error(self, message_id, code, text):
        emit({"event": "error", "kind": None, "value": {"message_id": message_id, "code": code, "text": text}})

    def on_presence(self, event):
        self._emit("presence", event)


class Peer:
    def __init__(self):
        self.client = None
        self.handles = []
        self.listeners = Listeners()

    async def login(self, server, login, password):
        """`server` is cubeserver's ready line; chat goes over STARTTLS to its XMPP port,
        trusting its CA."""
        with open(server["ca_cert"], encoding="utf-8") as f:
            ca = f.read()
        self.client = cubechat.ChatClient(cubechat.ClientConfig(
            app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET, api_url=server["api_url"],
            chat_domain=server["chat_domain"], chat_host="127.0.0.1", chat_port=server["xmpp_port"],
            chat_tls_port=server["xmpp_tls_port"], extra_ca_pem=ca))
        me = await self.client.log_in(cubechat.LoginId.LOGIN(login), password)
        c, ls = self.client, self.listeners
        self.handles = [c.subscribe_connection(ls), c.subscribe_messages(ls), c.subscribe_statuses(ls),
                        c.subscribe_typing(ls), c.subscribe_message_changes(ls),
                        c.subscribe_system_messages(ls), c.subscribe_message_errors(ls),
                        c.subscribe_presence(ls)]
        await self.client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
        return {"user_id": me.id, "state": variant(self.client.connection_state())[0]}

    async def send_message(self, dialog_id, recipient_id=None, body="", attachments=(), custom=None,
                           save_to_history=True, date_sent=None, markable=True, silent=False):
        return await self.client.send_message(cubechat.OutgoingMessage(
            dialog_id=dialog_id, recipient_id=recipient_id, body=body,
            attachments=[attachment(a) for a in attachments], custom=custom or {},
            save_to_history=save_to_history, date_sent=date_sent, markable=markable, silent=silent))

    async def send_delivered(self, dialog_id, message_id, sender_id):
        return await self.client.send_delivered(dialog_id, message_id, sender_id)

    async def send_read(self, dialog_id, message_id, sender_id):
        return await self.client.send_read(dialog_id, message_id, sender_id)

    async def send_typing(self, dialog_id, recipient_id, composing):
        return await self.client.send_typing(dialog_id, recipient_id, composing)

    async def send_edit(self, dialog_id, recipient_id, message_id, body, last):
        return await self.client.send_edit(dialog_id, recipient_id, message_id, body, last)

    async def send_delete(self, dialog_id, recipient_id, message_id):
        return await self.client.send_delete(dialog_id, recipient_id, message_id)

    async def send_chat_system_message(self, user_id, body, custom):
        return await self.client.send_chat_system_message(user_id, body, custom)

    async def join_room(self, dialog_id):
        return await self.client.join_room(dialog_id)

    async def leave_room(self, dialog_id):
        return await self.client.leave_room(dialog_id)

    async def disconnect_chat(self):
        return await self.client.disconnect_chat()

    async def destroy_chat(self):
        return await self.client.destroy_chat()

    async def reconnect_now(self):
        return await self.client.reconnect_now()

    async def create_privacy_list(self, name, items):
        """`items`: [{"user_id", "allow"?, "mutual_block"?}]."""
        return await self.client.create_privacy_list(privacy_list(name, items))

    async def update_privacy_list(self, name, items):
        return await self.client.update_privacy_list(privacy_list(name, items))

    async def privacy_list_names(self):
        return await self.client.privacy_list_names()

    async def privacy_list(self, name):
        return await self.client.privacy_list(name)

    async def set_default_privacy_list(self, name=None):
        return await self.client.set_default_privacy_list(name)

    async def delete_privacy_list(self, name):
        return await self.client.delete_privacy_list(name)

    async def last_activity(self, user_id):
        return await self.client.last_activity(user_id)

    async def subscribe_last_activity(self, user_id):
        return await self.client.subscribe_last_activity(user_id)

    async def unsubscribe_last_activity(self, user_id):
        return await self.client.unsubscribe_last_activity(user_id)

    async def mark_active(self):
        return await self.client.mark_active()

    async def mark_inactive(self):
        return await self.client.mark_inactive()

    async def room_occupants(self, dialog_id):
        return await self.client.room_occupants(dialog_id)

    async def connection_state(self):
        return variant(self.client.connection_state())

    async def push_subscribe(self, channel, environment, token, udid, bundle_identifier=None):
        """Subscribes this device through cubechat's push feature (`ChatClient.push()`)."""
        env = (cubechat.PushEnvironment.PRODUCTION if environment == "production"
               else cubechat.PushEnvironment.DEVELOPMENT)
        subs = await self.client.push().subscribe(cubechat.NewSubscription(
            channel=channel, environment=env, token=token, udid=udid,
            bundle_identifier=bundle_identifier, platform=None, web_auth=None, web_p256dh=None))
        return [{"id": s.id, "channel": s.channel, "udid": s.udid, "platform": s.platform}
                for s in subs]

    async def parse_chat_push(self, payload):
        """cubechat's client-less push parser on a received payload (a JSON object)."""
        p = cubechat.parse_chat_push(json.dumps(payload))
        return {"dialog_id": p.dialog_id, "message_id": p.message_id, "sender_id": p.sender_id,
                "text": p.text, "title": p.title, "custom": dict(p.custom)}

    async def rest(self, op, args):
        """A REST op of cubechat_probe with its argument converters, or any other ChatClient
        method with its JSON arguments as they are."""
        if op not in OPS:
            return await getattr(self.client, op)(*args)
        converters = OPS[op]
        if len(args) != len(converters):
            raise ValueError(f"{op} takes {len(converters)} arguments, got {len(args)}")
        return await getattr(self.client, op)(*[c(a) for c, a in zip(converters, args)])


def privacy_list(name, items):
    return cubechat.PrivacyList(name=name, items=[cubechat.PrivacyListItem(
        user_id=i["user_id"], allow=bool(i.get("allow", False)), mutual_block=bool(i.get("mutual_block", False)))
        for i in items])


async def handle(peer, req):
    rid, cmd, args = req.get("id"), req.get("cmd"), req.get("args") or {}
    try:
        if cmd == "exit":
            emit({"reply": rid, "ok": None})
            return False
        f = getattr(peer, cmd, None)
        if f is None or cmd.startswith("_"):
            emit({"reply": rid, "error": "UnknownCommand", "reason": str(cmd)})
            return True
        value = await f(**args)
        emit({"reply": rid, "ok": plain(value)})
    except cubechat.ChatError as e:
        emit({"reply": rid, "error": type(e).__name__, "reason": getattr(e, "reason", str(e))})
    except Exception as e:  # a peer bug or a bad command: report it, keep serving
        emit({"reply": rid, "error": type(e).__name__, "reason": repr(e)})
    return True


async def main():
    loop = asyncio.get_running_loop()
    peer = Peer()
    tasks = set()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("cmd") == "exit":
            await handle(peer, req)
            break
        # Commands run concurrently (a reply may overtake an earlier one); each carries its id.
        t = asyncio.ensure_future(handle(peer, req))
        tasks.add(t)
        t.add_done_callback(tasks.discard)


if __name__ == "__main__":
    cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.WARN), None)
    asyncio.run(main())
    sys.stdout.flush()
    # Skip interpreter finalisation (see cubechat_probe.main).
    os._exit(0)
