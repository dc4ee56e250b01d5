// Chat REST interop: the official ConnectyCube JS SDK (connectycube@6.1.2) and cubechat (through
// its Python bindings, tests/interop/cubechat_probe.py) work on the same cubeserver state and
// must see exactly the same thing.
//
// The same scenario (a group created, renamed and grown; 120 messages with custom parameters
// and an attachment, a blob the writer uploaded that every user downloads through both
// clients; reactions added, replaced and removed; an edit; reads; deletes for one
// and for everyone; an admin; notification settings) is written once through the JS SDK and
// once through cubechat. After each, every user reads the dialog, the whole history (paged by
// date_sent in both directions), reactions, unread counts, search and notification settings
// through BOTH clients; the results are compared field by field (cubechat's records mapped to
// the wire names) and against the values the scenario implies.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startServer, loadSdk } = require('./harness');

const PASSWORD = 'correct-horse-9';
const PYTHON = process.env.CUBECHAT_PYTHON || path.resolve(__dirname, '../../.venv/bin/python');
const PROBE = path.join(__dirname, 'cubechat_probe.py');
const NO_PERMISSION = "You don't have appropriate permissions to perform this operation";
const unique = (p) => p + crypto.randomBytes(5).toString('hex');

// ---------------------------------------------------------------------------------------------
// The two clients of one user.

