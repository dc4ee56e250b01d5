"""A small chat program on cubechat's Python layer.

Starts cubeserver on free local ports (``CUBESERVER_BIN``, default target/debug/cubeserver),
signs up two users and lets them talk in real time: bob reads with ``async for`` streams,
alice follows the connection state as a stream, both use ``async with``; a plain function
and an ``async def`` serve as listeners. Exits non-zero if anything does not arrive in time.
Type-checked with ``mypy --strict`` (``make wheel-check``); run by ``make test``.

    CUBESERVER_BIN=target/debug/cubeserver python examples/python/chat.py
"""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import uuid
from typing import Dict, List, Tuple

import cubechat

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("CUBESERVER_BIN", str(ROOT / "target" / "debug" / "cubeserver"))
APP_ID, AUTH_KEY, AUTH_SECRET = 1, "demo-auth-key", "demo-auth-secret"
PASSWORD = "example-password"
LINES = ["Hi Bob, lunch at noon?", "The usual place?", "See you there"]


def start_server(tmp: str) -> Tuple["subprocess.Popen[str]", Dict[str, object]]:
    """cubeserver on free ports; its ready line (JSON) says where."""
    proc = subprocess.Popen([BIN, "--api-port", "0", "--cert-dir", tmp, "--db", ":memory:"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info: Dict[str, object] = json.loads(proc.stdout.readline())
    return proc, info


def config(info: Dict[str, object]) -> cubechat.ClientConfig:
    return cubechat.ClientConfig(
        app_id=APP_ID, auth_key=AUTH_KEY, auth_secret=AUTH_SECRET, api_url=str(info["api_url"]),
        chat_domain=str(info["chat_domain"]), chat_host="127.0.0.1",
        chat_port=int(str(info["xmpp_port"])), chat_tls_port=int(str(info["xmpp_tls_port"])),
        extra_ca_pem=pathlib.Path(str(info["ca_cert"])).read_text())


async def user(client: cubechat.ChatClient, name: str) -> cubechat.User:
    login = f"{name}-{uuid.uuid4().hex[:6]}"
    await client.sign_up(cubechat.NewUser(login=login, full_name=name.title()), PASSWORD)
    return await client.log_in(cubechat.LoginId.LOGIN(login), PASSWORD)


async def bob_reads(bob: cubechat.ChatClient, typing: cubechat.EventStream[cubechat.Typing],
                    messages: cubechat.EventStream[cubechat.ReceivedMessage],
                    alice_id: int, dialog_id: str) -> List[str]:
    """Bob: prints typing and messages as his streams deliver them, answers the last one."""
    got: List[str] = []
    async with messages:
        t = await typing.__anext__()
        print(f"  [bob] user {t.user_id} {'is typing' if t.composing else 'stopped typing'}")
        typing.close()
        async for m in messages:
            print(f"  [bob] message {m.id} from {m.sender_id}: {m.body!r}")
            got.append(m.body)
            if len(got) == len(LINES):
                break
    await bob.send_message(cubechat.OutgoingMessage(
        dialog_id=dialog_id, recipient_id=alice_id, body="Great, see you!"))
    return got


async def chat(info: Dict[str, object]) -> None:
    async with cubechat.ChatClient(config(info)) as alice, \
            cubechat.ChatClient(config(info)) as bob:
        a, b = await user(alice, "alice"), await user(bob, "bob")
        print(f"signed up alice={a.id} bob={b.id}")

        states = alice.connection_states()
        print(f"  [alice] connection: {await states.__anext__()!r}")
        await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
        await bob.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
        async for state in states:
            print(f"  [alice] connection: {state!r}")
            if state.is_connected():
                break
        print(f"  [alice] state now: {alice.state!r}")

        statuses: List[cubechat.MessageStatus] = []
        alice.subscribe_statuses(statuses.append)  # a plain function as a listener

        replies: asyncio.Queue[cubechat.ReceivedMessage] = asyncio.Queue()

        async def on_reply(m: cubechat.ReceivedMessage) -> None:  # an `async def` listener
            await replies.put(m)

        alice.subscribe_messages(on_reply)

        dialog = await alice.create_dialog(
            cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
        # Streams see what happens after they are made: make them before alice writes.
        reader = asyncio.create_task(bob_reads(bob, bob.typing(), bob.messages(), a.id, dialog.id))
        await alice.send_typing(dialog.id, b.id, True)
        for line in LINES:
            await alice.send_message(cubechat.OutgoingMessage(
                dialog_id=dialog.id, recipient_id=b.id, body=line))
        got = await asyncio.wait_for(reader, 20)
        if got != LINES:
            raise SystemExit(f"chat example failed: bob got {got}")
        reply = await asyncio.wait_for(replies.get(), 20)
        print(f"  [alice] reply: {reply!r}")
        print(f"  [alice] statuses: {len(statuses)}, e.g. {statuses[0]!r}")
    print("chat example finished")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, info = start_server(tmp)
        try:
            cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.WARN), None)
            await chat(info)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
