// The official ConnectyCube JS SDK against cubeserver: sessions, sign-up, log-in,
// get session, log-out, destroy; errors in the shapes the SDK expects.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { APP, startServer, loadSdk } = require('./harness');

const PASSWORD = 'correct-horse-9';
const unique = (p) => p + crypto.randomBytes(5).toString('hex');

test('JS SDK: session, sign-up, log-in, get session, log-out, destroy', async (t) => {
  const server = await startServer();
  t.after(server.stop);
  const CC = loadSdk(server.info);

  const appSession = await CC.createSession();
  assert.equal(appSession.application_id, APP.appId);
  assert.equal(appSession.user_id, 0);
  assert.match(appSession.token, /^[0-9a-f]{40}$/);

  const login = unique('js');
  const { user } = await CC.users.signup({ login, password: PASSWORD, full_name: 'JS Tester', tag_list: 'x,y' });
  assert.equal(user.login, login);
  assert.equal(user.full_name, 'JS Tester');
  assert.equal(user.user_tags, 'x,y');
  assert.ok(Number.isInteger(user.id));

  const me = await CC.login({ login, password: PASSWORD });
  assert.equal(me.id, user.id);

  const session = await CC.getSession();
  assert.equal(session.user_id, user.id);

  const found = await CC.users.getV2({ id: { in: [user.id] } });
  assert.equal(found.total_entries, 1);
  assert.equal(found.items[0].login, login);

  await CC.logout();
  assert.equal((await CC.getSession()).user_id, 0);

  await CC.destroySession();
  await assert.rejects(CC.getSession(), (e) => {
    assert.equal(e.code, 401);
    assert.deepEqual(e.info, { errors: { base: ['Required session does not exist'] } });
    return true;
  });
});

test('JS SDK: user session in one call and typed error bodies', async (t) => {
  const server = await startServer();
  t.after(server.stop);
  const CC = loadSdk(server.info);
  await CC.createSession();
  const login = unique('js');
  await CC.users.signup({ login, password: PASSWORD });

  const s = await CC.createSession({ login, password: PASSWORD });
  assert.ok(s.user_id > 0);
  assert.equal(s.user.login, login);

  await assert.rejects(CC.createSession({ login, password: 'wrong-password' }), (e) => {
    assert.equal(e.code, 401);
    assert.deepEqual(e.info, { errors: ['Unauthorized'] });
    return true;
  });
  await CC.createSession();
  await assert.rejects(CC.users.signup({ login, password: PASSWORD }), (e) => {
    assert.equal(e.code, 422);
    assert.ok(e.info.errors.login);
    return true;
  });
});
