// The two real-time peers of the interop suites (js_peer.js: the official JS SDK 6.1.2;
// cubechat_peer.py: cubechat through its Python bindings) as child processes speaking JSON
// lines, and the helpers that bring them online. Same code as in xmpp.test.js, shared with
// presence.test.js.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { APP, PASSWORD, startServer, loadSdk } = require('./harness');

const PYTHON = process.env.CUBECHAT_PYTHON || path.resolve(__dirname, '../../.venv/bin/python');
/** How long one event may take to arrive, and how long a peer command may take. */
const EVENT_MS = 10000;
const CALL_MS = 30000;
/** How long we watch for an event that must NOT come. */
const QUIET_MS = 1500;

const unique = (p) => p + crypto.randomBytes(5).toString('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Peers: child processes speaking JSON lines (see js_peer.js and cubechat_peer.py).

class Peer {
  constructor(name, proc) {
    this.name = name;
    this.proc = proc;
    this.events = [];
    this.pending = new Map();
    this.waiters = new Set();
    this.nextId = 1;
    this.stderr = '';
    this.exited = null;
    proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-20000); });
    readline.createInterface({ input: proc.stdout }).on('line', (line) => this.onLine(line));
    proc.on('exit', (code, signal) => {
      this.exited = `exited ${code ?? signal}`;
      for (const { reject } of this.pending.values()) reject(new Error(`${this.name} ${this.exited}: ${this.stderr.slice(-3000)}`));
      this.pending.clear();
    });
  }

  onLine(line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      this.stderr += `\n[non-JSON stdout] ${line}`;
      return;
    }
    if ('event' in msg) {
      this.events.push(msg);
      for (const w of [...this.waiters]) w();
      return;
    }
    const p = this.pending.get(msg.reply);
    if (!p) return;
    this.pending.delete(msg.reply);
    if ('error' in msg) p.reject(new Error(`${this.name} ${p.cmd} failed: ${msg.error}${msg.reason ? `: ${msg.reason}` : ''}`));
    else p.resolve(msg.ok);
  }

  /** Runs one command; resolves with its value. */
  call(cmd, args = {}, ms = CALL_MS) {
    if (this.exited) return Promise.reject(new Error(`${this.name} ${this.exited}: ${this.stderr.slice(-3000)}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} ${cmd} gave no answer in ${ms} ms; stderr: ${this.stderr.slice(-2000)}`));
      }, ms);
      this.pending.set(id, {
        cmd,
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.proc.stdin.write(`${JSON.stringify({ id, cmd, args })}\n`);
    });
  }

  /** Events matching `pred` so far. */
  seen(pred) {
    return this.events.filter(pred);
  }

  /** Waits (bounded) for the first event matching `pred` (among events number `from` on);
   * resolves with it. */
  waitFor(what, pred, ms = EVENT_MS, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.events.slice(from).find(pred);
        if (!hit) return false;
        cleanup();
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        const recent = this.events.slice(-15).map((e) => JSON.stringify(e)).join('\n  ');
        reject(new Error(`${this.name} never got ${what} within ${ms} ms. Last events:\n  ${recent}`));
      }, ms);
      const cleanup = () => { clearTimeout(timer); this.waiters.delete(check); };
      if (!check()) this.waiters.add(check);
    });
  }

  /** Fails if an event matching `pred` arrives within `ms`. */
  async never(what, pred, ms = QUIET_MS) {
    await sleep(ms);
    const hits = this.seen(pred);
    assert.equal(hits.length, 0, `${this.name} should not have got ${what}: ${JSON.stringify(hits)}`);
  }

  async close() {
    if (this.exited) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    this.call('exit', {}, 5000).catch(() => {});
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

/**
 * A JS SDK peer process. `tls: false` starts it with only CUBE_TCP_ENABLE set (no STARTTLS
 * step in the SDK, no CA): chat then runs over plain TCP, which cubeserver allows for
 * loopback peers only.
 */
function spawnJsPeer(info, name = 'JS SDK', { tls = true } = {}) {
  // The SDK reads CUBE_* once at load, Node reads NODE_EXTRA_CA_CERTS at start (§1.3–1.4).
  const env = tls
    ? { ...process.env, CUBE_TCP_ENABLE: '1', CUBE_TLS_ENABLE: '1', NODE_EXTRA_CA_CERTS: info.ca_cert }
    : { ...process.env, CUBE_TCP_ENABLE: '1' };
  if (!tls) {
    delete env.CUBE_TLS_ENABLE;
    delete env.NODE_EXTRA_CA_CERTS;
  }
  delete env.NODE_TLS_REJECT_UNAUTHORIZED;
  const proc = spawn(process.execPath, [path.join(__dirname, 'js_peer.js')], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  return new Peer(name, proc);
}

function spawnCubechatPeer(name = 'cubechat') {
  const proc = spawn(PYTHON, [path.join(__dirname, 'cubechat_peer.py')], { cwd: __dirname, stdio: ['pipe', 'pipe', 'pipe'] });
  return new Peer(name, proc);
}

// JS SDK listener events: {event: <listener name>, args: [...]}.
const js = (name, pred = () => true) => (e) => e.event === name && pred(...e.args);
// cubechat events: {event: <family>, kind: <variant or null>, value: {...}}.
const cc = (family, kind, pred = () => true) => (e) => e.event === family && (kind === null || e.kind === kind) && pred(e.value);

/** Starts cubeserver and checks its ready line has what chat needs. */
async function startChatServer() {
  const server = await startServer();
  const { info } = server;
  for (const k of ['xmpp_port', 'xmpp_tls_port', 'chat_domain', 'ca_cert']) {
    assert.ok(info[k], `cubeserver's ready line has no ${k}: ${JSON.stringify(info)}`);
  }
  // §1.4: the JID domain must equal the chat URL's host.
  assert.equal(info.chat_domain, new URL(info.api_url).hostname);
  return server;
}

/** A user signed up and logged in through an in-process JS SDK (used for REST only). */
async function signup(info, fullName) {
  const sdk = loadSdk(info);
  await sdk.createSession();
  const login = unique('rt');
  const { user } = await sdk.users.signup({ login, password: PASSWORD, full_name: fullName });
  await sdk.createSession({ login, password: PASSWORD });
  return { id: user.id, login, sdk };
}

/** Logs `user` in on a JS peer and connects it to chat (STARTTLS). */
async function jsOnline(peer, info, user) {
  const host = info.chat_domain;
  const r = await peer.call('login', {
    api_url: info.api_url, chat_domain: host, chat_url: `xmpp://${host}:${info.xmpp_port}`,
    app: APP, login: user.login, password: PASSWORD,
  });
  assert.equal(r.user_id, user.id);
  assert.match(r.jid, new RegExp(`^${user.id}-${APP.appId}@${host.replace(/\./g, '\\.')}/.{8,}$`));
  return r;
}

/** Logs `user` in on a cubechat peer and connects it to chat (STARTTLS). */
async function ccOnline(peer, info, user) {
  const r = await peer.call('login', { server: info, login: user.login, password: PASSWORD });
  assert.deepEqual(r, { user_id: user.id, state: 'CONNECTED' });
  await peer.waitFor('Connected state', cc('connection', 'CONNECTED'));
  return r;
}

/** Disconnects and ends peers; collects what went wrong instead of throwing. */
async function shutdown(peers, problems) {
  for (const peer of peers.filter(Boolean)) {
    try {
      if (peer.name.startsWith('JS')) {
        await peer.call('disconnect', {}, 10000);
      } else {
        const from = peer.events.length;
        await peer.call('disconnect_chat', {}, 10000);
        await peer.waitFor('Disconnected state', cc('connection', 'DISCONNECTED'), 5000, from);
      }
    } catch (e) { problems.push(e.message); }
    await peer.close();
  }
}

module.exports = {
  EVENT_MS, CALL_MS, QUIET_MS, unique, sleep, Peer, spawnJsPeer, spawnCubechatPeer, js, cc,
  startChatServer, signup, jsOnline, ccOnline, shutdown,
};
