//! Dialogs and their occupants (protocol reference §4.1–4.3).
//!
//! - `dialogs`: one row per dialog; the owner is `user_id`. A private dialog (type 3) has a
//!   `private_key` `"{min}:{max}"` of its two users, unique per application.
//! - `dialog_occupants`: group occupants, private participants and public subscribers, with
//!   the per-user state: `role` (1 = admin; the owner is not a role), `hidden` (a private
//!   dialog the user deleted for themselves; cleared by the next message), `cleared_seq` (the
//!   user cleared history up to this message `seq`), `notifications` (push setting).
//!   Broadcast dialogs (type 1) include everyone in the application; a row only holds
//!   settings.

use std::collections::BTreeMap;

use cubechat_wire::chat::{dialog_type, Dialog, Permissions};
use cubechat_wire::time::iso8601_of_millis;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// One stored dialog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DialogRow {
    pub id: String,
    pub app_id: u64,
    pub kind: u8,
    pub user_id: u64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub photo: Option<String>,
    /// A JSON object of strings, or `None`.
    pub extensions: Option<BTreeMap<String, String>>,
    pub permissions: Option<Permissions>,
    pub pinned_messages_ids: Vec<String>,
    pub last_message: Option<String>,
    pub last_message_id: Option<String>,
    pub last_message_user_id: Option<u64>,
    pub last_message_date_sent: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A user's row in `dialog_occupants`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Membership {
    pub admin: bool,
    pub hidden: bool,
    pub cleared_seq: i64,
    pub notifications: bool,
}

/// `role` value of an admin.
pub const ROLE_ADMIN: i64 = 1;

/// Columns of `dialogs`, prefixed with `d.`.
pub const COLUMNS: &str = "d.id, d.app_id, d.type, d.user_id, d.name, d.description, d.photo, \
    d.extensions, d.permissions, d.pinned_messages_ids, d.last_message, d.last_message_id, \
    d.last_message_user_id, d.last_message_date_sent, d.created_at, d.updated_at";

pub fn from_row(r: &Row<'_>) -> rusqlite::Result<DialogRow> {
    let ext: Option<String> = r.get(7)?;
    let perm: Option<String> = r.get(8)?;
    let pinned: String = r.get(9)?;
    Ok(DialogRow {
        id: r.get(0)?,
        app_id: r.get(1)?,
        kind: r.get(2)?,
        user_id: r.get(3)?,
        name: r.get(4)?,
        description: r.get(5)?,
        photo: r.get(6)?,
        extensions: ext.and_then(|s| serde_json::from_str(&s).ok()),
        permissions: perm.and_then(|s| serde_json::from_str(&s).ok()),
        pinned_messages_ids: serde_json::from_str(&pinned).unwrap_or_default(),
        last_message: r.get(10)?,
        last_message_id: r.get(11)?,
        last_message_user_id: r.get(12)?,
        last_message_date_sent: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

fn json_text<T: serde::Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

fn private_key(a: u64, b: u64) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

/// Inserts `row` (with its id). For a private dialog, `occupants` must be its two users.
pub fn insert(conn: &Connection, row: &DialogRow, occupants: &[u64]) -> rusqlite::Result<()> {
    let key = match (row.kind, occupants) {
        (dialog_type::PRIVATE, [a, b]) => Some(private_key(*a, *b)),
        _ => None,
    };
    conn.execute(
        "INSERT INTO dialogs (id, app_id, type, user_id, name, description, photo, extensions, \
         permissions, pinned_messages_ids, private_key, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            row.id,
            row.app_id,
            row.kind,
            row.user_id,
            row.name,
            row.description,
            row.photo,
            json_text(&row.extensions),
            json_text(&row.permissions),
            serde_json::to_string(&row.pinned_messages_ids).unwrap_or_else(|_| "[]".into()),
            key,
            row.created_at,
            row.updated_at,
        ],
    )?;
    for user in occupants {
        add_occupant(conn, &row.id, *user, row.created_at)?;
    }
    Ok(())
}

/// Writes the editable fields and `updated_at` back.
pub fn update(conn: &Connection, row: &DialogRow) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE dialogs SET name = ?2, description = ?3, photo = ?4, extensions = ?5, \
         permissions = ?6, pinned_messages_ids = ?7, updated_at = ?8 WHERE id = ?1",
        params![
            row.id,
            row.name,
            row.description,
            row.photo,
            json_text(&row.extensions),
            json_text(&row.permissions),
            serde_json::to_string(&row.pinned_messages_ids).unwrap_or_else(|_| "[]".into()),
            row.updated_at,
        ],
    )?;
    Ok(())
}

