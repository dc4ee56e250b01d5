#!/usr/bin/env node
// @xmpp/client (xmpp.js) peer benchmark against the private ejabberd.
//
//   NODE_EXTRA_CA_CERTS=$EJD_CA_FILE node xmppjs_bench.mjs --user-base 0
//
// Same phases, users and JSON figures as slixmpp_bench.py (see common.py).
// The @xmpp/client package is loaded from $XMPPJS_NODE_MODULES
// (default $BENCH_WORK/node/node_modules), installed by
// bench/peers/setup.sh from bench/peers/node/package.json.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const env = process.env;
const nm = env.XMPPJS_NODE_MODULES || `${env.BENCH_WORK || "/tmp/cubechat-bench"}/node/node_modules`;
const pkgDir = path.join(nm, "@xmpp/client");
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const { client, xml } = await import(pathToFileURL(path.join(pkgDir, pkg.main || "index.js")).href);

// ---- arguments (same names as the Python scripts) --------------------------
const defaults = {
  host: "127.0.0.1",
  port: Number(env.EJD_C2S_PORT || 15222),
  domain: env.EJD_DOMAIN || "localhost",
  password: env.EJD_PASSWORD || "pw",
  "user-prefix": env.EJD_USER_PREFIX || "u",
  "user-base": 0,
  "server-pid": env.EJABBERD_PID ? Number(env.EJABBERD_PID) : null,
  sm: "on",
  "connect-n": 50,
  msgs: 20000,
  window: 1000,
  "rtt-n": 1000,
  warmup: 2,
  phases: "connect,throughput,rtt",
  deadline: 240,
  "phase-timeout": 120,
};
const args = { ...defaults };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith("--")) throw new Error(`bad argument ${a}`);
  const [k, v] = a.includes("=") ? a.slice(2).split(/=(.*)/s) : [a.slice(2), process.argv[++i]];
  if (!(k in defaults)) throw new Error(`unknown option --${k}`);
  args[k] = typeof defaults[k] === "number" || k === "server-pid" ? Number(v) : v;
}

const BODY = "benchmark payload ".repeat(8).slice(0, 100); // 100 ASCII bytes
const NS_STREAM = "http://etherx.jabber.org/streams";
const NS_SM = "urn:xmpp:sm:3";
const CLK_TCK = 100; // Linux USER_HZ

const u = (i) => `${args["user-prefix"]}${args["user-base"] + i}`;
const U = {
  connect: Array.from({ length: 50 }, (_, i) => u(i + 1)),
  tp_a: u(51), tp_b: u(52), rtt_a: u(53), rtt_b: u(54),
};

// ---- measurement helpers ----------------------------------------------------
const nowNs = () => process.hrtime.bigint();
const cpuSelf = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1e6; };
function cpuProc(pid) {
  if (!pid) return null;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch { return null; }
}
function cpuMachine() {   // busy CPU seconds of all cores, /proc/stat
  try {
    const v = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK;
  } catch { return null; }
}
const NCPU = (await import("node:os")).cpus().length || 1;
function meter() {
  const m0 = cpuMachine(), t0 = nowNs(), c0 = cpuSelf(), s0 = cpuProc(args["server-pid"]);
  return () => {
    const wall = Number(nowNs() - t0) / 1e9, cpu = cpuSelf() - c0;
    const s1 = cpuProc(args["server-pid"]);
    const server = s0 == null || s1 == null ? null : s1 - s0;
    const m1 = cpuMachine();
    const other = m0 == null || m1 == null || wall <= 0 ? null
      : (Math.max(0, m1 - m0 - cpu - (server || 0)) / (wall * NCPU)) * 100;
    return { wall, cpu, server, other };
  };
}
const pct = (vals, p) => {
  const v = [...vals].sort((a, b) => a - b);
  return v[Math.max(0, Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1))];
};
const rnd = (x, nd = 1) => (x == null ? null : Math.round(x * 10 ** nd) / 10 ** nd);
const per = (total, n, scale) => (total == null || !n ? null : (total / n) * scale);
const withTimeout = (p, s, what) => Promise.race([
  p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), s * 1000).unref()),
]);

