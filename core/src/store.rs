//! The local store: one SQLite database per logged-in user (a file in WAL mode, or memory),
//! holding dialogs, messages with their statuses and reactions, unread counts, sync cursors,
//! the outbox of the send queue and the users the app has seen.
//!
//! Main types: [`Store`] (open, migrate, read and write), [`LocalMessage`] and
//! [`MessageState`] (a message as the app shows it), [`OutboxItem`] (one pending send).
//!
//! Rules:
//! - the schema version lives in `PRAGMA user_version`; [`MIGRATIONS`] brings any earlier
//!   version up to date in one transaction per step; a newer version or a file that is not a
//!   database gives a typed error ([`Error::StoreTooNew`], [`Error::StoreCorrupt`]) and the
//!   file is left untouched;
//! - every write that must stay consistent (a message and its outbox row) is one transaction;
//! - calls are short and synchronous under one lock: the connection is never held across an
//!   await;
//! - durability follows what a write holds: the app's own sends (the outbox) are synced to
//!   disk (`synchronous = FULL`) before they can leave the device: at commit, or, for a
//!   message queued while connected ([`Store::queue_new_message`] not `durable`), by the
//!   one commit that hands a whole burst to the connection ([`Store::start_sending`], a
//!   group commit) or by [`Store::sync_queue`]; everything else the server has and the
//!   next sync brings back (received messages, acknowledgements, markers, dialogs)
//!   survives a crash of the app but may be lost with the power (`NORMAL`, WAL: never a
//!   damaged file);
//! - the hot path (received messages, acknowledgements) writes a whole burst in one
//!   transaction with cached statements ([`Store::put_received`], [`Store::ack_sent`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row, Statement, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use cubechat_wire::auth::User;
use cubechat_wire::chat::{Attachment, Dialog, ReactionsSummary};

/// Each step brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: dialogs, messages, the outbox and sync cursors.
    "CREATE TABLE dialogs (
        id TEXT PRIMARY KEY NOT NULL,
        activity INTEGER NOT NULL,
        unread INTEGER NOT NULL DEFAULT 0,
        json TEXT NOT NULL
     );
     CREATE INDEX dialogs_activity ON dialogs(activity DESC, id DESC);
     CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        dialog_id TEXT NOT NULL,
        sender_id INTEGER NOT NULL,
        recipient_id INTEGER,
        body TEXT NOT NULL,
        date_sent INTEGER NOT NULL,
        state INTEGER NOT NULL,
        failure TEXT,
        outgoing INTEGER NOT NULL,
        edited INTEGER NOT NULL DEFAULT 0,
        attachments TEXT NOT NULL DEFAULT '[]',
        custom TEXT NOT NULL DEFAULT '{}',
        read_ids TEXT NOT NULL DEFAULT '[]',
        delivered_ids TEXT NOT NULL DEFAULT '[]'
     );
     CREATE INDEX messages_timeline ON messages(dialog_id, date_sent, seq);
     CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        op_id TEXT NOT NULL UNIQUE,
        message_id TEXT NOT NULL,
        dialog_id TEXT NOT NULL,
        kind INTEGER NOT NULL,
        payload TEXT NOT NULL,
        in_flight INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
     );
     CREATE INDEX outbox_message ON outbox(message_id);
     CREATE TABLE cursors (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);",
    // v2: reactions on messages, whether a dialog's whole history is cached, and failed
    // sends kept in the outbox (for retry) instead of being dropped.
    "ALTER TABLE messages ADD COLUMN reactions TEXT NOT NULL DEFAULT '{}';
     ALTER TABLE dialogs ADD COLUMN history_complete INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE outbox ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;",
    // v3: the users the app has seen (lookups, occupants, contacts), for names and avatars
    // offline.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY NOT NULL,
        json TEXT NOT NULL,
        seen_at INTEGER NOT NULL
     );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Where a message stands, as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageState {
    /// Written locally, waiting in the send queue or on its way (not yet acknowledged).
    Queued,
    /// Acknowledged by the server.
    Sent,
    /// Delivered to at least one recipient.
    Delivered,
    /// Read by at least one recipient.
    Read,
    /// Not sent; `retry` queues it again, `cancel` drops it.
    Failed {
        /// Why it failed (no message body).
        reason: String,
    },
    /// A message from another user (or from another device of this user).
    Received,
}

impl MessageState {
    fn code(&self) -> i64 {
        match self {
            Self::Queued => 0,
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed { .. } => 4,
            Self::Received => 5,
        }
    }

    fn from_code(code: i64, failure: Option<String>) -> Self {
        match code {
            0 => Self::Queued,
            1 => Self::Sent,
            2 => Self::Delivered,
            3 => Self::Read,
            4 => Self::Failed {
                reason: failure.unwrap_or_default(),
            },
            _ => Self::Received,
        }
    }
}

/// A message of a timeline: received, sent, or still in the send queue.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalMessage {
    /// The message's id (the one the server will know it by).
    pub id: String,
    /// The dialog's id.
    pub dialog_id: String,
    /// The sender's user id.
    pub sender_id: u64,
    /// The addressee in private dialogs.
    pub recipient_id: Option<u64>,
    /// The text.
    pub body: String,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// Custom parameters sent with the message.
    pub custom: BTreeMap<String, String>,
    /// Unix seconds.
    pub date_sent: i64,
    /// Where the message is on its way (queued, sending, sent, failed, ...).
    pub state: MessageState,
    /// Sent by this user (from this device or another).
    pub outgoing: bool,
    /// The body was edited.
    pub edited: bool,
    /// The ids of the users who read it.
    pub read_ids: Vec<u64>,
    /// The ids of the users it was delivered to.
    pub delivered_ids: Vec<u64>,
    /// The reactions summary.
    pub reactions: ReactionsSummary,
    /// Local order among messages of the same second (larger = later).
    pub seq: i64,
}

impl LocalMessage {
    /// A message from the server's history, as seen by `me`.
    pub fn from_history(m: cubechat_wire::chat::Message, me: u64) -> Self {
        let outgoing = m.sender_id == me;
        let state = if !outgoing {
            MessageState::Received
        } else if m.read_ids.iter().any(|u| *u != me) {
            MessageState::Read
        } else if m.delivered_ids.iter().any(|u| *u != me) {
            MessageState::Delivered
        } else {
            MessageState::Sent
        };
        let custom = crate::model::custom_as_text(m.custom);
        Self {
            id: m.id,
            dialog_id: m.chat_dialog_id,
            sender_id: m.sender_id,
            recipient_id: (m.recipient_id != 0).then_some(m.recipient_id),
            body: m.message.unwrap_or_default(),
            attachments: m.attachments,
            custom,
            date_sent: m.date_sent,
            state,
            outgoing,
            edited: false,
            read_ids: m.read_ids,
            delivered_ids: m.delivered_ids,
            reactions: m.reactions.unwrap_or_default(),
            seq: 0,
        }
    }
}

/// What an outbox row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// A new message.
    Message = 0,
    /// An edit of a sent message.
    Edit = 1,
    /// A deletion of a sent message.
    Delete = 2,
}

/// A file of a queued message, uploaded before the message is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedFile {
    /// The local file's path.
    pub path: PathBuf,
    /// The file name to upload it under (the path's file name when absent).
    pub name: Option<String>,
    /// The MIME type (guessed when absent).
    pub content_type: Option<String>,
    /// Whether the uploaded file can be downloaded without a session.
    pub public: bool,
}

/// What the queue needs to send an outbox row (JSON in the `payload` column).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// The recipient's user id (private dialogs).
    pub recipient_id: Option<u64>,
    /// The text.
    pub body: String,
    /// Attachments already uploaded.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Local files uploaded (and attached) before the message is sent.
    #[serde(default)]
    pub files: Vec<QueuedFile>,
    /// Custom parameters sent with the message (extra top-level keys).
    #[serde(default)]
    pub custom: BTreeMap<String, String>,
    /// Whether the server stores it in the dialog's history.
    #[serde(default = "yes")]
    pub save_to_history: bool,
    /// When the message was sent (Unix seconds).
    #[serde(default)]
    pub date_sent: i64,
    /// Whether receivers send delivered/read markers for it.
    #[serde(default)]
    pub markable: bool,
    /// Whether it is sent without a push notification.
    #[serde(default)]
    pub silent: bool,
    /// Edits: the target is the dialog's newest message.
    #[serde(default)]
    pub last: bool,
}

fn yes() -> bool {
    true
}

/// One pending send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Its position in the queue (send order).
    pub seq: i64,
    /// The stanza id: the message id for messages, a fresh id for edits and deletes.
    pub op_id: String,
    /// The message's id.
    pub message_id: String,
    /// The dialog's id.
    pub dialog_id: String,
    /// What the item does.
    pub kind: OutboxKind,
    /// What is sent.
    pub payload: Payload,
    /// Whether a send is under way (waiting for the server's acknowledgement).
    pub in_flight: bool,
    /// How many sends were tried.
    pub attempts: u32,
    /// Failed: kept for `retry`, skipped by the queue.
    pub failed: bool,
}

/// Statements kept prepared per connection (the hot path and the reads of live views use
/// about 30 distinct ones).
const STATEMENT_CACHE: usize = 64;

/// The connection and its current `synchronous` mode.
struct Db {
    conn: Connection,
    /// A file store (where the sync mode matters).
    file: bool,
    /// The connection is in `FULL` mode now (else `NORMAL`).
    full: bool,
    /// Queue writes were committed without a sync to disk since the last one.
    queue_unsynced: bool,
}

