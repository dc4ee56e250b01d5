//! Offline storage (XEP-0160 style): 1-1 stanzas for users without an online resource,
//! delivered once (and deleted) when the user next becomes available.

use rusqlite::{params, Connection};

/// Stores a serialized stanza for `(app_id, user_id)`.
pub fn store(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    stanza: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO offline_messages (app_id, user_id, stanza, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![app_id, user_id, stanza, now],
    )?;
    Ok(())
}

/// Takes (returns and deletes, atomically) every stored stanza of the user, oldest first,
/// with its storage time.
pub fn take_all(
    conn: &mut Connection,
    app_id: u64,
    user_id: u64,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let tx = conn.transaction()?;
    let rows = {
        let mut stmt = tx.prepare_cached(
            "SELECT stanza, created_at FROM offline_messages WHERE app_id = ?1 AND user_id = ?2 \
             ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![app_id, user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.execute(
        "DELETE FROM offline_messages WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
    )?;
    tx.commit()?;
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn taken_once_in_order() {
        let db = Db::open(":memory:").unwrap();
        db.with(|c| {
            store(c, 1, 5, "<a/>", 10)?;
            store(c, 1, 5, "<b/>", 11)?;
            store(c, 1, 6, "<c/>", 12)
        })
        .unwrap();
        let got = db.with(|c| take_all(c, 1, 5)).unwrap();
        assert_eq!(got, vec![("<a/>".into(), 10), ("<b/>".into(), 11)]);
        assert!(db.with(|c| take_all(c, 1, 5)).unwrap().is_empty());
        assert_eq!(db.with(|c| take_all(c, 1, 6)).unwrap().len(), 1);
    }
}
