//! Chat messages (protocol reference §4.4–4.5): history, REST send, edit and mark read,
//! delete, unread counts, reactions, system messages and the global search. Every route
//! needs a user session.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use cubechat_wire::chat::{
    dialog_type, is_object_id, Attachment, DeleteOutcome as Outcome, DeleteResult, Message,
    MessagesPage, SearchResultSets, SearchResults,
};
use cubechat_wire::stanza::ReactionChange;
use cubechat_wire::time::parse_iso8601;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::{json, Map, Value};

use super::dialogs::{self, delete_params, flag, force, int, load, no_permission, require_member};
use super::extract::{from_value, ApiPath, JsonBody, UserSession};
use super::query::{self, Field, FieldKind, Query};
use crate::db::dialogs::{self as dialog_db, DialogRow};
use crate::db::messages::{self as message_db, MessageRow, NewMessage};
use crate::db::sessions::SessionRow;
use crate::db::{self, users as user_db};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// Page size of the history when no `limit` is given, and its maximum.
const PAGE_LIMIT: u64 = 100;
/// Messages a non-member gets with `preview=1` when the dialog allows previews.
const PREVIEW_LIMIT: u64 = 20;
/// Search rules (§4.5).
const MIN_SEARCH_CHARS: usize = 5;
const MAX_SEARCH_DIALOGS: usize = 10;
const MAX_SEARCH_RANGE_SECS: i64 = 92 * 86_400;

/// What `GET /chat/Message` can filter on. `attachments.type` looks at the first attachment.
const FIELDS: &[Field] = &[
    Field::new("_id", "m.id", FieldKind::Text),
    Field::new("message", "m.body", FieldKind::Text),
    Field::new("date_sent", "m.date_sent", FieldKind::UnixSeconds),
    Field::new("sender_id", "m.sender_id", FieldKind::Int),
    Field::new("recipient_id", "m.recipient_id", FieldKind::Int),
    Field::new(
        "attachments.type",
        "json_extract(m.attachments, '$[0].type')",
        FieldKind::Text,
    ),
    Field::new("updated_at", "m.updated_at", FieldKind::Time),
    Field::new("created_at", "m.created_at", FieldKind::Time),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat/Message", get(history).post(create).put(mark_all))
        .route("/chat/Message/unread", get(unread))
        .route("/chat/Message/system", post(system))
        .route("/chat/Message/{id}", put(update).delete(remove))
        .route("/chat/Message/{id}/reactions", put(react).get(reactions))
        .route("/chat/search", get(search))
}

/// `ORDER BY` for the history: `sort_desc`/`sort_asc` on `date_sent` (default ascending),
/// `created_at`, `updated_at` or `_id`; insertion order breaks ties.
fn history_order(q: &Query) -> String {
    for (param, dir) in [("sort_desc", "DESC"), ("sort_asc", "ASC")] {
        if let Some(v) = q.get(param) {
            let col = match v.split_whitespace().last().unwrap_or_default() {
                "date_sent" => "m.date_sent",
                "created_at" => "m.created_at",
                "updated_at" => "m.updated_at",
                "_id" => "m.seq",
                _ => continue,
            };
            return format!("{col} {dir}, m.seq {dir}");
        }
    }
    "m.date_sent ASC, m.seq ASC".to_owned()
}

