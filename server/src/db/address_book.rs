//! Address books (protocol reference §3.5): a user's contacts (name + normalised phone), per
//! device `udid` (`''` is the book without a device).

use rusqlite::{params, Connection};

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    /// Normalised (see [`normalize_phone`]).
    pub phone: String,
}

/// `+1 (555) 010-2030` → `+15550102030`: spaces, dashes, dots and parentheses dropped, then an
/// optional `+` and 4 to 15 digits; `None` for anything else.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let kept: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    let ok = (4..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(kept)
}

/// The book of `(user, udid)`, by phone.
pub fn list(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    udid: &str,
) -> rusqlite::Result<Vec<Contact>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, phone FROM address_book WHERE app_id = ?1 AND user_id = ?2 AND udid = ?3 \
         ORDER BY phone",
    )?;
    let rows = stmt.query_map(params![app_id, user_id, udid], |r| {
        Ok(Contact {
            name: r.get(0)?,
            phone: r.get(1)?,
        })
    })?;
    rows.collect()
}

/// Inserts or renames a contact; `true` when it was new.
pub fn put(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    udid: &str,
    c: &Contact,
) -> rusqlite::Result<bool> {
    let updated = conn.execute(
        "UPDATE address_book SET name = ?5 WHERE app_id = ?1 AND user_id = ?2 AND udid = ?3 \
         AND phone = ?4",
        params![app_id, user_id, udid, c.phone, c.name],
    )?;
    if updated > 0 {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO address_book (app_id, user_id, udid, phone, name) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![app_id, user_id, udid, c.phone, c.name],
    )?;
    Ok(true)
}

/// Removes one contact; `true` when it was there.
pub fn remove(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    udid: &str,
    phone: &str,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM address_book WHERE app_id = ?1 AND user_id = ?2 AND udid = ?3 AND phone = ?4",
        params![app_id, user_id, udid, phone],
    )? > 0)
}

/// Empties the book of `(user, udid)`; returns how many contacts went.
pub fn clear(conn: &Connection, app_id: u64, user_id: u64, udid: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM address_book WHERE app_id = ?1 AND user_id = ?2 AND udid = ?3",
        params![app_id, user_id, udid],
    )
}

/// Deletes every book of a user (their account is gone).
pub fn delete_for_user(conn: &Connection, app_id: u64, user_id: u64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM address_book WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn phones_normalise() {
        assert_eq!(
            normalize_phone("+1 (555) 010-2030").as_deref(),
            Some("+15550102030")
        );
        assert_eq!(normalize_phone(" 380.67.123 ").as_deref(), Some("38067123"));
        for bad in [
            "",
            "+",
            "12a45",
            "123",
            "1234567890123456",
            "++1234",
            "12+34",
        ] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn put_list_remove_clear() {
        let db = Db::open(":memory:").unwrap();
        db.with(|c| {
            let ann = Contact {
                name: "Ann".into(),
                phone: "+1555".into(),
            };
            assert!(put(c, 1, 5, "", &ann)?);
            assert!(!put(
                c,
                1,
                5,
                "",
                &Contact {
                    name: "Annie".into(),
                    ..ann.clone()
                }
            )?);
            assert!(put(c, 1, 5, "phone-1", &ann)?);
            assert_eq!(list(c, 1, 5, "")?[0].name, "Annie");
            assert!(remove(c, 1, 5, "", "+1555")?);
            assert!(!remove(c, 1, 5, "", "+1555")?);
            assert_eq!(clear(c, 1, 5, "phone-1")?, 1);
            assert!(list(c, 1, 5, "phone-1")?.is_empty());
            Ok(())
        })
        .unwrap();
    }
}
