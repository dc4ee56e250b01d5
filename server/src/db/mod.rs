//! SQLite storage: one connection behind a mutex, a linear list of schema migrations, and
//! one submodule of plain query functions per area (`users`, `sessions`, `dialogs`,
//! `messages`, `blobs`, `privacy`, `activity`, `push`, `address_book`).
//!
//! Query functions take a `&Connection` (a `Transaction` derefs to one), so a handler can run
//! several of them atomically inside one [`Db::call`].

pub mod activity;
pub mod address_book;
pub mod blobs;
pub mod dialogs;
pub mod messages;
pub mod privacy;
pub mod push;
pub mod sessions;
pub mod users;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

/// Storage errors. Handlers usually convert them into a 500 `ApiError` (logged).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database is closed")]
    Closed,
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// Append new entries (never edit old ones) when a later issue needs more tables.
const MIGRATIONS: &[&str] = &[
    // 1: users and sessions.
    "CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id INTEGER NOT NULL,
        login TEXT,
        email TEXT COLLATE NOCASE,
        password_hash TEXT,
        full_name TEXT,
        phone TEXT,
        website TEXT,
        external_id TEXT,
        custom_data TEXT,
        avatar TEXT,
        user_tags TEXT,
        timezone INTEGER,
        is_guest INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_request_at INTEGER
    );
    CREATE UNIQUE INDEX users_app_login ON users(app_id, login);
    CREATE UNIQUE INDEX users_app_email ON users(app_id, email);
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token TEXT NOT NULL UNIQUE,
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);",
    // 2: chat (dialogs, occupants, messages and their per-user state).
    "CREATE TABLE dialogs (
        id TEXT PRIMARY KEY,
        app_id INTEGER NOT NULL,
        type INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT,
        description TEXT,
        photo TEXT,
        extensions TEXT,
        permissions TEXT,
        pinned_messages_ids TEXT NOT NULL DEFAULT '[]',
        private_key TEXT,
        last_message TEXT,
        last_message_id TEXT,
        last_message_user_id INTEGER,
        last_message_date_sent INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX dialogs_app_type ON dialogs(app_id, type);
    CREATE UNIQUE INDEX dialogs_private ON dialogs(app_id, private_key);
    CREATE TABLE dialog_occupants (
        dialog_id TEXT NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        role INTEGER NOT NULL DEFAULT 0,
        hidden INTEGER NOT NULL DEFAULT 0,
        cleared_seq INTEGER NOT NULL DEFAULT 0,
        notifications INTEGER NOT NULL DEFAULT 1,
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (dialog_id, user_id)
    );
    CREATE INDEX dialog_occupants_user ON dialog_occupants(user_id);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        dialog_id TEXT NOT NULL REFERENCES dialogs(id) ON DELETE CASCADE,
        sender_id INTEGER NOT NULL,
        recipient_id INTEGER NOT NULL DEFAULT 0,
        body TEXT,
        attachments TEXT NOT NULL DEFAULT '[]',
        custom TEXT NOT NULL DEFAULT '{}',
        date_sent INTEGER NOT NULL,
        markable INTEGER NOT NULL DEFAULT 0,
        send_to_chat INTEGER NOT NULL DEFAULT 0,
        views_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX messages_dialog_date ON messages(dialog_id, date_sent);
    CREATE INDEX messages_dialog_seq ON messages(dialog_id, seq);
    CREATE TABLE message_reads (
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (message_id, user_id)
    );
    CREATE TABLE message_deliveries (
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (message_id, user_id)
    );
    CREATE TABLE message_hidden (
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (message_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE reactions (
        message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL,
        reaction TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (message_id, user_id)
    ) WITHOUT ROWID;
    CREATE TABLE system_messages (
        id TEXT PRIMARY KEY,
        app_id INTEGER NOT NULL,
        sender_id INTEGER NOT NULL,
        recipient_id INTEGER NOT NULL,
        params TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX system_messages_recipient ON system_messages(recipient_id);",
    // 3: cloud storage (blobs and their bytes, kept apart so listing never reads the bytes).
    "CREATE TABLE blobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT,
        content_type TEXT,
        public INTEGER NOT NULL DEFAULT 0,
        size INTEGER,
        upload_secret TEXT NOT NULL,
        upload_expires_at INTEGER NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0,
        completed_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX blobs_owner ON blobs(app_id, user_id);
    CREATE TABLE blob_data (
        blob_id INTEGER PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
        bytes BLOB NOT NULL
    );",
    // 4: XMPP offline storage (1-1 stanzas for users with no online resource).
    "CREATE TABLE offline_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        stanza TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX offline_messages_user ON offline_messages(app_id, user_id, seq);",
    // 5: privacy lists (XEP-0016), last logout times (XEP-0012) and the push outbox.
    "CREATE TABLE privacy_lists (
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        list TEXT NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, user_id, name)
    );
    CREATE TABLE last_logout (
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (app_id, user_id)
    );
    CREATE TABLE pushes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id INTEGER NOT NULL,
        recipient_id INTEGER NOT NULL,
        dialog_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sender_id INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX pushes_recipient ON pushes(recipient_id, seq);",
    // 6: users', dialogs' and messages' times (and occupants', reactions' and system
    // messages' times) in Unix
    // milliseconds, as the platform keeps them, so a time filter sees sub-second changes.
    "UPDATE users SET created_at = created_at * 1000, updated_at = updated_at * 1000,
        last_request_at = last_request_at * 1000;
    UPDATE dialogs SET created_at = created_at * 1000, updated_at = updated_at * 1000;
    UPDATE dialog_occupants SET joined_at = joined_at * 1000;
    UPDATE messages SET created_at = created_at * 1000, updated_at = updated_at * 1000;
    UPDATE reactions SET created_at = created_at * 1000;
    UPDATE system_messages SET created_at = created_at * 1000;",
    // 7: push subscriptions, push events, the per-subscription push outbox, address books.
    "CREATE TABLE push_subscriptions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        channel TEXT NOT NULL,
        token TEXT NOT NULL,
        environment TEXT NOT NULL,
        bundle_identifier TEXT,
        udid TEXT NOT NULL,
        platform TEXT NOT NULL,
        web_auth TEXT,
        web_p256dh TEXT,
        created_at INTEGER NOT NULL,
        UNIQUE (app_id, udid, channel)
    );
    CREATE INDEX push_subscriptions_user ON push_subscriptions(app_id, user_id);
    CREATE TABLE push_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id INTEGER NOT NULL,
        user_id INTEGER,
        channel TEXT,
        environment TEXT NOT NULL,
        event_type TEXT NOT NULL,
        message TEXT NOT NULL,
        recipients TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE push_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id INTEGER NOT NULL,
        recipient_id INTEGER NOT NULL,
        subscription_id INTEGER NOT NULL,
        channel TEXT NOT NULL,
        token TEXT NOT NULL,
        environment TEXT NOT NULL,
        bundle_identifier TEXT,
        udid TEXT NOT NULL,
        platform TEXT NOT NULL,
        kind TEXT NOT NULL,
        event_id INTEGER,
        dialog_id TEXT,
        message_id TEXT,
        sender_id INTEGER,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX push_outbox_recipient ON push_outbox(recipient_id, id);
    CREATE TABLE address_book (
        app_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        udid TEXT NOT NULL DEFAULT '',
        phone TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (app_id, user_id, udid, phone)
    );",
];

