// Storage interop: the official ConnectyCube JS SDK (connectycube@6.1.2, `storage.*`) and
// cubechat (through its Python bindings, tests/interop/cubechat_probe.py) share blobs on one
// cubeserver. What one uploads, the other describes with the same fields and downloads byte for
// byte (sha256); the URLs each builds work for the other's blobs; permission and not-found
// answers match; attachments built from real blobs travel in messages both ways.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, makeUser, op, jsRejection } = require('./harness');

const NO_PERMISSION = "You don't have appropriate permissions to perform this operation";
const NO_SESSION = { errors: { base: ['Required session does not exist'] } };
const NOT_FOUND = { errors: { base: ['Not found'] } };
/** The blob fields both clients expose, by the same names. */
const BLOB_FIELDS = ['content_type', 'created_at', 'id', 'name', 'public', 'size', 'uid', 'updated_at'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const FETCH_TIMEOUT_MS = 30000;

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const b64 = (b) => b.toString('base64');

/** GETs `url` with node's fetch: status, content type and body bytes. */
async function get(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  return { status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()) };
}

/** `url` answers 200 with exactly `bytes` of `type`. */
async function assertServes(url, bytes, type, what) {
  const r = await get(url);
  assert.equal(r.status, 200, `${what}: ${url} → ${r.status} ${r.body.toString().slice(0, 200)}`);
  assert.equal(r.type, type, what);
  assert.equal(r.body.length, bytes.length, what);
  assert.equal(sha256(r.body), sha256(bytes), what);
}

/** `url` answers `status` with the JSON error `body`. */
async function assertRefuses(url, status, body, what) {
  const r = await get(url);
  assert.deepEqual([r.status, JSON.parse(r.body.toString())], [status, body], `${what}: ${url}`);
}

/** What cubechat's download_file must report for `bytes`. */
const downloaded = (bytes) => ({ returned: bytes.length, size: bytes.length, sha256: sha256(bytes), files: ['download'] });

/** The rename the docs specify (`PUT /blobs/{id}` `{"blob":{"name"}}`), through the SDK's own transport. */
function jsRename(js, id, name) {
  return js.service.ajax({ type: 'PUT', url: js.utils.getUrl('blobs', id), data: { blob: { name } } });
}

/** cubechat's page of blobs in the wire's (deprecated) list shape. */
const ccPageAsWire = (p) => ({
  current_page: p.current_page, per_page: p.per_page, total_entries: p.total_entries, items: p.items.map((blob) => ({ blob })),
});

const ATTACHMENT_FIELDS = { kind: 'type', content_type: 'content-type' };
/** cubechat's attachment record as the wire object (null fields left out). */
function ccAttachmentAsWire(a) {
  const w = {};
  for (const [k, v] of Object.entries(a)) if (v !== null) w[ATTACHMENT_FIELDS[k] || k] = v;
  return w;
}

async function setup(t) {
  const server = await startServer();
  t.after(server.stop);
  const alice = await makeUser(server.info, 'Alice');
  const bob = await makeUser(server.info, 'Bob');
  return { server, alice, bob };
}

// ---------------------------------------------------------------------------------------------

