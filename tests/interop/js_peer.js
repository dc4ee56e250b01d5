// One user of the official ConnectyCube JS SDK (connectycube@6.1.2) on cubeserver's XMPP side,
// driven over JSON lines (xmpp.test.js starts it as a child process).
//
// Start it with CUBE_TCP_ENABLE=1 CUBE_TLS_ENABLE=1 NODE_EXTRA_CA_CERTS=<cubeserver ca.pem> in
// its environment: the SDK reads the transport flags once, when the module loads, and Node
// reads the extra CA file at process start (protocol reference §1.3–1.4). Chat runs over
// STARTTLS on `xmpp://HOST:PORT`.
//
// stdin, one command a line:   {"id": 1, "cmd": "send", "args": {...}}
// stdout, one JSON a line:     {"reply": 1, "ok": <value>} | {"reply": 1, "error": "<text>"}
//                              {"event": "<SDK listener name>", "args": [...]}   (any time)
//
// Every chat listener of the SDK is installed and reported with its arguments as the SDK
// passed them (XML elements, such as a message's `delay`, as their XML string). Nothing else
// is written to stdout: console.log/info/debug go to stderr.
'use strict';

for (const k of ['log', 'info', 'debug']) {
  console[k] = (...a) => process.stderr.write(`${a.map(String).join(' ')}\n`);
}
// §6.11: a send while offline rejects inside the SDK; in Node that would kill the process.
process.on('unhandledRejection', (e) => process.stderr.write(`js_peer: unhandled rejection: ${e && e.stack ? e.stack : e}\n`));

const readline = require('node:readline');
const mod = require('connectycube');

const ConnectyCube = mod.default || mod;

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** A listener argument as JSON: XML elements become their string form. */
function plain(v) {
  if (v === undefined) return null;
  if (v === null || typeof v !== 'object') return v;
  if (typeof v.toString === 'function' && typeof v.getChild === 'function') return v.toString();
  if (Array.isArray(v)) return v.map(plain);
  const out = {};
  for (const [k, x] of Object.entries(v)) out[k] = plain(x);
  return out;
}

const LISTENERS = [
  'onMessageListener',
  'onSentMessageCallback',
  'onDeliveredStatusListener',
  'onReadStatusListener',
  'onMessageTypingListener',
  'onMessageUpdateListener',
  'onMessageDeleteListener',
  'onMessageReactionsListener',
  'onSystemMessageListener',
  'onMessageErrorListener',
  'onDisconnectedListener',
  'onReconnectListener',
  'onConnectionErrorListener',
  'onJoinOccupant',
  'onLeaveOccupant',
  'onKickOccupant',
  'onLastUserActivityListener',
];

let me = null;

const COMMANDS = {
  /** Logs in over REST and connects to chat with the session token. */
  async login({ api_url: apiUrl, chat_domain: chatDomain, chat_url: chatUrl, app, login, password }) {
    ConnectyCube.init({ appId: app.appId, authKey: app.authKey }, {
      endpoints: { api_url: apiUrl, chat: chatDomain, chat_url: chatUrl },
      chat: { reconnect: { enable: false, timeInterval: 1 }, streamManagement: { enable: true } },
      debug: { mode: process.env.JS_PEER_DEBUG ? 1 : 0 },
    });
    const session = await ConnectyCube.createSession({ login, password });
    if ((process.env.JS_PEER_WORKAROUNDS || '').split(',').includes('empty-mechanisms')) {
      // Diagnosis only (never set by xmpp.test.js): hide empty <mechanisms/> in stream
      // features from xmpp.js, which otherwise tries SASL again after authenticating.
      const c = ConnectyCube.chat.xmppClient;
      const onElement = c._onElement;
      c._onElement = function patched(el) {
        if (el.is('features', 'http://etherx.jabber.org/streams')) {
          el.children = el.children.filter((ch) => typeof ch === 'string' || ch.name !== 'mechanisms' || ch.children.length > 0);
        }
        return onElement.call(this, el);
      };
    }
    for (const name of LISTENERS) {
      ConnectyCube.chat[name] = (...args) => emit({ event: name, args: plain(args) });
    }
    me = { user_id: session.user_id, token: session.token };
    return COMMANDS.connect();
  },
  /** (Re)connects to chat with the session token; answers the bound JID. */
  async connect() {
    const ok = await ConnectyCube.chat.connect({ userId: me.user_id, password: me.token });
    if (ok !== true) throw new Error(`chat.connect resolved ${ok}`);
    return { user_id: me.user_id, jid: ConnectyCube.chat.xmppClient.jid.toString() };
  },
  /** chat.send(to, message); `to` is a user id (number) or a dialog id / JID (string). */
  send({ to, message }) {
    return ConnectyCube.chat.send(to, message);
  },
  sendSystemMessage({ to, message }) {
    return ConnectyCube.chat.sendSystemMessage(to, message);
  },
  sendDeliveredStatus(params) {
    ConnectyCube.chat.sendDeliveredStatus(params);
    return null;
  },
  sendReadStatus(params) {
    ConnectyCube.chat.sendReadStatus(params);
    return null;
  },
  typing({ to, composing }) {
    if (composing) ConnectyCube.chat.sendIsTypingStatus(to);
    else ConnectyCube.chat.sendIsStopTypingStatus(to);
    return null;
  },
  editMessage(params) {
    ConnectyCube.chat.editMessage(params);
    return null;
  },
  deleteMessage(params) {
    ConnectyCube.chat.deleteMessage(params);
    return null;
  },
  async join({ dialogId }) {
    await ConnectyCube.chat.muc.join(dialogId);
    return null;
  },
  async leave({ dialogId }) {
    await ConnectyCube.chat.muc.leave(dialogId);
    return null;
  },
  /**
   * Any other chat API, by its path under ConnectyCube.chat (e.g. "privacylist.create",
   * "getLastUserActivity", "muc.listOnlineUsers", "subscribeToUserLastActivityStatus") with
   * its arguments as they are; answers what it returned or resolved.
   */
  async chat({ fn, args = [] }) {
    const parts = fn.split('.');
    let self = ConnectyCube.chat;
    for (const p of parts.slice(0, -1)) self = self[p];
    const f = self && self[parts[parts.length - 1]];
    if (typeof f !== 'function') throw new Error(`no chat API ${fn}`);
    const v = await f.apply(self, args);
    return v === undefined ? null : v;
  },
  async ping() {
    await ConnectyCube.chat.ping();
    return null;
  },
  async disconnect() {
    return ConnectyCube.chat.disconnect();
  },
  exit() {
    setImmediate(() => process.exit(0));
    return null;
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  if (!line.trim()) return;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    emit({ reply: null, error: `bad command line: ${e.message}` });
    return;
  }
  const f = COMMANDS[req.cmd];
  if (!f) {
    emit({ reply: req.id, error: `unknown command ${req.cmd}` });
    return;
  }
  try {
    const value = await f(req.args || {});
    emit({ reply: req.id, ok: plain(value) });
  } catch (e) {
    const text = e instanceof Error ? e.message : JSON.stringify(e);
    emit({ reply: req.id, error: text === undefined ? String(e) : text });
  }
});
rl.on('close', () => process.exit(0));
