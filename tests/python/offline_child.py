"""A child process for test_offline.py: logs in with a persistent store, queues messages
without ever connecting chat, says so on stdout, then waits to be killed (SIGKILL).

Usage: offline_child.py CONFIG_JSON LOGIN PASSWORD DIALOG_ID RECIPIENT_ID COUNT
(CONFIG_JSON: keyword arguments of cubechat.ClientConfig, store_dir included)."""
import asyncio
import json
import sys
import time

import cubechat


async def main(config, login, password, dialog_id, recipient_id, count):
    client = cubechat.ChatClient(cubechat.ClientConfig(**config))
    await client.log_in(cubechat.LoginId.LOGIN(login), password)
    for i in range(count):
        client.enqueue_message(cubechat.OutgoingMessage(
            dialog_id=dialog_id, recipient_id=recipient_id, body=f"m{i:03d}"), [])
    print(f"queued {len(client.pending_messages())}", flush=True)
    time.sleep(600)  # the parent kills this process long before


if __name__ == "__main__":
    config, login, password, dialog_id, recipient_id, count = sys.argv[1:7]
    asyncio.run(main(json.loads(config), login, password, dialog_id, int(recipient_id), int(count)))