/// The shared database handle. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Option<Connection>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path`, or an in-memory one for
    /// `:memory:`, and applies pending migrations.
    pub fn open(path: &str) -> Result<Self, DbError> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory()?
        } else {
            let conn = Connection::open(path)?;
            // WAL: readers never block the writer; `close` checkpoints it back into the file.
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut conn = conn;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(Some(conn))),
        })
    }

    /// Runs `f` with exclusive access to the connection. Keep `f` short: it blocks the
    /// calling worker thread (SQLite calls take microseconds here).
    pub fn call<T, E>(&self, f: impl FnOnce(&mut Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let mut guard = self.lock();
        match guard.as_mut() {
            Some(conn) => f(conn),
            None => Err(E::from(DbError::Closed)),
        }
    }

    /// [`Db::call`] for plain SQLite work: any error is a [`DbError`].
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, DbError> {
        self.call(|c| f(c).map_err(DbError::from))
    }

    /// Closes the connection (checkpointing the WAL of a file database). Later calls fail
    /// with [`DbError::Closed`]. Closing twice is a no-op.
    pub fn close(&self) -> Result<(), DbError> {
        let conn = self.lock().take();
        match conn {
            Some(conn) => conn.close().map_err(|(_, e)| DbError::Sqlite(e)),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        // A panic while holding the lock cannot leave SQLite inconsistent (every statement is
        // atomic and open transactions roll back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let done = usize::try_from(done).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::debug!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

/// Current Unix time in seconds (sessions, blobs, privacy lists, the push outbox).
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Current Unix time in milliseconds: the unit of users', dialogs' and messages'
/// `created_at`/`updated_at` (and users' `last_request_at`, occupants' `joined_at`), which
/// time filters compare with sub-second precision (protocol reference §2.3).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new 24-hex-digit ObjectId: 8 hex digits of Unix seconds, then 10 random hex digits
/// fixed per process and a 6-digit counter (the MongoDB layout). Ids made later by this
/// process sort after earlier ones, so `_id` order is creation order.
pub fn object_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    static PROCESS: OnceLock<(String, u32)> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let (process, start) = PROCESS.get_or_init(|| {
        use rand::RngCore;
        let mut bytes = [0u8; 5];
        let mut rng = rand::thread_rng();
        rng.fill_bytes(&mut bytes);
        (hex::encode(bytes), rng.next_u32() & 0x7f_ffff)
    });
    let n = start.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed)) & 0xff_ffff;
    let secs = u32::try_from(now()).unwrap_or(u32::MAX);
    format!("{secs:08x}{process}{n:06x}")
}

/// 40 random lower-case hex characters (a session token).
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_closes() {
        let dir = std::env::temp_dir().join(format!("cubeserver-dbtest-{}", random_token()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let path = path.to_str().unwrap();
        let db = Db::open(path).unwrap();
        db.with(|c| {
            c.execute(
                "INSERT INTO sessions(token, app_id, created_at, updated_at, expires_at) VALUES ('t', 1, 0, 0, 0)",
                [],
            )
        })
        .unwrap();
        db.close().unwrap();
        db.close().unwrap();
        assert!(matches!(
            db.call(|_| Ok::<_, DbError>(())),
            Err(DbError::Closed)
        ));
        // Reopening applies no migration twice and keeps the data.
        let db = Db::open(path).unwrap();
        let n: i64 = db
            .with(|c| c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 1);
        db.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(random_token().len(), 40);
    }
}
