// Shared helpers for the interop tests: start cubeserver on free ports and load the
// official ConnectyCube JS SDK (connectycube@6.1.2) configured for it.
'use strict';
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const APP = { appId: 7, authKey: 'key-7', authSecret: 'secret-7' };
const PASSWORD = 'correct-horse-9';
const PYTHON = process.env.CUBECHAT_PYTHON || path.resolve(__dirname, '../../.venv/bin/python');
const PROBE = path.join(__dirname, 'cubechat_probe.py');
/** How long one cubechat probe run may take. */
const PROBE_TIMEOUT_MS = 120000;

/** Starts cubeserver; resolves with {info, stop}. */
async function startServer() {
  const bin = process.env.CUBESERVER_BIN || path.resolve(__dirname, '../../target/debug/cubeserver');
  const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'cubeserver-js-'));
  const proc = spawn(bin, ['--api-port', '0', '--db', ':memory:', '--cert-dir', certs,
    '--app', `${APP.appId}:${APP.authKey}:${APP.authSecret}`], { stdio: ['ignore', 'pipe', 'ignore'] });
  const rl = readline.createInterface({ input: proc.stdout });
  const line = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('cubeserver gave no ready line in 20 s')), 20000);
    rl.once('line', (l) => { clearTimeout(timer); resolve(l); });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`cubeserver exited ${code}`)); });
  });
  const info = JSON.parse(line);
  const stop = () => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const kill = setTimeout(() => proc.kill('SIGKILL'), 10000);
    proc.once('exit', (code) => { clearTimeout(kill); resolve(code); });
    proc.kill('SIGTERM');
  });
  return { info, stop };
}

/** A fresh SDK instance pointed at the server (the module caches state, so clear it). */
function loadSdk(info) {
  for (const k of Object.keys(require.cache)) {
    if (k.includes(`${path.sep}connectycube${path.sep}`)) delete require.cache[k];
  }
  const mod = require('connectycube');
  const ConnectyCube = mod.default || mod;
  const host = new URL(info.api_url).hostname;
  ConnectyCube.init({ appId: APP.appId, authKey: APP.authKey }, {
    endpoints: { api_url: info.api_url, chat: host, chat_url: `xmpp://${host}:${info.xmpp_port || 5222}` },
    debug: { mode: 0 },
  });
  return ConnectyCube;
}

/** Runs cubechat ops (cubechat_probe.py) as `login`; resolves with one {ok}|{error, reason} per op. */
function probe(info, login, ops) {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [PROBE], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`cubechat probe gave no answer in ${PROBE_TIMEOUT_MS / 1000} s: ${err.slice(-2000)}`));
    }, PROBE_TIMEOUT_MS);
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`cubechat probe exited ${code}: ${err.slice(-3000)}`));
      try {
        resolve(JSON.parse(out).results);
      } catch (e) {
        reject(new Error(`cubechat probe printed no JSON: ${out.slice(0, 500)} ${err.slice(-2000)}`));
      }
    });
    p.stdin.end(JSON.stringify({ api_url: info.api_url, login, password: PASSWORD, ops }));
  });
}

/** One probe op: a ChatClient method name and its JSON arguments. */
const op = (name, ...args) => ({ op: name, args });

/**
 * A user signed up through the JS SDK: `js` (a logged-in SDK instance), `cc(...ops)` (cubechat
 * ops that must all succeed; resolves with their values) and `ccRaw(...ops)` (errors included).
 */
async function makeUser(info, fullName) {
  const js = loadSdk(info);
  await js.createSession();
  const login = `cc${crypto.randomBytes(5).toString('hex')}`;
  const { user } = await js.users.signup({ login, password: PASSWORD, full_name: fullName });
  await js.createSession({ login, password: PASSWORD });
  return {
    id: user.id,
    login,
    js,
    async cc(...ops) {
      const results = await probe(info, login, ops);
      results.forEach((r, i) => {
        if (!('ok' in r)) throw new Error(`cubechat ${ops[i].op} failed: ${JSON.stringify(r)}`);
      });
      return results.map((r) => r.ok);
    },
    ccRaw: (...ops) => probe(info, login, ops),
  };
}

/** The rejection of a JS SDK call ({code, info}); throws if it resolved. */
async function jsRejection(promise) {
  let value;
  try {
    value = await promise;
  } catch (e) {
    return e;
  }
  throw new Error(`the JS SDK call should have been rejected; it resolved with ${JSON.stringify(value)}`);
}

process.on('unhandledRejection', () => {});

module.exports = { APP, PASSWORD, startServer, loadSdk, probe, op, makeUser, jsRejection };
