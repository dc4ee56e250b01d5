// The official ConnectyCube JS SDK (connectycube@6.1.2) against cubeserver: users (v1 lookups
// by id, login, email, full name, tags and filters; v2 search; profile update with tags,
// custom data, avatar and a password change; online list and count; account deletion) and the
// address book (upload with merge, destroy and force, read back, registered users, rejected
// phones). Every call goes through the SDK's own modules, as an app would make it.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { PASSWORD, startServer, loadSdk, jsRejection } = require('./harness');
const { unique, spawnJsPeer, jsOnline, shutdown } = require('./peers');

/** A user signed up and logged in through its own SDK instance. */
async function user(info, fields) {
  const sdk = loadSdk(info);
  await sdk.createSession();
  const login = unique('us');
  const { user: u } = await sdk.users.signup({ login, password: PASSWORD, ...fields });
  await sdk.createSession({ login, password: PASSWORD });
  return { id: u.id, login, sdk, user: u };
}

describe('JS SDK 6.1.2 users and address book against cubeserver', () => {
  let server;
  let info;
  let ann;
  let bob;
  let cat;

  before(async () => {
    server = await startServer();
    info = server.info;
    ann = await user(info, { full_name: 'Ann Walker', tag_list: ['red', 'blue'] });
    bob = await user(info, { full_name: 'Bob Walker', email: `${unique('bob')}@example.com`, phone: '+1 555 010 2030', tag_list: ['blue'] });
    cat = await user(info, { full_name: 'Cat', phone: '380671234567' });
  });

  after(async () => {
    await server.stop();
  });

  it('looks users up the v1 ways the SDK offers', async () => {
    const sdk = ann.sdk;
    assert.equal((await sdk.users.get(bob.id)).user.login, bob.login);
    assert.deepEqual(ann.user.user_tags, 'red,blue', 'tag_list as an array is stored as text');
    assert.equal((await sdk.users.get({ login: bob.login })).user.id, bob.id);
    assert.equal((await sdk.users.get({ email: bob.user.email })).user.id, bob.id);
    const byName = await sdk.users.get({ full_name: 'walker' });
    assert.deepEqual(byName.items.map((i) => i.user.id), [ann.id, bob.id]);
    assert.equal(byName.current_page, 1);
    assert.equal(byName.total_entries, 2);
    const byTags = await sdk.users.get({ tags: 'blue', per_page: 1, page: 2 });
    assert.deepEqual(byTags.items.map((i) => i.user.id), [bob.id]);
    assert.equal(byTags.per_page, 1);
    const filtered = await sdk.users.get({ filter: { field: 'id', param: 'in', value: [cat.id, ann.id] }, order: { field: 'id', sort: 'desc' } });
    assert.deepEqual(filtered.items.map((i) => i.user.id), [cat.id, ann.id]);
    const v2 = await sdk.users.getV2({ id: { in: [ann.id, cat.id] } });
    assert.deepEqual(v2.items.map((u) => u.id), [ann.id, cat.id]);
    const missing = await jsRejection(sdk.users.get({ login: 'nobody-here' }));
    assert.equal(missing.code, 404);
  });

  it('updates the own profile and changes the password with the old one', async () => {
    const me = await user(info, { full_name: 'Before' });
    const { user: u } = await me.sdk.users.update({
      full_name: 'After', website: 'https://example.com', custom_data: '{"theme":"dark"}',
      avatar: 'a1b2c3d4e5f60718293a4b5c6d7e8f90', tag_list: ['x', 'y'], phone: '+44 20 7946 0000',
    });
    assert.deepEqual(
      [u.full_name, u.website, u.custom_data, u.avatar, u.user_tags, u.phone],
      ['After', 'https://example.com', '{"theme":"dark"}', 'a1b2c3d4e5f60718293a4b5c6d7e8f90', 'x,y', '+44 20 7946 0000'],
    );
    const wrong = await jsRejection(me.sdk.users.update({ password: 'new-password-1', old_password: 'nope' }));
    assert.equal(wrong.code, 422);
    assert.deepEqual(wrong.info.errors.old_password, ['is invalid']);
    await me.sdk.users.update({ password: 'new-password-1', old_password: PASSWORD });
    const again = loadSdk(info);
    await again.createSession();
    assert.equal((await again.login({ login: me.login, password: 'new-password-1' })).id, me.id);
    // Deleting the own account: gone for everyone.
    await me.sdk.users.delete();
    const gone = await jsRejection(ann.sdk.users.get(me.id));
    assert.equal(gone.code, 404);
  });

  it('lists and counts online users', async () => {
    assert.deepEqual(await ann.sdk.users.getOnlineCount(), { count: 0 });
    const peer = spawnJsPeer(info, 'JS SDK (online)');
    const problems = [];
    try {
      await jsOnline(peer, { ...info, chat_domain: info.chat_domain }, bob);
      assert.deepEqual(await ann.sdk.users.getOnlineCount(), { count: 1 });
      const { users } = await ann.sdk.users.listOnline({ limit: 10, offset: 0 });
      assert.deepEqual(users.map((u) => u.id), [bob.id]);
    } finally {
      await shutdown([peer], problems);
    }
    assert.deepEqual(problems, []);
  });

  it('uploads, merges, reads back and matches the address book', async () => {
    const book = ann.sdk.addressbook;
    const up = await book.uploadAddressBook([
      { name: 'Bobby', phone: '+1 (555) 010-2030' },
      { name: 'Broken', phone: 'call me' },
      { name: 'Kitty', phone: '380-67-123-4567' },
      { name: 'Stranger', phone: '+49 30 1234567' },
    ]);
    assert.deepEqual(up, { created: 3, updated: 0, deleted: 0, rejected: { 1: ['phone is invalid'] } });
    assert.deepEqual((await book.get()).map((c) => c.name).sort(), ['Bobby', 'Kitty', 'Stranger']);
    const compact = await book.getRegisteredUsers(true);
    assert.deepEqual(compact.items, [
      { id: bob.id, phone: '+1 555 010 2030', address_book_name: 'Bobby' },
      { id: cat.id, phone: '380671234567', address_book_name: 'Kitty' },
    ]);
    const full = await book.getRegisteredUsers(false);
    assert.equal(full.items[0].full_name, 'Bob Walker');
    assert.equal(full.items[0].address_book_name, 'Bobby');
    const merged = await book.uploadAddressBook([
      { name: 'Robert', phone: '+15550102030' },
      { name: 'Kitty', phone: '380671234567', destroy: 1 },
    ]);
    assert.deepEqual(merged, { created: 0, updated: 1, deleted: 1, rejected: {} });
    // A device's own book, replaced with force.
    await book.uploadAddressBook([{ name: 'A', phone: '+1111111' }, { name: 'B', phone: '+2222222' }], { udid: 'ann-phone' });
    const forced = await book.uploadAddressBook([{ name: 'B2', phone: '+2222222' }], { udid: 'ann-phone', force: 1 });
    assert.deepEqual(forced, { created: 0, updated: 1, deleted: 1, rejected: {} });
    assert.deepEqual(await book.get('ann-phone'), [{ name: 'B2', phone: '+2222222' }]);
  });
});
