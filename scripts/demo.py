"""cubechat demo: starts cubeserver on free local ports, signs up two users and logs them in
through the Python bindings, shows what happened, and stops the server."""
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import uuid

import cubechat

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.environ.get("CUBESERVER_BIN", str(ROOT / "target" / "debug" / "cubeserver"))
APP_ID, AUTH_KEY, AUTH_SECRET = 1, "demo-auth-key", "demo-auth-secret"


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
                       chat_domain=info["chat_domain"])
            suffix = uuid.uuid4().hex[:6]
            for name in ("alice", "bob"):
                client = cubechat.ChatClient(cubechat.ClientConfig(**cfg))
                login = f"{name}-{suffix}"
                user = await client.sign_up(cubechat.NewUser(login=login, full_name=name.title()), "demo-password")
                print(f"signed up  {user.full_name:<6} id={user.id} login={user.login}")
                me = await client.log_in(cubechat.LoginId.LOGIN(login), "demo-password")
                session = await client.get_session()
                print(f"logged in  {me.full_name:<6} session id={session.id} user_id={session.user_id}")
                try:
                    await client.log_in(cubechat.LoginId.LOGIN(login), "not-the-password")
                except cubechat.ChatError.InvalidCredentials:
                    print(f"wrong password for {login}: rejected with ChatError.InvalidCredentials")
                await client.destroy_session()
            print("demo finished")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