// ---- client helpers -----------------------------------------------------------
function makeClient(user, resource) {
  const x = client({
    service: `xmpp://${args.host}:${args.port}`,
    domain: args.domain,
    resource,
    // force SASL PLAIN (the default picks the server's first supported mechanism)
    credentials: (authenticate) => authenticate({ username: user, password: args.password }, "PLAIN"),
  });
  x.reconnect.stop();
  x.on("error", () => {});
  if (args.sm === "off") {
    // hide <sm/> from the stream features before the library's middleware sees it
    x.prependListener("element", (el) => {
      if (el.is("features", NS_STREAM)) {
        const sm = el.getChild("sm", NS_SM);
        if (sm) el.remove(sm);
      }
    });
  }
  return x;
}

async function login(x) {
  let selfPresence;
  const gotSelf = new Promise((resolve) => { selfPresence = resolve; });
  const onStanza = (st) => {
    if (st.name === "presence" && x.jid && st.attrs.from === x.jid.toString()) selfPresence();
  };
  x.on("stanza", onStanza);
  try {
    await withTimeout((async () => {
      await x.start();                 // TCP, STARTTLS, SASL, bind (+ SM enable)
      await x.send(xml("presence"));   // initial presence
      await gotSelf;                   // reflected back by the server
    })(), args["phase-timeout"], "login");
  } finally {
    x.removeListener("stanza", onStanza);
  }
}

async function logout(x) {
  try { await withTimeout(x.stop(), 5, "logout"); } catch { /* ignore */ }
}

const chat = (to, id, request) => xml("message", { to, type: "chat", id },
  xml("body", {}, BODY),
  request ? xml("request", { xmlns: "urn:xmpp:receipts" }) : null);

// ---- phases -------------------------------------------------------------------
async function phaseConnect() {
  const n = args["connect-n"];
  for (let i = 0; i < args.warmup; i++) {
    const x = makeClient(U.connect[U.connect.length - 1 - i], `warm${i}`);
    await login(x);
    await logout(x);
  }
  const clients = Array.from({ length: n }, (_, i) => makeClient(U.connect[i % 50], `c${i}`));
  const lat = [];
  const done = meter();
  for (const x of clients) {
    const t0 = nowNs();
    await login(x);
    lat.push(Number(nowNs() - t0) / 1e6);
    await logout(x);
  }
  const m = done();
  return {
    n, p50_ms: rnd(pct(lat, 50), 2), p95_ms: rnd(pct(lat, 95), 2),
    min_ms: rnd(Math.min(...lat), 2), max_ms: rnd(Math.max(...lat), 2),
    mean_ms: rnd(lat.reduce((a, b) => a + b, 0) / n, 2),
    client_cpu_ms_per_login: rnd(per(m.cpu, n, 1e3), 2),
    server_cpu_ms_per_login: rnd(per(m.server, n, 1e3), 2),
    other_cpu_pct: rnd(m.other, 0),
  };
}

