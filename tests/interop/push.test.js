// The official ConnectyCube JS SDK (connectycube@6.1.2) and cubechat against cubeserver's push
// side: subscriptions (APNs, APNs VoIP, FCM, web; environment, bundle id, udid) created,
// listed and deleted through the SDK, push events through the SDK, and what cubeserver's push
// outbox (`GET /_admin/push_outbox`, protocol reference §3.7) recorded for each.
//
// Cross-client: a subscription the JS SDK created receives the push of a message cubechat
// (cubechat_peer.py) sent to its offline user; and the reverse: a message the JS SDK sent
// reaches the subscription cubechat (`ChatClient.push().subscribe`) created for its offline
// user, and cubechat's client-less parser (`parse_chat_push`) reads the recorded payload.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { PASSWORD, loadSdk, jsRejection } = require('./harness');
const {
  unique, spawnJsPeer, spawnCubechatPeer, startChatServer, signup, jsOnline, ccOnline, shutdown,
} = require('./peers');

/** The outbox of one user, oldest first. */
async function outbox(info, userId) {
  const r = await fetch(`${info.api_url}/_admin/push_outbox?user_id=${userId}`);
  assert.equal(r.status, 200);
  return (await r.json()).items;
}

/** The outbox rows for `messageId`, waiting (bounded: 50 tries, 100 ms apart) for them. */
async function deliveriesOf(info, userId, messageId, want) {
  for (let i = 0; i < 50; i += 1) {
    const rows = (await outbox(info, userId)).filter((d) => d.message_id === messageId);
    if (rows.length >= want) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
  return (await outbox(info, userId)).filter((d) => d.message_id === messageId);
}

const apns = (udid, environment = 'development') => ({
  notification_channel: 'apns',
  push_token: { environment, client_identification_sequence: `apns-${udid}`, bundle_identifier: 'com.example.chat' },
  device: { platform: 'ios', udid },
});

describe('push: JS SDK 6.1.2 subscriptions and events, and cubechat ⇄ JS pushes, through cubeserver', () => {
  let server;
  let info;
  let alice; // JS SDK user (REST in-process; chats through jsPeer in the reverse check)
  let bob; //   cubechat user (chats through ccPeer)
  let jsPeer;
  let ccPeer;

  before(async () => {
    server = await startChatServer();
    info = server.info;
    alice = await signup(info, 'Alice JS');
    bob = await signup(info, 'Bob cubechat');
  });

  after(async () => {
    const problems = [];
    await shutdown([jsPeer, ccPeer], problems);
    await server.stop();
    assert.deepEqual(problems, []);
  });

  it('creates, lists and deletes subscriptions of every channel', async () => {
    const carol = await signup(info, 'Carol');
    const push = carol.sdk.pushnotifications;
    const [first] = await push.subscriptions.create(apns('carol-phone'));
    assert.equal(first.subscription.notification_channel.name, 'apns');
    assert.deepEqual(first.subscription.device, { udid: 'carol-phone', platform: { name: 'ios' } });
    await push.subscriptions.create({ ...apns('carol-phone', 'production'), notification_channel: 'apns_voip' });
    await push.subscriptions.create({
      notification_channel: 'gcm', push_token: { environment: 'production', client_identification_sequence: 'fcm-tablet' },
      device: { platform: 'android', udid: 'carol-tablet' },
    });
    await push.subscriptions.create({
      notification_channel: 'web',
      push_token: { environment: 'production', web_endpoint: 'https://push.example/abc', web_auth: 'auth', web_p256dh: 'p256' },
      device: { platform: 'web', udid: 'carol-browser' },
    });
    const listed = await push.subscriptions.list();
    assert.deepEqual(listed.map((s) => s.subscription.notification_channel.name), ['apns', 'apns_voip', 'gcm', 'web']);
    const voip = listed[1].subscription.id;
    assert.equal(await push.subscriptions.delete(voip), '');
    assert.equal((await push.subscriptions.list()).length, 3);
    const again = await jsRejection(push.subscriptions.delete(voip));
    assert.equal(again.code, 404);
    const bad = await jsRejection(push.subscriptions.create({ ...apns('x'), notification_channel: 'sms' }));
    assert.equal(bad.code, 422);
    assert.ok(bad.info.errors.notification_channel);
  });

  it('sends a push event to user ids, recorded per matching subscription', async () => {
    const dave = await signup(info, 'Dave');
    const [sub] = await dave.sdk.pushnotifications.subscriptions.create(apns('dave-phone'));
    await dave.sdk.pushnotifications.subscriptions.create(apns('dave-old', 'production'));
    const push = alice.sdk.pushnotifications;
    const payload = JSON.stringify({ message: 'Dinner is ready', ios_badge: 3, table: '7' });
    const { event } = await push.events.create({
      notification_type: 'push', environment: 'development', push_type: 'apns',
      message: push.base64Encode(payload), user: { ids: String(dave.id) },
    });
    assert.equal(event.environment, 'development');
    assert.equal(event.user_id, alice.id);
    const rows = await outbox(info, dave.id);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const [d] = rows;
    assert.deepEqual(
      [d.kind, d.event_id, d.subscription_id, d.channel, d.token, d.environment, d.bundle_identifier, d.udid],
      ['event', event.id, sub.subscription.id, 'apns', 'apns-dave-phone', 'development', 'com.example.chat', 'dave-phone'],
    );
    assert.deepEqual(d.payload.aps.alert, { body: 'Dinner is ready' });
    assert.equal(d.payload.aps.badge, 3);
    assert.equal(d.payload.table, '7');
    const bad = await jsRejection(push.events.create({ notification_type: 'push', environment: 'development', message: push.base64Encode('x'), user: { ids: '' } }));
    assert.equal(bad.code, 422);
  });

  it('a cubechat message to an offline JS user reaches the subscription the JS SDK created', async () => {
    const [sub] = await alice.sdk.pushnotifications.subscriptions.create(apns('alice-phone', 'production'));
    const priv = await alice.sdk.chat.dialog.create({ type: 3, occupants_ids: [bob.id] });
    ccPeer = spawnCubechatPeer();
    await ccOnline(ccPeer, info, bob);
    const id = await ccPeer.call('send_message', { dialog_id: priv._id, recipient_id: alice.id, body: 'are you there?', custom: { mood: 'curious' } });
    const rows = await deliveriesOf(info, alice.id, id, 1);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const [d] = rows;
    assert.deepEqual([d.subscription_id, d.kind, d.sender_id, d.dialog_id], [sub.subscription.id, 'message', bob.id, priv._id]);
    assert.equal(d.payload.aps.alert.body, 'are you there?');
    assert.equal(d.payload.aps.alert.title, 'Bob cubechat');
    assert.equal(d.payload.user_id, String(bob.id));
    assert.equal(d.payload.mood, 'curious');
  });

  it('a JS message to an offline cubechat user reaches its subscription', async () => {
    const [subscription] = await ccPeer.call('push_subscribe', {
      channel: 'fcm', environment: 'production', token: 'fcm-bob', udid: 'bob-phone', bundle_identifier: 'com.example.cc',
    });
    assert.deepEqual([subscription.channel, subscription.udid, subscription.platform], ['gcm', 'bob-phone', 'android']);
    const listed = await bob.sdk.pushnotifications.subscriptions.list();
    assert.deepEqual(listed.map((s) => s.subscription.id), [subscription.id], 'the JS SDK sees what cubechat created');
    // Bob goes offline: cubechat disconnects and its process ends.
    const problems = [];
    await shutdown([ccPeer], problems);
    ccPeer = undefined;
    assert.deepEqual(problems, []);
    // ... and the server has seen it go (bounded: 50 tries, 100 ms apart).
    for (let i = 0; i < 50; i += 1) {
      const { users } = await alice.sdk.users.listOnline();
      if (!users.some((u) => u.id === bob.id)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!(await alice.sdk.users.listOnline()).users.some((u) => u.id === bob.id), 'bob still online');
    const priv = await alice.sdk.chat.dialog.create({ type: 3, occupants_ids: [bob.id] });
    jsPeer = spawnJsPeer(info);
    await jsOnline(jsPeer, info, alice);
    const id = await jsPeer.call('send', {
      to: bob.id,
      message: { type: 'chat', body: 'wake up', extension: { save_to_history: 1, dialog_id: priv._id, topic: 'push' } },
    });
    const rows = await deliveriesOf(info, bob.id, id, 1);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    const [d] = rows;
    assert.deepEqual([d.subscription_id, d.channel, d.sender_id, d.dialog_id], [subscription.id, 'gcm', alice.id, priv._id]);
    assert.deepEqual([d.token, d.bundle_identifier], ['fcm-bob', 'com.example.cc']);
    assert.deepEqual(d.payload.data, {
      message: 'wake up', dialog_id: priv._id, message_id: id, user_id: String(alice.id), title: 'Alice JS', topic: 'push',
    });
    // What the device gets, read by cubechat with no client and no connection.
    const parser = spawnCubechatPeer('cubechat (parser)');
    try {
      const parsed = await parser.call('parse_chat_push', { payload: d.payload });
      assert.deepEqual(parsed, {
        dialog_id: priv._id, message_id: id, sender_id: alice.id, text: 'wake up', title: 'Alice JS', custom: { topic: 'push' },
      });
      const notOurs = await parser.call('parse_chat_push', { payload: { aps: { alert: 'hi' } } }).catch((e) => e);
      assert.match(String(notOurs.message || notOurs), /NotChatPush/);
    } finally {
      await parser.close();
    }
  });
});
