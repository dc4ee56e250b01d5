//! Messages and their per-user state (protocol reference §4.4–4.5): reads, deliveries,
//! per-user hiding and reactions. Nothing here knows about HTTP, so the XMPP side can save
//! and mark messages through the same functions ([`create`], [`mark_read`], …).
//!
//! `seq` is an insertion counter: it breaks `date_sent` ties and implements "clear history"
//! (`dialog_occupants.cleared_seq`).

use std::collections::BTreeMap;

use cubechat_wire::chat::{dialog_type, Attachment, Message, ReactionsSummary};
use cubechat_wire::time::iso8601_of_millis;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde_json::Value;

use super::dialogs;

/// Keys of a message that are not custom parameters (the fields of the wire object plus the
/// REST/XMPP control keys); shared with the engine, which refuses them as custom parameters.
pub const RESERVED_KEYS: &[&str] = cubechat_wire::chat::RESERVED_MESSAGE_KEYS;

/// One stored message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageRow {
    pub seq: i64,
    pub id: String,
    pub dialog_id: String,
    pub sender_id: u64,
    pub recipient_id: u64,
    pub body: Option<String>,
    pub attachments: Vec<Attachment>,
    pub custom: BTreeMap<String, String>,
    pub date_sent: i64,
    pub markable: bool,
    pub send_to_chat: bool,
    pub views_count: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A message to save.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewMessage {
    /// Keep this id (e.g. a stanza's ObjectId); a new one is generated when `None`. If a
    /// message with this id exists, [`create`] returns it unchanged.
    pub id: Option<String>,
    pub dialog_id: String,
    pub sender_id: u64,
    /// 0 means: the other occupant for a private dialog, 0 otherwise.
    pub recipient_id: u64,
    pub body: Option<String>,
    pub attachments: Vec<Attachment>,
    pub custom: BTreeMap<String, String>,
    /// Unix seconds or milliseconds (see [`normalize_date_sent`]); `None` means now.
    pub date_sent: Option<i64>,
    pub markable: bool,
    pub send_to_chat: bool,
}

/// Values above 10^11 are milliseconds (§4.4); they become seconds.
pub fn normalize_date_sent(v: i64) -> i64 {
    if v > 100_000_000_000 {
        v / 1000
    } else {
        v
    }
}

/// A custom parameter value as stored: strings as is, other JSON as its text; `None` for null.
pub fn custom_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Columns of `messages`, prefixed with `m.`.
pub const COLUMNS: &str = "m.seq, m.id, m.dialog_id, m.sender_id, m.recipient_id, m.body, \
    m.attachments, m.custom, m.date_sent, m.markable, m.send_to_chat, m.views_count, \
    m.created_at, m.updated_at";