/** Runs cubechat ops as `login`; resolves with one {ok}|{error, reason} per op. */
function probe(info, login, ops) {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [PROBE], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
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

const op = (name, ...args) => ({ op: name, args });

/** A user signed up through the JS SDK, with a logged-in SDK instance and cubechat ops. */
async function makeUser(info, fullName) {
  const js = loadSdk(info);
  await js.createSession();
  const login = unique('cc');
  const { user } = await js.users.signup({ login, password: PASSWORD, full_name: fullName });
  await js.createSession({ login, password: PASSWORD });
  const u = {
    id: user.id,
    login,
    js,
    /** Runs ops through cubechat; every one must succeed; resolves with their values. */
    async cc(...ops) {
      const results = await probe(info, login, ops);
      results.forEach((r, i) => assert.ok('ok' in r, `cubechat ${ops[i].op} failed: ${JSON.stringify(r)}`));
      return results.map((r) => r.ok);
    },
    /** Runs ops through cubechat, errors included. */
    ccRaw: (...ops) => probe(info, login, ops),
  };
  return u;
}

// ---------------------------------------------------------------------------------------------
// cubechat records → wire objects, field by field. Wire fields cubechat does not expose are
// listed explicitly so that a new server field makes the comparison fail until mapped.

const KIND = { BROADCAST: 1, GROUP: 2, PRIVATE: 3, PUBLIC: 4 };
const DIALOG_NOT_IN_CUBECHAT = ['permissions'];
const MESSAGE_NOT_IN_CUBECHAT = ['views_count'];

function ccDialogAsWire(d) {
  const w = {
    _id: d.id,
    user_id: d.owner_id,
    type: KIND[d.kind],
    name: d.name,
    description: d.description,
    photo: d.photo,
    occupants_ids: d.occupants_ids,
    admins_ids: d.admins_ids,
    pinned_messages_ids: d.pinned_message_ids,
    last_message: d.last_message,
    last_message_id: d.last_message_id,
    last_message_user_id: d.last_message_user_id,
    last_message_date_sent: d.last_message_date_sent,
    last_message_status: d.last_message_status,
    unread_messages_count: d.unread_count,
    xmpp_room_jid: d.room_jid,
    created_at: d.created_at,
    updated_at: d.updated_at,
    extensions: d.extensions,
  };
  if (d.occupants_count !== null) w.occupants_count = d.occupants_count;
  return w;
}

function jsDialogComparable(d) {
  const w = { ...d };
  for (const k of DIALOG_NOT_IN_CUBECHAT) delete w[k];
  if (w.extensions === null) w.extensions = {}; // cubechat: no extensions = an empty map
  return w;
}

const ATTACHMENT_FIELDS = { kind: 'type', content_type: 'content-type' };
function ccAttachmentAsWire(a) {
  const w = {};
  for (const [k, v] of Object.entries(a)) if (v !== null) w[ATTACHMENT_FIELDS[k] || k] = v;
  return w;
}

function ccMessageAsWire(m) {
  return {
    _id: m.id,
    chat_dialog_id: m.dialog_id,
    message: m.body,
    date_sent: m.date_sent,
    sender_id: m.sender_id,
    recipient_id: m.recipient_id,
    read_ids: m.read_ids,
    delivered_ids: m.delivered_ids,
    read: m.read ? 1 : 0,
    attachments: m.attachments.map(ccAttachmentAsWire),
    reactions: m.reactions && { own: m.reactions.own, total: m.reactions.totals },
    created_at: m.created_at,
    updated_at: m.updated_at,
    ...m.custom,
  };
}

function jsMessageComparable(m) {
  const w = { ...m };
  for (const k of MESSAGE_NOT_IN_CUBECHAT) delete w[k];
  return w;
}

const ccUserAsWire = (u) => ({ id: u.id, login: u.login, full_name: u.full_name });
const jsUserComparable = (u) => ({ id: u.id, login: u.login, full_name: u.full_name });

function assertSameDialogs(cc, js, what) {
  assert.deepEqual(cc.map(ccDialogAsWire), js.map(jsDialogComparable), what);
}
function assertSameMessages(cc, js, what) {
  assert.deepEqual(cc.map(ccMessageAsWire), js.map(jsMessageComparable), what);
}
function assertSameSearch(cc, js, what) {
  assert.deepEqual(Object.keys(js).sort(), ['results'], what);
  assert.deepEqual(Object.keys(js.results).sort(), ['dialogs', 'messages', 'users'], what);
  assertSameDialogs(cc.dialogs, js.results.dialogs, `${what}: dialogs`);
  assertSameMessages(cc.messages, js.results.messages, `${what}: messages`);
  assert.deepEqual(cc.users.map(ccUserAsWire), js.results.users.map(jsUserComparable), `${what}: users`);
}
const ccUnreadAsWire = (u) => ({ total: u.total, ...u.per_dialog });
const jsDeleteResult = (r) => ({
  deleted: r.SuccessfullyDeleted.ids,
  not_found: r.NotFound.ids,
  no_permission: r.WrongPermissions.ids,
});

// ---------------------------------------------------------------------------------------------
// The scenario, written through either client.

const N = 120;
const BASE = 1_700_000_000;

/** `bytes` downloaded by `uid` through both of `u`'s clients (JS privateUrl, cubechat download_file). */
async function assertDownloadsBoth(u, uid, bytes, what) {
  const sha = crypto.createHash('sha256').update(bytes).digest('hex');
  const r = await fetch(u.js.storage.privateUrl(uid), { signal: AbortSignal.timeout(30000) });
  const got = Buffer.from(await r.arrayBuffer());
  assert.deepEqual([r.status, crypto.createHash('sha256').update(got).digest('hex')], [200, sha], `${what}: JS`);
  const [cc] = await u.cc(op('download_file', uid));
  assert.deepEqual([cc.returned, cc.sha256], [bytes.length, sha], `${what}: cubechat`);
}

function scenarioMessages(token, attachment) {
  return Array.from({ length: N }, (_, i) => {
    const m = { body: `message ${i}`, date_sent: BASE + i, custom: { seq: String(i) } };
    if (i === N - 1) {
      m.body = `message ${i} ${token}`;
      m.custom = { seq: String(i), emoji: '🦀 crab', json: '{"a":[1,2]}' };
      // A blob the writer uploaded (cubechat's attachment record); downloaded by uid in the checks.
      m.attachment = attachment;
    }
    return m;
  });
}

const jsWriter = {
  name: 'JS SDK',
  async createGroup(u, p) {
    const d = await u.js.chat.dialog.create({ type: 2, name: p.name, occupants_ids: p.occupants, description: p.description, photo: p.photo, extensions: p.extensions });
    return d._id;
  },
  async updateGroup(u, id, p) {
    await u.js.chat.dialog.update(id, { name: p.name, push_all: { occupants_ids: p.add } });
  },
  async uploadImage(u, bytes) {
    const b = await u.js.storage.createAndUpload({ name: 'cat.png', file: bytes, type: 'image/png', size: bytes.length, public: false });
    return { kind: 'image', id: String(b.id), uid: b.uid, name: b.name, size: b.size, content_type: b.content_type, width: 64, height: 48 };
  },
  async createMessages(u, id, list) {
    const ids = [];
    for (const m of list) {
      const params = { chat_dialog_id: id, message: m.body, date_sent: m.date_sent, ...m.custom };
      if (m.attachment) params.attachments = [ccAttachmentAsWire(m.attachment)];
      ids.push((await u.js.chat.message.create(params))._id);
    }
    return ids;
  },
  react: (u, msgId, add, remove) => u.js.chat.message.updateReaction(msgId, add, remove),
  edit: (u, id, msgId, body) => u.js.chat.message.update(msgId, { chat_dialog_id: id, message: body }),
  markRead: (u, id, ids) => u.js.chat.message.update(ids.join(','), { chat_dialog_id: id, read: 1 }),
  markAllRead: (u, id) => u.js.chat.message.update(null, { chat_dialog_id: id, read: 1 }),
  async deleteMessages(u, ids, force) {
    const text = await u.js.chat.message.delete(ids, force ? { force: 1 } : undefined);
    return jsDeleteResult(JSON.parse(text));
  },
  addAdmins: (u, id, ids) => u.js.chat.dialog.addAdmins(id, ids),
  setNotifications: (u, id, on) => u.js.chat.dialog.updateNotificationsSettings(id, on),
};

const ccWriter = {
  name: 'cubechat',
  async createGroup(u, p) {
    const [d] = await u.cc(op('create_dialog', { kind: 'GROUP', name: p.name, occupants_ids: p.occupants, description: p.description, photo: p.photo, extensions: p.extensions }));
    return d.id;
  },
  async updateGroup(u, id, p) {
    await u.cc(op('update_dialog', id, { name: p.name, add_occupants: p.add }));
  },
  async uploadImage(u, bytes) {
    const [b] = await u.cc(op('upload_bytes', bytes.toString('base64'), { name: 'cat.png', content_type: 'image/png' }));
    const [a] = await u.cc(op('attachment_from_blob', b));
    return { ...a, width: 64, height: 48 };
  },
  async createMessages(u, id, list) {
    const made = await u.cc(...list.map((m) => op('create_message', {
      dialog_id: id, body: m.body, date_sent: m.date_sent, custom: m.custom, attachments: m.attachment ? [m.attachment] : [],
    })));
    return made.map((m) => m.id);
  },
  async react(u, msgId, add, remove) {
    if (add && remove) return u.cc(op('replace_reaction', msgId, add, remove));
    return u.cc(add ? op('add_reaction', msgId, add) : op('remove_reaction', msgId, remove));
  },
  edit: (u, id, msgId, body) => u.cc(op('edit_message', id, msgId, body)),
  markRead: (u, id, ids) => u.cc(op('mark_messages', id, ids, true, false)),
  markAllRead: (u, id) => u.cc(op('mark_all_read', id)),
  async deleteMessages(u, ids, force) {
    const [r] = await u.cc(op('delete_messages', ids, force));
    return r;
  },
  addAdmins: (u, id, ids) => u.cc(op('add_admins', id, ids)),
  setNotifications: (u, id, on) => u.cc(op('set_dialog_notifications', id, on)),
};

/** Writes the scenario through `w`; returns what the checks need. */
async function writeScenario(w, users, token) {
  const { alice, bob, carol } = users;
  const description = `made with ${w.name}`;
  const dialogId = await w.createGroup(alice, {
    name: `Team ${token}`, occupants: [bob.id], description, photo: 'photo-uid', extensions: { location: 'Sun bar' },
  });
  await w.updateGroup(bob, dialogId, { name: `Team ${token} 2`, add: [carol.id] });
  const image = crypto.randomBytes(4096);
  const attachment = await w.uploadImage(alice, image);
  const ids = await w.createMessages(alice, dialogId, scenarioMessages(token, attachment));
  assert.equal(new Set(ids).size, N);

  // Reactions: bob 👍; carol 🔥 then replaced by 👍; alice 😂 on the one before; alice ❤️ added and removed.
  await w.react(bob, ids[N - 1], '👍');
  await w.react(carol, ids[N - 1], '🔥');
  await w.react(carol, ids[N - 1], '👍', '🔥');
  await w.react(alice, ids[N - 2], '😂');
  await w.react(alice, ids[N - 2], '❤️');
  await w.react(alice, ids[N - 2], undefined, '❤️');
  await w.react(alice, ids[N - 2], '😂');

  await w.edit(alice, dialogId, ids[N - 3], `message ${N - 3} (edited)`);
  await w.markRead(bob, dialogId, [ids[0], ids[1]]);
  await w.markAllRead(carol, dialogId);

  // Deletes: carol may not delete alice's message for everyone; alice may; bob hides one for himself.
  assert.deepEqual(await w.deleteMessages(carol, [ids[N - 6]], true), { deleted: [], not_found: [], no_permission: [ids[N - 6]] });
  assert.deepEqual(await w.deleteMessages(alice, [ids[N - 4]], true), { deleted: [ids[N - 4]], not_found: [], no_permission: [] });
  assert.deepEqual(await w.deleteMessages(bob, [ids[N - 5]], false), { deleted: [ids[N - 5]], not_found: [], no_permission: [] });

  await w.addAdmins(alice, dialogId, [bob.id]);
  await w.setNotifications(alice, dialogId, false);
  return { token, dialogId, ids, description, attachment, image };
}

// ---------------------------------------------------------------------------------------------
// The checks: every user reads through both clients.

/** Backwards pages (newest first, `date_sent[lt]`) through JS, the same pages through cubechat. */
async function historyBothWays(u, dialogId) {
  const jsBack = [];
  let cursor = null;
  for (;;) {
    const params = { chat_dialog_id: dialogId, sort_desc: 'date_sent', limit: 50, mark_as_read: 0 };
    if (cursor !== null) params.date_sent = { lt: cursor };
    const page = await u.js.chat.message.list(params);
    assert.deepEqual(Object.keys(page).sort(), ['items', 'limit', 'skip']);
    assert.equal(page.limit, 50);
    jsBack.push({ cursor, items: page.items });
    if (page.items.length === 0) break;
    cursor = page.items[page.items.length - 1].date_sent;
    assert.ok(jsBack.length < 10, 'paging does not end');
  }
  const jsFwd = [];
  cursor = BASE - 1;
  for (;;) {
    const page = await u.js.chat.message.list({ chat_dialog_id: dialogId, date_sent: { gt: cursor }, limit: 50, mark_as_read: 0 });
    jsFwd.push({ cursor, items: page.items });
    if (page.items.length === 0) break;
    cursor = page.items[page.items.length - 1].date_sent;
    assert.ok(jsFwd.length < 10, 'paging does not end');
  }
  const ccPages = await u.cc(
    ...jsBack.map((p) => op('history', dialogId, {
      filters: p.cursor === null ? [] : [{ field: 'date_sent', op: 'LT', value: p.cursor }], limit: 50, sort_by: 'date_sent', sort_descending: true,
    }, false)),
    ...jsFwd.map((p) => op('history', dialogId, { filters: [{ field: 'date_sent', op: 'GT', value: p.cursor }], limit: 50 }, false)),
  );
  jsBack.forEach((p, i) => assertSameMessages(ccPages[i], p.items, `backward page ${i}`));
  jsFwd.forEach((p, i) => assertSameMessages(ccPages[jsBack.length + i], p.items, `forward page ${i}`));
  return { backward: jsBack.map((p) => p.items), forward: jsFwd.map((p) => p.items) };
}

async function checkScenario(users, s) {
  const { alice, bob, carol } = users;
  const { dialogId, ids, token } = s;
  const body = (i) => (i === N - 1 ? `message ${i} ${token}` : i === N - 3 ? `message ${i} (edited)` : `message ${i}`);
  const all = [...Array(N).keys()].filter((i) => i !== N - 4);
  const visible = { alice: all, carol: all, bob: all.filter((i) => i !== N - 5) };
  const unread = { alice: 0, carol: 0, bob: visible.bob.length - 2 };
  const searchFrom = BASE + 110;
  const searchTo = BASE + 118;

  for (const [name, u] of Object.entries(users)) {
    const what = `${name}'s view`;
    // Through JS.
    const jsList = await u.js.chat.dialog.list({ _id: dialogId });
    const history = await historyBothWays(u, dialogId);
    const jsReactLast = await u.js.chat.message.listReactions(ids[N - 1]);
    const jsReactPrev = await u.js.chat.message.listReactions(ids[N - 2]);
    const jsUnreadOne = await u.js.chat.message.unreadCount({ chat_dialog_ids: [dialogId] });
    const jsUnreadAll = await u.js.chat.message.unreadCount();
    const jsSearchText = await u.js.chat.search({ search_text: 'message 11', chat_dialog_ids: [dialogId] });
    const jsSearchDates = await u.js.chat.search({
      search_text: 'message 11', start_date: new Date(searchFrom * 1000), end_date: new Date(searchTo * 1000), chat_dialog_ids: [dialogId],
    });
    const jsSearchToken = await u.js.chat.search({ search_text: token });
    const jsNotifications = await u.js.chat.dialog.getNotificationsSettings(dialogId);
    // Through cubechat.
    const [ccList, ccReactLast, ccReactPrev, ccUnreadOne, ccUnreadAll, ccSearchText, ccSearchDates, ccSearchToken, ccNotifications] = await u.cc(
      op('list_dialogs', { filters: [{ field: '_id', op: 'EQ', value: dialogId }] }),
      op('reactions', ids[N - 1]),
      op('reactions', ids[N - 2]),
      op('unread_counts', [dialogId]),
      op('unread_counts', []),
      op('search', { text: 'message 11', dialog_ids: [dialogId] }),
      op('search', { text: 'message 11', start_date: searchFrom, end_date: searchTo, dialog_ids: [dialogId] }),
      op('search', { text: token }),
      op('dialog_notifications_enabled', dialogId),
    );

    // Same answers.
    assert.deepEqual([ccList.total, ccList.skip, ccList.limit], [jsList.total_entries, jsList.skip, jsList.limit], what);
    assertSameDialogs(ccList.items, jsList.items, `${what}: dialog`);
    assert.deepEqual(ccReactLast, jsReactLast, `${what}: reactions`);
    assert.deepEqual(ccReactPrev, jsReactPrev, `${what}: reactions`);
    assert.deepEqual(ccUnreadAsWire(ccUnreadOne), jsUnreadOne, `${what}: unread`);
    assert.deepEqual(ccUnreadAsWire(ccUnreadAll), jsUnreadAll, `${what}: unread total`);
    assertSameSearch(ccSearchText, jsSearchText, `${what}: search`);
    assertSameSearch(ccSearchDates, jsSearchDates, `${what}: search with dates`);
    assertSameSearch(ccSearchToken, jsSearchToken, `${what}: search by token`);
    assert.deepEqual({ notifications: { enabled: ccNotifications ? 1 : 0 } }, jsNotifications, `${what}: notifications`);

    // The right answers.
    const d = jsList.items[0];
    assert.equal(jsList.total_entries, 1, what);
    assert.equal(d.type, 2);
    assert.equal(d.user_id, alice.id);
    assert.equal(d.name, `Team ${token} 2`);
    assert.deepEqual(d.occupants_ids, [alice.id, bob.id, carol.id]);
    assert.deepEqual(d.admins_ids, [bob.id]);
    assert.deepEqual(d.extensions, { location: 'Sun bar' });
    assert.equal(d.photo, 'photo-uid');
    assert.equal(d.description, s.description);
    assert.equal(d.last_message, body(N - 1));
    assert.equal(d.last_message_id, ids[N - 1]);
    assert.equal(d.last_message_user_id, alice.id);
    assert.equal(d.last_message_date_sent, BASE + N - 1);
    assert.equal(d.last_message_status, name === 'alice' ? 'read' : null, what);
    assert.equal(d.unread_messages_count, unread[name], what);

    const newestFirst = history.backward.flat();
    const expected = [...visible[name]].reverse();
    assert.deepEqual(history.backward.map((p) => p.length), [50, 50, expected.length - 100, 0], what);
    assert.deepEqual(newestFirst.map((m) => m._id), expected.map((i) => ids[i]), what);
    assert.deepEqual(history.forward.flat().map((m) => m._id), visible[name].map((i) => ids[i]), what);
    assert.deepEqual(newestFirst.map((m) => m.message), expected.map(body), what);
    assert.deepEqual(newestFirst.map((m) => m.seq), expected.map(String), what);
    assert.deepEqual(newestFirst.map((m) => m.date_sent), expected.map((i) => BASE + i), what);
    assert.ok(newestFirst.every((m) => m.sender_id === alice.id && m.recipient_id === 0 && m.chat_dialog_id === dialogId));
    const last = newestFirst[0];
    assert.equal(last.emoji, '🦀 crab');
    assert.equal(last.json, '{"a":[1,2]}');
    assert.deepEqual(last.attachments, [ccAttachmentAsWire(s.attachment)]);
    assert.deepEqual([last.attachments[0].type, last.attachments[0].size, last.attachments[0]['content-type']], ['image', s.image.length, 'image/png']);
    await assertDownloadsBoth(u, last.attachments[0].uid, s.image, `${what}: attachment`);
    assert.deepEqual(newestFirst.filter((m) => m.attachments.length > 0).map((m) => m._id), [ids[N - 1]]);
    assert.deepEqual(last.reactions, { own: name === 'alice' ? [] : ['👍'], total: { '👍': 2 } }, what);
    assert.deepEqual(newestFirst[1].reactions, { own: name === 'alice' ? ['😂'] : [], total: { '😂': 1 } }, what);
    assert.deepEqual(newestFirst.filter((m) => m.reactions !== null).length, 2);
    const readBy = (i) => newestFirst.find((m) => m._id === ids[i]).read;
    assert.equal(readBy(0), 1, what); // alice sent it, bob marked it, carol marked all
    assert.equal(readBy(2), name === 'bob' ? 0 : 1, what);
    assert.deepEqual(newestFirst.find((m) => m._id === ids[0]).read_ids, [alice.id, bob.id, carol.id]);
    assert.deepEqual(newestFirst.find((m) => m._id === ids[2]).read_ids, [alice.id, carol.id]);

    const visibleTo = (p) => p.filter((i) => visible[name].includes(i));
    assert.deepEqual(jsReactLast, { '👍': [bob.id, carol.id] });
    assert.deepEqual(jsReactPrev, { '😂': [alice.id] });
    assert.deepEqual(jsUnreadOne, { total: unread[name], [dialogId]: unread[name] }, what);
    assert.deepEqual(jsUnreadAll, { total: unread[name] }, what);
    const hits = visibleTo([N - 1, N - 2, N - 3, N - 5, N - 6, N - 7, N - 8, N - 9, N - 10, 11]);
    assert.deepEqual(jsSearchText.results.messages.map((m) => m._id), hits.map((i) => ids[i]), what);
    assert.deepEqual(jsSearchText.results.dialogs, []);
    const inRange = hits.filter((i) => BASE + i >= searchFrom && BASE + i <= searchTo);
    assert.deepEqual(jsSearchDates.results.messages.map((m) => m._id), inRange.map((i) => ids[i]), what);
    assert.deepEqual(jsSearchToken.results.messages.map((m) => m._id), [ids[N - 1]]);
    assert.deepEqual(jsSearchToken.results.dialogs.map((x) => x._id), [dialogId]);
    assert.deepEqual(jsSearchToken.results.users.map((x) => x.id), [carol.id]);
    assert.deepEqual(jsNotifications, { notifications: { enabled: name === 'alice' ? 0 : 1 } }, what);
  }

  // Reading through one client changes what the other sees.
  const oldest = await bob.js.chat.message.list({ chat_dialog_id: dialogId, limit: 10 }); // marks them read
  assert.deepEqual(oldest.items.map((m) => m._id), ids.slice(0, 10));
  const [afterJsRead, ccOldest] = await bob.cc(op('unread_counts', [dialogId]), op('history', dialogId, { limit: 11 }, false));
  assert.deepEqual(ccUnreadAsWire(afterJsRead), { total: unread.bob - 8, [dialogId]: unread.bob - 8 });
  assert.deepEqual(ccOldest.map((m) => m.read), [...Array(10).fill(true), false]);
  await bob.cc(op('mark_all_read', dialogId));
  assert.deepEqual(await bob.js.chat.message.unreadCount({ chat_dialog_ids: [dialogId] }), { total: 0, [dialogId]: 0 });
  const page = await bob.js.chat.message.list({ chat_dialog_id: dialogId, limit: 100, mark_as_read: 0 });
  assert.ok(page.items.every((m) => m.read === 1));
}

async function setup(t) {
  const server = await startServer();
  t.after(server.stop);
  // A word found in the dialog's name, the newest message and carol's full name.
  const token = unique('tok');
  const users = {
    alice: await makeUser(server.info, 'Alice'),
    bob: await makeUser(server.info, 'Bob'),
    carol: await makeUser(server.info, `Carol ${token}`),
  };
  return { server, users, token };
}

test('JS SDK writes the chat, cubechat reads exactly the same', async (t) => {
  const { users, token } = await setup(t);
  const s = await writeScenario(jsWriter, users, token);
  await checkScenario(users, s);
});

test('cubechat writes the chat, the JS SDK reads exactly the same', async (t) => {
  const { users, token } = await setup(t);
  const s = await writeScenario(ccWriter, users, token);
  await checkScenario(users, s);
});

/** The rejection of a JS SDK call. */
async function jsRejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  return assert.fail('the JS SDK call should have been rejected');
}