/// `GET /chat/Message?chat_dialog_id=…`
async fn history(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Json<MessagesPage>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    let dialog_id = q
        .get("chat_dialog_id")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::unprocessable("chat_dialog_id", "can't be blank"))?
        .to_owned();
    let filter = query::build_filter(&q, FIELDS)?;
    let order = history_order(&q);
    let (mut limit, skip) = query::paging(&q, PAGE_LIMIT, PAGE_LIMIT);
    let mark = q.get("mark_as_read").map(str::trim) != Some("0");
    let preview = q.get("preview").map(str::trim) == Some("1");
    let caller = session.user_id;
    let items = state.db.call(|c| {
        let tx = c.transaction()?;
        let dialog = load(&tx, session.app_id, &dialog_id)?;
        let member = dialog_db::member_of(&tx, &dialog, caller)?;
        let cleared = match member {
            Some(m) => m.cleared_seq,
            None if preview && dialog.permissions.as_ref().is_some_and(|p| p.allow_preview) => {
                limit = limit.min(PREVIEW_LIMIT);
                0
            }
            None => return Err(no_permission()),
        };
        let rows = message_db::list(
            &tx,
            &dialog.id,
            caller,
            cleared,
            &filter.clauses,
            &filter.args,
            &order,
            limit,
            skip,
        )?;
        if mark && member.is_some() {
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            message_db::mark_read(&tx, &ids, caller)?;
        }
        let items = rows
            .iter()
            .map(|r| message_db::to_wire(&tx, r, caller))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        tx.commit()?;
        Ok::<_, ApiError>(items)
    })?;
    Ok(Json(MessagesPage { skip, limit, items }))
}

/// Attachments given as an array or as an object keyed by index.
fn attachments(v: Option<&Value>) -> Result<Vec<Attachment>, ApiError> {
    let items: Vec<Value> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(map)) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| (k.parse::<u64>().unwrap_or(u64::MAX), k.to_string()));
            entries.into_iter().map(|(_, v)| v.clone()).collect()
        }
        Some(_) => {
            return Err(ApiError::unprocessable(
                "attachments",
                "must be an array or an object",
            ))
        }
    };
    items
        .into_iter()
        .map(|item| {
            if item.is_object() {
                from_value::<Attachment>(item)
                    .map_err(|_| ApiError::unprocessable("attachments", "invalid attachment"))
            } else {
                Err(ApiError::unprocessable(
                    "attachments",
                    "each attachment must be an object",
                ))
            }
        })
        .collect()
}

/// `POST /chat/Message`
async fn create(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::unprocessable("base", "expected a JSON object"));
    };
    let caller = session.user_id;
    let dialog_id = map
        .get("chat_dialog_id")
        .and_then(message_db::custom_value)
        .filter(|s| !s.trim().is_empty());
    let recipient = int(map.get("recipient_id")).filter(|r| *r > 0);
    let text = map
        .get("message")
        .and_then(message_db::custom_value)
        .filter(|s| !s.is_empty());
    let attachments = attachments(map.get("attachments"))?;
    let mut errors = FieldErrors::new();
    if dialog_id.is_none() && recipient.is_none() {
        errors.add("chat_dialog_id", "can't be blank");
    }
    if recipient == Some(caller) && dialog_id.is_none() {
        errors.add("recipient_id", "can't be yourself");
    }
    if text.is_none() && attachments.is_empty() {
        errors.add("message", "can't be blank");
    }
    errors.into_result()?;
    let custom: BTreeMap<String, String> = map
        .iter()
        .filter(|(k, _)| !message_db::RESERVED_KEYS.contains(&k.as_str()))
        .filter_map(|(k, v)| message_db::custom_value(v).map(|v| (k.clone(), v)))
        .collect();
    let date_sent = match map.get("date_sent") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let now = db::now_ms();
    let app_id = session.app_id;
    let send_to_chat = flag(map.get("send_to_chat"));
    let (message, dialog, row) = state.db.call(|c| {
        let tx = c.transaction()?;
        let dialog = match &dialog_id {
            Some(id) => {
                let d = load(&tx, app_id, id)?;
                let m = require_member(&tx, &d, caller)?;
                if d.kind == dialog_type::BROADCAST && d.user_id != caller && !m.admin {
                    return Err(no_permission());
                }
                d
            }
            None => {
                let other = recipient.unwrap_or_default();
                if user_db::find(&tx, app_id, other)?.is_none() {
                    return Err(ApiError::unprocessable("recipient_id", "not found"));
                }
                dialog_db::find_or_create_private(&tx, app_id, caller, other, now)?.0
            }
        };
        let row = message_db::create(
            &tx,
            &NewMessage {
                id: None,
                dialog_id: dialog.id.clone(),
                sender_id: caller,
                recipient_id: 0,
                body: text.clone(),
                attachments: attachments.clone(),
                custom: custom.clone(),
                date_sent,
                markable: flag(map.get("markable")),
                send_to_chat,
            },
            now,
        )?;
        let message = message_db::to_wire(&tx, &row, caller)?;
        tx.commit()?;
        Ok::<_, ApiError>((message, dialog, row))
    })?;
    if send_to_chat {
        state.xmpp.push_rest_message(&dialog, &row);
    }
    Ok((StatusCode::CREATED, Json(message)).into_response())
}

