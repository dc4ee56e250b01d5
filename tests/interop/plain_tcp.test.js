// The official ConnectyCube JS SDK (connectycube@6.1.2) in Node over plain TCP: only
// CUBE_TCP_ENABLE set, so the SDK has no STARTTLS step and no CA. cubeserver offers SASL
// PLAIN before TLS to loopback peers (never to others: server/src/xmpp/session.rs), so the
// SDK logs in, binds and chats; a message from a TLS peer reaches it and its answer comes
// back.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  spawnJsPeer, js, startChatServer, signup, jsOnline, shutdown,
} = require('./peers');

describe('JS SDK 6.1.2 over plain TCP to a loopback cubeserver', () => {
  let server;
  let info;
  let plainPeer;
  let tlsPeer;
  let alice;
  let bob;

  before(async () => {
    server = await startChatServer();
    info = server.info;
    alice = await signup(info, 'Alice plain');
    bob = await signup(info, 'Bob TLS');
    plainPeer = spawnJsPeer(info, 'JS SDK (plain TCP)', { tls: false });
    tlsPeer = spawnJsPeer(info, 'JS SDK (STARTTLS)');
  });

  after(async () => {
    const problems = [];
    await shutdown([plainPeer, tlsPeer], problems);
    await server.stop();
    assert.deepEqual(problems, []);
  });

  it('logs in without TLS and chats with a STARTTLS peer', async () => {
    const r = await jsOnline(plainPeer, info, alice);
    assert.equal(r.user_id, alice.id);
    await jsOnline(tlsPeer, info, bob);
    const id = await tlsPeer.call('send', { to: alice.id, message: { type: 'chat', body: 'over tls', extension: { save_to_history: 1 } } });
    const got = await plainPeer.waitFor('the message', js('onMessageListener', (from, m) => m.id === id));
    assert.equal(got.args[0], bob.id);
    assert.equal(got.args[1].body, 'over tls');
    const back = await plainPeer.call('send', { to: bob.id, message: { type: 'chat', body: 'over plain tcp', extension: { save_to_history: 1 } } });
    const answer = await tlsPeer.waitFor('the answer', js('onMessageListener', (from, m) => m.id === back));
    assert.equal(answer.args[0], alice.id);
    assert.equal(answer.args[1].body, 'over plain tcp');
  });
});
