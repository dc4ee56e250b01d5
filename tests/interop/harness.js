// Shared helpers for the interop tests: start cubeserver on free ports and load the
// official ConnectyCube JS SDK (connectycube@6.1.2) configured for it.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const APP = { appId: 7, authKey: 'key-7', authSecret: 'secret-7' };

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

process.on('unhandledRejection', () => {});

module.exports = { APP, startServer, loadSdk };
