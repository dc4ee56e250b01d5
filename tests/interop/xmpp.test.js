// Real-time interop: the official ConnectyCube JS SDK (connectycube@6.1.2, js_peer.js) and
// cubechat (its Python bindings, cubechat_peer.py) chat with each other through cubeserver's
// XMPP side, each in its own child process, over STARTTLS with cubeserver's CA.
//
// Alice is the JS SDK, Bob is cubechat. Every feature runs in BOTH directions, in a private
// and in a group dialog where it applies: messages with body, attachments, custom parameters,
// dialog id and save_to_history (then read back from the REST history through both SDKs),
// delivered/read markers, sent acknowledgements, typing (composing/paused), edits, deletes,
// reactions (REST PUT → pushed stanza), system messages and bounced messages. Each receiving
// side is checked field by field against what the sender sent, with bounded waits.
//
// Diagnosis knobs (unset in `make test-interop`): XMPP_TEST_DUMP=<file> writes every event
// both peers saw; JS_PEER_WORKAROUNDS (see js_peer.js) masks a known server defect so that
// the features behind it can still be exercised.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  EVENT_MS, CALL_MS, QUIET_MS, unique, sleep, Peer, spawnJsPeer, spawnCubechatPeer, js, cc,
  startChatServer, signup, jsOnline, ccOnline, shutdown,
} = require('./peers');

const PNG = { type: 'image', uid: 'a1b2c3d4e5f60718293a4b5c6d7e8f90', name: 'pic.png', size: 5, 'content-type': 'image/png' };
/** The same attachment as cubechat's record (Python field names). */
const PNG_CC = {
  kind: 'image', id: null, uid: PNG.uid, url: null, name: 'pic.png', size: 5, content_type: 'image/png',
  width: null, height: null, duration: null, data: null,
};

const nowSecs = () => Math.floor(Date.now() / 1000);

/** The REST history of a dialog as `who` (an in-process JS SDK) reads it, without marking read. */
async function history(sdk, dialogId) {
  const r = await sdk.chat.message.list({ chat_dialog_id: dialogId, mark_as_read: 0, limit: 100 });
  return r.items;
}