pub fn from_row(r: &Row<'_>) -> rusqlite::Result<MessageRow> {
    let attachments: String = r.get(6)?;
    let custom: String = r.get(7)?;
    Ok(MessageRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        dialog_id: r.get(2)?,
        sender_id: r.get(3)?,
        recipient_id: r.get(4)?,
        body: r.get(5)?,
        attachments: serde_json::from_str(&attachments).unwrap_or_default(),
        custom: serde_json::from_str(&custom).unwrap_or_default(),
        date_sent: r.get(8)?,
        markable: r.get(9)?,
        send_to_chat: r.get(10)?,
        views_count: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// Saves a message in its dialog: the sender has it read and delivered, the dialog's
/// `last_message*` and `updated_at` move to it (if it is the newest), and the dialog
/// reappears for occupants who had hidden it. The caller checks permissions.
pub fn create(conn: &Connection, new: &NewMessage, now: i64) -> rusqlite::Result<MessageRow> {
    if let Some(id) = &new.id {
        if let Some(existing) = find(conn, id)? {
            return Ok(existing);
        }
    }
    let recipient_id = if new.recipient_id != 0 {
        new.recipient_id
    } else {
        let kind: Option<u8> = conn
            .query_row(
                "SELECT type FROM dialogs WHERE id = ?1",
                [&new.dialog_id],
                |r| r.get(0),
            )
            .optional()?;
        if kind == Some(dialog_type::PRIVATE) {
            dialogs::occupant_ids(conn, &new.dialog_id)?
                .into_iter()
                .find(|u| *u != new.sender_id)
                .unwrap_or(0)
        } else {
            0
        }
    };
    let row = MessageRow {
        seq: 0,
        id: new.id.clone().unwrap_or_else(super::object_id),
        dialog_id: new.dialog_id.clone(),
        sender_id: new.sender_id,
        recipient_id,
        body: new.body.clone(),
        attachments: new.attachments.clone(),
        custom: new.custom.clone(),
        date_sent: new
            .date_sent
            .map_or(now.div_euclid(1000), normalize_date_sent),
        markable: new.markable,
        send_to_chat: new.send_to_chat,
        views_count: 0,
        created_at: now,
        updated_at: now,
    };
    conn.execute(
        "INSERT INTO messages (id, dialog_id, sender_id, recipient_id, body, attachments, custom, \
         date_sent, markable, send_to_chat, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            row.id,
            row.dialog_id,
            row.sender_id,
            row.recipient_id,
            row.body,
            serde_json::to_string(&row.attachments).unwrap_or_else(|_| "[]".into()),
            serde_json::to_string(&row.custom).unwrap_or_else(|_| "{}".into()),
            row.date_sent,
            row.markable,
            row.send_to_chat,
            row.created_at,
            row.updated_at,
        ],
    )?;
    let row = MessageRow {
        seq: conn.last_insert_rowid(),
        ..row
    };
    mark_read(conn, std::slice::from_ref(&row.id), row.sender_id)?;
    conn.execute(
        "UPDATE dialogs SET last_message = ?2, last_message_id = ?3, last_message_user_id = ?4, \
         last_message_date_sent = ?5 WHERE id = ?1 AND (last_message_date_sent IS NULL \
         OR last_message_date_sent <= ?5)",
        params![
            row.dialog_id,
            row.body,
            row.id,
            row.sender_id,
            row.date_sent
        ],
    )?;
    dialogs::touch(conn, &row.dialog_id, now)?;
    conn.execute(
        "UPDATE dialog_occupants SET hidden = 0 WHERE dialog_id = ?1 AND hidden = 1",
        [&row.dialog_id],
    )?;
    Ok(row)
}

pub fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<MessageRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM messages m WHERE m.id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Adds `user_id` to the read (and delivered) lists of `ids`.
pub fn mark_read(conn: &Connection, ids: &[String], user_id: u64) -> rusqlite::Result<()> {
    let mut read = conn.prepare_cached(
        "INSERT OR IGNORE INTO message_reads (message_id, user_id) VALUES (?1, ?2)",
    )?;
    for id in ids {
        read.execute(params![id, user_id])?;
    }
    mark_delivered(conn, ids, user_id)
}

/// Adds `user_id` to the delivered lists of `ids`.
pub fn mark_delivered(conn: &Connection, ids: &[String], user_id: u64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO message_deliveries (message_id, user_id) VALUES (?1, ?2)",
    )?;
    for id in ids {
        stmt.execute(params![id, user_id])?;
    }
    Ok(())
}

/// Every message of the dialog visible to `user_id` (after `cleared_seq`).
pub fn visible_ids(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    cleared_seq: i64,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.id FROM messages m WHERE m.dialog_id = ?1 AND m.seq > ?2 AND NOT EXISTS \
         (SELECT 1 FROM message_hidden h WHERE h.message_id = m.id AND h.user_id = ?3)",
    )?;
    let rows = stmt.query_map(params![dialog_id, cleared_seq, user_id], |r| r.get(0))?;
    rows.collect()
}

/// Changes a message body (and `updated_at`), keeping the dialog's `last_message` in step.
pub fn edit_body(conn: &Connection, id: &str, body: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE messages SET body = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, body, now],
    )?;
    conn.execute(
        "UPDATE dialogs SET last_message = ?2 WHERE last_message_id = ?1",
        params![id, body],
    )?;
    Ok(())
}

/// Hides a message from one user.
pub fn hide_for(conn: &Connection, id: &str, user_id: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO message_hidden (message_id, user_id) VALUES (?1, ?2)",
        params![id, user_id],
    )?;
    Ok(())
}

/// Deletes a message for everyone and recomputes the dialog's last message if needed.
pub fn delete(conn: &Connection, row: &MessageRow) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM messages WHERE id = ?1", [&row.id])?;
    let was_last: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM dialogs WHERE id = ?1 AND last_message_id = ?2)",
        params![row.dialog_id, row.id],
        |r| r.get(0),
    )?;
    if was_last {
        dialogs::refresh_last_message(conn, &row.dialog_id)?;
    }
    Ok(())
}

/// Deletes every message of a dialog and clears its last message.
pub fn delete_all(conn: &Connection, dialog_id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM messages WHERE dialog_id = ?1", [dialog_id])?;
    dialogs::refresh_last_message(conn, dialog_id)
}

