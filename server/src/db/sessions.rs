//! The `sessions` table: tokens, their application, their user (0 = application-only) and
//! their expiry.

use cubechat_wire::auth::{Session, User};
use cubechat_wire::time::iso8601;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::random_token;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: u64,
    pub token: String,
    pub app_id: u64,
    /// 0 for an application-only session.
    pub user_id: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

impl SessionRow {
    /// The wire object (§3.1); `user` should be the session's user, if any.
    pub fn to_wire(&self, user: Option<User>) -> Session {
        Session {
            id: self.id,
            user_id: self.user_id,
            application_id: self.app_id,
            token: self.token.clone(),
            ts: self.created_at,
            created_at: Some(iso8601(self.created_at)),
            updated_at: Some(iso8601(self.updated_at)),
            user,
        }
    }
}

const COLUMNS: &str = "id, token, app_id, user_id, created_at, updated_at, expires_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        token: r.get(1)?,
        app_id: r.get(2)?,
        user_id: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
        expires_at: r.get(6)?,
    })
}

/// Creates a session with a fresh 40-hex-character token, valid for `ttl` seconds.
pub fn create(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    now: i64,
    ttl: i64,
) -> rusqlite::Result<SessionRow> {
    let token = random_token();
    conn.execute(
        "INSERT INTO sessions (token, app_id, user_id, created_at, updated_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        params![token, app_id, user_id, now, now.saturating_add(ttl)],
    )?;
    Ok(SessionRow {
        id: u64::try_from(conn.last_insert_rowid()).unwrap_or(0),
        token,
        app_id,
        user_id,
        created_at: now,
        updated_at: now,
        expires_at: now.saturating_add(ttl),
    })
}

/// Looks up a live (unexpired) session without extending it.
pub fn find_live(conn: &Connection, token: &str, now: i64) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM sessions WHERE token = ?1 AND expires_at > ?2"),
        params![token, now],
        from_row,
    )
    .optional()
}

/// Looks up a live session and extends its expiry to `now + ttl`.
pub fn touch(
    conn: &Connection,
    token: &str,
    now: i64,
    ttl: i64,
) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        &format!(
            "UPDATE sessions SET expires_at = ?3 WHERE token = ?1 AND expires_at > ?2 RETURNING {COLUMNS}"
        ),
        params![token, now, now.saturating_add(ttl)],
        from_row,
    )
    .optional()
}

/// Attaches a user to a session (0 = back to application-only).
pub fn set_user(conn: &Connection, id: u64, user_id: u64, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE sessions SET user_id = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, user_id, now],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: u64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
    Ok(())
}

pub fn delete_for_user(conn: &Connection, user_id: u64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])
}

/// Expires every live session now; returns how many.
pub fn expire_all(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE sessions SET expires_at = ?1 WHERE expires_at > ?1",
        params![now],
    )
}