impl Db {
    /// Puts the connection in the sync mode a write needs (a no-op in memory or when it
    /// is in that mode already). Outside any transaction.
    fn sync(&mut self, full: bool) -> rusqlite::Result<()> {
        if self.file && self.full != full {
            let sql = if full {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            self.conn.prepare_cached(sql)?.raw_execute()?;
            self.full = full;
        }
        Ok(())
    }
}

/// How a transaction reaches the disk.
#[derive(Clone, Copy)]
enum Durability {
    /// Crash-safe, not synced (what the server has).
    Normal,
    /// Synced at commit (the queue), with every write before it.
    Full,
    /// A queue write whose sync comes later ([`Store::start_sending`], [`Store::sync_queue`]).
    Deferred,
    /// Synced at commit if deferred queue writes wait for it.
    IfQueueWaits,
}

/// A received message for [`Store::put_received`]: the message and whether it adds to
/// its dialog's unread count.
pub type Incoming = (LocalMessage, bool);

/// What [`Store::put_received`] wrote.
#[derive(Debug, Default)]
pub struct Received {
    /// The messages added (ids not stored before), in arrival order, with their `seq`.
    pub added: Vec<LocalMessage>,
    /// The ids of the dialogs whose preview, unread count or activity changed, once each.
    pub dialogs: Vec<String>,
    /// The dialogs of added messages that the store does not know (to fetch), once each.
    pub unknown: Vec<String>,
    /// Messages that could not be written (each tried on its own after the burst's
    /// transaction failed): the others are stored all the same.
    pub errors: Vec<Error>,
}

/// One acknowledged send, as [`Store::ack_sent`] applied it.
#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    /// The acknowledged stanza id (the outbox row, now removed).
    pub op_id: String,
    /// The message it sent, edited or deleted.
    pub message_id: String,
    /// What the row did.
    pub kind: OutboxKind,
    /// The message, when the acknowledgement moved it from `Queued` to `Sent`.
    pub sent: Option<LocalMessage>,
}

/// The SQLite store of one user.
pub struct Store {
    db: Mutex<Db>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Maps SQLite errors: damaged files are `StoreCorrupt`, the rest `Store`.
pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            Error::StoreCorrupt(e.to_string())
        }
        _ => Error::Store(e.to_string()),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn from_json<T: for<'de> Deserialize<'de> + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

/// The activity sort key of a dialog: its last message, else its last update or creation.
pub fn dialog_activity(d: &Dialog) -> i64 {
    d.last_message_date_sent
        .or_else(|| {
            d.updated_at
                .as_deref()
                .or(d.created_at.as_deref())
                .and_then(cubechat_wire::time::parse_iso8601)
        })
        .unwrap_or(0)
}

/// The columns and values of a new message row (after `INSERT` or `INSERT OR IGNORE`).
macro_rules! message_insert {
    ($verb:literal) => {
        concat!(
            $verb,
            " INTO messages (id, dialog_id, sender_id, recipient_id, body, date_sent, state, \
             failure, outgoing, edited, attachments, custom, read_ids, delivered_ids, reactions) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        )
    };
}

/// The columns [`message_row`] reads, as a literal (for `concat!`).
macro_rules! message_columns {
    () => {
        "seq, id, dialog_id, sender_id, recipient_id, body, date_sent, state, failure, \
         outgoing, edited, attachments, custom, read_ids, delivered_ids, reactions"
    };
}

const MESSAGE_COLUMNS: &str = message_columns!();
/// One message by id.
const MESSAGE_BY_ID: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE id = ?1"
);
/// One dialog by id, with its local unread count.
const DIALOG_BY_ID: &str = "SELECT json, unread FROM dialogs WHERE id = ?1";
/// New messages of a dialog: adds to its unread count and activity, and makes the newest
/// one its last message unless the stored last one is newer (a stored text that is not
/// JSON is left alone: it reads as an empty dialog, see `from_json`).
const DIALOG_NEW_MESSAGES: &str = "UPDATE dialogs SET unread = unread + ?6, \
    activity = max(activity, ?5), json = CASE WHEN json_valid(json) AND \
    coalesce(json_extract(json, '$.last_message_date_sent'), ?5) <= ?5 THEN \
    json_set(json, '$.last_message', ?2, '$.last_message_id', ?3, \
    '$.last_message_user_id', ?4, '$.last_message_date_sent', ?5) ELSE json END WHERE id = ?1";
/// Records a dialog's new preview and unread count (see [`Store::bump_dialog`]).
const DIALOG_BUMP: &str = "UPDATE dialogs SET json = ?2, unread = ?3, \
    activity = max(activity, ?4) WHERE id = ?1";

fn message_row(r: &Row<'_>) -> rusqlite::Result<LocalMessage> {
    Ok(LocalMessage {
        seq: r.get(0)?,
        id: r.get(1)?,
        dialog_id: r.get(2)?,
        sender_id: r.get::<_, i64>(3)? as u64,
        recipient_id: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        body: r.get(5)?,
        date_sent: r.get(6)?,
        state: MessageState::from_code(r.get(7)?, r.get(8)?),
        outgoing: r.get(9)?,
        edited: r.get(10)?,
        attachments: from_json(&r.get::<_, String>(11)?),
        custom: from_json(&r.get::<_, String>(12)?),
        read_ids: from_json(&r.get::<_, String>(13)?),
        delivered_ids: from_json(&r.get::<_, String>(14)?),
        reactions: from_json(&r.get::<_, String>(15)?),
    })
}

fn outbox_kind(code: i64) -> OutboxKind {
    match code {
        1 => OutboxKind::Edit,
        2 => OutboxKind::Delete,
        _ => OutboxKind::Message,
    }
}

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxItem> {
    Ok(OutboxItem {
        seq: r.get(0)?,
        op_id: r.get(1)?,
        message_id: r.get(2)?,
        dialog_id: r.get(3)?,
        kind: outbox_kind(r.get(4)?),
        payload: from_json(&r.get::<_, String>(5)?),
        in_flight: r.get(6)?,
        attempts: r.get::<_, i64>(7)? as u32,
        failed: r.get(8)?,
    })
}