/// A message of the caller's application with its dialog; `None` when unknown.
fn load_message(
    conn: &Connection,
    app_id: u64,
    id: &str,
) -> Result<Option<(MessageRow, DialogRow)>, ApiError> {
    if !is_object_id(id) {
        return Ok(None);
    }
    let Some(row) = message_db::find(conn, id)? else {
        return Ok(None);
    };
    Ok(dialog_db::find(conn, app_id, &row.dialog_id)?.map(|d| (row, d)))
}

/// `PUT /chat/Message/{id1},{id2}` `{chat_dialog_id, read, delivered, message}`
async fn update(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(ids): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let ids: Vec<String> = query::split_list(&ids).collect();
    let only_dialog = body
        .get("chat_dialog_id")
        .and_then(message_db::custom_value);
    let read = flag(body.get("read"));
    let delivered = flag(body.get("delivered"));
    let new_body = body.get("message").and_then(message_db::custom_value);
    let caller = session.user_id;
    let now = db::now_ms();
    let edited = state.db.call(|c| {
        let tx = c.transaction()?;
        let mut found = Vec::new();
        let mut dialogs = Vec::new();
        for id in &ids {
            let Some((row, dialog)) = load_message(&tx, session.app_id, id)? else {
                continue;
            };
            if only_dialog.as_ref().is_some_and(|d| *d != row.dialog_id) {
                continue;
            }
            require_member(&tx, &dialog, caller)?;
            if new_body.is_some() && row.sender_id != caller {
                return Err(no_permission());
            }
            found.push(row.id);
            dialogs.push(dialog);
        }
        if found.is_empty() {
            return Err(ApiError::not_found());
        }
        if let Some(text) = &new_body {
            for id in &found {
                message_db::edit_body(&tx, id, text, now)?;
            }
        }
        if read {
            message_db::mark_read(&tx, &found, caller)?;
        } else if delivered {
            message_db::mark_delivered(&tx, &found, caller)?;
        }
        tx.commit()?;
        Ok::<_, ApiError>(found.into_iter().zip(dialogs).collect::<Vec<_>>())
    })?;
    if let Some(text) = &new_body {
        for (id, dialog) in &edited {
            state.xmpp.push_edit(dialog, caller, id, text);
        }
    }
    Ok(StatusCode::OK)
}

/// `PUT /chat/Message {"read":1, "chat_dialog_id"}`: marks the whole dialog read (or
/// delivered) for the caller.
async fn mark_all(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let dialog_id = body
        .get("chat_dialog_id")
        .and_then(message_db::custom_value)
        .ok_or_else(|| ApiError::unprocessable("chat_dialog_id", "can't be blank"))?;
    let read = flag(body.get("read"));
    let delivered = flag(body.get("delivered"));
    let caller = session.user_id;
    state.db.call(|c| {
        let tx = c.transaction()?;
        let dialog = load(&tx, session.app_id, &dialog_id)?;
        let m = require_member(&tx, &dialog, caller)?;
        let ids = message_db::visible_ids(&tx, &dialog.id, caller, m.cleared_seq)?;
        if read {
            message_db::mark_read(&tx, &ids, caller)?;
        } else if delivered {
            message_db::mark_delivered(&tx, &ids, caller)?;
        }
        tx.commit()?;
        Ok::<_, ApiError>(())
    })?;
    Ok(StatusCode::OK)
}