test('both clients get the same permission errors and not-found answers', async (t) => {
  const { server, users } = await setup(t);
  const { alice, bob } = users;
  const mallory = await makeUser(server.info, 'Mallory');
  const missing = '5f0c0c0c0c0c0c0c0c0c0c0c';
  const d = await alice.js.chat.dialog.create({ type: 2, name: 'Members only', occupants_ids: [bob.id] });
  const m = await alice.js.chat.message.create({ chat_dialog_id: d._id, message: 'secret' });
  const forbidden = { code: 403, info: { errors: { base: [NO_PERMISSION] } } };

  // JS: a user outside the dialog.
  const js = [
    await jsRejection(mallory.js.chat.message.list({ chat_dialog_id: d._id })),
    await jsRejection(mallory.js.chat.dialog.update(d._id, { name: 'mine' })),
    await jsRejection(mallory.js.chat.message.create({ chat_dialog_id: d._id, message: 'hi' })),
    await jsRejection(mallory.js.chat.message.listReactions(m._id)),
    await jsRejection(mallory.js.chat.message.addReaction(m._id, '👎')),
    await jsRejection(mallory.js.chat.message.update(null, { chat_dialog_id: d._id, read: 1 })),
    await jsRejection(mallory.js.chat.dialog.delete(d._id, { force: 1 })),
    await jsRejection(mallory.js.chat.dialog.getNotificationsSettings(d._id)),
  ];
  js.forEach((e, i) => assert.deepEqual({ code: e.code, info: e.info }, forbidden, `JS case ${i}`));
  // cubechat: the same calls, the same verdict.
  const cc = await mallory.ccRaw(
    op('history', d._id, {}, true),
    op('update_dialog', d._id, { name: 'mine' }),
    op('create_message', { dialog_id: d._id, body: 'hi' }),
    op('reactions', m._id),
    op('add_reaction', m._id, '👎'),
    op('mark_all_read', d._id),
    op('delete_dialogs', [d._id], true),
    op('dialog_notifications_enabled', d._id),
  );
  assert.deepEqual(cc.slice(0, 6).map((r) => [r.error, r.reason]), Array(6).fill(['Forbidden', NO_PERMISSION]));
  assert.deepEqual(cc[6], { ok: { deleted: [], not_found: [], no_permission: [d._id] } });
  assert.deepEqual([cc[7].error, cc[7].reason], ['Forbidden', NO_PERMISSION]);

  // Deleting for everyone: a per-id verdict on both sides.
  const jsDel = jsDeleteResult(JSON.parse(await mallory.js.chat.message.delete([m._id, missing], { force: 1 })));
  const [ccDel] = await mallory.cc(op('delete_messages', [m._id, missing], true));
  assert.deepEqual(jsDel, { deleted: [], not_found: [missing], no_permission: [m._id] });
  assert.deepEqual(ccDel, jsDel);

  // Unknown (well-formed) ids: 404 for JS, NotFound for cubechat.
  const notFound = [
    await jsRejection(alice.js.chat.message.list({ chat_dialog_id: missing })),
    await jsRejection(alice.js.chat.dialog.update(missing, { name: 'x' })),
    await jsRejection(alice.js.chat.message.listReactions(missing)),
    await jsRejection(alice.js.chat.message.update(missing, { chat_dialog_id: d._id, message: 'x' })),
    await jsRejection(alice.js.chat.dialog.delete(missing)),
  ];
  const jsNotFoundBody = notFound[0].info;
  notFound.forEach((e, i) => assert.deepEqual({ code: e.code, info: e.info }, { code: 404, info: jsNotFoundBody }, `JS case ${i}`));
  assert.ok(jsNotFoundBody.errors, JSON.stringify(jsNotFoundBody));
  const ccNotFound = await alice.ccRaw(
    op('history', missing, {}, false),
    op('update_dialog', missing, { name: 'x' }),
    op('reactions', missing),
    op('edit_message', d._id, missing, 'x'),
    op('delete_dialogs', [missing], false),
  );
  assert.deepEqual(ccNotFound.slice(0, 4).map((r) => r.error), Array(4).fill('NotFound'));
  assert.deepEqual(ccNotFound[4], { ok: { deleted: [], not_found: [missing], no_permission: [] } });

  // The outsider sees no dialog and no unread count through either client.
  const jsList = await mallory.js.chat.dialog.list();
  const [ccList, ccUnread] = await mallory.cc(op('list_dialogs', {}), op('unread_counts', [d._id]));
  assert.deepEqual(jsList, { total_entries: 0, skip: 0, limit: 100, items: [] });
  assert.deepEqual([ccList.total, ccList.items], [0, []]);
  const jsUnread = await mallory.js.chat.message.unreadCount({ chat_dialog_ids: [d._id] });
  assert.deepEqual(jsUnread, { total: 0 });
  assert.deepEqual(ccUnreadAsWire(ccUnread), jsUnread);
  // Nothing the outsider tried changed the dialog.
  const [aliceView] = await alice.cc(op('history', d._id, {}, false));
  assert.deepEqual(aliceView.map((x) => [x.id, x.body, x.reactions]), [[m._id, 'secret', null]]);
});