pub fn touch(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE dialogs SET updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub fn find(conn: &Connection, app_id: u64, id: &str) -> rusqlite::Result<Option<DialogRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM dialogs d WHERE d.app_id = ?1 AND d.id = ?2"),
        params![app_id, id],
        from_row,
    )
    .optional()
}

/// The private dialog between `a` and `b`, if any.
pub fn find_private(
    conn: &Connection,
    app_id: u64,
    a: u64,
    b: u64,
) -> rusqlite::Result<Option<DialogRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM dialogs d WHERE d.app_id = ?1 AND d.private_key = ?2"),
        params![app_id, private_key(a, b)],
        from_row,
    )
    .optional()
}

/// The private dialog between `owner` and `other`, created (owned by `owner`) if missing.
/// Returns the dialog and whether it was created.
pub fn find_or_create_private(
    conn: &Connection,
    app_id: u64,
    owner: u64,
    other: u64,
    now: i64,
) -> rusqlite::Result<(DialogRow, bool)> {
    if let Some(d) = find_private(conn, app_id, owner, other)? {
        return Ok((d, false));
    }
    let row = DialogRow {
        id: super::object_id(),
        app_id,
        kind: dialog_type::PRIVATE,
        user_id: owner,
        created_at: now,
        updated_at: now,
        ..DialogRow::default()
    };
    insert(conn, &row, &[owner, other])?;
    Ok((row, true))
}

/// Deletes a dialog with its occupants and messages.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM dialogs WHERE id = ?1", [id])?;
    Ok(())
}

pub fn membership(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
) -> rusqlite::Result<Option<Membership>> {
    conn.query_row(
        "SELECT role, hidden, cleared_seq, notifications FROM dialog_occupants \
         WHERE dialog_id = ?1 AND user_id = ?2",
        params![dialog_id, user_id],
        |r| {
            Ok(Membership {
                admin: r.get::<_, i64>(0)? == ROLE_ADMIN,
                hidden: r.get(1)?,
                cleared_seq: r.get(2)?,
                notifications: r.get(3)?,
            })
        },
    )
    .optional()
}

/// The caller's membership if they belong to the dialog: an occupant row, or anyone in the
/// application for a broadcast dialog (with default settings when there is no row).
pub fn member_of(
    conn: &Connection,
    dialog: &DialogRow,
    user_id: u64,
) -> rusqlite::Result<Option<Membership>> {
    let m = membership(conn, &dialog.id, user_id)?;
    if m.is_none() && dialog.kind == dialog_type::BROADCAST {
        return Ok(Some(Membership {
            notifications: true,
            ..Membership::default()
        }));
    }
    Ok(m)
}

/// Adds an occupant (no-op if already there) and un-hides the dialog for them.
pub fn add_occupant(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO dialog_occupants (dialog_id, user_id, joined_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (dialog_id, user_id) DO UPDATE SET hidden = 0",
        params![dialog_id, user_id, now],
    )?;
    Ok(())
}

pub fn remove_occupant(conn: &Connection, dialog_id: &str, user_id: u64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM dialog_occupants WHERE dialog_id = ?1 AND user_id = ?2",
        params![dialog_id, user_id],
    )?;
    Ok(())
}

pub fn set_admin(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    admin: bool,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE dialog_occupants SET role = ?3 WHERE dialog_id = ?1 AND user_id = ?2",
        params![dialog_id, user_id, if admin { ROLE_ADMIN } else { 0 }],
    )?;
    Ok(())
}