fn delete_one(
    conn: &Connection,
    session: &SessionRow,
    id: &str,
    force: bool,
    deleted: &mut Vec<(String, DialogRow)>,
) -> Result<Outcome, ApiError> {
    let caller = session.user_id;
    let Some((row, dialog)) = load_message(conn, session.app_id, id)? else {
        return Ok(Outcome::NotFound);
    };
    let Some(m) = dialog_db::member_of(conn, &dialog, caller)? else {
        return Ok(Outcome::WrongPermissions);
    };
    if force {
        if row.sender_id != caller && dialog.user_id != caller && !m.admin {
            return Ok(Outcome::WrongPermissions);
        }
        message_db::delete(conn, &row)?;
        deleted.push((row.id, dialog));
    } else {
        message_db::hide_for(conn, &row.id, caller)?;
    }
    Ok(Outcome::Deleted)
}

/// `DELETE /chat/Message/{id1},{id2}` (+`force=1`) → [`DeleteResult`].
async fn remove(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(ids): ApiPath<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<DeleteResult>, ApiError> {
    let force = force(&delete_params(raw.as_deref(), &body));
    let ids: Vec<String> = query::split_list(&ids).collect();
    let mut deleted = Vec::new();
    let result = state.db.call(|c| {
        let tx = c.transaction()?;
        let mut result = DeleteResult::default();
        for id in ids {
            let outcome = delete_one(&tx, &session, &id, force, &mut deleted)?;
            result.push(id, outcome);
        }
        tx.commit()?;
        Ok::<_, ApiError>(result)
    })?;
    for (id, dialog) in &deleted {
        state.xmpp.push_delete(dialog, session.user_id, id);
    }
    Ok(Json(result))
}

/// `GET /chat/Message/unread[?chat_dialog_ids=a, b]` → `{"total": N, "<id>": n, …}`.
/// Without ids: the total over the caller's group and private dialogs. With ids: one entry
/// per given dialog the caller is in, and their sum as `total`.
async fn unread(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    let mut ids = q.list("chat_dialog_ids", "");
    ids.extend(q.list("dialogs_ids", ""));
    let caller = session.user_id;
    let out = state.db.call(|c| {
        let mut out = Map::new();
        let mut total = 0;
        if ids.is_empty() {
            let mut stmt = c.prepare_cached(
                "SELECT d.id, o.cleared_seq FROM dialogs d JOIN dialog_occupants o \
                 ON o.dialog_id = d.id AND o.user_id = ?1 \
                 WHERE d.app_id = ?2 AND d.type IN (2, 3) AND o.hidden = 0",
            )?;
            let rows = stmt
                .query_map(rusqlite::params![caller, session.app_id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (id, cleared) in rows {
                total += dialog_db::unread_count(c, &id, caller, cleared)?;
            }
        } else {
            for id in &ids {
                if !is_object_id(id) {
                    continue;
                }
                let Some(dialog) = dialog_db::find(c, session.app_id, id)? else {
                    continue;
                };
                let Some(m) = dialog_db::member_of(c, &dialog, caller)? else {
                    continue;
                };
                let n = dialog_db::unread_count(c, id, caller, m.cleared_seq)?;
                total += n;
                out.insert(id.clone(), json!(n));
            }
        }
        out.insert("total".to_owned(), json!(total));
        Ok::<_, ApiError>(out)
    })?;
    Ok(Json(out))
}

/// `POST /chat/Message/system {"recipientId": 5, …}` → `{"messageId", "recipientId",
/// "extensionParams"}`. Stored in `system_messages` and pushed over XMPP as a headline
/// (kept for offline delivery when the recipient has no online resource).
async fn system(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::unprocessable("base", "expected a JSON object"));
    };
    let recipient = int(map.get("recipientId").or_else(|| map.get("recipient_id")))
        .filter(|r| *r > 0)
        .ok_or_else(|| ApiError::unprocessable("recipientId", "can't be blank"))?;
    let params: BTreeMap<String, String> = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "recipientId" | "recipient_id"))
        .filter_map(|(k, v)| message_db::custom_value(v).map(|v| (k.clone(), v)))
        .collect();
    let now = db::now_ms();
    let id = state.db.call(|c| {
        if user_db::find(c, session.app_id, recipient)?.is_none() {
            return Err(ApiError::unprocessable("recipientId", "not found"));
        }
        Ok(message_db::create_system(
            c,
            session.app_id,
            session.user_id,
            recipient,
            &params,
            now,
        )?)
    })?;
    state
        .xmpp
        .push_system(session.app_id, session.user_id, recipient, &id, &params);
    Ok(Json(json!({
        "messageId": id,
        "recipientId": recipient,
        "extensionParams": params,
    })))
}