/// The schema version of a database; `StoreTooNew` past what this build knows.
fn known_version(conn: &Connection) -> Result<u32> {
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if version > SCHEMA_VERSION {
        return Err(Error::StoreTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// Brings a connection's schema up to [`SCHEMA_VERSION`], one transaction per step.
pub(crate) fn migrate(conn: &mut Connection, upto: u32) -> Result<()> {
    let version = known_version(conn)?;
    for (i, step) in MIGRATIONS.iter().enumerate().take(upto as usize) {
        let v = i as u32 + 1;
        if v <= version {
            continue;
        }
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute_batch(step).map_err(db_err)?;
        tx.pragma_update(None, "user_version", v).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(target: "cubechat_core::store", version = v, "store schema migrated");
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) the store at `path`, or an in-memory one for `None`, and migrates
    /// it. Errors: `StoreCorrupt` (not a database, damaged), `StoreTooNew` (written by a
    /// newer cubechat), `Store` (cannot create or write the file). Nothing is deleted.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let mut conn = match path {
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Store(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                Connection::open(p).map_err(db_err)?
            }
            None => Connection::open_in_memory().map_err(db_err)?,
        };
        // The first reads tell a database from any other file, and a newer schema, before
        // anything is written (even the journal mode is a write).
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(db_err)?;
        known_version(&conn)?;
        if path.is_some() {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(db_err)?;
            // Writes of what the server has survive a crash of the app; queue writes switch
            // to FULL (see `Db::sync`) and survive a power loss too.
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(db_err)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrate(&mut conn, SCHEMA_VERSION)?;
        // A process that died with sends in flight: they go out again (same ids; the server
        // drops repeats).
        conn.execute("UPDATE outbox SET in_flight = 0 WHERE in_flight = 1", [])
            .map_err(db_err)?;
        Ok(Self {
            db: Mutex::new(Db {
                conn,
                file: path.is_some(),
                full: false,
                queue_unsynced: false,
            }),
            path: path.map(Path::to_path_buf),
        })
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write (or read) of what the server has: crash-safe, not synced to disk.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut db = self.lock();
        db.sync(false).map_err(db_err)?;
        f(&mut db.conn).map_err(db_err)
    }

    /// One transaction of what the server has (see [`Store::with`]).
    fn tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        self.tx_as(Durability::Normal, f)
    }

    /// One transaction of the send queue: synced to disk at commit.
    fn durable_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        self.tx_as(Durability::Full, f)
    }

    fn tx_as<T>(
        &self,
        how: Durability,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        // Decided, committed and recorded under one lock: a queue write is either synced
        // by a commit or seen as waiting for one.
        let mut db = self.lock();
        let full = match how {
            Durability::Full => true,
            Durability::IfQueueWaits => db.queue_unsynced,
            Durability::Normal | Durability::Deferred => false,
        };
        db.sync(full).map_err(db_err)?;
        let tx = db.conn.transaction().map_err(db_err)?;
        let v = f(&tx).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        if full {
            // The WAL is synced up to this commit, earlier queue writes included.
            db.queue_unsynced = false;
        } else if matches!(how, Durability::Deferred) {
            db.queue_unsynced = true;
        }
        Ok(v)
    }

    /// Syncs queue writes committed without a sync (see [`Store::queue_new_message`]) to
    /// disk: for the send queue when it cannot send them now. A no-op when there are none.
    pub fn sync_queue(&self) -> Result<()> {
        let mut db = self.lock();
        if !db.queue_unsynced {
            return Ok(());
        }
        db.sync(false).map_err(db_err)?;
        // In WAL mode with `synchronous = NORMAL` a checkpoint syncs the WAL first, then the
        // database file once it is copied.
        db.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(db_err)?;
        db.queue_unsynced = false;
        Ok(())
    }

    /// Opens an existing store file read-only, without migrating or writing anything (not
    /// even the journal mode): for a process beside the app, such as an iOS Notification
    /// Service Extension, that only looks things up. Errors: `Store` (missing or unreadable
    /// file), `StoreCorrupt`, `StoreTooNew`.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(db_err)?;
        known_version(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(db_err)?;
        Ok(Self {
            db: Mutex::new(Db {
                conn,
                file: false,
                full: false,
                queue_unsynced: false,
            }),
            path: Some(path.to_path_buf()),
        })
    }

    /// The size of the database on disk (main file + WAL), 0 in memory.
    pub fn size_on_disk(&self) -> u64 {
        let Some(p) = &self.path else { return 0 };
        let wal = PathBuf::from(format!("{}-wal", p.display()));
        [p.as_path(), wal.as_path()]
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    }

    // ------------------------------------------------------------------ users

    /// Stores users as last seen (replacing older copies) and returns those that are new
    /// or changed, in the given order.
    pub fn put_users(&self, users: &[User]) -> Result<Vec<User>> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.tx(|tx| {
            let mut changed = Vec::new();
            for u in users.iter().filter(|u| u.id != 0) {
                let text = json(u);
                let old: Option<String> = tx
                    .query_row("SELECT json FROM users WHERE id = ?1", [u.id], |r| r.get(0))
                    .optional()?;
                tx.execute(
                    "INSERT INTO users (id, json, seen_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET json = excluded.json, seen_at = excluded.seen_at",
                    params![u.id, text, now],
                )?;
                if old.as_deref() != Some(text.as_str()) {
                    changed.push(u.clone());
                }
            }
            Ok(changed)
        })
    }

    /// A stored user.
    pub fn user(&self, id: u64) -> Result<Option<User>> {
        let text: Option<String> = self.with(|c| {
            c.query_row("SELECT json FROM users WHERE id = ?1", [id], |r| r.get(0))
                .optional()
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The stored users among `ids`, in the order of `ids` (absent ones skipped).
    pub fn users(&self, ids: &[u64]) -> Result<Vec<User>> {
        ids.iter()
            .filter_map(|id| self.user(*id).transpose())
            .collect()
    }

    // ------------------------------------------------------------------ cursors

    /// The saved value of the sync cursor `name`, if any.
    pub fn cursor(&self, name: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT value FROM cursors WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Saves the sync cursor `name`.
    pub fn set_cursor(&self, name: &str, value: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO cursors (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = ?2",
                [name, value],
            )
            .map(drop)
        })
    }

    // ------------------------------------------------------------------ dialogs

    /// Inserts or replaces dialogs from the server. The server's unread count wins when it
    /// has one; the local one stays otherwise.
    pub fn put_dialogs(&self, dialogs: &[Dialog]) -> Result<()> {
        self.tx(|tx| {
            let mut old = tx.prepare_cached("SELECT json FROM dialogs WHERE id = ?1")?;
            let mut st = tx.prepare_cached(
                "INSERT INTO dialogs (id, activity, unread, json) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET activity = max(activity, ?2), \
                 unread = coalesce(?5, unread), json = ?4",
            )?;
            for d in dialogs {
                let mut d = d.clone();
                let stored: Option<String> = old.query_row([&d.id], |r| r.get(0)).optional()?;
                if let Some(stored) = stored.map(|j| from_json::<Dialog>(&j)) {
                    // A newer last message known here (queued, or received after the
                    // server's copy was made) stays.
                    let newer = match (stored.last_message_date_sent, d.last_message_date_sent) {
                        (Some(local), Some(server)) => local > server,
                        (Some(_), None) => true,
                        _ => false,
                    };
                    if newer {
                        d.last_message = stored.last_message;
                        d.last_message_id = stored.last_message_id;
                        d.last_message_user_id = stored.last_message_user_id;
                        d.last_message_date_sent = stored.last_message_date_sent;
                    }
                }
                let unread = d.unread_messages_count.map(|u| u as i64);
                st.execute(params![
                    d.id,
                    dialog_activity(&d),
                    unread.unwrap_or(0),
                    json(&d),
                    unread
                ])?;
            }
            Ok(())
        })
    }

    /// A dialog with its local unread count, last message and activity applied.
    pub fn dialog(&self, id: &str) -> Result<Option<Dialog>> {
        self.with(|c| {
            c.prepare_cached(DIALOG_BY_ID)?
                .query_row([id], dialog_row)
                .optional()
        })
    }

    /// Dialogs by last activity, newest first; `after` = the last `(activity, id)` of the
    /// previous page.
    pub fn dialogs_page(&self, limit: u32, after: Option<(i64, &str)>) -> Result<Vec<Dialog>> {
        self.with(|c| match after {
            // Two statements, so that later pages seek in the index instead of scanning it.
            None => {
                let mut st = c.prepare_cached(
                    "SELECT json, unread FROM dialogs ORDER BY activity DESC, id DESC LIMIT ?1",
                )?;
                let rows = st.query_map(params![limit], dialog_row)?;
                rows.collect()
            }
            Some((a, id)) => {
                let mut st = c.prepare_cached(
                    "SELECT json, unread FROM dialogs WHERE (activity, id) < (?1, ?2) \
                     ORDER BY activity DESC, id DESC LIMIT ?3",
                )?;
                let rows = st.query_map(params![a, id, limit], dialog_row)?;
                rows.collect()
            }
        })
    }

    /// The stored activity (sort key) of a dialog.
    pub fn dialog_key(&self, id: &str) -> Result<Option<i64>> {
        self.with(|c| {
            c.prepare_cached("SELECT activity FROM dialogs WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()
        })
    }

    /// Every dialog at or before `upto` = `(activity, id)` in the list's order (newest
    /// activity first; `None` = all): the window of a live dialog list.
    pub fn dialogs_upto(&self, upto: Option<(i64, &str)>) -> Result<Vec<Dialog>> {
        let (a, id) = upto.unwrap_or((i64::MIN, ""));
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT json, unread FROM dialogs WHERE (activity, id) >= (?1, ?2) \
                 ORDER BY activity DESC, id DESC",
            )?;
            let rows = st.query_map(params![a, id], dialog_row)?;
            rows.collect()
        })
    }

    /// Removes a dialog and its cached messages (not its queued sends).
    pub fn remove_dialog(&self, id: &str) -> Result<bool> {
        self.tx(|tx| {
            tx.execute(
                "DELETE FROM messages WHERE dialog_id = ?1 AND id NOT IN \
                 (SELECT message_id FROM outbox WHERE dialog_id = ?1)",
                [id],
            )?;
            Ok(tx.execute("DELETE FROM dialogs WHERE id = ?1", [id])? > 0)
        })
    }

    /// Sets the unread count of the dialog `id`.
    pub fn set_unread(&self, id: &str, unread: u64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE dialogs SET unread = ?2 WHERE id = ?1",
                params![id, unread as i64],
            )
            .map(drop)
        })
    }

    /// Records a new newest message of a dialog (if it is newer than the current one) and
    /// adds `unread` to its unread count. Returns the updated dialog, `None` if unknown.
    pub fn bump_dialog(&self, m: &LocalMessage, unread: u64) -> Result<Option<Dialog>> {
        let Some(mut d) = self.dialog(&m.dialog_id)? else {
            return Ok(None);
        };
        let count = bump(&mut d, m, unread);
        self.with(|c| {
            c.prepare_cached(DIALOG_BUMP)?
                .execute(params![d.id, json(&d), count as i64, m.date_sent])
                .map(drop)
        })?;
        self.dialog(&m.dialog_id)
    }

    /// After message `changed` was edited, cancelled or deleted: if it is the dialog's
    /// last message, the dialog shows the newest stored message instead (or its new body).
    /// Returns the dialog when it changed.
    pub fn relink_last(&self, dialog_id: &str, changed: &str) -> Result<Option<Dialog>> {
        let Some(mut d) = self.dialog(dialog_id)? else {
            return Ok(None);
        };
        if d.last_message_id.as_deref() != Some(changed) {
            return Ok(None);
        }
        let newest = self.timeline_edge(dialog_id, "DESC", "")?;
        d.last_message = newest.as_ref().map(|m| m.body.clone());
        d.last_message_id = newest.as_ref().map(|m| m.id.clone());
        d.last_message_user_id = newest.as_ref().map(|m| m.sender_id);
        d.last_message_date_sent = newest.as_ref().map(|m| m.date_sent);
        self.with(|c| {
            c.execute(
                "UPDATE dialogs SET json = ?2 WHERE id = ?1",
                params![d.id, json(&d)],
            )
            .map(drop)
        })?;
        self.dialog(dialog_id)
    }

    /// Whether the whole history of the dialog is in the store.
    pub fn history_complete(&self, dialog_id: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT history_complete FROM dialogs WHERE id = ?1",
                [dialog_id],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(false))
        })
    }

    /// Records that the whole history of the dialog is in the store.
    pub fn set_history_complete(&self, dialog_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE dialogs SET history_complete = 1 WHERE id = ?1",
                [dialog_id],
            )
            .map(drop)
        })
    }

    // ------------------------------------------------------------------ messages

    /// Adds messages unknown so far (by id); known ones get the server's statuses,
    /// reactions and body merged in, keeping local queue state. Returns the added ones.
    pub fn put_messages(&self, msgs: &[LocalMessage]) -> Result<Vec<LocalMessage>> {
        let mut added = Vec::new();
        self.tx(|tx| {
            let mut insert = tx.prepare_cached(message_insert!("INSERT OR IGNORE"))?;
            let mut merge = tx.prepare_cached(MESSAGE_MERGE)?;
            for m in msgs {
                if insert_row(&mut insert, m)? == 1 {
                    let mut m = m.clone();
                    m.seq = tx.last_insert_rowid();
                    added.push(m);
                } else {
                    merge_row(&mut merge, m)?;
                }
            }
            Ok(())
        })?;
        Ok(added)
    }

    /// Writes a burst of received messages (real-time, oldest first) in one transaction:
    /// unknown ids are added (and bump their dialog's preview, activity and, when flagged,
    /// unread count, as [`Store::bump_dialog`]), known ones get the server's state merged
    /// (as [`Store::put_messages`]). Each touched dialog is read and written once.
    ///
    /// If the transaction fails, nothing of it is kept and every message is then written on
    /// its own, so that one bad message loses no other: [`Received::errors`] lists those
    /// that still failed. Errors: `Store` only when the first attempt of a single message
    /// fails.
    pub fn put_received(&self, msgs: Vec<Incoming>) -> Result<Received> {
        match self.tx(|tx| received_tx(tx, &msgs)) {
            Ok((seqs, dialogs, unknown)) => Ok(received(msgs, &seqs, dialogs, unknown)),
            Err(e) if msgs.len() <= 1 => Err(e),
            Err(e) => {
                tracing::warn!(target: "cubechat_core::store", error = %e, count = msgs.len(),
                    "a burst of received messages failed; writing them one by one");
                let mut all = Received::default();
                for m in msgs {
                    let one = std::slice::from_ref(&m);
                    match self.tx(|tx| received_tx(tx, one)) {
                        Ok((seqs, dialogs, unknown)) => {
                            let r = received(vec![m], &seqs, dialogs, unknown);
                            all.added.extend(r.added);
                            for d in r.dialogs {
                                if !all.dialogs.contains(&d) {
                                    all.dialogs.push(d);
                                }
                            }
                            for u in r.unknown {
                                if !all.unknown.contains(&u) {
                                    all.unknown.push(u);
                                }
                            }
                        }
                        Err(e) => all.errors.push(e),
                    }
                }
                Ok(all)
            }
        }
    }

    /// Applies a burst of the server's acknowledgements (stanza ids) in one transaction:
    /// each known outbox row is removed and a message it sent moves from `Queued` to
    /// `Sent`. Unknown ids are skipped. Returns the rows found, in order.
    pub fn ack_sent(&self, op_ids: &[&str]) -> Result<Vec<Acked>> {
        self.tx(|tx| {
            let mut find =
                tx.prepare_cached("SELECT message_id, kind FROM outbox WHERE op_id = ?1")?;
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE op_id = ?1")?;
            let mut sent = tx.prepare_cached(
                "UPDATE messages SET state = 1, failure = NULL WHERE id = ?1 AND state = 0",
            )?;
            let mut read = tx.prepare_cached(MESSAGE_BY_ID)?;
            let mut acked = Vec::with_capacity(op_ids.len());
            for op_id in op_ids {
                let row: Option<(String, i64)> = find
                    .query_row([op_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                let Some((message_id, kind)) = row else {
                    continue;
                };
                del.execute([op_id])?;
                let kind = outbox_kind(kind);
                let moved = kind == OutboxKind::Message && sent.execute([&message_id])? == 1;
                let sent = if moved {
                    read.query_row([&message_id], message_row).optional()?
                } else {
                    None
                };
                acked.push(Acked {
                    op_id: (*op_id).to_owned(),
                    message_id,
                    kind,
                    sent,
                });
            }
            Ok(acked)
        })
    }

    /// The stored message `id`, if any.
    pub fn message(&self, id: &str) -> Result<Option<LocalMessage>> {
        self.with(|c| {
            c.prepare_cached(MESSAGE_BY_ID)?
                .query_row([id], message_row)
                .optional()
        })
    }

    /// Up to `limit` messages of a dialog older than `before` = `(date_sent, seq)` (or the
    /// newest), returned oldest first.
    pub fn timeline(
        &self,
        dialog_id: &str,
        before: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<LocalMessage>> {
        let mut v: Vec<LocalMessage> = self.with(|c| {
            let (d, s) = before.unwrap_or((i64::MAX, i64::MAX));
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE dialog_id = ?1 \
                 AND (date_sent, seq) < (?2, ?3) ORDER BY date_sent DESC, seq DESC LIMIT ?4"
            ))?;
            let rows = st.query_map(params![dialog_id, d, s, limit], message_row)?;
            rows.collect()
        })?;
        v.reverse();
        Ok(v)
    }

    /// Every message of a dialog from `from` = `(date_sent, seq)` on (`None` = all), oldest
    /// first: the window of a live timeline.
    pub fn timeline_from(
        &self,
        dialog_id: &str,
        from: Option<(i64, i64)>,
    ) -> Result<Vec<LocalMessage>> {
        let (d, s) = from.unwrap_or((i64::MIN, i64::MIN));
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE dialog_id = ?1 \
                 AND (date_sent, seq) >= (?2, ?3) ORDER BY date_sent, seq"
            ))?;
            let rows = st.query_map(params![dialog_id, d, s], message_row)?;
            rows.collect()
        })
    }

    /// The oldest cached message of a dialog that the server has: this user's unsent
    /// (queued or failed) messages are left out, they may be older than the cached
    /// stretch of history (kept by [`Store::trim_older`]).
    pub fn oldest(&self, dialog_id: &str) -> Result<Option<LocalMessage>> {
        self.timeline_edge(
            dialog_id,
            "ASC",
            "AND NOT (outgoing = 1 AND state IN (0, 4))",
        )
    }

    fn timeline_edge(
        &self,
        dialog_id: &str,
        dir: &str,
        filter: &str,
    ) -> Result<Option<LocalMessage>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE dialog_id = ?1 {filter} \
                     ORDER BY date_sent {dir}, seq {dir} LIMIT 1"
                ),
                [dialog_id],
                message_row,
            )
            .optional()
        })
    }

    /// Drops a dialog's cached messages older than `date_sent`, so that the cache stays one
    /// contiguous stretch of history, and returns their ids (live timelines must hear of
    /// each). Kept: this user's messages not yet acknowledged (queued or failed) and any
    /// with a pending send (edit, delete). The start of history is no longer cached.
    pub fn trim_older(&self, dialog_id: &str, date_sent: i64) -> Result<Vec<String>> {
        self.tx(|tx| {
            let ids: Vec<String> = {
                let mut st = tx.prepare_cached(
                    "SELECT id FROM messages WHERE dialog_id = ?1 AND date_sent < ?2 \
                     AND NOT (outgoing = 1 AND state IN (0, 4)) AND id NOT IN \
                     (SELECT message_id FROM outbox WHERE dialog_id = ?1) \
                     ORDER BY date_sent, seq",
                )?;
                let rows = st.query_map(params![dialog_id, date_sent], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut del = tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
            for id in &ids {
                del.execute([id])?;
            }
            if !ids.is_empty() {
                tx.execute(
                    "UPDATE dialogs SET history_complete = 0 WHERE id = ?1",
                    [dialog_id],
                )?;
            }
            Ok(ids)
        })
    }

    /// Sets a message's state (and failure reason). Returns the message, `None` if unknown.
    pub fn set_state(&self, id: &str, state: &MessageState) -> Result<Option<LocalMessage>> {
        let reason = match state {
            MessageState::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        let n = self.with(|c| {
            c.execute(
                "UPDATE messages SET state = ?2, failure = ?3 WHERE id = ?1",
                params![id, state.code(), reason],
            )
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.message(id)
    }

    /// Records that `user_id` received (or read) `id`; the state only moves forward.
    pub fn mark(&self, id: &str, user_id: u64, read: bool) -> Result<Option<LocalMessage>> {
        let Some(mut m) = self.message(id)? else {
            return Ok(None);
        };
        let list = if read {
            &mut m.read_ids
        } else {
            &mut m.delivered_ids
        };
        if !list.contains(&user_id) {
            list.push(user_id);
        }
        if read && !m.delivered_ids.contains(&user_id) {
            m.delivered_ids.push(user_id);
        }
        let next = if read {
            MessageState::Read
        } else {
            MessageState::Delivered
        };
        if m.outgoing
            && matches!(
                m.state,
                MessageState::Sent | MessageState::Delivered | MessageState::Queued
            )
            && next.code() > m.state.code()
        {
            m.state = next;
        }
        self.with(|c| {
            c.execute(
                "UPDATE messages SET read_ids = ?2, delivered_ids = ?3, state = ?4, failure = NULL \
                 WHERE id = ?1",
                params![id, json(&m.read_ids), json(&m.delivered_ids), m.state.code()],
            )
            .map(drop)
        })?;
        Ok(Some(m))
    }

    /// Replaces a message's body (an edit). Returns the message, `None` if unknown.
    pub fn edit(&self, id: &str, body: &str) -> Result<Option<LocalMessage>> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE messages SET body = ?2, edited = 1 WHERE id = ?1",
                params![id, body],
            )
        })?;
        if n == 0 {
            return Ok(None);
        }
        self.message(id)
    }

    /// Removes a message. Returns its dialog if it was there.
    pub fn remove_message(&self, id: &str) -> Result<Option<String>> {
        self.with(|c| {
            let d: Option<String> = c
                .query_row("SELECT dialog_id FROM messages WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?;
            c.execute("DELETE FROM messages WHERE id = ?1", [id])?;
            Ok(d)
        })
    }

    /// Applies a reaction change by `user_id` (`me` decides whether it is one's own).
    pub fn react(
        &self,
        id: &str,
        user_id: u64,
        me: u64,
        add: &[String],
        remove: &[String],
    ) -> Result<Option<LocalMessage>> {
        let Some(mut m) = self.message(id)? else {
            return Ok(None);
        };
        let r = &mut m.reactions;
        for x in remove {
            if let Some(n) = r.total.get_mut(x) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    r.total.remove(x);
                }
            }
            if user_id == me {
                r.own.retain(|o| o != x);
            }
        }
        for x in add {
            if user_id == me && r.own.contains(x) {
                continue;
            }
            *r.total.entry(x.clone()).or_insert(0) += 1;
            if user_id == me {
                r.own.push(x.clone());
            }
        }
        self.with(|c| {
            c.execute(
                "UPDATE messages SET reactions = ?2 WHERE id = ?1",
                params![id, json(&m.reactions)],
            )
            .map(drop)
        })?;
        Ok(Some(m))
    }

    // ------------------------------------------------------------------ outbox

    /// Writes a new outgoing message and its send order in one transaction.
    pub fn enqueue_message(&self, m: &LocalMessage, payload: &Payload) -> Result<LocalMessage> {
        let mut m = m.clone();
        m.state = MessageState::Queued;
        m.outgoing = true;
        self.durable_tx(|tx| {
            // A plain INSERT: an id that exists already fails the whole write.
            insert_message(tx, &m, false)?;
            m.seq = tx.last_insert_rowid();
            insert_outbox(tx, &m.id, &m.id, &m.dialog_id, OutboxKind::Message, payload)
        })?;
        Ok(m)
    }

    /// The send queue's one write of a new message: its local echo and its outbox row (as
    /// [`Store::enqueue_message`]) and, when it is saved to history, the dialog's preview
    /// and activity (as [`Store::bump_dialog`]), in one transaction. `durable`: synced to
    /// disk at commit; else the sync comes with [`Store::start_sending`] (before the message
    /// leaves, together with the rest of its burst) or [`Store::sync_queue`]. Returns the
    /// stored message and whether its dialog changed (not when it is not saved to history
    /// or the store does not know the dialog).
    pub fn queue_new_message(
        &self,
        m: &LocalMessage,
        payload: &Payload,
        durable: bool,
    ) -> Result<(LocalMessage, bool)> {
        let mut m = m.clone();
        m.state = MessageState::Queued;
        m.outgoing = true;
        let how = if durable {
            Durability::Full
        } else {
            Durability::Deferred
        };
        let dialog = self.tx_as(how, |tx| {
            // A plain INSERT: an id that exists already fails the whole write.
            insert_message(tx, &m, false)?;
            m.seq = tx.last_insert_rowid();
            insert_outbox(tx, &m.id, &m.id, &m.dialog_id, OutboxKind::Message, payload)?;
            if !payload.save_to_history {
                return Ok(false);
            }
            let mut touched = Touched::default();
            touched.bump(&m, 0);
            Ok(!touched.write(tx)?.0.is_empty())
        })?;
        Ok((m, dialog))
    }

    /// Queues an edit or a delete of a sent message (the local copy changes at once).
    pub fn enqueue_change(
        &self,
        op_id: &str,
        m: &LocalMessage,
        kind: OutboxKind,
        payload: &Payload,
    ) -> Result<()> {
        self.durable_tx(|tx| {
            match kind {
                OutboxKind::Edit => {
                    tx.execute(
                        "UPDATE messages SET body = ?2, edited = 1 WHERE id = ?1",
                        params![m.id, payload.body],
                    )?;
                }
                _ => {
                    tx.execute("DELETE FROM messages WHERE id = ?1", [&m.id])?;
                }
            }
            insert_outbox(tx, op_id, &m.id, &m.dialog_id, kind, payload)
        })
    }

    /// Changes the payload of a queued (not yet sent) message and its local copy.
    pub fn update_queued(&self, message_id: &str, payload: &Payload) -> Result<bool> {
        self.durable_tx(|tx| {
            let n = tx.execute(
                "UPDATE outbox SET payload = ?2 WHERE op_id = ?1 AND kind = 0",
                params![message_id, json(payload)],
            )?;
            if n > 0 {
                tx.execute(
                    "UPDATE messages SET body = ?2, attachments = ?3 WHERE id = ?1",
                    params![message_id, payload.body, json(&payload.attachments)],
                )?;
            }
            Ok(n > 0)
        })
    }

    /// The pending sends in order (oldest first), including those in flight.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, op_id, message_id, dialog_id, kind, payload, in_flight, attempts, \
                 failed FROM outbox ORDER BY seq",
            )?;
            let rows = st.query_map([], outbox_row)?;
            rows.collect()
        })
    }

    /// The outbox row sending `op_id`.
    pub fn outbox_item(&self, op_id: &str) -> Result<Option<OutboxItem>> {
        self.with(|c| {
            c.query_row(
                "SELECT seq, op_id, message_id, dialog_id, kind, payload, in_flight, attempts, \
                 failed FROM outbox WHERE op_id = ?1",
                [op_id],
                outbox_row,
            )
            .optional()
        })
    }

    /// This user's failed messages that have no outbox row (rejected after the server
    /// acknowledged them), oldest first.
    pub fn failed_outgoing(&self) -> Result<Vec<LocalMessage>> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE state = 4 AND outgoing = 1 \
                 AND id NOT IN (SELECT op_id FROM outbox) ORDER BY seq"
            ))?;
            let rows = st.query_map([], message_row)?;
            rows.collect()
        })
    }

    /// The sends the queue may start now (neither in flight nor failed), in order.
    pub fn pending_outbox(&self) -> Result<Vec<OutboxItem>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, op_id, message_id, dialog_id, kind, payload, in_flight, attempts, \
                 failed FROM outbox WHERE in_flight = 0 AND failed = 0 ORDER BY seq",
            )?;
            let rows = st.query_map([], outbox_row)?;
            rows.collect()
        })
    }

    /// Marks a row as handed to the connection (or back to waiting).
    pub fn set_in_flight(&self, op_id: &str, in_flight: bool) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE outbox SET in_flight = ?2, attempts = attempts + ?2 WHERE op_id = ?1",
            )?
            .execute(params![op_id, in_flight])
            .map(drop)
        })
    }

    /// Hands sends to the connection: marks the rows in flight (one more attempt each) in
    /// one transaction, synced to disk when queue writes wait for a sync (a group commit:
    /// nothing leaves the device before it is on disk).
    pub fn start_sending(&self, op_ids: &[&str]) -> Result<()> {
        self.tx_as(Durability::IfQueueWaits, |tx| {
            let mut st = tx.prepare_cached(
                "UPDATE outbox SET in_flight = 1, attempts = attempts + 1 WHERE op_id = ?1",
            )?;
            for id in op_ids {
                st.execute([id])?;
            }
            Ok(())
        })
    }

    /// Puts sends that could not be handed over back to waiting (their attempts stay
    /// counted), in one transaction.
    pub fn stop_sending(&self, op_ids: &[&str]) -> Result<()> {
        self.tx(|tx| {
            let mut st = tx.prepare_cached("UPDATE outbox SET in_flight = 0 WHERE op_id = ?1")?;
            for id in op_ids {
                st.execute([id])?;
            }
            Ok(())
        })
    }

    /// Puts every send in flight back to waiting (its session is gone); returns how many.
    pub fn reset_in_flight(&self) -> Result<usize> {
        self.with(|c| {
            c.prepare_cached("UPDATE outbox SET in_flight = 0 WHERE in_flight = 1")?
                .execute([])
        })
    }

    /// Removes an outbox row; true if it was there.
    pub fn remove_outbox(&self, op_id: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM outbox WHERE op_id = ?1", [op_id])? > 0))
    }

    /// Fails a queued message: its outbox row stays (flagged, skipped by the queue) for
    /// `retry`, the message shows the reason.
    pub fn fail_queued(&self, message_id: &str, reason: &str) -> Result<Option<LocalMessage>> {
        self.durable_tx(|tx| {
            tx.execute(
                "UPDATE outbox SET failed = 1, in_flight = 0 WHERE op_id = ?1 AND kind = 0",
                [message_id],
            )?;
            tx.execute(
                "UPDATE messages SET state = 4, failure = ?2 WHERE id = ?1",
                params![message_id, reason],
            )?;
            Ok(())
        })?;
        self.message(message_id)
    }

    /// Puts a message into the queue again, at the end: a failed one (its kept row moves),
    /// or one whose send must be repeated with `payload` (no row left, e.g. bounced after
    /// the server acknowledged it).
    pub fn requeue(&self, message_id: &str, payload: &Payload, dialog_id: &str) -> Result<()> {
        self.durable_tx(|tx| {
            let kept: Option<String> = tx
                .query_row(
                    "SELECT payload FROM outbox WHERE op_id = ?1 AND kind = 0",
                    [message_id],
                    |r| r.get(0),
                )
                .optional()?;
            let payload = kept.map_or_else(|| payload.clone(), |p| from_json(&p));
            tx.execute("DELETE FROM outbox WHERE op_id = ?1", [message_id])?;
            tx.execute(
                "UPDATE messages SET state = 0, failure = NULL WHERE id = ?1",
                [message_id],
            )?;
            insert_outbox(
                tx,
                message_id,
                message_id,
                dialog_id,
                OutboxKind::Message,
                &payload,
            )
        })
    }

    /// Drops a queued or failed message and any send of it.
    pub fn cancel(&self, message_id: &str) -> Result<()> {
        self.durable_tx(|tx| {
            tx.execute("DELETE FROM outbox WHERE message_id = ?1", [message_id])?;
            tx.execute("DELETE FROM messages WHERE id = ?1", [message_id])?;
            Ok(())
        })
    }
}