/** Starts cubeserver and checks its ready line has what chat needs. */
describe('cubechat ⇄ ConnectyCube JS SDK 6.1.2, real time through cubeserver', () => {
  let server;
  let info;
  let alice; // {id, login, sdk (in-process, REST only)}; chats through jsPeer
  let bob; //   {id, login, sdk (in-process, REST only)}; chats through ccPeer
  let jsPeer;
  let ccPeer;
  let priv; // the private dialog of alice and bob
  let group; // a group dialog of alice and bob

  before(async () => {
    server = await startChatServer();
    info = server.info;
    alice = await signup(info, 'Alice JS');
    bob = await signup(info, 'Bob cubechat');
    priv = await alice.sdk.chat.dialog.create({ type: 3, occupants_ids: [bob.id] });
    group = await alice.sdk.chat.dialog.create({ type: 2, name: 'Interop group', occupants_ids: [bob.id] });
    jsPeer = spawnJsPeer(info);
    ccPeer = spawnCubechatPeer();
    await Promise.all([jsOnline(jsPeer, info, alice), ccOnline(ccPeer, info, bob)]);
  });

  /** Message ids whose bounce a test provoked; any other bounce fails the run. */
  const provokedBounces = new Set();

  after(async () => {
    const problems = [];
    if (process.env.XMPP_TEST_DUMP) {
      require('node:fs').writeFileSync(process.env.XMPP_TEST_DUMP, JSON.stringify({
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

  // -------------------------------------------------------------------------------------------
  // Private messages

  it('private message JS → cubechat: every field, delivered/read back, sent ack, in history', async () => {
    const body = 'hello Bob 👋 <&> "quoted"';
    const id = await jsPeer.call('send', {
      to: bob.id,
      message: {
        type: 'chat', body,
        extension: { save_to_history: 1, dialog_id: priv._id, attachments: [PNG], mood: 'sunny', n: '1' },
      },
    });
    assert.match(id, /^[0-9a-f]{24}$/);

    const got = (await ccPeer.waitFor(`message ${id}`, cc('message', null, (m) => m.id === id))).value;
    const date = got.date_sent;
    assert.ok(Math.abs(date - nowSecs()) < 120, `server-stamped date_sent ${date} is about now`);
    assert.deepEqual(got, {
      id, dialog_id: priv._id, sender_id: alice.id, recipient_id: bob.id, body,
      attachments: [PNG_CC], custom: { mood: 'sunny', n: '1' }, date_sent: date,
      save_to_history: true, markable: false, delayed: false, carbon: false, group: false,
    });

    // The JS SDK's stream management reports it sent once the server acknowledged it.
    await jsPeer.waitFor('onSentMessageCallback(null, msg)', js('onSentMessageCallback', (lost, sent) => lost === null && sent && sent.id === id));

    // Markers from cubechat reach the JS SDK's listeners with the message, dialog and user.
    await ccPeer.call('send_delivered', { dialog_id: priv._id, message_id: id, sender_id: alice.id });
    await jsPeer.waitFor('onDeliveredStatusListener', js('onDeliveredStatusListener', (mid, did, uid) => mid === id && did === priv._id && uid === bob.id));
    await ccPeer.call('send_read', { dialog_id: priv._id, message_id: id, sender_id: alice.id });
    await jsPeer.waitFor('onReadStatusListener', js('onReadStatusListener', (mid, did, uid) => mid === id && did === priv._id && uid === bob.id));

    // Stored: both SDKs read it back over REST with the same fields.
    for (const sdk of [alice.sdk, bob.sdk]) {
      const items = await history(sdk, priv._id);
      const row = items.find((m) => m._id === id);
      assert.ok(row, `message ${id} in history: ${JSON.stringify(items)}`);
      assert.equal(row.message, body);
      assert.equal(row.chat_dialog_id, priv._id);
      assert.equal(row.sender_id, alice.id);
      assert.equal(row.recipient_id, bob.id);
      assert.equal(row.date_sent, date);
      assert.equal(row.mood, 'sunny');
      assert.equal(row.n, '1');
      assert.equal(row.attachments.length, 1);
      assert.equal(row.attachments[0].uid, PNG.uid);
      assert.equal(row.attachments[0].type, 'image');
      assert.equal(String(row.attachments[0].size), '5');
      assert.ok(row.delivered_ids.includes(bob.id), `delivered_ids ${JSON.stringify(row.delivered_ids)} has bob`);
      assert.ok(row.read_ids.includes(bob.id), `read_ids ${JSON.stringify(row.read_ids)} has bob`);
    }
    const ccHist = await ccPeer.call('rest', { op: 'history', args: [priv._id, { limit: 100 }, false] });
    const ccRow = ccHist.find((m) => m.id === id);
    assert.ok(ccRow, 'cubechat reads it from the history too');
    assert.equal(ccRow.body, body);
    assert.deepEqual(ccRow.attachments, [PNG_CC]);
    assert.equal(ccRow.custom.mood, 'sunny');

    assert.equal(ccPeer.seen(cc('message', null, (m) => m.id === id)).length, 1, 'cubechat hears each message once');
  });

  it('private message cubechat → JS: every field, auto-delivered and read back, in history', async () => {
    const body = 'hi Alice, from cubechat ✓';
    const id = await ccPeer.call('send_message', {
      dialog_id: priv._id, recipient_id: alice.id, body, attachments: [PNG_CC],
      custom: { mood: 'rainy', level: '7' }, date_sent: 1700000000,
    });
    assert.match(id, /^[0-9a-f]{24}$/);

    const [uid, msg] = (await jsPeer.waitFor(`onMessageListener ${id}`, js('onMessageListener', (_u, m) => m.id === id))).args;
    assert.equal(uid, bob.id);
    assert.deepEqual(msg, {
      id, dialog_id: priv._id, recipient_id: alice.id, is_forwarded: false, type: 'chat', body,
      extension: {
        save_to_history: '1', dialog_id: priv._id, date_sent: '1700000000', markable: '1',
        attachments: [PNG], mood: 'rainy', level: '7',
      },
      delay: null,
    });

    await ccPeer.waitFor('Sent', cc('status', 'SENT', (s) => s.message_id === id));
    // The JS SDK answers every message with a delivered marker by itself.
    const delivered = await ccPeer.waitFor('Delivered', cc('status', 'DELIVERED', (s) => s.message_id === id));
    assert.deepEqual(delivered.value, { message_id: id, dialog_id: priv._id, user_id: alice.id });
    await jsPeer.call('sendReadStatus', { messageId: id, userId: bob.id, dialogId: priv._id });
    const read = await ccPeer.waitFor('Read', cc('status', 'READ', (s) => s.message_id === id));
    assert.deepEqual(read.value, { message_id: id, dialog_id: priv._id, user_id: alice.id });

    const row = (await history(alice.sdk, priv._id)).find((m) => m._id === id);
    assert.ok(row, 'in the history the JS SDK reads');
    assert.equal(row.message, body);
    assert.equal(row.sender_id, bob.id);
    assert.equal(row.recipient_id, alice.id);
    assert.equal(row.date_sent, 1700000000);
    assert.equal(row.mood, 'rainy');
    assert.equal(row.level, '7');
    assert.equal(row.attachments[0].uid, PNG.uid);
    assert.equal(row.attachments[0]['content-type'] ?? row.attachments[0].content_type, 'image/png');
    assert.ok(row.delivered_ids.includes(alice.id) && row.read_ids.includes(alice.id),
      `delivered/read ids ${JSON.stringify([row.delivered_ids, row.read_ids])}`);
    assert.equal(jsPeer.seen(js('onMessageListener', (_u, m) => m.id === id)).length, 1, 'the JS SDK hears it once');
  });

  it('save_to_history off: delivered in both directions, stored in neither', async () => {
    const fromJs = await jsPeer.call('send', {
      to: bob.id, message: { type: 'chat', body: 'ephemeral from JS', extension: { dialog_id: priv._id } },
    });
    const got = (await ccPeer.waitFor('ephemeral message', cc('message', null, (m) => m.id === fromJs))).value;
    assert.equal(got.save_to_history, false);
    assert.equal(got.dialog_id, priv._id);
    assert.equal(got.body, 'ephemeral from JS');

    const fromCc = await ccPeer.call('send_message', {
      dialog_id: priv._id, recipient_id: alice.id, body: 'ephemeral from cubechat', save_to_history: false, markable: false,
    });
    const [, msg] = (await jsPeer.waitFor('ephemeral message', js('onMessageListener', (_u, m) => m.id === fromCc))).args;
    assert.equal(msg.body, 'ephemeral from cubechat');
    assert.equal(msg.dialog_id, priv._id);
    assert.equal(msg.extension.save_to_history, undefined, `no save_to_history: ${JSON.stringify(msg.extension)}`);

    const ids = (await history(alice.sdk, priv._id)).map((m) => m._id);
    assert.ok(!ids.includes(fromJs) && !ids.includes(fromCc), 'neither is in the history');
  });

  // -------------------------------------------------------------------------------------------
  // Group messages

  it('group message JS → cubechat: every field, markers back, in history', async () => {
    const body = 'hello group, from JS';
    const id = await jsPeer.call('send', {
      to: group._id,
      message: { type: 'groupchat', body, extension: { save_to_history: 1, attachments: [PNG], topic: 'plans' } },
    });
    const got = (await ccPeer.waitFor(`group message ${id}`, cc('message', null, (m) => m.id === id))).value;
    const date = got.date_sent;
    assert.ok(Math.abs(date - nowSecs()) < 120, `date_sent ${date} is about now`);
    assert.deepEqual(got, {
      id, dialog_id: group._id, sender_id: alice.id, recipient_id: null, body,
      attachments: [PNG_CC], custom: { topic: 'plans' }, date_sent: date,
      save_to_history: true, markable: false, delayed: false, carbon: false, group: true,
    });
    await jsPeer.waitFor('onSentMessageCallback(null, msg)', js('onSentMessageCallback', (lost, sent) => lost === null && sent && sent.id === id));

    await ccPeer.call('send_delivered', { dialog_id: group._id, message_id: id, sender_id: alice.id });
    await jsPeer.waitFor('onDeliveredStatusListener', js('onDeliveredStatusListener', (mid, did, uid) => mid === id && did === group._id && uid === bob.id));
    await ccPeer.call('send_read', { dialog_id: group._id, message_id: id, sender_id: alice.id });
    await jsPeer.waitFor('onReadStatusListener', js('onReadStatusListener', (mid, did, uid) => mid === id && did === group._id && uid === bob.id));

    const row = (await history(bob.sdk, group._id)).find((m) => m._id === id);
    assert.ok(row, 'in the group history');
    assert.equal(row.message, body);
    assert.equal(row.sender_id, alice.id);
    assert.equal(row.date_sent, date);
    assert.equal(row.topic, 'plans');
    assert.equal(row.attachments[0].uid, PNG.uid);
    assert.equal(ccPeer.seen(cc('message', null, (m) => m.id === id)).length, 1, 'cubechat hears it once');
  });

  it('group message cubechat → JS: every field, auto-delivered and read back, in history', async () => {
    const body = 'hello group, from cubechat';
    const id = await ccPeer.call('send_message', {
      dialog_id: group._id, body, attachments: [PNG_CC], custom: { topic: 'dinner' }, date_sent: 1700000100,
    });
    const [uid, msg] = (await jsPeer.waitFor(`group message ${id}`, js('onMessageListener', (_u, m) => m.id === id))).args;
    assert.equal(uid, bob.id);
    assert.deepEqual(msg, {
      id, dialog_id: group._id, recipient_id: null, is_forwarded: false, type: 'groupchat', body,
      extension: {
        save_to_history: '1', dialog_id: group._id, date_sent: '1700000100', markable: '1',
        attachments: [PNG], topic: 'dinner',
      },
      delay: null,
    });
    await ccPeer.waitFor('Sent', cc('status', 'SENT', (s) => s.message_id === id));
    const delivered = await ccPeer.waitFor('Delivered', cc('status', 'DELIVERED', (s) => s.message_id === id));
    assert.deepEqual(delivered.value, { message_id: id, dialog_id: group._id, user_id: alice.id });
    await jsPeer.call('sendReadStatus', { messageId: id, userId: bob.id, dialogId: group._id });
    const read = await ccPeer.waitFor('Read', cc('status', 'READ', (s) => s.message_id === id));
    assert.deepEqual(read.value, { message_id: id, dialog_id: group._id, user_id: alice.id });

    const row = (await history(alice.sdk, group._id)).find((m) => m._id === id);
    assert.ok(row, 'in the group history');
    assert.equal(row.message, body);
    assert.equal(row.sender_id, bob.id);
    assert.equal(row.date_sent, 1700000100);
    assert.equal(row.topic, 'dinner');
    assert.equal(jsPeer.seen(js('onMessageListener', (_u, m) => m.id === id)).length, 1, 'the JS SDK hears it once');
  });

  it('group rooms: both SDKs join and leave; JS hears cubechat join as an occupant', async () => {
    await jsPeer.call('join', { dialogId: group._id }, 10000);
    await ccPeer.call('join_room', { dialog_id: group._id });
    await jsPeer.waitFor('onJoinOccupant', js('onJoinOccupant', (did, uid) => did === group._id && uid === bob.id));
    await ccPeer.call('leave_room', { dialog_id: group._id });
    await jsPeer.waitFor('onLeaveOccupant', js('onLeaveOccupant', (did, uid) => did === group._id && uid === bob.id));
    await jsPeer.call('leave', { dialogId: group._id }, 10000);
  });

  // -------------------------------------------------------------------------------------------
  // Typing

  it('typing JS → cubechat (private and group): composing then paused', async () => {
    await jsPeer.call('typing', { to: bob.id, composing: true });
    const t1 = await ccPeer.waitFor('private composing', cc('typing', null, (v) => v.user_id === alice.id && v.composing && v.dialog_id !== group._id));
    // The JS SDK sends no dialog id with private typing (§6.5); cubeserver may add it.
    assert.ok(t1.value.dialog_id === null || t1.value.dialog_id === priv._id, `dialog id ${t1.value.dialog_id}`);
    await jsPeer.call('typing', { to: bob.id, composing: false });
    await ccPeer.waitFor('private paused', cc('typing', null, (v) => v.user_id === alice.id && !v.composing && v.dialog_id !== group._id));

    await jsPeer.call('typing', { to: group._id, composing: true });
    await ccPeer.waitFor('group composing', cc('typing', null, (v) => v.user_id === alice.id && v.composing && v.dialog_id === group._id));
    await jsPeer.call('typing', { to: group._id, composing: false });
    await ccPeer.waitFor('group paused', cc('typing', null, (v) => v.user_id === alice.id && !v.composing && v.dialog_id === group._id));
  });

  it('typing cubechat → JS (private and group): composing then paused', async () => {
    await ccPeer.call('send_typing', { dialog_id: priv._id, recipient_id: alice.id, composing: true });
    await jsPeer.waitFor('private composing', js('onMessageTypingListener', (c, uid, did) => c === true && uid === bob.id && did === priv._id));
    await ccPeer.call('send_typing', { dialog_id: priv._id, recipient_id: alice.id, composing: false });
    await jsPeer.waitFor('private paused', js('onMessageTypingListener', (c, uid, did) => c === false && uid === bob.id && did === priv._id));

    await ccPeer.call('send_typing', { dialog_id: group._id, recipient_id: null, composing: true });
    await jsPeer.waitFor('group composing', js('onMessageTypingListener', (c, uid, did) => c === true && uid === bob.id && did === group._id));
    await ccPeer.call('send_typing', { dialog_id: group._id, recipient_id: null, composing: false });
    await jsPeer.waitFor('group paused', js('onMessageTypingListener', (c, uid, did) => c === false && uid === bob.id && did === group._id));
    // Typing is not a message: neither listener reports one.
    assert.equal(jsPeer.seen(js('onMessageListener', (u, m) => u === bob.id && !m.body)).length, 0);
  });

  // -------------------------------------------------------------------------------------------
  // Edits and deletes

  /** A stored message from `from` ('js' | 'cc') in `dialog`, received by the other side. */
  async function stored(from, dialog, body) {
    const isGroup = dialog === group;
    if (from === 'js') {
      const id = await jsPeer.call('send', {
        to: isGroup ? group._id : bob.id,
        message: { type: isGroup ? 'groupchat' : 'chat', body, extension: { save_to_history: 1, dialog_id: dialog._id } },
      });
      await ccPeer.waitFor(`message ${id}`, cc('message', null, (m) => m.id === id));
      return id;
    }
    const id = await ccPeer.call('send_message', { dialog_id: dialog._id, recipient_id: isGroup ? null : alice.id, body });
    await jsPeer.waitFor(`message ${id}`, js('onMessageListener', (_u, m) => m.id === id));
    return id;
  }

  for (const [label, pick] of [['private', () => priv], ['group', () => group]]) {
    it(`edit JS → cubechat (${label}): new body, last flag, history updated`, async () => {
      const dialog = pick();
      const id = await stored('js', dialog, `original from JS (${label})`);
      const to = dialog === group ? group._id : bob.id;
      await jsPeer.call('editMessage', { to, dialogId: dialog._id, body: `edited by JS (${label})`, originMessageId: id, last: true });
      const change = await ccPeer.waitFor('Edited', cc('change', 'EDITED', (c) => c.message_id === id));
      assert.deepEqual(change.value, { message_id: id, dialog_id: dialog._id, user_id: alice.id, body: `edited by JS (${label})`, last: true });
      const row = (await history(bob.sdk, dialog._id)).find((m) => m._id === id);
      assert.equal(row?.message, `edited by JS (${label})`, 'the stored body changed');
      assert.equal(ccPeer.seen(cc('message', null, (m) => m.body === `edited by JS (${label})`)).length, 0, 'an edit is not a new message');
    });

    it(`edit cubechat → JS (${label}): new body, last flag, history updated`, async () => {
      const dialog = pick();
      const id = await stored('cc', dialog, `original from cubechat (${label})`);
      await ccPeer.call('send_edit', {
        dialog_id: dialog._id, recipient_id: dialog === group ? null : alice.id, message_id: id,
        body: `edited by cubechat (${label})`, last: false,
      });
      const ev = await jsPeer.waitFor('onMessageUpdateListener', js('onMessageUpdateListener', (mid) => mid === id));
      const [mid, last, body, dialogId, userId, extension] = ev.args;
      assert.deepEqual([mid, last, body, dialogId, userId], [id, false, `edited by cubechat (${label})`, dialog._id, bob.id]);
      assert.deepEqual(extension, { dialog_id: dialog._id });
      const row = (await history(alice.sdk, dialog._id)).find((m) => m._id === id);
      assert.equal(row?.message, `edited by cubechat (${label})`, 'the stored body changed');
    });

    it(`delete JS → cubechat (${label}): removed for both, gone from history`, async () => {
      const dialog = pick();
      const id = await stored('js', dialog, `to delete, from JS (${label})`);
      const to = dialog === group ? group._id : bob.id;
      await jsPeer.call('deleteMessage', { to, messageId: id, dialogId: dialog._id });
      const change = await ccPeer.waitFor('Deleted', cc('change', 'DELETED', (c) => c.message_id === id));
      assert.deepEqual(change.value, { message_id: id, dialog_id: dialog._id, user_id: alice.id });
      const ids = (await history(bob.sdk, dialog._id)).map((m) => m._id);
      assert.ok(!ids.includes(id), 'deleted from the history');
    });

    it(`delete cubechat → JS (${label}): removed for both, gone from history`, async () => {
      const dialog = pick();
      const id = await stored('cc', dialog, `to delete, from cubechat (${label})`);
      await ccPeer.call('send_delete', { dialog_id: dialog._id, recipient_id: dialog === group ? null : alice.id, message_id: id });
      const ev = await jsPeer.waitFor('onMessageDeleteListener', js('onMessageDeleteListener', (mid) => mid === id));
      assert.deepEqual(ev.args, [id, dialog._id, bob.id]);
      const ids = (await history(alice.sdk, dialog._id)).map((m) => m._id);
      assert.ok(!ids.includes(id), 'deleted from the history');
    });

    // -----------------------------------------------------------------------------------------
    // Reactions: REST PUT by one SDK → the server's push reaches the other.

    it(`reactions JS (REST) → cubechat push (${label}): add, then replace`, async () => {
      const dialog = pick();
      const id = await stored('cc', dialog, `react to me, JS (${label})`);
      await alice.sdk.chat.message.addReaction(id, '🔥');
      const add = await ccPeer.waitFor('Reactions add', cc('change', 'REACTIONS', (c) => c.message_id === id && c.add.includes('🔥')));
      assert.deepEqual(add.value, { message_id: id, dialog_id: dialog._id, user_id: alice.id, add: ['🔥'], remove: [] });
      await alice.sdk.chat.message.updateReaction(id, '🚀', '🔥');
      const repl = await ccPeer.waitFor('Reactions replace', cc('change', 'REACTIONS', (c) => c.message_id === id && c.add.includes('🚀')));
      assert.deepEqual(repl.value, { message_id: id, dialog_id: dialog._id, user_id: alice.id, add: ['🚀'], remove: ['🔥'] });
      const listed = await ccPeer.call('rest', { op: 'reactions', args: [id] });
      assert.deepEqual(listed, { '🚀': [alice.id] });
    });

    it(`reactions cubechat (REST) → JS push (${label}): add, then remove`, async () => {
      const dialog = pick();
      const id = await stored('js', dialog, `react to me, cubechat (${label})`);
      await ccPeer.call('rest', { op: 'add_reaction', args: [id, '👍'] });
      const add = await jsPeer.waitFor('onMessageReactionsListener add', js('onMessageReactionsListener', (mid, _u, _d, a) => mid === id && a === '👍'));
      assert.deepEqual(add.args, [id, bob.id, dialog._id, '👍', null]);
      await ccPeer.call('rest', { op: 'remove_reaction', args: [id, '👍'] });
      const rm = await jsPeer.waitFor('onMessageReactionsListener remove', js('onMessageReactionsListener', (mid, _u, _d, _a, r) => mid === id && r === '👍'));
      assert.deepEqual(rm.args, [id, bob.id, dialog._id, null, '👍']);
      assert.deepEqual(await alice.sdk.chat.message.listReactions(id), {});
    });
  }

  // -------------------------------------------------------------------------------------------
  // System messages

  it('system message JS → cubechat: body and custom parameters', async () => {
    const id = await jsPeer.call('sendSystemMessage', {
      to: bob.id, message: { body: 'dialog/UPDATE', extension: { photo_uid: 'p1', dialog: group._id } },
    });
    const got = await ccPeer.waitFor('system message', cc('system', null, (m) => m.id === id));
    assert.deepEqual(got.value, { id, sender_id: alice.id, body: 'dialog/UPDATE', custom: { photo_uid: 'p1', dialog: group._id } });
    assert.equal(ccPeer.seen(cc('message', null, (m) => m.id === id)).length, 0, 'not a chat message');
  });

  it('system message cubechat → JS: body and extension', async () => {
    const id = await ccPeer.call('send_chat_system_message', { user_id: alice.id, body: 'call/ENDED', custom: { reason: 'busy', n: '3' } });
    const ev = await jsPeer.waitFor('onSystemMessageListener', js('onSystemMessageListener', (m) => m.id === id));
    assert.deepEqual(ev.args, [{ id, userId: bob.id, body: 'call/ENDED', extension: { reason: 'busy', n: '3' } }]);
    assert.equal(jsPeer.seen(js('onMessageListener', (_u, m) => m.id === id)).length, 0, 'not a chat message');
  });

  // -------------------------------------------------------------------------------------------
  // REST writes that cubeserver pushes over XMPP: one SDK writes over REST, the other hears it.

  for (const [label, pick] of [['private', () => priv], ['group', () => group]]) {
    it(`REST message with send_to_chat (${label}): JS → cubechat and cubechat → JS`, async () => {
      const dialog = pick();
      const isGroup = dialog === group;
      const sent = await alice.sdk.chat.message.create({
        chat_dialog_id: dialog._id, message: `REST from JS (${label})`, send_to_chat: 1, markable: 1,
        attachments: [PNG], tone: 'dry',
      });
      const got = (await ccPeer.waitFor(`REST message ${sent._id}`, cc('message', null, (m) => m.id === sent._id))).value;
      assert.deepEqual(got, {
        id: sent._id, dialog_id: dialog._id, sender_id: alice.id, recipient_id: isGroup ? null : bob.id,
        body: `REST from JS (${label})`, attachments: [PNG_CC], custom: { tone: 'dry' }, date_sent: sent.date_sent,
        save_to_history: true, markable: true, delayed: false, carbon: false, group: isGroup,
      });

      const [mine] = await ccPeer.call('rest', {
        op: 'create_message',
        args: [{ dialog_id: dialog._id, body: `REST from cubechat (${label})`, attachments: [PNG_CC], custom: { tone: 'wet' }, send_to_chat: true, markable: true }],
      }).then((m) => [m]);
      const [uid, msg] = (await jsPeer.waitFor(`REST message ${mine.id}`, js('onMessageListener', (_u, m) => m.id === mine.id))).args;
      assert.equal(uid, bob.id);
      assert.deepEqual(msg, {
        id: mine.id, dialog_id: dialog._id, recipient_id: isGroup ? null : alice.id, is_forwarded: false,
        type: isGroup ? 'groupchat' : 'chat', body: `REST from cubechat (${label})`,
        extension: {
          save_to_history: '1', dialog_id: dialog._id, date_sent: String(mine.date_sent), markable: '1',
          attachments: [PNG], tone: 'wet',
        },
        delay: null,
      });
      // The JS SDK's automatic delivered marker reaches cubechat for a REST-created message too.
      await ccPeer.waitFor('Delivered', cc('status', 'DELIVERED', (s) => s.message_id === mine.id && s.user_id === alice.id && s.dialog_id === dialog._id));
    });

    it(`REST edit and forced delete (${label}): pushed to the other SDK both ways`, async () => {
      const dialog = pick();
      const isGroup = dialog === group;
      // JS edits its newest message over REST → cubechat hears an edit with last=true.
      const a = await stored('js', dialog, `REST edit me, JS (${label})`);
      await alice.sdk.chat.message.update(a, { chat_dialog_id: dialog._id, message: `REST-edited by JS (${label})` });
      const edited = await ccPeer.waitFor('Edited', cc('change', 'EDITED', (c) => c.message_id === a));
      assert.deepEqual(edited.value, { message_id: a, dialog_id: dialog._id, user_id: alice.id, body: `REST-edited by JS (${label})`, last: true });

      // cubechat edits its newest message over REST → the JS SDK hears it.
      const b = await stored('cc', dialog, `REST edit me, cubechat (${label})`);
      await ccPeer.call('rest', { op: 'edit_message', args: [dialog._id, b, `REST-edited by cubechat (${label})`] });
      const upd = await jsPeer.waitFor('onMessageUpdateListener', js('onMessageUpdateListener', (mid) => mid === b));
      assert.deepEqual(upd.args, [b, true, `REST-edited by cubechat (${label})`, dialog._id, bob.id, { dialog_id: dialog._id }]);

      // A delete for oneself is not pushed; a forced one is, both ways.
      await alice.sdk.chat.message.delete(b);
      await ccPeer.never('a push for a delete-for-me', cc('change', 'DELETED', (c) => c.message_id === b));
      await alice.sdk.chat.message.delete(a, { force: 1 });
      const del = await ccPeer.waitFor('Deleted', cc('change', 'DELETED', (c) => c.message_id === a));
      assert.deepEqual(del.value, { message_id: a, dialog_id: dialog._id, user_id: alice.id });
      const res = await ccPeer.call('rest', { op: 'delete_messages', args: [[b], true] });
      assert.deepEqual(res, { deleted: [b], not_found: [], no_permission: [] });
      const rm = await jsPeer.waitFor('onMessageDeleteListener', js('onMessageDeleteListener', (mid) => mid === b));
      assert.deepEqual(rm.args, [b, dialog._id, bob.id]);
      const ids = (await history(bob.sdk, dialog._id)).map((m) => m._id);
      assert.ok(!ids.includes(a) && !ids.includes(b), `both gone: ${isGroup}`);
    });
  }

  it('REST system messages: JS → cubechat and cubechat → JS', async () => {
    const r = await alice.sdk.chat.message.createSystem({ recipientId: bob.id, body: 'rest/PING', kind: 'check', n: '4' });
    assert.equal(r.recipientId, bob.id);
    const got = await ccPeer.waitFor('system message', cc('system', null, (m) => m.id === r.messageId));
    assert.deepEqual(got.value, { id: r.messageId, sender_id: alice.id, body: 'rest/PING', custom: { kind: 'check', n: '4' } });

    const id = await ccPeer.call('rest', { op: 'send_system_message', args: [alice.id, { body: 'rest/PONG', kind: 'reply' }] });
    const ev = await jsPeer.waitFor('onSystemMessageListener', js('onSystemMessageListener', (m) => m.id === id));
    assert.deepEqual(ev.args, [{ id, userId: bob.id, body: 'rest/PONG', extension: { kind: 'reply' } }]);
  });

  // -------------------------------------------------------------------------------------------
  // Offline delivery: a private message to a user who is offline waits for them and arrives
  // once, marked late, when they come back.

  it('offline: cubechat → JS while the JS SDK is offline, delivered with <delay> on reconnect', async () => {
    assert.equal(await jsPeer.call('disconnect'), true);
    await sleep(300); // cubeserver notices the closed stream
    const id = await ccPeer.call('send_message', { dialog_id: priv._id, recipient_id: alice.id, body: 'while you were away' });
    await ccPeer.waitFor('Sent', cc('status', 'SENT', (s) => s.message_id === id));
    await jsPeer.never(`message ${id} while offline`, js('onMessageListener', (_u, m) => m.id === id), 300);
    await jsPeer.call('connect');
    const [uid, msg] = (await jsPeer.waitFor(`late message ${id}`, js('onMessageListener', (_u, m) => m.id === id))).args;
    assert.equal(uid, bob.id);
    assert.equal(msg.body, 'while you were away');
    assert.equal(msg.dialog_id, priv._id);
    assert.match(String(msg.delay), /^<delay [^>]*xmlns="urn:xmpp:delay"[^>]*\/>$/, `delay element: ${msg.delay}`);
    assert.match(String(msg.delay), /stamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"/);
    // The JS SDK answers the late message with a delivered marker, as for any other.
    await ccPeer.waitFor('Delivered', cc('status', 'DELIVERED', (s) => s.message_id === id && s.user_id === alice.id));
    await sleep(300);
    assert.equal(jsPeer.seen(js('onMessageListener', (_u, m) => m.id === id)).length, 1, 'once');
  });

  it('offline: JS → cubechat while cubechat is offline, delivered marked delayed on reconnect', async () => {
    const from = ccPeer.events.length;
    await ccPeer.call('disconnect_chat');
    await ccPeer.waitFor('Disconnected state', cc('connection', 'DISCONNECTED'), EVENT_MS, from);
    await sleep(300);
    const id = await jsPeer.call('send', {
      to: bob.id,
      message: { type: 'chat', body: 'catch up later', extension: { save_to_history: 1, dialog_id: priv._id, note: 'late' } },
    });
    await jsPeer.waitFor('onSentMessageCallback', js('onSentMessageCallback', (lost, sent) => lost === null && sent && sent.id === id));
    await ccPeer.never(`message ${id} while offline`, cc('message', null, (m) => m.id === id), 300);
    await ccPeer.call('reconnect_now');
    await ccPeer.waitFor('Connected again', cc('connection', 'CONNECTED'), EVENT_MS, from);
    const got = (await ccPeer.waitFor(`late message ${id}`, cc('message', null, (m) => m.id === id))).value;
    assert.equal(got.body, 'catch up later');
    assert.equal(got.sender_id, alice.id);
    assert.equal(got.dialog_id, priv._id);
    assert.deepEqual(got.custom, { note: 'late' });
    assert.equal(got.delayed, true);
    await sleep(300);
    assert.equal(ccPeer.seen(cc('message', null, (m) => m.id === id)).length, 1, 'once');
  });

  // -------------------------------------------------------------------------------------------
  // Bounces: what cubeserver refuses reaches each SDK's error listener with code and text.

  it('bounced messages reach both SDKs\' error listeners', async () => {
    const stranger = await alice.sdk.chat.dialog.create({ type: 2, name: 'not for bob', occupants_ids: [] });
    const ccId = await ccPeer.call('send_message', { dialog_id: stranger._id, body: 'let me in' });
    provokedBounces.add(ccId);
    const ccErr = await ccPeer.waitFor('message error', cc('error', null, (e) => e.message_id === ccId));
    assert.ok(ccErr.value.code >= 400, `code ${ccErr.value.code}`);
    assert.equal(jsPeer.seen(js('onMessageListener', (_u, m) => m.id === ccId)).length, 0, 'alice never got it');

    const jsId = await jsPeer.call('send', { to: '0123456789abcdef01234567', message: { type: 'groupchat', body: 'nobody here' } });
    provokedBounces.add(jsId);
    const jsErr = await jsPeer.waitFor('onMessageErrorListener', js('onMessageErrorListener', (mid) => mid === jsId));
    assert.ok(jsErr.args[1].code >= 400, `code ${JSON.stringify(jsErr.args[1])}`);
  });
});

// ---------------------------------------------------------------------------------------------
// One user on both SDKs at once (two resources): carbons and fan-out across the two clients.

describe('one user on the JS SDK and cubechat at once (carbons, fan-out)', () => {
  let server;
  let info;
  let carol; // online twice: carolJs and carolCc
  let dave; //  online on cubechat (daveCc)
  let carolJs;
  let carolCc;
  let daveCc;
  let priv;
  let group;

  before(async () => {
    server = await startChatServer();
    info = server.info;
    carol = await signup(info, 'Carol two devices');
    dave = await signup(info, 'Dave');
    priv = await carol.sdk.chat.dialog.create({ type: 3, occupants_ids: [dave.id] });
    group = await carol.sdk.chat.dialog.create({ type: 2, name: 'Devices group', occupants_ids: [dave.id] });
    carolJs = spawnJsPeer(info, 'JS SDK (carol)');
    carolCc = spawnCubechatPeer('cubechat (carol)');
    daveCc = spawnCubechatPeer('cubechat (dave)');
    await Promise.all([jsOnline(carolJs, info, carol), ccOnline(carolCc, info, carol), ccOnline(daveCc, info, dave)]);
  });

  after(async () => {
    const problems = [];
    if (process.env.XMPP_TEST_DUMP) {
      require('node:fs').writeFileSync(`${process.env.XMPP_TEST_DUMP}.devices`, JSON.stringify({
        carol: carol?.id, dave: dave?.id, priv: priv?._id, group: group?._id,
        carolJs: carolJs?.events, carolCc: carolCc?.events, daveCc: daveCc?.events,
      }, null, 1));
    }
    await shutdown([carolJs, carolCc, daveCc], problems);
    if (server) assert.equal(await server.stop(), 0, 'cubeserver stops cleanly');
    assert.deepEqual(problems, []);
  });

  it('sent on the JS SDK: the peer gets it, carol\'s cubechat gets a sent carbon', async () => {
    const id = await carolJs.call('send', {
      to: dave.id, message: { type: 'chat', body: 'from my laptop', extension: { save_to_history: 1, dialog_id: priv._id, via: 'js' } },
    });
    const got = (await daveCc.waitFor('message', cc('message', null, (m) => m.id === id))).value;
    assert.equal(got.carbon, false);
    const copy = (await carolCc.waitFor('sent carbon', cc('message', null, (m) => m.id === id))).value;
    assert.deepEqual(copy, { ...got, carbon: true, markable: false });
    assert.deepEqual([copy.sender_id, copy.recipient_id, copy.dialog_id, copy.body, copy.custom],
      [carol.id, dave.id, priv._id, 'from my laptop', { via: 'js' }]);
    // Carol's cubechat sends no delivered marker for a copy of her own message.
    await carolJs.never('a delivered marker from carol herself', js('onDeliveredStatusListener', (mid, _d, u) => mid === id && u === carol.id));
  });

  it('sent on cubechat: the peer gets it, carol\'s JS SDK gets it forwarded (is_forwarded)', async () => {
    const id = await carolCc.call('send_message', { dialog_id: priv._id, recipient_id: dave.id, body: 'from my phone', custom: { via: 'cc' } });
    await daveCc.waitFor('message', cc('message', null, (m) => m.id === id && !m.carbon));
    const [uid, msg] = (await carolJs.waitFor('forwarded copy', js('onMessageListener', (_u, m) => m.id === id))).args;
    assert.equal(uid, carol.id);
    assert.equal(msg.is_forwarded, true);
    assert.equal(msg.type, 'chat');
    assert.equal(msg.recipient_id, dave.id);
    assert.equal(msg.dialog_id, priv._id);
    assert.equal(msg.body, 'from my phone');
    assert.equal(msg.extension.via, 'cc');
    // The JS SDK sends no delivered marker for a copy of carol's own message.
    await carolCc.never('a delivered marker from carol herself', cc('status', 'DELIVERED', (s) => s.message_id === id && s.user_id === carol.id));
  });

  it('received: both of carol\'s clients get dave\'s message once; markers reach dave, not carol', async () => {
    const id = await daveCc.call('send_message', { dialog_id: priv._id, recipient_id: carol.id, body: 'to both your devices' });
    const [uid, msg] = (await carolJs.waitFor('message', js('onMessageListener', (_u, m) => m.id === id))).args;
    assert.equal(uid, dave.id);
    assert.equal(msg.is_forwarded, false);
    const got = (await carolCc.waitFor('message', cc('message', null, (m) => m.id === id))).value;
    assert.deepEqual([got.carbon, got.sender_id, got.recipient_id], [false, dave.id, carol.id]);
    await daveCc.waitFor('Delivered by carol', cc('status', 'DELIVERED', (s) => s.message_id === id && s.user_id === carol.id));
    await carolJs.call('sendReadStatus', { messageId: id, userId: dave.id, dialogId: priv._id });
    await daveCc.waitFor('Read by carol', cc('status', 'READ', (s) => s.message_id === id && s.user_id === carol.id));
    await sleep(500);
    assert.equal(carolJs.seen(js('onMessageListener', (_u, m) => m.id === id)).length, 1, 'JS: once');
    assert.equal(carolCc.seen(cc('message', null, (m) => m.id === id)).length, 1, 'cubechat: once');
    // Carol's clients carbon-copy each other's markers (XEP-0280). The JS SDK reports such a
    // copy as a status by carol herself; nothing else may be reported as delivered/read there.
    const jsStatus = carolJs.seen((e) => ['onDeliveredStatusListener', 'onReadStatusListener'].includes(e.event) && e.args[0] === id);
    assert.deepEqual(jsStatus.filter((e) => e.args[2] !== carol.id), [], 'JS: no status from anyone but carol');
    // cubechat's statuses are about carol's own messages: a carbon of her own marker on a
    // message she received is not "delivered to / read by" anyone.
    const ccStatus = carolCc.seen(cc('status', null, (s) => s.message_id === id));
    assert.deepEqual(ccStatus, [], 'cubechat: no status for a message carol received');
  });

  it('group: a message sent on one of carol\'s clients reaches her other client and dave', async () => {
    const fromJs = await carolJs.call('send', { to: group._id, message: { type: 'groupchat', body: 'group from laptop', extension: { save_to_history: 1 } } });
    await daveCc.waitFor('group message', cc('message', null, (m) => m.id === fromJs));
    const mine = (await carolCc.waitFor('own group message from the other client', cc('message', null, (m) => m.id === fromJs))).value;
    assert.deepEqual([mine.sender_id, mine.group, mine.dialog_id, mine.body], [carol.id, true, group._id, 'group from laptop']);

    const fromCc = await carolCc.call('send_message', { dialog_id: group._id, body: 'group from phone' });
    await daveCc.waitFor('group message', cc('message', null, (m) => m.id === fromCc));
    const [uid, msg] = (await carolJs.waitFor('own group message from the other client', js('onMessageListener', (_u, m) => m.id === fromCc))).args;
    assert.deepEqual([uid, msg.type, msg.dialog_id, msg.body], [carol.id, 'groupchat', group._id, 'group from phone']);
  });
});
