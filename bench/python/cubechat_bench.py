#!/usr/bin/env python3
"""cubechat through its Python package (the release library) against the private ejabberd.

  PYTHONPATH=DIR_WITH_cubechat python cubechat_bench.py [--store on|off] [--send task|enqueue]
  (env from $EJD_RUN/env.sh gives ports, CA file and EJABBERD_PID; bench/run.sh sets it all)

Same phases, users and JSON figures as the peers (bench/peers/common.py defines every figure);
users are cubechat's ids user_base+1..+54 of app 7 (JIDs {id}-7@domain), password pw.
``--store on``: every client keeps its local store in a file (``store_dir`` in a temporary
directory, ``open_store``), so every message is persisted; ``off``: the default configuration
(store in memory). Sending: ``--send task`` (default) schedules ``send_message`` (it resolves
at the server's acknowledgement) as an asyncio task per message and does not wait for it,
like the peers' fire-and-forget ``send()``; ``--send enqueue`` uses the synchronous
``enqueue_message``. B receives through ``client.messages()`` (an async iterator).
"""

import asyncio
import faulthandler
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True   # keep __pycache__ out of the repo
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "peers"))
from common import BODY, Meter, base_args, emit, pct, per, rnd  # noqa: E402

import cubechat  # noqa: E402

APP_ID = 7
DIALOG = "bench"


class Bench:
    def __init__(self, args):
        self.args = args
        self.ca = open(args.ca_file).read() if args.ca_file else None
        self.store_root = tempfile.mkdtemp(prefix="cubechat-bench-py-") if args.store == "on" else None
        self.tasks = set()   # send_message tasks in flight (asyncio keeps weak references)
        self.send_errors = 0

    def user(self, i):
        return self.args.user_base + i

    def client(self, user):
        a = self.args
        cfg = cubechat.ClientConfig(
            app_id=APP_ID, auth_key="bench", api_url="http://127.0.0.1:9",
            chat_domain=a.domain, chat_host=a.host, chat_port=a.port,
            chat_tls_port=a.tls_port, extra_ca_pem=self.ca,
            auto_send_delivered=False,   # the peers do not answer receipt requests either
            store_dir=self.store_root)
        c = cubechat.ChatClient(cfg)
        if self.store_root:
            c.open_store(user)
        return c

    async def login(self, c, user):
        auth = cubechat.ChatAuth.PASSWORD(user_id=user, password=self.args.password)
        await asyncio.wait_for(c.connect_chat(auth), self.args.phase_timeout)

    def send(self, c, to, body, markable):
        m = cubechat.OutgoingMessage(dialog_id=DIALOG, recipient_id=to, body=body,
                                     markable=markable)
        if self.args.send == "enqueue":
            c.enqueue_message(m, [])
            return
        t = asyncio.ensure_future(c.send_message(m))
        self.tasks.add(t)
        t.add_done_callback(self._sent)

    def _sent(self, t):
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            self.send_errors += 1


async def logout(c):
    try:
        await asyncio.wait_for(c.disconnect_chat(), 5)
    except Exception:
        pass
    c.close()


async def phase_connect(b):
    a = b.args
    n = a.connect_n
    for i in range(a.warmup):
        u = b.user(50 - i)
        c = b.client(u)
        await b.login(c, u)
        await logout(c)
    clients = [(b.user(1 + i % 50), None) for i in range(n)]
    clients = [(u, b.client(u)) for u, _ in clients]
    lat_ms = []
    with Meter(a.server_pid) as m:
        for u, c in clients:
            t0 = time.perf_counter()
            await b.login(c, u)
            lat_ms.append((time.perf_counter() - t0) * 1000.0)
            await logout(c)
    return {
        "n": n, "p50_ms": rnd(pct(lat_ms, 50), 2), "p95_ms": rnd(pct(lat_ms, 95), 2),
        "min_ms": rnd(min(lat_ms), 2), "max_ms": rnd(max(lat_ms), 2),
        "mean_ms": rnd(sum(lat_ms) / n, 2),
        "client_cpu_ms_per_login": rnd(per(m.cpu, n, 1e3), 2),
        "server_cpu_ms_per_login": rnd(per(m.server_cpu, n, 1e3), 2),
        "other_cpu_pct": rnd(m.other_pct, 0),
    }