/// Known messages get the server's statuses, reactions and body, keeping local queue state.
const MESSAGE_MERGE: &str = "UPDATE messages SET read_ids = ?2, delivered_ids = ?3, \
    reactions = ?4, body = ?5, state = CASE WHEN state IN (1, 2, 3) AND ?6 IN (1, 2, 3) \
    THEN max(state, ?6) ELSE state END WHERE id = ?1";

/// The JSON of a list column, without serde for the usual empty list.
fn json_list<T: Serialize>(v: &[T]) -> Cow<'static, str> {
    if v.is_empty() {
        Cow::Borrowed("[]")
    } else {
        Cow::Owned(json(&v))
    }
}

/// The JSON of the custom parameters, without serde when there are none.
fn json_custom(v: &BTreeMap<String, String>) -> Cow<'static, str> {
    if v.is_empty() {
        Cow::Borrowed("{}")
    } else {
        Cow::Owned(json(v))
    }
}

/// The JSON of a reactions summary, without serde when there are none (`{}` reads back as
/// the empty summary).
fn json_reactions(r: &ReactionsSummary) -> Cow<'static, str> {
    if r.own.is_empty() && r.total.is_empty() {
        Cow::Borrowed("{}")
    } else {
        Cow::Owned(json(r))
    }
}

