"""Shared fixtures: a real cubeserver on free local ports, and client factories."""
import json
import os
import pathlib
import signal
import subprocess
import threading
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP_ID, AUTH_KEY, AUTH_SECRET = 7, "key-7", "secret-7"


def cubeserver_bin() -> str:
    path = os.environ.get("CUBESERVER_BIN", str(ROOT / "target" / "debug" / "cubeserver"))
    if not os.path.exists(path):
        pytest.fail(f"cubeserver binary not found at {path}; run `make test`")
    return path


class Server:
    """A cubeserver process; `info` is its ready line."""

    def __init__(self, tmp: pathlib.Path):
        self.proc = subprocess.Popen(
            [cubeserver_bin(), "--api-port", "0", "--db", ":memory:",
             "--cert-dir", str(tmp / "certs"),
             "--app", f"{APP_ID}:{AUTH_KEY}:{AUTH_SECRET}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(20)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError("cubeserver did not print its ready line within 20 s")
        self.info = json.loads(line[0])
        self.api_url = self.info["api_url"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("cubeserver"))
    yield s
    s.stop()


@pytest.fixture(scope="session", autouse=True)
def platform():
    import cubechat
    cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.INFO), None)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def client_config(server, **overrides) -> dict:
    """Keyword arguments of `cubechat.ClientConfig` for this server (JSON-serialisable)."""
    cfg = dict(app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET, api_url=server.api_url)
    if "xmpp_port" in server.info:
        # cubeserver's XMPP side: STARTTLS and direct-TLS ports, trusted through its CA.
        cfg.update(chat_domain=server.info["chat_domain"], chat_host="127.0.0.1",
                   chat_port=server.info["xmpp_port"], chat_tls_port=server.info["xmpp_tls_port"],
                   extra_ca_pem=pathlib.Path(server.info["ca_cert"]).read_text())
    cfg.update(overrides)
    return cfg


@pytest.fixture
def make_client(server):
    import cubechat

    def make(**overrides):
        return cubechat.ChatClient(cubechat.ClientConfig(**client_config(server, **overrides)))

    return make


PASSWORD = "correct-horse-9"


async def eventually(predicate, seconds=10.0):
    """Waits (bounded) until a listener has recorded what `predicate` looks for."""
    import asyncio

    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def new_user(make_client, prefix="u"):
    """A fresh user, signed up and logged in: (client, user)."""
    import cubechat

    client = make_client()
    login = unique(prefix)
    await client.sign_up(cubechat.NewUser(login=login), PASSWORD)
    me = await client.log_in(cubechat.LoginId.LOGIN(login), PASSWORD)
    return client, me