test('JS SDK uploads (private and public, with and without size); cubechat sees the same blobs and bytes', async (t) => {
  const { alice, bob } = await setup(t);
  const cases = [
    { name: 'random.bin', type: 'application/octet-stream', public: false, withSize: true, n: 300_000 },
    { name: 'photo 🐱 été.png', type: 'image/png', public: true, withSize: true, n: 250_001 },
    { name: 'notes.txt', type: 'text/plain; charset=utf-8', public: false, withSize: false, n: 200_003 },
    { name: 'clip.mp4', type: 'video/mp4', public: true, withSize: false, n: 400_000 },
    // No name; the file given as a read stream (sent chunked, with a filename), as Node apps do.
    { name: undefined, type: 'audio/mpeg', public: false, withSize: true, n: 180_000, stream: true },
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cubechat-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const made = [];
  for (const c of cases) {
    const what = `${c.name ?? '(no name)'} (${c.public ? 'public' : 'private'}, ${c.withSize ? 'with' : 'without'} size)`;
    const bytes = crypto.randomBytes(c.n);
    let file = bytes;
    if (c.stream) {
      fs.writeFileSync(path.join(dir, 'song.mp3'), bytes);
      file = fs.createReadStream(path.join(dir, 'song.mp3'));
    }
    const params = { name: c.name, file, type: c.type, public: c.public };
    if (c.withSize) params.size = c.n;
    const up = await alice.js.storage.createAndUpload(params);
    // The SDK resolves with the created blob and the size it was given (undefined if none).
    assert.deepEqual(Object.keys(up).sort(), [...BLOB_FIELDS, 'blob_object_access'].sort(), what);
    assert.deepEqual(
      [up.name, up.content_type, up.public, up.size, up.blob_object_access.object_access_type],
      [c.name ?? null, c.type, c.public, c.withSize ? c.n : undefined, 'Write'],
      what,
    );
    assert.match(up.uid, /^[0-9a-f]{32}$/, what);

    // The JS view after the upload: by id (owner) and by UID (anyone).
    const { blob: info } = await alice.js.storage.getInfo(up.id);
    assert.deepEqual(Object.keys(info).sort(), BLOB_FIELDS, what);
    const { updated_at: updated, ...rest } = info;
    assert.deepEqual(rest, { id: up.id, uid: up.uid, name: c.name ?? null, content_type: c.type, size: c.n, public: c.public, created_at: up.created_at }, what);
    assert.match(updated, ISO);
    assert.ok(updated >= up.created_at, what);
    assert.deepEqual((await bob.js.storage.getFile(up.uid)).blob, info, what);

    // cubechat, as the owner and as another user.
    const [ccById, ccByUid, ccDownload, ccPublicUrl, ccPrivateUrl, ccIssuedUrl] = await alice.cc(
      op('blob', up.id),
      op('blob_by_uid', up.uid),
      op('download_file', up.uid),
      op('blob_url', up.uid, false),
      op('blob_url', up.uid, true),
      op('blob_download_url', up.uid),
    );
    assert.deepEqual(ccById, info, `${what}: cubechat blob(id)`);
    assert.deepEqual(ccByUid, info, `${what}: cubechat blob_by_uid`);
    assert.deepEqual(ccDownload, downloaded(bytes), `${what}: cubechat download`);
    const [bobByUid, bobDownload, bobById] = await bob.ccRaw(
      op('blob_by_uid', up.uid),
      op('download_file', up.uid),
      op('blob', up.id),
    );
    assert.deepEqual(bobByUid, { ok: info }, what);
    assert.deepEqual(bobDownload, { ok: downloaded(bytes) }, what);
    if (c.public) {
      assert.deepEqual(bobById, { ok: info }, what);
      assert.deepEqual((await bob.js.storage.getInfo(up.id)).blob, info, what);
    } else {
      // A private blob's info by id is the owner's only: the same refusal through both.
      assert.deepEqual(bobById, { error: 'Forbidden', reason: NO_PERMISSION }, what);
      const e = await jsRejection(bob.js.storage.getInfo(up.id));
      assert.deepEqual({ code: e.code, info: e.info }, { code: 403, info: { errors: { base: [NO_PERMISSION] } } }, what);
    }

    // URLs: the SDK's and cubechat's are the same; each serves the bytes.
    const publicUrl = alice.js.storage.publicUrl(up.uid);
    assert.equal(publicUrl, `${alice.js.utils.getUrl('blobs', up.uid).slice(0, -'.json'.length)}`);
    assert.equal(ccPublicUrl, publicUrl, what);
    const ccToken = new URL(ccPrivateUrl).searchParams.get('token');
    assert.ok(ccToken, ccPrivateUrl);
    assert.equal(ccPrivateUrl, `${publicUrl}?token=${ccToken}`, what);
    assert.equal(alice.js.storage.privateUrl(up.uid), `${publicUrl}?token=${alice.js.service.getSession().token}`);
    await assertServes(alice.js.storage.privateUrl(up.uid), bytes, c.type, `${what}: JS privateUrl`);
    await assertServes(bob.js.storage.privateUrl(up.uid), bytes, c.type, `${what}: JS privateUrl (bob)`);
    await assertServes(ccPrivateUrl, bytes, c.type, `${what}: cubechat blob_url(private)`);
    await assertServes(ccIssuedUrl, bytes, c.type, `${what}: cubechat blob_download_url`);
    const jsObject = (await bob.js.storage.getFileObject(up.uid, { download_url: 1 })).blob;
    const { blob_object_access: access, ...objectFields } = jsObject;
    assert.deepEqual(objectFields, info, what);
    await assertServes(access.download_url, bytes, c.type, `${what}: JS getFileObject download_url`);
    if (c.public) {
      await assertServes(publicUrl, bytes, c.type, `${what}: JS publicUrl`);
      assert.equal(ccIssuedUrl, access.download_url, `${what}: a public blob's issued URL has no token`);
    } else {
      await assertRefuses(publicUrl, 401, NO_SESSION, `${what}: JS publicUrl of a private blob`);
    }
    made.push(info);
  }

  // The (deprecated) list of alice's blobs, newest first, paged the same through both clients.
  const newestFirst = [...made].reverse();
  const [ccAll, ccPage2] = await alice.cc(op('list_blobs', 1, 10), op('list_blobs', 2, 3));
  const jsAll = await alice.js.storage.list({ page: 1, per_page: 10 });
  const jsPage2 = await alice.js.storage.list({ page: 2, per_page: 3 });
  assert.deepEqual(ccPageAsWire(ccAll), jsAll);
  assert.deepEqual(ccPageAsWire(ccPage2), jsPage2);
  assert.deepEqual(jsAll, { current_page: 1, per_page: 10, total_entries: 5, items: newestFirst.map((blob) => ({ blob })) });
  assert.deepEqual(jsPage2, { current_page: 2, per_page: 3, total_entries: 5, items: newestFirst.slice(3).map((blob) => ({ blob })) });
  const [bobList] = await bob.cc(op('list_blobs', 1, 10));
  assert.deepEqual(ccPageAsWire(bobList), await bob.js.storage.list());
  assert.deepEqual([bobList.total_entries, bobList.items], [0, []]);
});

test('cubechat uploads (bytes and a file, private and public); the JS SDK sees the same blobs and bytes', async (t) => {
  const { alice, bob } = await setup(t);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cubechat-storage-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const privateBytes = crypto.randomBytes(300_000);
  const fileBytes = crypto.randomBytes(220_001);
  const plainBytes = crypto.randomBytes(150_000);
  const filePath = path.join(dir, 'holiday.jpg');
  fs.writeFileSync(filePath, fileBytes);
  const cases = [
    { what: 'private bytes', bytes: privateBytes, name: 'from cubechat 🦀.bin', type: 'application/octet-stream', public: false },
    { what: 'public file', bytes: fileBytes, name: 'holiday.jpg', type: 'image/jpeg', public: true }, // name and type from the path
    { what: 'bytes, no name', bytes: plainBytes, name: 'file', type: 'application/octet-stream', public: false },
  ];
  const uploads = await alice.cc(
    op('upload_bytes', b64(privateBytes), { name: cases[0].name, content_type: cases[0].type, public: false }),
    op('upload_file', filePath, { public: true }),
    op('upload_bytes', b64(plainBytes), {}),
  );
  const fresh = await alice.cc(...uploads.map((u) => op('blob', u.id)));
  for (const [i, c] of cases.entries()) {
    const { what, bytes } = c;
    const up = uploads[i];
    const { updated_at: updated, ...rest } = fresh[i];
    assert.deepEqual(rest, { id: up.id, uid: up.uid, name: c.name, content_type: c.type, size: bytes.length, public: c.public, created_at: up.created_at }, what);
    assert.ok(updated >= up.updated_at, what);

    // JS: by id (owner), by UID (another user), and the download URLs it builds or is issued.
    const { blob: info } = await alice.js.storage.getInfo(up.id);
    assert.deepEqual(info, fresh[i], what);
    assert.deepEqual((await bob.js.storage.getFile(up.uid)).blob, info, what);
    await assertServes(bob.js.storage.privateUrl(up.uid), bytes, c.type, `${what}: JS privateUrl`);
    const object = (await bob.js.storage.getFileObject(up.uid, { download_url: 1 })).blob;
    assert.equal(object.uid, up.uid);
    await assertServes(object.blob_object_access.download_url, bytes, c.type, `${what}: JS getFileObject download_url`);
    const publicUrl = bob.js.storage.publicUrl(up.uid);
    if (c.public) await assertServes(publicUrl, bytes, c.type, `${what}: JS publicUrl`);
    else await assertRefuses(publicUrl, 401, NO_SESSION, `${what}: JS publicUrl of a private blob`);
    const [ccPublicUrl, bobDownload] = await bob.cc(op('blob_url', up.uid, false), op('download_file', up.uid));
    assert.equal(ccPublicUrl, publicUrl, what);
    assert.deepEqual(bobDownload, downloaded(bytes), what);
  }
  // The owner's list, newest first, the same through both.
  const [ccList] = await alice.cc(op('list_blobs', 1, 10));
  assert.deepEqual(ccPageAsWire(ccList), await alice.js.storage.list());
  assert.deepEqual(ccList.items.map((b) => b.id), uploads.map((u) => u.id).reverse());
});

test('both clients get the same permission errors and not-found answers; owners act across clients', async (t) => {
  const { alice, bob } = await setup(t);
  const forbidden = { code: 403, info: { errors: { base: [NO_PERMISSION] } } };
  const notFound = { code: 404, info: NOT_FOUND };
  const pBytes = crypto.randomBytes(100_000);
  const qBytes = crypto.randomBytes(100_001);
  const p = await alice.js.storage.createAndUpload({ name: 'p.bin', file: pBytes, type: 'application/octet-stream', size: pBytes.length, public: false });
  const [q] = await alice.cc(op('upload_bytes', b64(qBytes), { name: 'q.png', content_type: 'image/png', public: true }));

  // Someone else may neither rename nor delete either blob: 403 to JS, Forbidden to cubechat.
  const js = [
    await jsRejection(jsRename(bob.js, p.id, 'mine')),
    await jsRejection(jsRename(bob.js, q.id, 'mine')),
    await jsRejection(bob.js.storage.delete(p.id)),
    await jsRejection(bob.js.storage.delete(q.id)),
    await jsRejection(bob.js.storage.markUploaded({ id: p.id, size: pBytes.length })),
  ];
  js.forEach((e, i) => assert.deepEqual({ code: e.code, info: e.info }, forbidden, `JS case ${i}`));
  const cc = await bob.ccRaw(
    op('rename_blob', p.id, 'mine'),
    op('rename_blob', q.id, 'mine'),
    op('delete_blob', p.id),
    op('delete_blob', q.id),
  );
  assert.deepEqual(cc, Array(4).fill({ error: 'Forbidden', reason: NO_PERMISSION }));

  // Unknown UIDs and ids: 404 with the same body to JS (SDK calls and plain URLs), NotFound to cubechat.
  const uid = 'f'.repeat(32);
  const id = 999_999;
  const jsMissing = [
    await jsRejection(alice.js.storage.getFile(uid)),
    await jsRejection(alice.js.storage.getFileObject(uid, { download_url: 1 })),
    await jsRejection(alice.js.storage.getInfo(id)),
    await jsRejection(jsRename(alice.js, id, 'x')),
    await jsRejection(alice.js.storage.delete(id)),
    await jsRejection(alice.js.storage.markUploaded({ id, size: 1 })),
  ];
  jsMissing.forEach((e, i) => assert.deepEqual({ code: e.code, info: e.info }, notFound, `JS case ${i}`));
  await assertRefuses(alice.js.storage.privateUrl(uid), 404, NOT_FOUND, 'JS privateUrl of an unknown UID');
  await assertRefuses(alice.js.storage.publicUrl(uid), 404, NOT_FOUND, 'JS publicUrl of an unknown UID');
  const ccMissing = await alice.ccRaw(
    op('blob_by_uid', uid),
    op('blob_download_url', uid),
    op('download_file', uid),
    op('blob', id),
    op('rename_blob', id, 'x'),
    op('delete_blob', id),
  );
  assert.deepEqual(ccMissing, Array(6).fill({ error: 'NotFound', reason: NOT_FOUND.errors.base[0] }));

  // Nothing changed; then each owner renames through the other client's view.
  assert.deepEqual([(await alice.js.storage.getInfo(p.id)).blob.name, (await alice.js.storage.getInfo(q.id)).blob.name], ['p.bin', 'q.png']);
  assert.deepEqual(await bob.cc(op('download_file', p.uid), op('download_file', q.uid)), [downloaded(pBytes), downloaded(qBytes)]);
  await assertServes(bob.js.storage.publicUrl(q.uid), qBytes, 'image/png', 'q after the refused attempts');
  const renamedByJs = await jsRename(alice.js, q.id, 'q renamed by JS.png');
  const [renamedByCc, qSeen] = await alice.cc(op('rename_blob', p.id, 'p renamed by cubechat.bin'), op('blob', q.id));
  assert.deepEqual(qSeen, renamedByJs.blob);
  assert.equal(qSeen.name, 'q renamed by JS.png');
  assert.deepEqual((await alice.js.storage.getInfo(p.id)).blob, renamedByCc);
  assert.equal(renamedByCc.name, 'p renamed by cubechat.bin');
  // The SDK's own storage.update sends GET /blobs/{id}.json?blob[name]=… (an SDK bug, §5): the
  // server answers the blob's info and renames nothing.
  assert.deepEqual(await alice.js.storage.update({ id: p.id, name: 'ignored' }), { blob: renamedByCc });
  assert.equal((await bob.js.storage.getFile(p.uid)).blob.name, 'p renamed by cubechat.bin');

  // A JS upload whose `size` is wrong is not completed: cubechat sees it without a size and
  // cannot download it until the owner's markUploaded gives the right one.
  const wBytes = crypto.randomBytes(50_000);
  const wrong = await jsRejection(alice.js.storage.createAndUpload({ name: 'w.bin', file: wBytes, type: 'application/octet-stream', size: 49_999, public: false }));
  assert.deepEqual({ code: wrong.code, info: wrong.info }, { code: 422, info: { errors: { size: ['does not match the uploaded file (50000 bytes)'] } } });
  const w = (await alice.js.storage.list({ page: 1, per_page: 1 })).items[0].blob;
  assert.deepEqual([w.name, w.size], ['w.bin', null]);
  const [wSeen, wDownload] = await bob.ccRaw(op('blob_by_uid', w.uid), op('download_file', w.uid));
  assert.deepEqual(wSeen, { ok: w });
  assert.equal(wDownload.error, 'NotFound');
  await assertRefuses(alice.js.storage.privateUrl(w.uid), 404, NOT_FOUND, 'an incomplete blob');
  assert.equal(await alice.js.storage.markUploaded({ id: w.id, size: wBytes.length }), '');
  assert.deepEqual(await bob.cc(op('download_file', w.uid)), [downloaded(wBytes)]);

  // Each owner deletes through one client; the other client finds nothing.
  assert.equal(await alice.js.storage.delete(q.id), '');
  const [qAfter, qDownload] = await alice.ccRaw(op('blob', q.id), op('download_file', q.uid));
  assert.deepEqual([qAfter.error, qDownload.error], ['NotFound', 'NotFound']);
  await assertRefuses(alice.js.storage.publicUrl(q.uid), 404, NOT_FOUND, 'a deleted public blob');
  assert.deepEqual(await alice.cc(op('delete_blob', p.id)), [null]);
  const gone = await jsRejection(alice.js.storage.getInfo(p.id));
  assert.deepEqual({ code: gone.code, info: gone.info }, notFound);
  await assertRefuses(alice.js.storage.privateUrl(p.uid), 404, NOT_FOUND, 'a deleted private blob');
  assert.deepEqual((await alice.js.storage.list()).items.map((x) => x.blob.id), [w.id]);
});

test('attachments of real blobs travel in messages both ways and download by their uid', async (t) => {
  const { alice, bob } = await setup(t);
  const dialog = await alice.js.chat.dialog.create({ type: 3, occupants_ids: [bob.id] });

  // JS: upload, then send the attachment the way the ConnectyCube docs build it (numeric id).
  const photo = crypto.randomBytes(120_000);
  const up = await alice.js.storage.createAndUpload({ name: 'sunset.jpg', file: photo, type: 'image/jpeg', size: photo.length, public: false });
  const jsAttachment = { type: 'image', uid: up.uid, id: up.id, name: up.name, size: up.size, 'content-type': up.content_type, width: 640, height: 480 };
  const sent = await alice.js.chat.message.create({ chat_dialog_id: dialog._id, message: 'a photo', date_sent: 1_700_000_000, attachments: [jsAttachment] });
  // The server keeps attachment ids as strings (as XMPP carries them).
  const expectedWire = { ...jsAttachment, id: String(up.id) };
  assert.deepEqual(sent.attachments, [expectedWire]);
  const jsHistory = (await bob.js.chat.message.list({ chat_dialog_id: dialog._id, mark_as_read: 0 })).items;
  const { blob: photoBlob } = await bob.js.storage.getFile(up.uid);
  const [ccHistory, fromJsBlob] = await bob.cc(
    op('history', dialog._id, {}, false),
    op('attachment_from_blob', photoBlob), // the JS wire blob is a cubechat Blob as is
  );
  assert.deepEqual(ccHistory.map((m) => [m.id, m.body, m.attachments.map(ccAttachmentAsWire)]), [[sent._id, 'a photo', [expectedWire]]]);
  assert.deepEqual(jsHistory.map((m) => [m._id, m.attachments]), [[sent._id, [expectedWire]]]);
  const { width, height, ...blobPart } = expectedWire;
  assert.deepEqual(ccAttachmentAsWire(fromJsBlob), blobPart, 'cubechat attachment_from_blob of the JS blob');
  const ccAtt = ccHistory[0].attachments[0];
  const [ccGot, ccBlob] = await bob.cc(op('download_file', ccAtt.uid), op('blob_by_uid', ccAtt.uid));
  assert.deepEqual(ccGot, downloaded(photo));
  assert.deepEqual([ccBlob.id, ccBlob.name, ccBlob.size, ccBlob.content_type], [Number(ccAtt.id), ccAtt.name, ccAtt.size, ccAtt.content_type]);

  // cubechat: upload, attachment_from_blob, send; JS reads it and downloads by the uid.
  const report = crypto.randomBytes(90_000);
  const [ccUp] = await bob.cc(op('upload_bytes', b64(report), { name: 'report.pdf', content_type: 'application/pdf' }));
  const [att] = await bob.cc(op('attachment_from_blob', ccUp));
  assert.deepEqual(att, {
    kind: 'file', id: String(ccUp.id), uid: ccUp.uid, url: null, name: 'report.pdf', size: report.length,
    content_type: 'application/pdf', width: null, height: null, duration: null, data: null,
  });
  const [ccSent] = await bob.cc(op('create_message', { dialog_id: dialog._id, body: 'the report', date_sent: 1_700_000_001, attachments: [att] }));
  const wire = ccAttachmentAsWire(att);
  const jsSees = (await alice.js.chat.message.list({ chat_dialog_id: dialog._id, _id: ccSent.id, mark_as_read: 0 })).items;
  assert.deepEqual(jsSees.map((m) => [m._id, m.message, m.attachments]), [[ccSent.id, 'the report', [wire]]]);
  const jsAtt = jsSees[0].attachments[0];
  await assertServes(alice.js.storage.privateUrl(jsAtt.uid), report, 'application/pdf', 'JS download of the cubechat attachment');
  const { blob: reportBlob } = await alice.js.storage.getFile(jsAtt.uid);
  assert.deepEqual([String(reportBlob.id), reportBlob.name, reportBlob.size, reportBlob.content_type], [jsAtt.id, jsAtt.name, jsAtt.size, jsAtt['content-type']]);
  const [aliceHistory] = await alice.cc(op('history', dialog._id, {}, false));
  assert.deepEqual(aliceHistory.map((m) => m.attachments.map(ccAttachmentAsWire)), [[expectedWire], [wire]]);

  // attachment_from_blob picks the kind from the content type, for any client's blob.
  const kinds = await alice.cc(...[
    ['image/png', 'image'], ['video/mp4', 'video'], ['audio/mpeg', 'audio'], ['application/pdf', 'file'], ['text/plain', 'file'],
  ].map(([type]) => op('attachment_from_blob', { ...photoBlob, content_type: type })));
  assert.deepEqual(kinds.map((a) => a.kind), ['image', 'video', 'audio', 'file', 'file']);
});