/// Inserts a message row, failing on a known id (`ignore`: skipping it). Returns rows
/// written.
fn insert_message(tx: &Transaction<'_>, m: &LocalMessage, ignore: bool) -> rusqlite::Result<usize> {
    let mut st = tx.prepare_cached(if ignore {
        message_insert!("INSERT OR IGNORE")
    } else {
        message_insert!("INSERT")
    })?;
    insert_row(&mut st, m)
}

/// Runs a `message_insert!` statement for `m` (prepared once per burst by the hot path:
/// taking a statement from the cache and giving it back costs about as much as binding).
fn insert_row(st: &mut Statement<'_>, m: &LocalMessage) -> rusqlite::Result<usize> {
    st.execute(params![
        m.id,
        m.dialog_id,
        m.sender_id as i64,
        m.recipient_id.map(|v| v as i64),
        m.body,
        m.date_sent,
        m.state.code(),
        match &m.state {
            MessageState::Failed { reason } => Some(reason.as_str()),
            _ => None,
        },
        m.outgoing,
        m.edited,
        json_list(&m.attachments),
        json_custom(&m.custom),
        json_list(&m.read_ids),
        json_list(&m.delivered_ids),
        json_reactions(&m.reactions),
    ])
}

/// Applies a new message to a dialog's preview (if it is not older than the current last
/// message) and adds `unread` to its unread count; returns the new count.
fn bump(d: &mut Dialog, m: &LocalMessage, unread: u64) -> u64 {
    if d.last_message_date_sent.is_none_or(|t| t <= m.date_sent) {
        d.last_message = Some(m.body.clone());
        d.last_message_id = Some(m.id.clone());
        d.last_message_user_id = Some(m.sender_id);
        d.last_message_date_sent = Some(m.date_sent);
    }
    let count = d.unread_messages_count.unwrap_or(0) + unread;
    d.unread_messages_count = Some(count);
    count
}