/// `PUT /chat/Message/{id}/reactions {"add": "🔥", "remove": "👎"}`
async fn react(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let pick = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (add, remove) = (pick("add"), pick("remove"));
    if add.is_none() && remove.is_none() {
        return Err(ApiError::unprocessable("base", "add or remove is required"));
    }
    let now = db::now_ms();
    let (row, dialog) = state.db.call(|c| {
        let (row, dialog) =
            load_message(c, session.app_id, &id)?.ok_or_else(ApiError::not_found)?;
        require_member(c, &dialog, session.user_id)?;
        message_db::react(
            c,
            &row.id,
            session.user_id,
            add.as_deref(),
            remove.as_deref(),
            now,
        )?;
        Ok::<_, ApiError>((row, dialog))
    })?;
    state.xmpp.push_reactions(
        &dialog,
        &ReactionChange {
            user_id: session.user_id,
            message_id: row.id,
            dialog_id: dialog.id.clone(),
            add,
            remove,
        },
    );
    Ok(StatusCode::OK)
}

/// `GET /chat/Message/{id}/reactions` → `{"👍": [user ids], …}`
async fn reactions(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BTreeMap<String, Vec<u64>>>, ApiError> {
    let all = state.db.call(|c| {
        let (row, dialog) =
            load_message(c, session.app_id, &id)?.ok_or_else(ApiError::not_found)?;
        require_member(c, &dialog, session.user_id)?;
        Ok::<_, ApiError>(message_db::reactions(c, &row.id)?)
    })?;
    Ok(Json(all))
}

/// Unix seconds (integer or decimal) or ISO-8601 (with or without milliseconds).
fn parse_time(v: &str) -> Option<i64> {
    let v = v.trim();
    v.parse::<i64>()
        .ok()
        .or_else(|| {
            v.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f as i64)
        })
        .or_else(|| parse_iso8601(v))
}