/// A page of a dialog's messages visible to `user_id`, with extra conditions on `m`.
#[allow(clippy::too_many_arguments)]
pub fn list(
    conn: &Connection,
    dialog_id: &str,
    user_id: u64,
    cleared_seq: i64,
    where_sql: &[String],
    args: &[SqlValue],
    order_sql: &str,
    limit: u64,
    skip: u64,
) -> rusqlite::Result<Vec<MessageRow>> {
    let to_sql = |n: u64| SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let mut clauses = vec![
        "m.dialog_id = ?".to_owned(),
        "m.seq > ?".to_owned(),
        "NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.message_id = m.id AND h.user_id = ?)"
            .to_owned(),
    ];
    clauses.extend(where_sql.iter().cloned());
    let mut all_args = vec![
        SqlValue::Text(dialog_id.to_owned()),
        SqlValue::Integer(cleared_seq),
        to_sql(user_id),
    ];
    all_args.extend(args.iter().cloned());
    all_args.push(to_sql(limit));
    all_args.push(to_sql(skip));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM messages m WHERE {} ORDER BY {order_sql} LIMIT ? OFFSET ?",
        clauses.join(" AND ")
    ))?;
    let rows = stmt.query_map(params_from_iter(all_args.iter()), from_row)?;
    rows.collect()
}

fn user_ids(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT user_id FROM {table} WHERE message_id = ?1 ORDER BY rowid"
    ))?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    rows.collect()
}

/// The reactions of a message: reaction → user ids.
pub fn reactions(conn: &Connection, id: &str) -> rusqlite::Result<BTreeMap<String, Vec<u64>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT reaction, user_id FROM reactions WHERE message_id = ?1 ORDER BY created_at, user_id",
    )?;
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    for row in rows {
        let (reaction, user) = row?;
        out.entry(reaction).or_default().push(user);
    }
    Ok(out)
}

/// Applies a reaction change for one user: `remove` drops their reaction if it is that one,
/// `add` sets theirs (replacing any other: one reaction per user per message).
pub fn react(
    conn: &Connection,
    id: &str,
    user_id: u64,
    add: Option<&str>,
    remove: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    if let Some(r) = remove {
        conn.execute(
            "DELETE FROM reactions WHERE message_id = ?1 AND user_id = ?2 AND reaction = ?3",
            params![id, user_id, r],
        )?;
    }
    if let Some(r) = add {
        conn.execute(
            "INSERT INTO reactions (message_id, user_id, reaction, created_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (message_id, user_id) \
             DO UPDATE SET reaction = ?3, created_at = ?4",
            params![id, user_id, r, now],
        )?;
    }
    Ok(())
}

/// The wire object as `caller` sees it.
pub fn to_wire(conn: &Connection, row: &MessageRow, caller: u64) -> rusqlite::Result<Message> {
    let read_ids = user_ids(conn, "message_reads", &row.id)?;
    let delivered_ids = user_ids(conn, "message_deliveries", &row.id)?;
    let all = reactions(conn, &row.id)?;
    let reactions = (!all.is_empty()).then(|| ReactionsSummary {
        own: all
            .iter()
            .filter(|(_, users)| users.contains(&caller))
            .map(|(r, _)| r.clone())
            .collect(),
        total: all
            .iter()
            .map(|(r, users)| (r.clone(), users.len() as u64))
            .collect(),
    });
    Ok(Message {
        id: row.id.clone(),
        chat_dialog_id: row.dialog_id.clone(),
        message: row.body.clone(),
        date_sent: row.date_sent,
        sender_id: row.sender_id,
        recipient_id: row.recipient_id,
        read: u8::from(read_ids.contains(&caller)),
        read_ids,
        delivered_ids,
        views_count: row.views_count,
        attachments: row.attachments.clone(),
        reactions,
        created_at: Some(iso8601_of_millis(row.created_at)),
        updated_at: Some(iso8601_of_millis(row.updated_at)),
        custom: row
            .custom
            .iter()
            .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    })
}

/// Stores a system message (§6.6) for later delivery; returns its id.
pub fn create_system(
    conn: &Connection,
    app_id: u64,
    sender_id: u64,
    recipient_id: u64,
    params: &BTreeMap<String, String>,
    now: i64,
) -> rusqlite::Result<String> {
    let id = super::object_id();
    conn.execute(
        "INSERT INTO system_messages (id, app_id, sender_id, recipient_id, params, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id,
            app_id,
            sender_id,
            recipient_id,
            serde_json::to_string(params).unwrap_or_else(|_| "{}".into()),
            now
        ],
    )?;
    Ok(id)
}
