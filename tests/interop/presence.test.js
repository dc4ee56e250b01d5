// Presence-type features between the official ConnectyCube JS SDK (connectycube@6.1.2,
// js_peer.js) and cubechat (its Python bindings, cubechat_peer.py), in real time through
// cubeserver's XMPP side, each SDK in its own child process (see peers.js):
//
// - privacy (block) lists, set by either SDK and enforced against the other: a blocked 1-1
//   message bounces to the sender's error listener with code 503 and never arrives; one-way
//   blocks still let the owner write, two-way (mutual) blocks do not;
// - last activity: XEP-0012 queries and ConnectyCube's status_streaming subscription, each
//   SDK watching the other log out and in;
// - group presence: occupants joining/leaving a room, seen by both SDKs, and the room's
//   online users as each SDK lists them.
//
// Alice is the JS SDK, Bob is cubechat.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  EVENT_MS, sleep, spawnJsPeer, spawnCubechatPeer, js, cc, startChatServer, signup, jsOnline, ccOnline, shutdown,
} = require('./peers');

/** How long we watch for a message that must NOT arrive. */
const QUIET_MS = 1000;

describe('presence: privacy lists, last activity and group presence, JS SDK 6.1.2 ⇄ cubechat', () => {
  let server;
  let info;
  let alice; // {id, login, sdk (in-process, REST only)}; chats through jsPeer
  let bob; //   {id, login, sdk (in-process, REST only)}; chats through ccPeer
  let jsPeer;
  let ccPeer;
  let priv;
  let group;

  /** Message ids whose bounce a test provoked; any other bounce fails the run. */
  const provokedBounces = new Set();

  before(async () => {
    server = await startChatServer();
    info = server.info;
    alice = await signup(info, 'Alice JS');
    bob = await signup(info, 'Bob cubechat');
    priv = await alice.sdk.chat.dialog.create({ type: 3, occupants_ids: [bob.id] });
    group = await alice.sdk.chat.dialog.create({ type: 2, name: 'Presence group', occupants_ids: [bob.id] });
    jsPeer = spawnJsPeer(info);
    ccPeer = spawnCubechatPeer();
    await Promise.all([jsOnline(jsPeer, info, alice), ccOnline(ccPeer, info, bob)]);
  });

  after(async () => {
    const problems = [];
    if (process.env.PRESENCE_TEST_DUMP) {
      require('node:fs').writeFileSync(process.env.PRESENCE_TEST_DUMP, JSON.stringify({
        alice: alice?.id, bob: bob?.id, priv: priv?._id, group: group?._id,
        js: jsPeer?.events, cubechat: ccPeer?.events,
      }, null, 1));
    }
    for (const [peer, bounce] of [[jsPeer, js('onMessageErrorListener', (mid) => !provokedBounces.has(mid))],
      [ccPeer, cc('error', null, (e) => !provokedBounces.has(e.message_id))]]) {
      if (peer) peer.seen(bounce).forEach((e) => problems.push(`${peer.name} got an unexpected bounce: ${JSON.stringify(e)}`));
    }
    await shutdown([jsPeer, ccPeer], problems);
    if (server) assert.equal(await server.stop(), 0, 'cubeserver stops cleanly');
    assert.deepEqual(problems, [], 'no unprovoked bounces; both SDKs disconnect cleanly');
  });

  /** A JS SDK chat API call (js_peer.js `chat`): `fn` is its path under ConnectyCube.chat. */
  const jsChat = (fn, ...args) => jsPeer.call('chat', { fn, args });

  /**
   * `privacylist.getNames()` as {default, active, names (sorted, distinct)}. JS 6.1.2 maps
   * every child of the result's <query/> to its `name`, so the <default name='x'/> (and an
   * <active name='x'/>) child repeats that name in `names`; the distinct names are the lists.
   */
  async function jsListNames() {
    const r = await jsChat('privacylist.getNames');
    assert.ok(r.names.every((n) => typeof n === 'string'), `names ${JSON.stringify(r)}`);
    for (const k of ['default', 'active']) {
      if (r[k] !== null) assert.ok(r.names.includes(r[k]), `the ${k} list is one of the names: ${JSON.stringify(r)}`);
    }
    return { default: r.default, active: r.active, names: [...new Set(r.names)].sort() };
  }

  // --- 1-1 messages, delivered or bounced ---------------------------------------------------

  /** Bob (cubechat) → Alice (JS): delivered to the JS SDK's onMessageListener. */
  async function ccToJsDelivered(body) {
    const id = await ccPeer.call('send_message', { dialog_id: priv._id, recipient_id: alice.id, body });
    const [uid, msg] = (await jsPeer.waitFor(`message ${id}`, js('onMessageListener', (_u, m) => m.id === id))).args;
    assert.equal(uid, bob.id);
    assert.equal(msg.body, body);
    assert.equal(ccPeer.seen(cc('error', null, (e) => e.message_id === id)).length, 0, 'not bounced');
  }

  /** Alice (JS) → Bob (cubechat): delivered to cubechat's MessageListener. */
  async function jsToCcDelivered(body) {
    const id = await jsPeer.call('send', { to: bob.id, message: { type: 'chat', body, extension: { save_to_history: 1, dialog_id: priv._id } } });
    const got = (await ccPeer.waitFor(`message ${id}`, cc('message', null, (m) => m.id === id))).value;
    assert.equal(got.sender_id, alice.id);
    assert.equal(got.body, body);
    assert.equal(jsPeer.seen(js('onMessageErrorListener', (mid) => mid === id)).length, 0, 'not bounced');
  }

  /** Bob (cubechat) → Alice (JS): bounces to cubechat's MessageErrorListener with 503, never
   * reaches the JS SDK. */
  async function ccToJsBounced(body) {
    const id = await ccPeer.call('send_message', { dialog_id: priv._id, recipient_id: alice.id, body });
    provokedBounces.add(id);
    const err = (await ccPeer.waitFor(`bounce of ${id}`, cc('error', null, (e) => e.message_id === id))).value;
    assert.equal(err.code, 503, `bounce ${JSON.stringify(err)}`);
    await sleep(QUIET_MS);
    assert.equal(jsPeer.seen(js('onMessageListener', (_u, m) => m.id === id)).length, 0, 'alice never got it');
    return err;
  }

  /** Alice (JS) → Bob (cubechat): bounces to the JS SDK's onMessageErrorListener with 503,
   * never reaches cubechat. */
  async function jsToCcBounced(body) {
    const id = await jsPeer.call('send', { to: bob.id, message: { type: 'chat', body, extension: { save_to_history: 1, dialog_id: priv._id } } });
    provokedBounces.add(id);
    const [mid, err] = (await jsPeer.waitFor(`onMessageErrorListener ${id}`, js('onMessageErrorListener', (m) => m === id))).args;
    assert.equal(mid, id);
    assert.equal(err.code, 503, `bounce ${JSON.stringify(err)}`);
    await sleep(QUIET_MS);
    assert.equal(ccPeer.seen(cc('message', null, (m) => m.id === id)).length, 0, 'bob never got it');
    return err;
  }

  // -------------------------------------------------------------------------------------------
  // Privacy lists

  it('control: with no privacy list, 1-1 messages go through both ways', async () => {
    assert.deepEqual(await jsListNames(), { default: null, active: null, names: [] });
    assert.deepEqual(await ccPeer.call('privacy_list_names'), { active: null, default: null, names: [] });
    await ccToJsDelivered('before any list');
    await jsToCcDelivered('before any list, back');
  });

  it('JS SDK blocks cubechat one-way: cubechat → JS bounces 503, JS → cubechat still arrives', async () => {
    await jsChat('privacylist.create', { name: 'js-block', items: [{ user_id: bob.id, action: 'deny' }] });
    // Created but not default: not enforced yet.
    assert.deepEqual(await jsListNames(), { default: null, active: null, names: ['js-block'] });
    await ccToJsDelivered('list exists, not default');

    await jsChat('privacylist.setAsDefault', 'js-block');
    assert.deepEqual(await jsListNames(), { default: 'js-block', active: null, names: ['js-block'] });
    assert.deepEqual(await jsChat('privacylist.getList', 'js-block'), { name: 'js-block', items: [{ user_id: bob.id, action: 'deny' }] });

    await ccToJsBounced('blocked by alice');
    await jsToCcDelivered('alice may still write');
    // Alice's lists are hers: cubechat (bob) has none.
    assert.deepEqual(await ccPeer.call('privacy_list_names'), { active: null, default: null, names: [] });
  });

  it('JS SDK blocks cubechat mutually: both directions bounce 503 to the sender', async () => {
    await jsChat('privacylist.create', { name: 'js-mutual', items: [{ user_id: bob.id, action: 'deny', mutualBlock: true }] });
    await jsChat('privacylist.setAsDefault', 'js-mutual');
    assert.deepEqual(await jsListNames(), { default: 'js-mutual', active: null, names: ['js-block', 'js-mutual'] });

    await ccToJsBounced('blocked both ways (bob)');
    await jsToCcBounced('blocked both ways (alice)');
  });

  it('JS SDK declines the default and deletes its lists: messages flow again', async () => {
    await jsChat('privacylist.setAsDefault', null);
    assert.equal((await jsListNames()).default, null);
    await ccToJsDelivered('unblocked');
    await jsToCcDelivered('unblocked, back');
    await jsChat('privacylist.delete', 'js-block');
    await jsChat('privacylist.delete', 'js-mutual');
    assert.deepEqual(await jsListNames(), { default: null, active: null, names: [] });
  });

  it('cubechat blocks the JS user one-way: JS → cubechat bounces 503, cubechat → JS still arrives', async () => {
    await ccPeer.call('create_privacy_list', { name: 'cc-block', items: [{ user_id: alice.id }] });
    await ccPeer.call('set_default_privacy_list', { name: 'cc-block' });
    assert.deepEqual(await ccPeer.call('privacy_list_names'), { active: null, default: 'cc-block', names: ['cc-block'] });
    assert.deepEqual(await ccPeer.call('privacy_list', { name: 'cc-block' }), {
      name: 'cc-block', items: [{ user_id: alice.id, allow: false, mutual_block: false }],
    });

    await jsToCcBounced('blocked by bob');
    await ccToJsDelivered('bob may still write');
    // Bob's lists are his: the JS SDK (alice) reads none.
    assert.deepEqual(await jsListNames(), { default: null, active: null, names: [] });
  });

  it('cubechat blocks the JS user mutually (update_privacy_list): both directions bounce 503', async () => {
    await ccPeer.call('update_privacy_list', { name: 'cc-block', items: [{ user_id: alice.id, mutual_block: true }] });
    assert.deepEqual(await ccPeer.call('privacy_list_names'), { active: null, default: 'cc-block', names: ['cc-block'] });
    assert.deepEqual(await ccPeer.call('privacy_list', { name: 'cc-block' }), {
      name: 'cc-block', items: [{ user_id: alice.id, allow: false, mutual_block: true }],
    });
    await jsToCcBounced('blocked both ways by bob (alice)');
    await ccToJsBounced('blocked both ways by bob (bob)');
  });

  it('cubechat declines the default and deletes its list: messages flow again', async () => {
    await ccPeer.call('set_default_privacy_list', { name: null });
    await jsToCcDelivered('bob unblocked alice');
    await ccToJsDelivered('bob unblocked alice, back');
    await ccPeer.call('delete_privacy_list', { name: 'cc-block' });
    assert.deepEqual(await ccPeer.call('privacy_list_names'), { active: null, default: null, names: [] });
  });

  // -------------------------------------------------------------------------------------------
  // Group presence

  it('group room: each SDK sees the other join and leave; both list the same online users', async () => {
    let from = ccPeer.events.length;
    await ccPeer.call('join_room', { dialog_id: group._id });
    // muc.join resolves only on the self-presence carrying 110 the way JS 6.1.2 reads it (§6.7).
    await jsPeer.call('join', { dialogId: group._id }, 10000);
    await ccPeer.waitFor('OCCUPANT_JOINED alice', cc('presence', 'OCCUPANT_JOINED', (p) => p.dialog_id === group._id && p.user_id === alice.id), EVENT_MS, from);

    const jsList = await jsChat('muc.listOnlineUsers', group._id);
    const ccList = await ccPeer.call('room_occupants', { dialog_id: group._id });
    const sorted = (a) => [...a].sort((x, y) => x - y);
    assert.deepEqual(sorted(jsList), sorted([alice.id, bob.id]), `JS listOnlineUsers ${JSON.stringify(jsList)}`);
    assert.deepEqual(sorted(ccList), sorted(jsList), `cubechat room_occupants ${JSON.stringify(ccList)}`);

    let jsFrom = jsPeer.events.length;
    await ccPeer.call('leave_room', { dialog_id: group._id });
    await jsPeer.waitFor('onLeaveOccupant bob', js('onLeaveOccupant', (did, uid) => did === group._id && uid === bob.id), EVENT_MS, jsFrom);
    jsFrom = jsPeer.events.length;
    await ccPeer.call('join_room', { dialog_id: group._id });
    await jsPeer.waitFor('onJoinOccupant bob', js('onJoinOccupant', (did, uid) => did === group._id && uid === bob.id), EVENT_MS, jsFrom);

    from = ccPeer.events.length;
    await jsPeer.call('leave', { dialogId: group._id }, 10000);
    await ccPeer.waitFor('OCCUPANT_LEFT alice', cc('presence', 'OCCUPANT_LEFT', (p) => p.dialog_id === group._id && p.user_id === alice.id), EVENT_MS, from);
    await ccPeer.call('leave_room', { dialog_id: group._id });

    // Neither SDK reported itself as an occupant, and nobody was kicked.
    assert.equal(jsPeer.seen(js('onJoinOccupant', (_d, uid) => uid === alice.id)).length, 0);
    assert.equal(jsPeer.seen(js('onLeaveOccupant', (_d, uid) => uid === alice.id)).length, 0);
    assert.equal(ccPeer.seen(cc('presence', null, (p) => p.user_id === bob.id)).length, 0);
    assert.equal(jsPeer.seen(js('onKickOccupant')).length, 0);
    assert.equal(ccPeer.seen(cc('presence', 'KICKED')).length, 0);
  });

  // -------------------------------------------------------------------------------------------
  // Last activity

  it('JS SDK watches cubechat: 0 while online, ≥ 1 after disconnect, 0 after reconnect', async () => {
    assert.deepEqual(await jsChat('getLastUserActivity', bob.id), { userId: bob.id, seconds: 0 });
    await jsChat('subscribeToUserLastActivityStatus', bob.id);
    await jsPeer.call('ping'); // the subscribe iq is handled before the ping's answer

    let jsFrom = jsPeer.events.length;
    let from = ccPeer.events.length;
    await ccPeer.call('disconnect_chat');
    await ccPeer.waitFor('Disconnected state', cc('connection', 'DISCONNECTED'), EVENT_MS, from);
    const [uid, secs] = (await jsPeer.waitFor('onLastUserActivityListener(bob, ≥1)', js('onLastUserActivityListener', (u) => u === bob.id), EVENT_MS, jsFrom)).args;
    assert.equal(uid, bob.id);
    assert.ok(secs >= 1, `seconds after logout: ${secs}`);
    const offline = await jsChat('getLastUserActivity', bob.id);
    assert.equal(offline.userId, bob.id);
    assert.ok(offline.seconds >= 1, `getLastUserActivity while offline: ${JSON.stringify(offline)}`);

    jsFrom = jsPeer.events.length;
    from = ccPeer.events.length;
    await ccPeer.call('reconnect_now');
    await ccPeer.waitFor('Connected again', cc('connection', 'CONNECTED'), EVENT_MS, from);
    const back = await jsPeer.waitFor('onLastUserActivityListener(bob, 0)', js('onLastUserActivityListener', (u) => u === bob.id), EVENT_MS, jsFrom);
    assert.deepEqual(back.args, [bob.id, 0]);
    assert.deepEqual(await jsChat('getLastUserActivity', bob.id), { userId: bob.id, seconds: 0 });

    // Unsubscribed: cubechat's next logout and login push nothing.
    await jsChat('unsubscribeFromUserLastActivityStatus', bob.id);
    await jsPeer.call('ping');
    jsFrom = jsPeer.events.length;
    from = ccPeer.events.length;
    await ccPeer.call('disconnect_chat');
    await ccPeer.waitFor('Disconnected state', cc('connection', 'DISCONNECTED'), EVENT_MS, from);
    await ccPeer.call('reconnect_now');
    await ccPeer.waitFor('Connected again', cc('connection', 'CONNECTED'), EVENT_MS, from);
    await sleep(QUIET_MS);
    const late = jsPeer.events.slice(jsFrom).filter(js('onLastUserActivityListener'));
    assert.deepEqual(late, [], 'no activity pushes after unsubscribing');
  });

  it('cubechat watches the JS user: 0 while online, ≥ 1 after disconnect, 0 after login', async () => {
    assert.equal(await ccPeer.call('last_activity', { user_id: alice.id }), 0);
    await ccPeer.call('subscribe_last_activity', { user_id: alice.id });

    let from = ccPeer.events.length;
    assert.equal(await jsPeer.call('disconnect'), true);
    const off = (await ccPeer.waitFor('LAST_ACTIVITY(alice, ≥1)', cc('presence', 'LAST_ACTIVITY', (p) => p.user_id === alice.id), EVENT_MS, from)).value;
    assert.ok(off.seconds >= 1, `seconds after logout: ${JSON.stringify(off)}`);
    const secs = await ccPeer.call('last_activity', { user_id: alice.id });
    assert.ok(secs >= 1, `last_activity while offline: ${secs}`);

    from = ccPeer.events.length;
    await jsPeer.call('connect');
    const on = (await ccPeer.waitFor('LAST_ACTIVITY(alice, 0)', cc('presence', 'LAST_ACTIVITY', (p) => p.user_id === alice.id), EVENT_MS, from)).value;
    assert.deepEqual(on, { user_id: alice.id, seconds: 0 });
    assert.equal(await ccPeer.call('last_activity', { user_id: alice.id }), 0);

    // Unsubscribed: the JS user's next logout and login push nothing.
    await ccPeer.call('unsubscribe_last_activity', { user_id: alice.id });
    from = ccPeer.events.length;
    assert.equal(await jsPeer.call('disconnect'), true);
    await sleep(300);
    await jsPeer.call('connect');
    await sleep(QUIET_MS);
    assert.deepEqual(ccPeer.events.slice(from).filter(cc('presence', 'LAST_ACTIVITY')), [], 'no activity pushes after unsubscribing');
  });
});