/// `GET /chat/search?search_text&start_date&end_date&chat_dialog_ids&limit`
async fn search(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchResults>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    let text = q.get("search_text").unwrap_or_default().to_owned();
    let mut errors = FieldErrors::new();
    if text.chars().count() < MIN_SEARCH_CHARS {
        errors.add(
            "search_text",
            format!("is too short (minimum is {MIN_SEARCH_CHARS} characters)"),
        );
    }
    let date = |name: &str, errors: &mut FieldErrors| {
        let v = q.get(name).filter(|v| !v.trim().is_empty())?;
        let t = parse_time(v);
        if t.is_none() {
            errors.add(name, "must be an ISO-8601 time or Unix seconds");
        }
        t
    };
    let start = date("start_date", &mut errors);
    let end = date("end_date", &mut errors);
    if q.get("start_date").is_some_and(|v| !v.trim().is_empty()) && end.is_none() {
        errors.add("end_date", "is required with start_date");
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            errors.add("end_date", "must not be before start_date");
        } else if e - s > MAX_SEARCH_RANGE_SECS {
            errors.add("end_date", "must be within 3 months of start_date");
        }
    }
    let mut ids = q.list("chat_dialog_ids", "");
    ids.dedup();
    if ids.len() > MAX_SEARCH_DIALOGS {
        errors.add(
            "chat_dialog_ids",
            format!("at most {MAX_SEARCH_DIALOGS} dialogs"),
        );
    }
    let limit = match q.get("limit") {
        None => PAGE_LIMIT,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (1..=PAGE_LIMIT).contains(&n) => n,
            _ => {
                errors.add("limit", format!("must be between 1 and {PAGE_LIMIT}"));
                PAGE_LIMIT
            }
        },
    };
    errors.into_result()?;
    let ids: Vec<String> = ids.into_iter().filter(|i| is_object_id(i)).collect();
    let restrict = !q.list("chat_dialog_ids", "").is_empty();
    let caller = session.user_id;
    let app_id = session.app_id;
    let results = state.db.call(|c| {
        let id_clause = |col: &str, args: &mut Vec<SqlValue>| -> String {
            args.extend(ids.iter().cloned().map(SqlValue::Text));
            if ids.is_empty() {
                "0".to_owned()
            } else {
                format!("{col} IN ({})", vec!["?"; ids.len()].join(", "))
            }
        };
        // Dialogs by name.
        let mut clauses = vec!["instr(d.name, ?) > 0".to_owned()];
        let mut args = vec![SqlValue::Text(text.clone())];
        if restrict {
            clauses.push(id_clause("d.id", &mut args));
        }
        let (_, rows) = dialog_db::search(
            c,
            app_id,
            caller,
            &clauses,
            &args,
            "d.last_message_date_sent DESC, d.updated_at DESC, d.id DESC",
            limit,
            0,
        )?;
        let dialogs = rows
            .iter()
            .map(|r| dialogs::wire(&state, c, r, caller))
            .collect::<Result<Vec<_>, _>>()?;

        // Messages by body, in the caller's dialogs.
        let to_sql = |n: u64| SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let mut args = vec![
            to_sql(caller),
            to_sql(app_id),
            to_sql(caller),
            SqlValue::Text(text.clone()),
        ];
        let mut clauses = vec![
            "d.app_id = ?".to_owned(),
            dialog_db::LISTED.to_owned(),
            "m.seq > COALESCE(o.cleared_seq, 0)".to_owned(),
            "NOT EXISTS (SELECT 1 FROM message_hidden h WHERE h.message_id = m.id \
             AND h.user_id = ?)"
                .to_owned(),
            "instr(m.body, ?) > 0".to_owned(),
        ];
        if let Some(s) = start {
            clauses.push("m.date_sent >= ?".to_owned());
            args.push(SqlValue::Integer(s));
        }
        if let Some(e) = end {
            clauses.push("m.date_sent <= ?".to_owned());
            args.push(SqlValue::Integer(e));
        }
        if restrict {
            clauses.push(id_clause("m.dialog_id", &mut args));
        }
        args.push(to_sql(limit));
        let mut stmt = c.prepare(&format!(
            "SELECT {} FROM messages m JOIN dialogs d ON d.id = m.dialog_id \
             LEFT JOIN dialog_occupants o ON o.dialog_id = d.id AND o.user_id = ? \
             WHERE {} ORDER BY m.date_sent DESC, m.seq DESC LIMIT ?",
            message_db::COLUMNS,
            clauses.join(" AND ")
        ))?;
        let rows = stmt
            .query_map(params_from_iter(args.iter()), message_db::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let messages = rows
            .iter()
            .map(|r| message_db::to_wire(c, r, caller))
            .collect::<rusqlite::Result<Vec<Message>>>()?;

        // Users by login or full name.
        let (_, users) = user_db::search(
            c,
            app_id,
            &["(instr(login, ?) > 0 OR instr(full_name, ?) > 0)".to_owned()],
            &[SqlValue::Text(text.clone()), SqlValue::Text(text.clone())],
            "id ASC",
            limit,
            0,
        )?;
        Ok::<_, ApiError>(SearchResults {
            results: SearchResultSets {
                dialogs,
                messages,
                users: users.iter().map(|u| u.to_wire()).collect(),
            },
        })
    })?;
    Ok(Json(results))
}