pub fn set_hidden(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    hidden: bool,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE dialog_occupants SET hidden = ?3 WHERE dialog_id = ?1 AND user_id = ?2",
        params![dialog_id, user_id, hidden],
    )?;
    Ok(())
}

/// Hides the dialog's current history from `user_id` (clear history for oneself).
pub fn clear_history_for(conn: &Connection, dialog_id: &str, user_id: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE dialog_occupants SET cleared_seq = \
         (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE dialog_id = ?1) \
         WHERE dialog_id = ?1 AND user_id = ?2",
        params![dialog_id, user_id],
    )?;
    Ok(())
}

/// Stores the push setting (creating a settings-only row for a broadcast dialog).
pub fn set_notifications(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    enabled: bool,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO dialog_occupants (dialog_id, user_id, notifications, joined_at) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (dialog_id, user_id) DO UPDATE SET notifications = ?3",
        params![dialog_id, user_id, enabled, now],
    )?;
    Ok(())
}

/// Whether `user_id` gets pushes for the dialog (default: yes).
pub fn notifications_enabled(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
) -> rusqlite::Result<bool> {
    Ok(match membership(conn, dialog_id, user_id)? {
        Some(m) => m.notifications,
        None => true,
    })
}

/// Occupant (or subscriber) ids, in joining order.
pub fn occupant_ids(conn: &Connection, dialog_id: &str) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM dialog_occupants WHERE dialog_id = ?1 ORDER BY joined_at, rowid",
    )?;
    let rows = stmt.query_map([dialog_id], |r| r.get(0))?;
    rows.collect()
}

/// A page of occupant ids.
pub fn occupant_page(
    conn: &Connection,
    dialog_id: &str,
    limit: u64,
    skip: u64,
) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM dialog_occupants WHERE dialog_id = ?1 ORDER BY joined_at, rowid \
         LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![dialog_id, limit, skip], |r| r.get(0))?;
    rows.collect()
}

pub fn admin_ids(conn: &Connection, dialog_id: &str) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM dialog_occupants WHERE dialog_id = ?1 AND role = 1 \
         ORDER BY joined_at, rowid",
    )?;
    let rows = stmt.query_map([dialog_id], |r| r.get(0))?;
    rows.collect()
}

/// SQL condition: message `m` is visible to user `?` given their `cleared_seq` `?`.
const VISIBLE: &str = "m.seq > ? AND NOT EXISTS (SELECT 1 FROM message_hidden h \
    WHERE h.message_id = m.id AND h.user_id = ?)";

/// Messages of the dialog visible to `user_id`, not sent by them and not read by them.
pub fn unread_count(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    cleared_seq: i64,
) -> rusqlite::Result<u64> {
    conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM messages m WHERE m.dialog_id = ? AND m.sender_id <> ? \
             AND {VISIBLE} AND NOT EXISTS (SELECT 1 FROM message_reads r \
             WHERE r.message_id = m.id AND r.user_id = ?)"
        ),
        params![dialog_id, user_id, cleared_seq, user_id, user_id],
        |r| r.get(0),
    )
}

/// `sent` / `delivered` / `read` when `user_id` sent the dialog's last message.
pub fn last_message_status(
    conn: &Connection,
    dialog: &DialogRow,
    user_id: u64,
) -> rusqlite::Result<Option<String>> {
    let Some(id) = dialog.last_message_id.as_deref() else {
        return Ok(None);
    };
    if dialog.last_message_user_id != Some(user_id) {
        return Ok(None);
    }
    let others = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE message_id = ?1 AND user_id <> ?2)"
            ),
            params![id, user_id],
            |r| r.get(0),
        )
    };
    Ok(Some(
        if others("message_reads")? {
            "read"
        } else if others("message_deliveries")? {
            "delivered"
        } else {
            "sent"
        }
        .to_owned(),
    ))
}

