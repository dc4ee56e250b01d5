"""Hardening seen from Python: printing configs and credentials never shows a secret, a
listener that raises is logged once (no Rust panic on stderr) and keeps receiving events,
unsendable text is refused at the call."""
import threading

import pytest

import cubechat

from conftest import eventually, new_user


def test_str_and_repr_of_configs_and_credentials_hide_secrets(server):
    cfg = cubechat.ClientConfig(app_id=7, auth_key="key-7", auth_secret="s3cr3t-auth",
                                api_url=server.api_url, extra_ca_pem="-----BEGIN CERTIFICATE-----")
    auth = cubechat.ChatAuth.PASSWORD(user_id=5, password="pa55-word")
    for shown in (str(cfg), repr(cfg), f"{cfg}", str(auth), repr(auth), f"{[cfg, auth]}"):
        assert "s3cr3t" not in shown and "pa55" not in shown and "BEGIN" not in shown, shown
    assert "<redacted>" in str(cfg) and "<redacted>" in str(auth)
    assert "key-7" in str(cfg), "the rest stays readable"
    assert "SessionToken" in str(cubechat.ChatAuth.SESSION_TOKEN())


class Sink(cubechat.LogSink):
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []

    def log(self, record):
        with self.lock:
            self.records.append(record)

    def failures(self, listener):
        with self.lock:
            return [r for r in self.records
                    if r.level == cubechat.LogLevel.WARN and listener in r.message]


class Raising(cubechat.MessageListener):
    """Records each message, then raises."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bodies = []

    def on_message(self, message):
        with self.lock:
            self.bodies.append(message.body)
        raise ValueError(f"app bug while showing {message.body}")


async def test_a_raising_listener_is_logged_once_and_keeps_receiving(make_client, capfd):
    sink = Sink()
    cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.INFO), sink)
    try:
        alice, a = await new_user(make_client, "ha")
        bob, b = await new_user(make_client, "hb")
        raising = Raising()
        handle = bob.subscribe_messages(raising)
        await bob.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
        await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
        dialog = await alice.create_dialog(
            cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
        sent = [f"secret body {i}" for i in range(5)]
        for body in sent:
            await alice.send_message(cubechat.OutgoingMessage(
                dialog_id=dialog.id, recipient_id=b.id, body=body))
        await eventually(lambda: len(raising.bodies) == len(sent))
        assert raising.bodies == sent, "every later event was still delivered, in order"
        assert handle.is_active()
        await eventually(lambda: sink.failures("MessageListener"))
        failures = sink.failures("MessageListener")
        assert len(failures) == 1, [f.message for f in failures]
        assert "ValueError" in failures[0].message
        assert "secret body" not in failures[0].message, "the exception text is not logged"
        await alice.destroy_chat()
        await bob.destroy_chat()
    finally:
        cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.INFO), None)
    err = capfd.readouterr().err
    assert "panicked" not in err and "backtrace" not in err, err[-2000:]


async def test_unsendable_text_is_refused_at_the_call(make_client):
    client, me = await new_user(make_client, "hu")
    client.open_store(me.id)
    for bad in ("nul\x00", "bell\x07", "\ufffe", "\uffff"):
        with pytest.raises(cubechat.ChatError.InvalidInput):
            client.enqueue_message(cubechat.OutgoingMessage(
                dialog_id="5f3a5f3a5f3a5f3a5f3a5f3a", recipient_id=1, body=bad), [])
        with pytest.raises(cubechat.ChatError.InvalidInput):
            client.enqueue_message(cubechat.OutgoingMessage(
                dialog_id="5f3a5f3a5f3a5f3a5f3a5f3a", recipient_id=1, body="ok", custom={"k": bad}), [])
    with pytest.raises(cubechat.ChatError.InvalidInput):
        client.enqueue_message(cubechat.OutgoingMessage(
            dialog_id="5f3a5f3a5f3a5f3a5f3a5f3a", recipient_id=1, body="ok",
            custom={f"k{i}": "v" for i in range(10_000)}), [])
    with pytest.raises(cubechat.ChatError.InvalidInput):
        client.enqueue_message(cubechat.OutgoingMessage(
            dialog_id="5f3a5f3a5f3a5f3a5f3a5f3a", recipient_id=1, body="ok",
            custom={"big": "x" * (1 << 20)}), [])
    assert client.pending_messages() == []