test('private and public dialogs, list filters and JS-only parameter forms agree', async (t) => {
  const { users } = await setup(t);
  const { alice, bob, carol } = users;

  // A private dialog created by JS is the one cubechat gets when it asks for the same pair.
  const jsPrivate = await alice.js.chat.dialog.create({ type: 3, occupants_ids: [bob.id] });
  const [ccPrivate] = await bob.cc(op('create_dialog', { kind: 'PRIVATE', occupants_ids: [alice.id] }));
  assert.equal(ccPrivate.id, jsPrivate._id);
  assert.deepEqual([ccPrivate.kind, ccPrivate.name, ccPrivate.room_jid], ['PRIVATE', null, null]);
  // A message to a user (recipient_id, no dialog id) lands there, addressed to them.
  const toBob = await alice.js.chat.message.create({ recipient_id: bob.id, message: 'psst', date_sent: BASE });
  assert.equal(toBob.chat_dialog_id, jsPrivate._id);
  const [bobSees] = await bob.cc(op('history', jsPrivate._id, {}, false));
  assert.deepEqual(bobSees.map((m) => [m.id, m.recipient_id, m.sender_id, m.body]), [[toBob._id, bob.id, alice.id, 'psst']]);

  // An attachment filter (`attachments.type`), the same through both clients, on a real blob
  // that both of bob's clients then download by its uid.
  const imageBytes = crypto.randomBytes(10);
  const image = await alice.js.storage.createAndUpload({ name: 'look.png', file: imageBytes, type: 'image/png', size: 10, public: false });
  const withImage = await alice.js.chat.message.create({
    chat_dialog_id: jsPrivate._id, message: 'look', date_sent: BASE + 2, attachments: [{ type: 'image', uid: image.uid, size: 10 }],
  });
  const jsImages = await bob.js.chat.message.list({ chat_dialog_id: jsPrivate._id, 'attachments.type': 'image', mark_as_read: 0 });
  const [ccImages] = await bob.cc(op('history', jsPrivate._id, { filters: [{ field: 'attachments.type', op: 'EQ', value: 'image' }] }, false));
  assertSameMessages(ccImages, jsImages.items, 'attachments.type');
  assert.deepEqual(jsImages.items.map((m) => [m._id, m.attachments]), [[withImage._id, [{ type: 'image', uid: image.uid, size: 10 }]]]);
  await assertDownloadsBoth(bob, ccImages[0].attachments[0].uid, imageBytes, 'attachments.type');

  // Custom parameters of any JSON type come back as strings to both clients; null is dropped.
  const typed = await alice.js.chat.message.create({
    chat_dialog_id: jsPrivate._id, message: 'typed', date_sent: BASE + 1, count: 5, flag: true, nested: { a: [1, 2] }, nothing: null,
  });
  const jsTyped = (await bob.js.chat.message.list({ chat_dialog_id: jsPrivate._id, _id: typed._id, mark_as_read: 0 })).items;
  const [ccTyped] = await bob.cc(op('history', jsPrivate._id, { filters: [{ field: '_id', op: 'EQ', value: typed._id }] }, false));
  assert.deepEqual(ccTyped[0].custom, { count: '5', flag: 'true', nested: '{"a":[1,2]}' });
  assertSameMessages(ccTyped, jsTyped, 'typed custom parameters');
  assert.ok(!('nothing' in jsTyped[0]));

  // A public dialog made by cubechat; JS subscribes, both list the subscribers.
  const [pub] = await alice.cc(op('create_dialog', { kind: 'PUBLIC', name: 'Lobby', description: 'everyone welcome' }));
  assert.deepEqual([pub.kind, pub.occupants_ids, pub.occupants_count], ['PUBLIC', [], 1]);
  const subscribed = await bob.js.chat.dialog.subscribe(pub.id);
  assert.deepEqual([subscribed.type, subscribed.occupants_ids, subscribed.occupants_count], [4, [], 2]);
  const jsOccupants = await carol.js.chat.dialog.getPublicOccupants(pub.id);
  const [ccOccupants, ccPub] = await carol.cc(
    op('public_dialog_occupants', pub.id, 100, 0),
    op('subscribe_public_dialog', pub.id),
  );
  assert.deepEqual(jsOccupants.items.map((u) => u.id), [alice.id, bob.id]);
  assert.deepEqual(ccOccupants.map((u) => u.id), [alice.id, bob.id]);
  assert.equal(ccPub.occupants_count, 3);
  await bob.js.chat.dialog.unsubscribe(pub.id);
  const jsPubList = await carol.js.chat.dialog.list({ _id: pub.id });
  const [ccPubList] = await carol.cc(op('list_dialogs', { filters: [{ field: '_id', op: 'EQ', value: pub.id }] }));
  assertSameDialogs(ccPubList.items, jsPubList.items, 'public dialog');
  assert.equal(jsPubList.items[0].occupants_count, 2);

  // A group through JS, then occupant and admin changes through JS seen by cubechat.
  const group = await alice.js.chat.dialog.create({ type: 2, name: 'Filters', occupants_ids: [bob.id, carol.id], admins_ids: [bob.id] });
  assert.deepEqual(group.admins_ids, [bob.id]);
  await alice.js.chat.dialog.removeAdmins(group._id, [bob.id]);
  await alice.js.chat.dialog.update(group._id, { pull_all: { occupants_ids: [carol.id] } });
  const [ccGroup] = await bob.cc(op('list_dialogs', { filters: [{ field: '_id', op: 'EQ', value: group._id }] }));
  assert.deepEqual([ccGroup.items[0].admins_ids, ccGroup.items[0].occupants_ids], [[], [alice.id, bob.id]]);
  const [carolGroups] = await carol.cc(op('list_dialogs', { filters: [{ field: '_id', op: 'EQ', value: group._id }] }));
  assert.equal(carolGroups.total, 0);

  // Dialog list filters and order: the JS query forms and cubechat's give the same pages.
  for (let i = 0; i < 3; i += 1) {
    await alice.js.chat.message.create({ chat_dialog_id: group._id, message: `g${i}`, date_sent: BASE + 100 + i });
  }
  const queries = [
    [{ type: { in: [2, 3] }, sort_desc: 'last_message_date_sent' },
      { filters: [{ field: 'type', op: 'IN', value: '2,3' }], sort_by: 'last_message_date_sent', sort_descending: true }],
    [{ name: { ctn: 'ilt' } }, { filters: [{ field: 'name', op: 'CTN', value: 'ilt' }] }],
    [{ last_message_date_sent: { gt: BASE + 50 } }, { filters: [{ field: 'last_message_date_sent', op: 'GT', value: BASE + 50 }] }],
    [{ _id: { in: [group._id, pub.id, jsPrivate._id] }, sort_asc: 'created_at', limit: 2, skip: 1 },
      { filters: [{ field: '_id', op: 'IN', value: [group._id, pub.id, jsPrivate._id].join(',') }], sort_by: 'created_at', limit: 2, skip: 1 }],
  ];
  const ccPages = await bob.cc(...queries.map(([, p]) => op('list_dialogs', p)));
  const expectedIds = [
    [group._id, jsPrivate._id],
    [group._id],
    [group._id],
    [group._id], // bob left the public dialog; of private and group, skip the older
  ];
  const expectedTotals = [2, 1, 1, 2];
  for (const [i, [q]] of queries.entries()) {
    const jsPage = await bob.js.chat.dialog.list(q);
    assert.deepEqual([ccPages[i].total, ccPages[i].skip, ccPages[i].limit], [jsPage.total_entries, jsPage.skip, jsPage.limit], `query ${i}`);
    assertSameDialogs(ccPages[i].items, jsPage.items, `query ${i}`);
    assert.deepEqual(jsPage.items.map((x) => x._id), expectedIds[i], `query ${i}`);
    assert.equal(jsPage.total_entries, expectedTotals[i], `query ${i}`);
  }

  // Message filters: _id[in], sender and a date window, through both clients.
  const [g] = await bob.cc(op('history', group._id, {}, false));
  const pick = [g[0].id, g[2].id];
  const jsIn = await bob.js.chat.message.list({ chat_dialog_id: group._id, _id: { in: pick }, mark_as_read: 0 });
  const [ccIn] = await bob.cc(op('history', group._id, { filters: [{ field: '_id', op: 'IN', value: pick.join(',') }] }, false));
  assertSameMessages(ccIn, jsIn.items, '_id[in]');
  assert.deepEqual(jsIn.items.map((m) => m.message), ['g0', 'g2']);
  const jsWindow = await bob.js.chat.message.list({ chat_dialog_id: group._id, sender_id: alice.id, date_sent: { gte: BASE + 101, lte: BASE + 102 }, mark_as_read: 0 });
  const [ccWindow] = await bob.cc(op('history', group._id, { filters: [
    { field: 'sender_id', op: 'EQ', value: alice.id }, { field: 'date_sent', op: 'GTE', value: BASE + 101 }, { field: 'date_sent', op: 'LTE', value: BASE + 102 },
  ] }, false));
  assertSameMessages(ccWindow, jsWindow.items, 'window');
  assert.deepEqual(jsWindow.items.map((m) => m.message), ['g1', 'g2']);

  // Pins and delivery marks: written by one client, read by the other.
  await alice.js.chat.dialog.update(group._id, { push_all: { pinned_messages_ids: [g[1].id] } });
  const [pinned] = await bob.cc(op('list_dialogs', { filters: [{ field: '_id', op: 'EQ', value: group._id }] }));
  assert.deepEqual(pinned.items[0].pinned_message_ids, [g[1].id]);
  await alice.cc(op('update_dialog', group._id, { unpin_messages: [g[1].id], pin_messages: [g[2].id] }));
  assert.deepEqual((await bob.js.chat.dialog.list({ _id: group._id })).items[0].pinned_messages_ids, [g[2].id]);
  await bob.js.chat.message.update(g[0].id, { chat_dialog_id: group._id, delivered: 1 });
  const [delivered] = await alice.cc(op('history', group._id, { limit: 1 }, false));
  assert.deepEqual([delivered[0].delivered_ids, delivered[0].read_ids], [[alice.id, bob.id], [alice.id]]);
  await bob.cc(op('mark_messages', group._id, [g[1].id], false, true));
  const aliceJs = await alice.js.chat.dialog.list({ _id: group._id });
  assert.equal(aliceJs.items[0].last_message_status, 'sent', 'the last message (g2) is neither delivered nor read');
  assert.deepEqual((await alice.js.chat.message.list({ chat_dialog_id: group._id, mark_as_read: 0 })).items.map((m) => m.delivered_ids),
    [[alice.id, bob.id], [alice.id, bob.id], [alice.id]]);

  // Clear history through JS (for bob only), seen by cubechat; deleting several dialogs at once.
  await bob.js.chat.dialog.clearHistory(group._id);
  const [bobAfter, bobUnread] = await bob.cc(op('history', group._id, {}, false), op('unread_counts', [group._id]));
  const [aliceAfter] = await alice.cc(op('history', group._id, {}, false));
  assert.deepEqual([bobAfter, ccUnreadAsWire(bobUnread)], [[], { total: 0, [group._id]: 0 }]);
  assert.deepEqual(aliceAfter.map((m) => m.body), ['g0', 'g1', 'g2']);
  const missing = '5f0c0c0c0c0c0c0c0c0c0c0c';
  // Several ids: the SDK parses the answer as JSON (one id: as text).
  const many = await alice.js.chat.dialog.delete([group._id, pub.id, missing], { force: 1 });
  assert.deepEqual(jsDeleteResult(many), { deleted: [group._id, pub.id], not_found: [missing], no_permission: [] });
  const [bobLeft] = await bob.cc(op('list_dialogs', {}));
  assert.deepEqual(bobLeft.items.map((x) => x.id), [jsPrivate._id]);
});