/// Recomputes `last_message*` from the newest remaining message.
pub fn refresh_last_message(conn: &Connection, dialog_id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE dialogs SET (last_message, last_message_id, last_message_user_id, \
         last_message_date_sent) = (SELECT body, id, sender_id, date_sent FROM messages \
         WHERE dialog_id = ?1 ORDER BY date_sent DESC, seq DESC LIMIT 1) WHERE id = ?1",
        [dialog_id],
    )?;
    Ok(())
}

/// The wire object as `caller` sees it.
pub fn to_wire(
    conn: &Connection,
    row: &DialogRow,
    caller: u64,
    chat_domain: &str,
) -> rusqlite::Result<Dialog> {
    let membership = membership(conn, &row.id, caller)?;
    let (occupants_ids, occupants_count) = match row.kind {
        dialog_type::PUBLIC => {
            let n: u64 = conn.query_row(
                "SELECT COUNT(*) FROM dialog_occupants WHERE dialog_id = ?1",
                [&row.id],
                |r| r.get(0),
            )?;
            (Vec::new(), Some(n))
        }
        dialog_type::BROADCAST => (Vec::new(), None),
        _ => (occupant_ids(conn, &row.id)?, None),
    };
    let unread = unread_count(
        conn,
        &row.id,
        caller,
        membership.map_or(0, |m| m.cleared_seq),
    )?;
    Ok(Dialog {
        id: row.id.clone(),
        user_id: row.user_id,
        kind: row.kind,
        name: row.name.clone(),
        description: row.description.clone(),
        photo: row.photo.clone(),
        occupants_ids,
        occupants_count,
        admins_ids: admin_ids(conn, &row.id)?,
        pinned_messages_ids: row.pinned_messages_ids.clone(),
        last_message: row.last_message.clone(),
        last_message_id: row.last_message_id.clone(),
        last_message_user_id: row.last_message_user_id,
        last_message_date_sent: row.last_message_date_sent,
        last_message_status: last_message_status(conn, row, caller)?,
        unread_messages_count: Some(unread),
        xmpp_room_jid: (row.kind != dialog_type::PRIVATE)
            .then(|| format!("{}_{}@muc.{chat_domain}", row.app_id, row.id)),
        created_at: Some(iso8601_of_millis(row.created_at)),
        updated_at: Some(iso8601_of_millis(row.updated_at)),
        extensions: row.extensions.clone(),
        permissions: row.permissions.clone(),
    })
}

/// SQL condition on `d` (with `o` = the caller's `dialog_occupants` row, LEFT JOINed): the
/// dialog is in the caller's list.
pub const LISTED: &str =
    "((o.user_id IS NOT NULL AND o.hidden = 0) OR (o.user_id IS NULL AND d.type = 1))";

/// A page of the dialogs `user_id` sees, with extra conditions (`?` placeholders, `args`).
/// Returns the total matching count and the page.
#[allow(clippy::too_many_arguments)]
pub fn search(
    conn: &Connection,
    app_id: u64,
    user_id: u64,
    where_sql: &[String],
    args: &[SqlValue],
    order_sql: &str,
    limit: u64,
    skip: u64,
) -> rusqlite::Result<(u64, Vec<DialogRow>)> {
    let mut clauses = vec!["d.app_id = ?".to_owned(), LISTED.to_owned()];
    clauses.extend(where_sql.iter().cloned());
    let from = format!(
        "FROM dialogs d LEFT JOIN dialog_occupants o ON o.dialog_id = d.id AND o.user_id = ? \
         WHERE {}",
        clauses.join(" AND ")
    );
    let to_sql = |n: u64| SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let mut all_args = vec![to_sql(user_id), to_sql(app_id)];
    all_args.extend(args.iter().cloned());
    let total: u64 = conn.query_row(
        &format!("SELECT COUNT(*) {from}"),
        params_from_iter(all_args.iter()),
        |r| r.get(0),
    )?;
    all_args.push(to_sql(limit));
    all_args.push(to_sql(skip));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} {from} ORDER BY {order_sql} LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt
        .query_map(params_from_iter(all_args.iter()), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((total, rows))
}