async function phaseThroughput() {
  const a = makeClient(U.tp_a, "tpa");
  const b = makeClient(U.tp_b, "tpb");
  await Promise.all([login(a), login(b)]);
  const bjid = b.jid.toString();
  const window = args.window;
  const st = { sent: 0, recv: 0, target: 0, done: null, tLast: 0n };
  let wake = null;

  b.on("stanza", (s) => {
    if (s.name !== "message" || s.attrs.type !== "chat" || !s.getChildText("body")) return;
    st.recv += 1;
    if (st.recv >= st.target) {
      st.tLast = nowNs();
      if (st.done) { const d = st.done; st.done = null; d(); }
    } else if (wake && st.sent - st.recv <= window / 2) {
      const w = wake; wake = null; w();
    }
  });

  let sendErrors = 0;
  async function blast(count, prefix) {
    st.target = st.recv + count;
    const finished = new Promise((resolve) => { st.done = resolve; });
    for (let i = 0; i < count; i++) {
      while (window && st.sent - st.recv >= window) {
        await withTimeout(new Promise((resolve) => { wake = resolve; }), args["phase-timeout"], "window");
      }
      a.send(chat(bjid, `${prefix}${i}`, true)).catch(() => { sendErrors += 1; });
      st.sent += 1;
    }
    await withTimeout(finished, args["phase-timeout"], "throughput");
  }

  await blast(args.warmup * 50, "w");
  const n = args.msgs;
  const done = meter();
  const t0 = nowNs();
  await blast(n, "m");
  const m = done();
  const wall = Number(st.tLast - t0) / 1e9;
  await Promise.all([logout(a), logout(b)]);
  return {
    n, window, received: st.recv - args.warmup * 50, send_errors: sendErrors,
    wall_s: rnd(wall, 3), msgs_per_s: rnd(n / wall, 0),
    client_cpu_s: rnd(m.cpu, 3), client_cpu_us_per_msg: rnd(per(m.cpu, n, 1e6), 1),
    server_cpu_s: rnd(m.server, 2), server_cpu_us_per_msg: rnd(per(m.server, n, 1e6), 1),
    other_cpu_pct: rnd(m.other, 0),
  };
}

async function phaseRtt() {
  const a = makeClient(U.rtt_a, "rtta");
  const b = makeClient(U.rtt_b, "rttb");
  await Promise.all([login(a), login(b)]);
  const ajid = a.jid.toString(), bjid = b.jid.toString();
  let pending = null;
  b.on("stanza", (s) => {                       // echo back to A
    if (s.name === "message" && s.attrs.type === "chat") {
      const body = s.getChildText("body");
      if (body) b.send(xml("message", { to: ajid, type: "chat", id: s.attrs.id }, xml("body", {}, body))).catch(() => {});
    }
  });
  a.on("stanza", (s) => {
    if (s.name === "message" && s.attrs.type === "chat" && pending && s.getChildText("body")) {
      const p = pending; pending = null; p(nowNs());
    }
  });
  async function ping(i) {
    const got = new Promise((resolve) => { pending = resolve; });
    const t0 = nowNs();
    a.send(chat(bjid, `p${i}`, true)).catch(() => {});
    const t1 = await withTimeout(got, 10, "pong");
    return Number(t1 - t0) / 1e3;
  }
  for (let i = 0; i < args.warmup * 25; i++) await ping(i);
  const rtts = [];
  const done = meter();
  for (let i = 0; i < args["rtt-n"]; i++) rtts.push(await ping(i));
  const m = done();
  await Promise.all([logout(a), logout(b)]);
  const n = rtts.length;
  return {
    n, p50_us: rnd(pct(rtts, 50), 0), p99_us: rnd(pct(rtts, 99), 0),
    mean_us: rnd(rtts.reduce((x, y) => x + y, 0) / n, 0),
    client_cpu_us_per_rt: rnd(per(m.cpu, n, 1e6), 1),
    server_cpu_us_per_rt: rnd(per(m.server, n, 1e6), 1),
    other_cpu_pct: rnd(m.other, 0),
  };
}

function emit(obj) {
  obj.runtime = `node ${process.version}`;
  obj.max_rss_mb = rnd(process.resourceUsage().maxRSS / 1024, 1);
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const killer = setTimeout(() => {
  emit({ lib: "xmpp.js", error: `deadline ${args.deadline}s exceeded` });
  process.exit(2);
}, args.deadline * 1000);

try {
  const out = { lib: "xmpp.js", version: pkg.version, sm: args.sm === "on" };
  const phases = { connect: phaseConnect, throughput: phaseThroughput, rtt: phaseRtt };
  for (const name of args.phases.split(",")) out[name] = await phases[name]();
  clearTimeout(killer);
  emit(out);
  process.exit(0);
} catch (e) {
  clearTimeout(killer);
  emit({ lib: "xmpp.js", error: String(e && e.stack ? e.message : e) });
  process.exit(2);
}