/// What a burst of new messages does to one dialog.
struct Bump<'a> {
    dialog_id: &'a str,
    /// The message that becomes the dialog's last one unless the stored one is newer: the
    /// last of the newest `date_sent` (as the messages one by one would leave it).
    last: &'a LocalMessage,
    unread: u64,
}

/// The dialogs a burst of new messages touches, written once each at the end, in SQL
/// (`json_set` on the stored JSON: no decode and encode of the dialog per burst).
#[derive(Default)]
struct Touched<'a> {
    bumps: Vec<Bump<'a>>,
}

impl<'a> Touched<'a> {
    /// Counts an added message for its dialog.
    fn bump(&mut self, m: &'a LocalMessage, unread: u64) {
        match self.bumps.iter_mut().find(|b| b.dialog_id == m.dialog_id) {
            Some(b) => {
                if m.date_sent >= b.last.date_sent {
                    b.last = m;
                }
                b.unread += unread;
            }
            None => self.bumps.push(Bump {
                dialog_id: &m.dialog_id,
                last: m,
                unread,
            }),
        }
    }

    /// Writes the dialogs (as [`Store::bump_dialog`] would, message by message) and returns
    /// the ids of those changed and of those the store does not know.
    fn write(self, tx: &Transaction<'_>) -> rusqlite::Result<(Vec<String>, Vec<String>)> {
        let (mut changed, mut unknown) = (Vec::new(), Vec::new());
        if self.bumps.is_empty() {
            return Ok((changed, unknown));
        }
        let mut st = tx.prepare_cached(DIALOG_NEW_MESSAGES)?;
        for b in self.bumps {
            let m = b.last;
            let n = st.execute(params![
                b.dialog_id,
                m.body,
                m.id,
                m.sender_id as i64,
                m.date_sent,
                b.unread as i64
            ])?;
            if n == 0 {
                unknown.push(b.dialog_id.to_owned());
            } else {
                changed.push(b.dialog_id.to_owned());
            }
        }
        Ok((changed, unknown))
    }
}

/// Merges a known message's server state in (see [`MESSAGE_MERGE`]).
fn merge_row(st: &mut Statement<'_>, m: &LocalMessage) -> rusqlite::Result<usize> {
    st.execute(params![
        m.id,
        json_list(&m.read_ids),
        json_list(&m.delivered_ids),
        json_reactions(&m.reactions),
        m.body,
        m.state.code()
    ])
}

fn insert_outbox(
    tx: &Transaction<'_>,
    op_id: &str,
    message_id: &str,
    dialog_id: &str,
    kind: OutboxKind,
    payload: &Payload,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO outbox (op_id, message_id, dialog_id, kind, payload, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, strftime('%s', 'now'))",
        params![op_id, message_id, dialog_id, kind as i64, json(payload)],
    )
    .map(drop)
}

/// One attempt at a burst of received messages: the `seq` of each added one (`None`: known
/// id), the changed dialogs, the unknown ones.
type ReceivedRows = (Vec<Option<i64>>, Vec<String>, Vec<String>);

fn received_tx(tx: &Transaction<'_>, msgs: &[Incoming]) -> rusqlite::Result<ReceivedRows> {
    let mut seqs = Vec::with_capacity(msgs.len());
    let mut touched = Touched::default();
    let mut insert = tx.prepare_cached(message_insert!("INSERT OR IGNORE"))?;
    let mut merge = tx.prepare_cached(MESSAGE_MERGE)?;
    for (m, unread) in msgs {
        if insert_row(&mut insert, m)? == 1 {
            seqs.push(Some(tx.last_insert_rowid()));
            touched.bump(m, u64::from(*unread));
        } else {
            merge_row(&mut merge, m)?;
            seqs.push(None);
        }
    }
    let (dialogs, unknown) = touched.write(tx)?;
    Ok((seqs, dialogs, unknown))
}

/// The result of a committed burst: the added messages moved out of `msgs`.
fn received(
    msgs: Vec<Incoming>,
    seqs: &[Option<i64>],
    dialogs: Vec<String>,
    unknown: Vec<String>,
) -> Received {
    let added = msgs
        .into_iter()
        .zip(seqs)
        .filter_map(|((mut m, _), seq)| {
            m.seq = (*seq)?;
            Some(m)
        })
        .collect();
    Received {
        added,
        dialogs,
        unknown,
        errors: Vec::new(),
    }
}

