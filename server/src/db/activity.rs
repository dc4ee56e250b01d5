//! Last logout times (for XEP-0012 last activity, protocol reference §6.9) and the push
//! outbox: the pushes a real deployment would send, recorded instead (read by
//! `GET /_admin/pushes`).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// Records that the user's last resource went offline at `at`.
pub fn set_logout(conn: &Connection, app_id: u64, user_id: u64, at: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO last_logout (app_id, user_id, at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (app_id, user_id) DO UPDATE SET at = ?3",
        params![app_id, user_id, at],
    )?;
    Ok(())
}

/// When the user last logged out, if ever.
pub fn logout_at(conn: &Connection, app_id: u64, user_id: u64) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT at FROM last_logout WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
        |r| r.get(0),
    )
    .optional()
}

/// One recorded push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Push {
    pub recipient_id: u64,
    pub dialog_id: String,
    pub message_id: String,
    pub sender_id: u64,
    pub created_at: i64,
}

pub fn record_push(conn: &Connection, app_id: u64, p: &Push) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pushes (app_id, recipient_id, dialog_id, message_id, sender_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            app_id,
            p.recipient_id,
            p.dialog_id,
            p.message_id,
            p.sender_id,
            p.created_at
        ],
    )?;
    Ok(())
}

/// The pushes recorded for a user, oldest first.
pub fn pushes_for(conn: &Connection, recipient_id: u64) -> rusqlite::Result<Vec<Push>> {
    let mut stmt = conn.prepare_cached(
        "SELECT recipient_id, dialog_id, message_id, sender_id, created_at FROM pushes \
         WHERE recipient_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![recipient_id], |r| {
        Ok(Push {
            recipient_id: r.get(0)?,
            dialog_id: r.get(1)?,
            message_id: r.get(2)?,
            sender_id: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn logout_and_pushes() {
        let db = Db::open(":memory:").unwrap();
        db.with(|c| {
            assert_eq!(logout_at(c, 1, 5)?, None);
            set_logout(c, 1, 5, 10)?;
            set_logout(c, 1, 5, 20)?;
            assert_eq!(logout_at(c, 1, 5)?, Some(20));
            let p = Push {
                recipient_id: 5,
                dialog_id: "d".into(),
                message_id: "m".into(),
                sender_id: 6,
                created_at: 3,
            };
            record_push(c, 1, &p)?;
            assert_eq!(pushes_for(c, 5)?, vec![p]);
            assert!(pushes_for(c, 6)?.is_empty());
            Ok(())
        })
        .unwrap();
    }
}
