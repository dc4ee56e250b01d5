"""Authentication through the Python bindings, against a real cubechat server."""
import asyncio
import http.server
import threading

import pytest

import cubechat
from cubechat import uniffi_set_event_loop  # noqa: F401  (re-export check)

from conftest import APP_ID, AUTH_KEY, unique

PASSWORD = "correct-horse-9"


async def sign_up_and_log_in(client):
    login = unique("py")
    user = await client.sign_up(cubechat.NewUser(login=login, full_name="Py Tester", tags=["a", "b"]), PASSWORD)
    assert user.login == login and user.tags == ["a", "b"]
    me = await client.log_in(cubechat.LoginId.LOGIN(login), PASSWORD)
    assert me.id == user.id
    return login, me


async def test_sign_up_log_in_session_and_log_out(make_client):
    client = make_client()
    assert client.current_session() is None
    login, me = await sign_up_and_log_in(client)
    session = await client.get_session()
    assert session.user_id == me.id and session.application_id == APP_ID
    token = client.session_token()
    assert token and token not in repr(session)
    await client.log_out()
    assert (await client.get_session()).user_id == 0
    await client.destroy_session()
    assert client.current_session() is None
    with pytest.raises(cubechat.ChatError.NotLoggedIn):
        await client.get_session()


async def test_log_in_by_email_and_one_call_user_session(make_client):
    client = make_client()
    email = f"{unique('m')}@example.com"
    await client.sign_up(cubechat.NewUser(email=email), PASSWORD)
    other = make_client()
    session = await other.create_user_session(cubechat.LoginId.EMAIL(email), PASSWORD)
    assert session.user_id > 0
    third = make_client()
    user = await third.log_in(cubechat.LoginId.EMAIL(email), PASSWORD)
    assert user.id == session.user_id


async def test_use_existing_token(make_client):
    a = make_client()
    _, me = await sign_up_and_log_in(a)
    b = make_client()
    session = await b.use_token(a.session_token())
    assert session.user_id == me.id
    with pytest.raises(cubechat.ChatError.SessionExpired):
        await make_client().use_token("0" * 40)


async def test_log_records_arrive_from_a_background_thread(make_client):
    records = []

    class Sink(cubechat.LogSink):
        def log(self, record):
            records.append((threading.current_thread() is threading.main_thread(), record))

    cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.INFO), Sink())
    try:
        await sign_up_and_log_in(make_client())
    finally:
        cubechat.init_platform(cubechat.LogConfig(), None)
    logged_in = [r for main, r in records if "logged in" in r.message]
    assert logged_in, [r.message for _, r in records]
    assert all(not main for main, r in records if "logged in" in r.message)
    assert logged_in[0].target.startswith("cubechat_core")
    assert all(PASSWORD not in r.message for _, r in records)


async def test_session_listener_and_transparent_renewal(make_client, server):
    events = []

    class Listener(cubechat.SessionListener):
        def on_session_event(self, event):
            events.append(event)

    client = make_client()
    handle = client.subscribe_session(Listener())
    _, me = await sign_up_and_log_in(client)
    old = client.session_token()
    # Expire every token on the server: the next call renews the session once and succeeds.
    await asyncio.to_thread(_post, server.api_url + "/_admin/expire_sessions")
    session = await client.get_session()
    assert session.user_id == me.id and client.session_token() != old
    await eventually(lambda: any(isinstance(e, cubechat.SessionEvent.RENEWED) for e in events))
    assert isinstance(events[0], cubechat.SessionEvent.CURRENT) and events[0].user_id is None
    assert [e.user_id for e in events if isinstance(e, cubechat.SessionEvent.RENEWED)] == [me.id]
    # A token-only session cannot be renewed: the listener hears Expired.
    other = make_client()
    await other.use_token(client.session_token())
    expired = []

    class L2(cubechat.SessionListener):
        def on_session_event(self, event):
            expired.append(event)

    h2 = other.subscribe_session(L2())
    await asyncio.to_thread(_post, server.api_url + "/_admin/expire_sessions")
    with pytest.raises(cubechat.ChatError.SessionExpired):
        await other.get_session()
    await eventually(lambda: any(isinstance(e, cubechat.SessionEvent.EXPIRED) for e in expired))
    handle.cancel()
    assert not handle.is_active()
    h2.cancel()


async def eventually(predicate, seconds=5.0):
    """Waits (bounded) until a listener has recorded what `predicate` looks for."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def _post(url):
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=10).read()


async def test_typed_errors(make_client, server):
    login, _ = await sign_up_and_log_in(make_client())
    with pytest.raises(cubechat.ChatError.InvalidCredentials):
        await make_client().log_in(cubechat.LoginId.LOGIN(login), "wrong-password")
    with pytest.raises(cubechat.ChatError.ApplicationRejected):
        await make_client(app_id=999).log_in(cubechat.LoginId.LOGIN(login), PASSWORD)
    with pytest.raises(cubechat.ChatError.ApplicationRejected):
        await make_client(auth_key="nope").create_session()
    with pytest.raises(cubechat.ChatError.SignatureRejected):
        await make_client(auth_secret="wrong-secret").log_in(cubechat.LoginId.LOGIN(login), PASSWORD)
    with pytest.raises(cubechat.ChatError.Network):
        await make_client(api_url="http://127.0.0.1:1").create_session()
    with pytest.raises(cubechat.ChatError.InvalidInput):
        make_client(api_url="http://example.com")
    with pytest.raises(cubechat.ChatError.InvalidInput):
        await make_client().log_in(cubechat.LoginId.LOGIN(""), PASSWORD)
    with pytest.raises(cubechat.ChatError.Server) as taken:
        await make_client().sign_up(cubechat.NewUser(login=login), PASSWORD)
    assert taken.value.code == 422


async def test_malformed_server_json_is_a_protocol_error(make_client):
    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = b'{"session": {"id": 1, "token": '
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = make_client(api_url=f"http://127.0.0.1:{httpd.server_address[1]}")
        with pytest.raises(cubechat.ChatError.Protocol):
            await client.create_session()
    finally:
        httpd.shutdown()


async def test_no_panic_crosses_the_ffi(make_client):
    with pytest.raises(cubechat.InternalError):
        cubechat.trigger_test_panic()
    with pytest.raises(cubechat.ChatError.Internal):
        await cubechat.trigger_test_panic_async()
    # The library is still usable afterwards.
    await make_client().create_session()


async def test_a_failing_listener_keeps_receiving(make_client):
    seen = []

    class Flaky(cubechat.SessionListener):
        def on_session_event(self, event):
            seen.append(event)
            raise RuntimeError("listener bug")

    client = make_client()
    handle = client.subscribe_session(Flaky())
    await sign_up_and_log_in(client)
    await client.log_out()
    await eventually(lambda: any(isinstance(e, cubechat.SessionEvent.LOGGED_OUT) for e in seen))
    assert isinstance(seen[0], cubechat.SessionEvent.CURRENT)
    assert handle.is_active()
    handle.cancel()