fn dialog_row(r: &Row<'_>) -> rusqlite::Result<Dialog> {
    let mut d: Dialog = from_json(&r.get::<_, String>(0)?);
    d.unread_messages_count = Some(r.get::<_, i64>(1)?.max(0) as u64);
    Ok(d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp_file(tag: &str) -> PathBuf {
        let n: u64 = rand::random();
        std::env::temp_dir().join(format!("cubechat-store-{tag}-{n:x}.sqlite3"))
    }

    fn cleanup(p: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }

    fn dialog(id: &str, last: Option<i64>) -> Dialog {
        Dialog {
            id: id.into(),
            kind: 3,
            last_message_date_sent: last,
            created_at: Some("1970-01-01T00:00:05Z".into()),
            ..Default::default()
        }
    }

    fn msg(id: &str, dialog: &str, t: i64, sender: u64) -> LocalMessage {
        LocalMessage {
            id: id.into(),
            dialog_id: dialog.into(),
            sender_id: sender,
            recipient_id: None,
            body: format!("body {id}"),
            attachments: Vec::new(),
            custom: BTreeMap::new(),
            date_sent: t,
            state: if sender == 1 {
                MessageState::Sent
            } else {
                MessageState::Received
            },
            outgoing: sender == 1,
            edited: false,
            read_ids: Vec::new(),
            delivered_ids: Vec::new(),
            reactions: ReactionsSummary::default(),
            seq: 0,
        }
    }

    fn version(p: &Path) -> u32 {
        Connection::open(p)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn migrates_from_every_earlier_version_keeping_data() {
        for start in 0..SCHEMA_VERSION {
            let p = temp_file("migrate");
            {
                let mut c = Connection::open(&p).unwrap();
                migrate(&mut c, start).unwrap();
                if start >= 1 {
                    // Data written by a v1 build.
                    c.execute_batch(
                        "INSERT INTO dialogs (id, activity, unread, json)
                           VALUES ('d1', 100, 2, '{\"_id\":\"d1\",\"type\":3}');
                         INSERT INTO messages (id, dialog_id, sender_id, body, date_sent, state,
                           outgoing) VALUES ('m1', 'd1', 1, 'hi', 100, 0, 1);
                         INSERT INTO outbox (op_id, message_id, dialog_id, kind, payload,
                           in_flight, created_at)
                           VALUES ('m1', 'm1', 'd1', 0, '{\"body\":\"hi\"}', 1, 100);",
                    )
                    .unwrap();
                }
            }
            assert_eq!(version(&p), start);
            let s = Store::open(Some(&p)).unwrap();
            assert_eq!(version(&p), SCHEMA_VERSION, "from v{start}");
            if start >= 1 {
                let d = s.dialog("d1").unwrap().unwrap();
                assert_eq!(d.unread_messages_count, Some(2));
                let m = s.message("m1").unwrap().unwrap();
                assert_eq!(m.state, MessageState::Queued);
                assert_eq!(m.reactions, ReactionsSummary::default());
                assert!(!s.history_complete("d1").unwrap());
                let out = s.outbox().unwrap();
                assert_eq!(out.len(), 1);
                assert!(
                    !out[0].in_flight,
                    "in-flight sends go again after a restart"
                );
                assert!(out[0].payload.save_to_history);
                assert!(!out[0].failed);
            }
            drop(s);
            cleanup(&p);
        }
    }

    #[test]
    fn newer_or_corrupt_files_are_refused_and_left_alone() {
        let p = temp_file("newer");
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        assert_eq!(
            Store::open(Some(&p)).unwrap_err(),
            Error::StoreTooNew {
                found: SCHEMA_VERSION + 1,
                supported: SCHEMA_VERSION
            }
        );
        assert_eq!(std::fs::read(&p).unwrap(), before);
        cleanup(&p);

        let p = temp_file("corrupt");
        let junk = b"this is not a database, but it is somebody's file".repeat(100);
        std::fs::write(&p, &junk).unwrap();
        assert!(matches!(Store::open(Some(&p)), Err(Error::StoreCorrupt(_))));
        assert_eq!(std::fs::read(&p).unwrap(), junk);
        cleanup(&p);
    }

    #[test]
    fn messages_are_deduplicated_ordered_and_paged() {
        let s = Store::open(None).unwrap();
        s.put_dialogs(&[dialog("d", Some(1))]).unwrap();
        let batch: Vec<_> = (0..10)
            .map(|i| msg(&format!("m{i}"), "d", 100 + i / 3, 2))
            .collect();
        assert_eq!(s.put_messages(&batch).unwrap().len(), 10);
        assert!(s.put_messages(&batch).unwrap().is_empty(), "known ids");
        let last = s.timeline("d", None, 4).unwrap();
        let ids: Vec<_> = last.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["m6", "m7", "m8", "m9"]);
        let before = s
            .timeline("d", Some((last[0].date_sent, last[0].seq)), 100)
            .unwrap();
        assert_eq!(before.len(), 6);
        assert_eq!(before.last().unwrap().id, "m5");
        assert_eq!(s.oldest("d").unwrap().unwrap().id, "m0");
        let trimmed = s.trim_older("d", 102).unwrap();
        assert_eq!(trimmed, ["m0", "m1", "m2", "m3", "m4", "m5"]);
        assert_eq!(s.oldest("d").unwrap().unwrap().id, "m6");
    }

    #[test]
    fn trim_keeps_unsent_own_messages_and_forgets_the_history_start() {
        let s = Store::open(None).unwrap();
        s.put_dialogs(&[dialog("d", Some(1))]).unwrap();
        s.put_messages(&[msg("old", "d", 10, 2), msg("sent", "d", 11, 1)])
            .unwrap();
        s.set_history_complete("d").unwrap();
        let queued = LocalMessage {
            state: MessageState::Queued,
            ..msg("queued", "d", 12, 1)
        };
        s.enqueue_message(&queued, &Payload::default()).unwrap();
        let failed = LocalMessage {
            state: MessageState::Queued,
            ..msg("failed", "d", 13, 1)
        };
        s.enqueue_message(&failed, &Payload::default()).unwrap();
        s.fail_queued("failed", "rejected").unwrap();
        // Failed after the server acknowledged it: no outbox row, still unsent.
        s.put_messages(&[msg("bounced", "d", 14, 1)]).unwrap();
        s.set_state(
            "bounced",
            &MessageState::Failed {
                reason: "bounced".into(),
            },
        )
        .unwrap();
        // An edit waiting to be sent.
        s.put_messages(&[msg("edited", "d", 15, 1)]).unwrap();
        let edited = s.message("edited").unwrap().unwrap();
        s.enqueue_change("op", &edited, OutboxKind::Edit, &Payload::default())
            .unwrap();
        s.put_messages(&[msg("new", "d", 100, 2)]).unwrap();

        let trimmed = s.trim_older("d", 100).unwrap();
        assert_eq!(trimmed, ["old", "sent"]);
        let left: Vec<String> = s
            .timeline("d", None, 100)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(left, ["queued", "failed", "bounced", "edited", "new"]);
        assert_eq!(
            s.oldest("d").unwrap().unwrap().id,
            "edited",
            "the server's oldest cached message: unsent ones are local only"
        );
        assert!(
            !s.history_complete("d").unwrap(),
            "the trimmed messages load again from the server"
        );
        assert!(s.trim_older("d", 100).unwrap().is_empty());
    }

    #[test]
    fn states_only_move_forward_and_reactions_count() {
        let s = Store::open(None).unwrap();
        s.put_messages(&[msg("m", "d", 5, 1)]).unwrap();
        assert_eq!(
            s.mark("m", 2, true).unwrap().unwrap().state,
            MessageState::Read
        );
        let m = s.mark("m", 3, false).unwrap().unwrap();
        assert_eq!(
            m.state,
            MessageState::Read,
            "delivered after read stays read"
        );
        assert_eq!(m.read_ids, [2]);
        assert_eq!(m.delivered_ids, [2, 3]);
        let add = vec!["👍".to_owned()];
        s.react("m", 2, 1, &add, &[]).unwrap();
        let r = s.react("m", 1, 1, &add, &[]).unwrap().unwrap().reactions;
        assert_eq!(r.total.get("👍"), Some(&2));
        assert_eq!(r.own, add);
        let r = s.react("m", 1, 1, &[], &add).unwrap().unwrap().reactions;
        assert_eq!(r.total.get("👍"), Some(&1));
        assert!(r.own.is_empty());
        assert!(s.mark("unknown", 2, true).unwrap().is_none());
    }

    #[test]
    fn dialogs_sort_by_activity_and_keep_local_unread() {
        let s = Store::open(None).unwrap();
        s.put_dialogs(&[
            dialog("a", Some(10)),
            dialog("b", Some(30)),
            dialog("c", None),
        ])
        .unwrap();
        let ids = |v: Vec<Dialog>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(s.dialogs_page(10, None).unwrap()), ["b", "a", "c"]);
        assert_eq!(ids(s.dialogs_page(10, Some((10, "a"))).unwrap()), ["c"]);
        let d = s.bump_dialog(&msg("x", "a", 40, 2), 1).unwrap().unwrap();
        assert_eq!(d.last_message_id.as_deref(), Some("x"));
        assert_eq!(d.unread_messages_count, Some(1));
        assert_eq!(ids(s.dialogs_page(1, None).unwrap()), ["a"]);
        // A server copy without an unread count keeps the local one.
        s.put_dialogs(&[dialog("a", Some(40))]).unwrap();
        assert_eq!(
            s.dialog("a").unwrap().unwrap().unread_messages_count,
            Some(1)
        );
        assert!(s.remove_dialog("a").unwrap());
        assert!(s.dialog("a").unwrap().is_none());
    }

    #[test]
    fn last_message_follows_local_changes_and_survives_older_server_copies() {
        let s = Store::open(None).unwrap();
        s.put_dialogs(&[dialog("d", Some(10))]).unwrap();
        s.put_messages(&[msg("a", "d", 20, 1)]).unwrap();
        s.bump_dialog(&msg("a", "d", 20, 1), 0).unwrap();
        s.put_messages(&[msg("b", "d", 30, 1)]).unwrap();
        s.bump_dialog(&msg("b", "d", 30, 1), 0).unwrap();
        // The server's copy predates "b": the local last message stays.
        s.put_dialogs(&[dialog("d", Some(20))]).unwrap();
        assert_eq!(
            s.dialog("d").unwrap().unwrap().last_message_id.as_deref(),
            Some("b")
        );
        // A newer server copy wins.
        let mut newer = dialog("d", Some(40));
        newer.last_message_id = Some("c".into());
        s.put_dialogs(&[newer]).unwrap();
        assert_eq!(
            s.dialog("d").unwrap().unwrap().last_message_id.as_deref(),
            Some("c")
        );
        // Removing the last message shows the newest stored one; other ids change nothing.
        assert!(s.relink_last("d", "zzz").unwrap().is_none());
        s.remove_message("b").unwrap();
        s.bump_dialog(&msg("b", "d", 50, 1), 0).unwrap(); // "b" is last again, then gone
        let d = s.relink_last("d", "b").unwrap().unwrap();
        assert_eq!(d.last_message_id.as_deref(), Some("a"));
        assert_eq!(d.last_message_date_sent, Some(20));
    }

    /// Counts the commits of a store's connection from now on.
    fn count_commits(s: &Store) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let n = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = n.clone();
        s.lock().conn.commit_hook(Some(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            false
        }));
        n
    }

    #[test]
    fn a_burst_of_received_messages_is_one_commit_in_order() {
        use std::sync::atomic::Ordering;
        let p = temp_file("burst");
        let s = Store::open(Some(&p)).unwrap();
        s.put_dialogs(&[dialog("d", Some(1)), dialog("e", Some(1))])
            .unwrap();
        s.put_messages(&[msg("known", "d", 50, 2)]).unwrap();
        let commits = count_commits(&s);
        let mut burst: Vec<Incoming> = (0..100)
            .map(|i| {
                let d = if i % 3 == 0 { "e" } else { "d" };
                (msg(&format!("m{i:03}"), d, 100 + i / 10, 2), true)
            })
            .collect();
        // A repeat (merged, not added), an own message from another device (no unread)
        // and one of a dialog the store does not know.
        let mut known = msg("known", "d", 50, 2);
        known.read_ids = vec![1];
        burst.insert(50, (known, true));
        burst.push((msg("own", "d", 200, 1), false));
        burst.push((msg("x1", "unknown", 200, 2), true));
        burst.push((msg("x2", "unknown", 201, 2), true));
        let r = s.put_received(burst).unwrap();
        assert_eq!(commits.load(Ordering::SeqCst), 1, "one transaction");
        assert!(r.errors.is_empty());
        assert_eq!(r.added.len(), 103);
        let ids: Vec<&str> = r.added.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids[..3], ["m000", "m001", "m002"]);
        assert_eq!(ids[100..], ["own", "x1", "x2"]);
        assert!(
            r.added.windows(2).all(|w| w[0].seq < w[1].seq),
            "arrival order"
        );
        assert_eq!(r.unknown, ["unknown"]);
        assert_eq!(s.message("known").unwrap().unwrap().read_ids, [1]);
        assert_eq!(s.message("x2").unwrap().unwrap().dialog_id, "unknown");
        // Each dialog once: the newest message and the unread count.
        assert_eq!(r.dialogs, ["e", "d"], "in order of first message");
        let d = s.dialog("d").unwrap().unwrap();
        assert_eq!(d.last_message_id.as_deref(), Some("own"));
        assert_eq!(d.unread_messages_count, Some(66));
        let e = s.dialog("e").unwrap().unwrap();
        assert_eq!(e.last_message_id.as_deref(), Some("m099"));
        assert_eq!(e.unread_messages_count, Some(34));
        assert_eq!(s.dialog_key("e").unwrap(), Some(109));
        let timeline: Vec<String> = s
            .timeline("d", None, 1000)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(timeline.len(), 68);
        assert_eq!(timeline[..3], ["known", "m001", "m002"]);
        assert_eq!(timeline.last().unwrap(), "own");
        // The same burst again adds nothing.
        let again = s
            .put_received(vec![(msg("m001", "d", 100, 2), true)])
            .unwrap();
        assert!(again.added.is_empty() && again.dialogs.is_empty());
        drop(s);
        cleanup(&p);
    }

    #[test]
    fn a_burst_leaves_its_dialogs_as_the_messages_one_by_one_would() {
        for (stored, dates) in [
            (Some(8), vec![5, 9, 7, 9, 3]),
            (Some(20), vec![5, 9, 7]),
            (None, vec![4, 2]),
            (Some(6), vec![6, 6]),
        ] {
            let (burst, single) = (Store::open(None).unwrap(), Store::open(None).unwrap());
            let mut d = dialog("d", stored);
            d.last_message_id = Some("before".into());
            d.unread_messages_count = Some(3);
            for s in [&burst, &single] {
                s.put_dialogs(std::slice::from_ref(&d)).unwrap();
            }
            let msgs: Vec<LocalMessage> = dates
                .iter()
                .enumerate()
                .map(|(i, t)| msg(&format!("m{i}"), "d", *t, 2 + i as u64))
                .collect();
            for m in &msgs {
                let added = single.put_messages(std::slice::from_ref(m)).unwrap();
                single.bump_dialog(&added[0], 1).unwrap();
            }
            let r = burst
                .put_received(msgs.iter().map(|m| (m.clone(), true)).collect())
                .unwrap();
            assert_eq!(r.dialogs, ["d"]);
            let (a, b) = (
                burst.dialog("d").unwrap().unwrap(),
                single.dialog("d").unwrap().unwrap(),
            );
            assert_eq!(a, b, "stored {stored:?}, dates {dates:?}");
            assert_eq!(
                burst.dialog_key("d").unwrap(),
                single.dialog_key("d").unwrap()
            );
        }
    }

    #[test]
    fn a_failure_in_a_burst_loses_no_other_message() {
        use std::sync::atomic::Ordering;
        let s = Store::open(None).unwrap();
        s.put_dialogs(&[dialog("d", Some(1))]).unwrap();
        // The row of "bad" cannot be written (as a full disk or a damaged page would).
        s.lock()
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.id = 'bad' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let commits = count_commits(&s);
        let burst: Vec<Incoming> = ["a", "b", "bad", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| (msg(id, "d", 10 + i as i64, 2), true))
            .collect();
        let r = s.put_received(burst).unwrap();
        let ids: Vec<&str> = r.added.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(r.errors.len(), 1);
        assert!(matches!(&r.errors[0], Error::Store(e) if e.contains("refused")));
        assert_eq!(commits.load(Ordering::SeqCst), 4, "then one by one");
        assert_eq!(r.dialogs.len(), 1);
        let d = s.dialog("d").unwrap().unwrap();
        assert_eq!(d.unread_messages_count, Some(4));
        assert_eq!(d.last_message_id.as_deref(), Some("d"));
        let left: Vec<String> = s
            .timeline("d", None, 10)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(left, ["a", "b", "c", "d"]);
        // A single message that fails is an error.
        assert!(s
            .put_received(vec![(msg("bad", "d", 20, 2), true)])
            .is_err());
    }

    #[test]
    fn a_queued_message_and_its_acknowledgement_are_one_write_each() {
        use std::sync::atomic::Ordering;
        let p = temp_file("ack");
        let s = Store::open(Some(&p)).unwrap();
        s.put_dialogs(&[dialog("d", Some(1))]).unwrap();
        let commits = count_commits(&s);
        let history = Payload {
            save_to_history: true,
            ..Default::default()
        };
        let (q1, d) = s
            .queue_new_message(&msg("q1", "d", 5, 1), &history, true)
            .unwrap();
        assert_eq!(q1.state, MessageState::Queued);
        assert!(d);
        assert_eq!(
            s.dialog("d").unwrap().unwrap().last_message_id.as_deref(),
            Some("q1")
        );
        let (q2, d) = s
            .queue_new_message(&msg("q2", "d", 6, 1), &Payload::default(), false)
            .unwrap();
        assert!(!d, "not saved to history: no preview");
        assert!(q2.seq > q1.seq);
        assert_eq!(commits.load(Ordering::SeqCst), 2);
        assert_eq!(
            s.pending_outbox().unwrap().len(),
            2,
            "both wait for the queue"
        );
        s.start_sending(&["q1", "q2"]).unwrap();
        assert_eq!(
            commits.load(Ordering::SeqCst),
            3,
            "one commit for the burst"
        );
        assert!(s.pending_outbox().unwrap().is_empty());
        s.stop_sending(&["q2"]).unwrap();
        let back = s.pending_outbox().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].op_id.as_str(), back[0].attempts), ("q2", 1));
        s.start_sending(&["q2"]).unwrap();
        s.enqueue_change("e1", &q1, OutboxKind::Edit, &Payload::default())
            .unwrap();
        s.set_in_flight("e1", true).unwrap();
        let before = commits.load(Ordering::SeqCst);
        let acked = s.ack_sent(&["q1", "nope", "e1", "q2"]).unwrap();
        assert_eq!(commits.load(Ordering::SeqCst), before + 1);
        let ops: Vec<(&str, OutboxKind, bool)> = acked
            .iter()
            .map(|a| (a.op_id.as_str(), a.kind, a.sent.is_some()))
            .collect();
        assert_eq!(
            ops,
            [
                ("q1", OutboxKind::Message, true),
                ("e1", OutboxKind::Edit, false),
                ("q2", OutboxKind::Message, true)
            ]
        );
        assert_eq!(acked[0].sent.as_ref().unwrap().state, MessageState::Sent);
        assert!(s.outbox().unwrap().is_empty());
        assert_eq!(s.message("q2").unwrap().unwrap().state, MessageState::Sent);
        assert!(s.ack_sent(&["q1"]).unwrap().is_empty(), "acknowledged once");
        drop(s);
        cleanup(&p);
    }

    #[test]
    fn only_queue_writes_are_synced_to_disk() {
        let p = temp_file("sync");
        let s = Store::open(Some(&p)).unwrap();
        let mode = |s: &Store| -> i64 {
            s.lock()
                .conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        let unsynced = |s: &Store| s.lock().queue_unsynced;
        assert_eq!(mode(&s), 1, "NORMAL");
        s.queue_new_message(&msg("q", "d", 5, 1), &Payload::default(), true)
            .unwrap();
        assert_eq!(mode(&s), 2, "FULL for the queue");
        assert!(!unsynced(&s));
        s.put_received(vec![(msg("r", "d", 6, 2), true)]).unwrap();
        assert_eq!(mode(&s), 1);
        // Queued while connected: synced with the burst that goes out, or on demand.
        s.queue_new_message(&msg("q2", "d", 7, 1), &Payload::default(), false)
            .unwrap();
        assert_eq!(mode(&s), 1);
        assert!(unsynced(&s));
        s.start_sending(&["q2"]).unwrap();
        assert_eq!(mode(&s), 2);
        assert!(!unsynced(&s));
        s.queue_new_message(&msg("q3", "d", 8, 1), &Payload::default(), false)
            .unwrap();
        assert!(unsynced(&s));
        s.sync_queue().unwrap();
        assert!(!unsynced(&s));
        drop(s);
        cleanup(&p);
    }

    #[test]
    fn queue_writes_are_atomic_and_ordered() {
        let s = Store::open(None).unwrap();
        let mut m = msg("q1", "d", 5, 1);
        m.state = MessageState::Queued;
        let p = Payload {
            body: "hi".into(),
            save_to_history: true,
            ..Default::default()
        };
        s.enqueue_message(&m, &p).unwrap();
        // Same id twice: refused, nothing half-written.
        assert!(s.enqueue_message(&m, &p).is_err());
        assert_eq!(s.outbox().unwrap().len(), 1);
        s.enqueue_message(&msg("q2", "d", 5, 1), &p).unwrap();
        let order: Vec<_> = s.outbox().unwrap().into_iter().map(|o| o.op_id).collect();
        assert_eq!(order, ["q1", "q2"]);
        s.set_in_flight("q1", true).unwrap();
        assert_eq!(s.outbox_item("q1").unwrap().unwrap().attempts, 1);
        let f = s.fail_queued("q1", "no").unwrap().unwrap();
        assert_eq!(
            f.state,
            MessageState::Failed {
                reason: "no".into()
            }
        );
        s.cancel("q2").unwrap();
        s.cancel("q1").unwrap();
        assert!(s.outbox().unwrap().is_empty());
        assert!(s.message("q2").unwrap().is_none());
    }
}