async def phase_throughput(b):
    args = b.args
    loop = asyncio.get_running_loop()
    ua, ub = b.user(51), b.user(52)
    a, bc = b.client(ua), b.client(ub)
    inbox = bc.messages()
    await asyncio.gather(b.login(a, ua), b.login(bc, ub))
    window = args.window
    st = {"sent": 0, "recv": 0, "target": 0, "done": None, "t_last": 0.0}
    wake = asyncio.Event()

    async def receive():
        async for msg in inbox:
            if not msg.body:
                continue
            st["recv"] += 1
            if st["recv"] >= st["target"]:
                st["t_last"] = time.perf_counter()
                if st["done"] is not None and not st["done"].done():
                    st["done"].set_result(None)
            elif window and st["sent"] - st["recv"] <= window // 2:
                wake.set()

    receiver = asyncio.ensure_future(receive())

    async def blast(count):
        st["target"] = st["recv"] + count
        st["done"] = loop.create_future()
        for _ in range(count):
            while window and st["sent"] - st["recv"] >= window:
                wake.clear()
                await asyncio.wait_for(wake.wait(), args.phase_timeout)
            b.send(a, ub, BODY, True)
            st["sent"] += 1
        await asyncio.wait_for(st["done"], args.phase_timeout)

    await blast(args.warmup * 50)
    n = args.msgs
    with Meter(args.server_pid) as m:
        t0 = time.perf_counter()
        await blast(n)
        wall = st["t_last"] - t0
    # Untimed: the acknowledgements still on their way, so that none fails at the logout.
    if b.tasks:
        await asyncio.wait(set(b.tasks), timeout=10)
    send_errors = b.send_errors
    receiver.cancel()
    inbox.close()
    await asyncio.gather(logout(a), logout(bc))
    return {
        "n": n, "window": window, "received": st["recv"] - args.warmup * 50,
        "send_errors": send_errors,
        "wall_s": rnd(wall, 3), "msgs_per_s": rnd(n / wall, 0),
        "client_cpu_s": rnd(m.cpu, 3), "client_cpu_us_per_msg": rnd(per(m.cpu, n, 1e6), 1),
        "server_cpu_s": rnd(m.server_cpu, 2),
        "server_cpu_us_per_msg": rnd(per(m.server_cpu, n, 1e6), 1),
        "other_cpu_pct": rnd(m.other_pct, 0),
    }


async def phase_rtt(b):
    args = b.args
    loop = asyncio.get_running_loop()
    ua, ub = b.user(53), b.user(54)
    a, bc = b.client(ua), b.client(ub)
    a_inbox, b_inbox = a.messages(), bc.messages()
    await asyncio.gather(b.login(a, ua), b.login(bc, ub))
    pending = {"fut": None}

    async def echo():            # B echoes every chat message back to A
        async for msg in b_inbox:
            if msg.body:
                b.send(bc, ua, msg.body, False)

    async def pong():
        async for msg in a_inbox:
            f = pending["fut"]
            if msg.body and f is not None and not f.done():
                f.set_result(time.perf_counter_ns())

    tasks = [asyncio.ensure_future(echo()), asyncio.ensure_future(pong())]

    async def ping():
        pending["fut"] = loop.create_future()
        t0 = time.perf_counter_ns()
        b.send(a, ub, BODY, True)
        t1 = await asyncio.wait_for(pending["fut"], 10)
        return (t1 - t0) / 1000.0

    for _ in range(args.warmup * 25):
        await ping()
    rtts = []
    with Meter(args.server_pid) as m:
        for _ in range(args.rtt_n):
            rtts.append(await ping())
    for t in tasks:
        t.cancel()
    a_inbox.close()
    b_inbox.close()
    await asyncio.gather(logout(a), logout(bc))
    n = len(rtts)
    return {
        "n": n, "p50_us": rnd(pct(rtts, 50), 0), "p99_us": rnd(pct(rtts, 99), 0),
        "mean_us": rnd(sum(rtts) / n, 0),
        "client_cpu_us_per_rt": rnd(per(m.cpu, n, 1e6), 1),
        "server_cpu_us_per_rt": rnd(per(m.server_cpu, n, 1e6), 1),
        "other_cpu_pct": rnd(m.other_pct, 0),
    }


async def main(args):
    cubechat.uniffi_set_event_loop(asyncio.get_running_loop())
    b = Bench(args)
    out = {"lib": "cubechat", "version": "0.1.0", "sm": True, "api": "python",
           "store": "file" if args.store == "on" else "memory", "send": args.send}
    phases = {"connect": phase_connect, "throughput": phase_throughput, "rtt": phase_rtt}
    try:
        for name in args.phases.split(","):
            try:
                out[name] = await phases[name](b)
            except (Exception, asyncio.TimeoutError) as e:
                # the phases measured so far stay in the line, next to the error
                out["error"] = f"phase {name}: {type(e).__name__} {e}"
                break
    finally:
        if b.store_root:
            shutil.rmtree(b.store_root, ignore_errors=True)
    return out


if __name__ == "__main__":
    p = base_args(__doc__)
    p.add_argument("--tls-port", type=int, default=int(os.environ.get("EJD_C2S_TLS_PORT", 15223)))
    p.add_argument("--store", choices=["on", "off"], default="on")
    p.add_argument("--send", choices=["task", "enqueue"], default="task")
    args = p.parse_args()
    if args.sm != "on":
        emit({"lib": "cubechat", "api": "python",
              "error": "cubechat always enables stream management (--sm on)"})
        sys.exit(2)
    # A hang shows where it is: every thread's stack on stderr shortly before the deadline.
    faulthandler.dump_traceback_later(max(1.0, args.deadline - 5), exit=False)
    try:
        result = asyncio.run(asyncio.wait_for(main(args), args.deadline))
    except (Exception, asyncio.TimeoutError) as e:  # bounded: report and exit non-zero
        emit({"lib": "cubechat", "api": "python", "error": f"{type(e).__name__}: {e}"})
        sys.exit(2)
    emit(result)
    if "error" in result:
        sys.exit(2)
