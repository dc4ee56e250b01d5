//! Privacy lists (XEP-0016, protocol reference §6.8): named lists per user, stored as the
//! serialized `<list>` element (items keep the order they were sent in), and which one is
//! the user's default.

use cubechat_wire::stanza::PrivacyList;
use minidom::Element;
use rusqlite::{params, Connection, OptionalExtension};

fn parse(text: &str) -> Option<PrivacyList> {
    text.parse::<Element>()
        .ok()
        .and_then(|e| PrivacyList::from_element(&e))
}

/// Names of the user's lists (sorted) and the default list's name.
pub fn names(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
) -> rusqlite::Result<(Vec<String>, Option<String>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, is_default FROM privacy_lists WHERE app_id = ?1 AND user_id = ?2 \
         ORDER BY name",
    )?;
    let rows = stmt.query_map(params![app_id, user_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
    })?;
    let mut names = Vec::new();
    let mut default = None;
    for row in rows {
        let (name, is_default) = row?;
        if is_default {
            default = Some(name.clone());
        }
        names.push(name);
    }
    Ok((names, default))
}

/// One list by name.
pub fn get(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    name: &str,
) -> rusqlite::Result<Option<PrivacyList>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT list FROM privacy_lists WHERE app_id = ?1 AND user_id = ?2 AND name = ?3",
            params![app_id, user_id, name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.as_deref().and_then(parse))
}

/// The user's default list, if one is set.
pub fn default_list(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
) -> rusqlite::Result<Option<PrivacyList>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT list FROM privacy_lists WHERE app_id = ?1 AND user_id = ?2 AND is_default = 1",
            params![app_id, user_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.as_deref().and_then(parse))
}

/// Creates or replaces a list (keeping whether it is the default).
pub fn put(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    list: &PrivacyList,
    now: i64,
) -> rusqlite::Result<()> {
    let text = String::from(&list.to_element());
    conn.execute(
        "INSERT INTO privacy_lists (app_id, user_id, name, list, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (app_id, user_id, name) DO UPDATE SET list = ?4, updated_at = ?5",
        params![app_id, user_id, list.name, text, now],
    )?;
    Ok(())
}

/// Deletes a list; false when it did not exist.
pub fn delete(conn: &Connection, app_id: u64, user_id: u64, name: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM privacy_lists WHERE app_id = ?1 AND user_id = ?2 AND name = ?3",
        params![app_id, user_id, name],
    )? > 0)
}

/// Makes `name` the default (`None` declines the default). False when the list does not
/// exist (nothing changes then).
pub fn set_default(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    name: Option<&str>,
) -> rusqlite::Result<bool> {
    if let Some(name) = name {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM privacy_lists WHERE app_id = ?1 AND user_id = ?2 \
             AND name = ?3)",
            params![app_id, user_id, name],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
    }
    conn.execute(
        "UPDATE privacy_lists SET is_default = (name IS ?3) WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id, name],
    )?;
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;
    use cubechat_wire::stanza::PrivacyItem;

    #[test]
    fn lists_names_and_default() {
        let db = Db::open(":memory:").unwrap();
        let list = PrivacyList {
            name: "b".into(),
            items: vec![
                PrivacyItem::deny_jid("9-1@chat", 2, true),
                PrivacyItem::deny_jid("muc.chat/9", 1, true),
            ],
        };
        db.with(|c| {
            put(c, 1, 5, &list, 1)?;
            put(
                c,
                1,
                5,
                &PrivacyList {
                    name: "a".into(),
                    items: vec![PrivacyItem::deny_jid("8-1@chat", 1, false)],
                },
                1,
            )?;
            assert_eq!(names(c, 1, 5)?, (vec!["a".into(), "b".into()], None));
            assert_eq!(get(c, 1, 5, "b")?, Some(list.clone()), "stored order kept");
            assert!(!set_default(c, 1, 5, Some("zzz"))?);
            assert!(set_default(c, 1, 5, Some("b"))?);
            assert_eq!(names(c, 1, 5)?.1.as_deref(), Some("b"));
            assert_eq!(default_list(c, 1, 5)?, Some(list.clone()));
            put(c, 1, 5, &list, 2)?;
            assert_eq!(
                names(c, 1, 5)?.1.as_deref(),
                Some("b"),
                "replace keeps default"
            );
            assert!(set_default(c, 1, 5, None)?);
            assert_eq!(default_list(c, 1, 5)?, None);
            assert!(delete(c, 1, 5, "a")?);
            assert!(!delete(c, 1, 5, "a")?);
            assert_eq!(names(c, 1, 6)?, (vec![], None));
            Ok(())
        })
        .unwrap();
    }
}
