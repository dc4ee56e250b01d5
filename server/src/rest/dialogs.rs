//! Chat dialogs (protocol reference §4.1–4.3). Every route needs a user session and also
//! answers under the lower-case `/chat/dialog` prefix.
//!
//! Roles: the owner (`user_id`, the creator), up to [`MAX_ADMINS`] admins, occupants. In a
//! group, occupants may rename and add occupants; only the owner removes others; anyone
//! removes themselves. Only the owner changes admins. Owner and admins delete for everyone
//! (either participant of a private dialog may too).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use cubechat_wire::chat::{
    dialog_type, id_list, is_object_id, DeleteOutcome as Outcome, DeleteResult, Dialog,
    DialogsPage, Notifications, NotificationsEnvelope, Permissions, MAX_ADMINS,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::{json, Value};

use super::extract::{ApiPath, JsonBody, UserSession};
use super::query::{self, Field, FieldKind, Query};
use crate::db::dialogs::{self as dialog_db, DialogRow, Membership};
use crate::db::messages as message_db;
use crate::db::sessions::SessionRow;
use crate::db::{self, users as user_db};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// Page size of the dialog list when no `limit` is given, and its maximum.
const PAGE_LIMIT: u64 = 100;

/// The 403 message for a dialog the caller may not touch this way.
pub const NO_PERMISSION: &str = "You don't have appropriate permissions to perform this operation";

/// What `GET /chat/Dialog` can filter on.
const FIELDS: &[Field] = &[
    Field::new("_id", "d.id", FieldKind::Text),
    Field::new("type", "d.type", FieldKind::Int),
    Field::new("name", "d.name", FieldKind::Text),
    Field::new(
        "last_message_date_sent",
        "d.last_message_date_sent",
        FieldKind::UnixSeconds,
    ),
    Field::new("created_at", "d.created_at", FieldKind::Time),
    Field::new("updated_at", "d.updated_at", FieldKind::Time),
];

/// Default list order: newest last message first, then most recently updated.
const DEFAULT_ORDER: &str = "d.last_message_date_sent DESC, d.updated_at DESC, d.id DESC";

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for base in ["/chat/Dialog", "/chat/dialog"] {
        router = router
            .route(base, get(list).post(create))
            .route(&format!("{base}/{{id}}"), put(update).delete(remove))
            .route(
                &format!("{base}/clearHistory/{{id}}"),
                delete(clear_history),
            )
            .route(
                &format!("{base}/{{id}}/subscribe"),
                post(subscribe).delete(unsubscribe),
            )
            .route(&format!("{base}/{{id}}/occupants"), get(occupants))
            .route(&format!("{base}/{{id}}/admins"), put(admins))
            .route(
                &format!("{base}/{{id}}/notifications"),
                get(get_notifications).put(set_notifications),
            );
    }
    router
}

pub fn no_permission() -> ApiError {
    ApiError::forbidden(NO_PERMISSION)
}

/// The dialog `id` of the caller's application; 404 for an unknown or malformed id.
pub fn load(conn: &Connection, app_id: u64, id: &str) -> Result<DialogRow, ApiError> {
    if !is_object_id(id) {
        return Err(ApiError::not_found());
    }
    dialog_db::find(conn, app_id, id)?.ok_or_else(ApiError::not_found)
}

/// The caller's membership; 403 when they are not in the dialog.
pub fn require_member(
    conn: &Connection,
    dialog: &DialogRow,
    user_id: u64,
) -> Result<Membership, ApiError> {
    dialog_db::member_of(conn, dialog, user_id)?.ok_or_else(no_permission)
}

/// The dialog as the caller sees it.
pub fn wire(
    state: &AppState,
    conn: &Connection,
    row: &DialogRow,
    caller: u64,
) -> Result<Dialog, ApiError> {
    Ok(dialog_db::to_wire(
        conn,
        row,
        caller,
        &state.settings.chat_domain,
    )?)
}

/// User ids from a JSON array or a `"5, 6"` string; 422 on anything that is not an id.
pub fn user_ids(field: &str, v: &Value) -> Result<Vec<u64>, ApiError> {
    let mut out = Vec::new();
    for s in id_list(v) {
        let id = s
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::unprocessable(field, format!("invalid user id {s}")))?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// 422 when any of `ids` is not a user of the application.
fn check_users(conn: &Connection, app_id: u64, field: &str, ids: &[u64]) -> Result<(), ApiError> {
    let mut missing = Vec::new();
    for id in ids {
        if user_db::find(conn, app_id, *id)?.is_none() {
            missing.push(id.to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            field,
            format!("contains unknown user ids: {}", missing.join(", ")),
        ))
    }
}

/// A flag given as 1/0, "1"/"0", true/false.
pub fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true"),
        _ => false,
    }
}

/// A positive integer given as a number or a numeric string.
pub fn int(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional text field: a string, a number as text, or null/absent.
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(message_db::custom_value)
}

fn extensions(v: &Value) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(
            map.iter()
                .filter_map(|(k, v)| message_db::custom_value(v).map(|v| (k.clone(), v)))
                .collect(),
        )),
        _ => Err(ApiError::unprocessable("extensions", "must be an object")),
    }
}

fn permissions(v: &Value) -> Result<Option<Permissions>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(Permissions {
            allow_preview: flag(map.get("allow_preview")),
        })),
        _ => Err(ApiError::unprocessable("permissions", "must be an object")),
    }
}

/// The parameters of a DELETE: the query string plus a url-encoded (or JSON) body (§2.3).
pub fn delete_params(raw_query: Option<&str>, body: &[u8]) -> Query {
    let mut q = Query::parse(raw_query.unwrap_or(""));
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.starts_with('{') {
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            for (k, v) in map {
                if let Some(v) = message_db::custom_value(&v) {
                    q.params.push(query::Param {
                        name: k,
                        path: Vec::new(),
                        value: v,
                    });
                }
            }
        }
    } else if !text.is_empty() {
        q.params.extend(Query::parse(text).params);
    }
    q
}

/// `force=1` (or `true`).
pub fn force(q: &Query) -> bool {
    q.get("force")
        .is_some_and(|v| matches!(v.trim(), "1" | "true"))
}

fn count_only(q: &Query) -> bool {
    q.get("count")
        .is_some_and(|v| matches!(v.trim(), "1" | "true"))
}

fn to_sql(n: u64) -> SqlValue {
    SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `GET /chat/Dialog`
async fn list(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    let mut filter = query::build_filter(&q, FIELDS)?;
    for p in &q.params {
        match (p.name.as_str(), p.path.as_slice()) {
            // extensions[key]=value
            ("extensions", [key]) if !key.contains('"') => {
                filter
                    .clauses
                    .push("json_extract(d.extensions, ?) = ?".to_owned());
                filter.args.push(SqlValue::Text(format!("$.\"{key}\"")));
                filter.args.push(SqlValue::Text(p.value.clone()));
            }
            // occupants_ids[in]=5,6 (any of) and occupants_ids[all]=5,6
            ("occupants_ids", path) => {
                let op = path.first().map_or("", String::as_str);
                let ids = user_ids("occupants_ids", &Value::String(p.value.clone()))?;
                let exists = "EXISTS (SELECT 1 FROM dialog_occupants x WHERE x.dialog_id = d.id \
                              AND x.user_id";
                match op {
                    "all" => {
                        for id in ids {
                            filter.clauses.push(format!("{exists} = ?)"));
                            filter.args.push(to_sql(id));
                        }
                    }
                    "" | "in" if !ids.is_empty() => {
                        let marks = vec!["?"; ids.len()].join(", ");
                        filter.clauses.push(format!("{exists} IN ({marks}))"));
                        filter.args.extend(ids.into_iter().map(to_sql));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let order = query::order_by(&q, &FIELDS[3..], DEFAULT_ORDER);
    let (limit, skip) = query::paging(&q, PAGE_LIMIT, PAGE_LIMIT);
    let caller = session.user_id;
    let counting = count_only(&q);
    state.db.call(|c| {
        let (total, rows) = dialog_db::search(
            c,
            session.app_id,
            caller,
            &filter.clauses,
            &filter.args,
            &order,
            if counting { 0 } else { limit },
            skip,
        )?;
        if counting {
            return Ok(Json(json!({ "items_count": total })).into_response());
        }
        let items = rows
            .iter()
            .map(|r| wire(&state, c, r, caller))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(DialogsPage {
            total_entries: total,
            skip,
            limit,
            items,
        })
        .into_response())
    })
}

/// `POST /chat/Dialog`
async fn create(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let caller = session.user_id;
    let kind = int(body.get("type"))
        .and_then(|t| u8::try_from(t).ok())
        .filter(|t| (dialog_type::BROADCAST..=dialog_type::PUBLIC).contains(t))
        .ok_or_else(|| ApiError::unprocessable("type", "must be 1, 2, 3 or 4"))?;
    if kind == dialog_type::BROADCAST {
        return Err(ApiError::forbidden(
            "Broadcast dialogs can only be created in the admin panel",
        ));
    }
    let name = text(body.get("name")).filter(|n| !n.trim().is_empty());
    let mut occupants = match body.get("occupants_ids") {
        Some(v) => user_ids("occupants_ids", v)?,
        None => Vec::new(),
    };
    occupants.retain(|u| *u != caller);
    let mut admins = match body.get("admins_ids") {
        Some(v) => user_ids("admins_ids", v)?,
        None => Vec::new(),
    };
    admins.retain(|u| *u != caller);
    let mut errors = FieldErrors::new();
    if kind != dialog_type::PRIVATE && name.is_none() {
        errors.add("name", "can't be blank");
    }
    if kind == dialog_type::PRIVATE && occupants.len() != 1 {
        errors.add(
            "occupants_ids",
            "a private dialog needs exactly one other occupant",
        );
    }
    if admins.len() > MAX_ADMINS {
        errors.add("admins_ids", format!("at most {MAX_ADMINS} admins"));
    }
    if kind == dialog_type::GROUP && admins.iter().any(|a| !occupants.contains(a)) {
        errors.add("admins_ids", "admins must be occupants");
    }
    errors.into_result()?;
    let ext = body
        .get("extensions")
        .map(extensions)
        .transpose()?
        .flatten();
    let perm = body
        .get("permissions")
        .map(permissions)
        .transpose()?
        .flatten();
    let now = db::now_ms();
    let app_id = session.app_id;
    let (dialog, created) = state.db.call(|c| {
        let tx = c.transaction()?;
        check_users(&tx, app_id, "occupants_ids", &occupants)?;
        check_users(&tx, app_id, "admins_ids", &admins)?;
        let (row, created) = if kind == dialog_type::PRIVATE {
            let (row, created) =
                dialog_db::find_or_create_private(&tx, app_id, caller, occupants[0], now)?;
            if !created {
                dialog_db::add_occupant(&tx, &row.id, caller, now)?;
            }
            (row, created)
        } else {
            let row = DialogRow {
                id: db::object_id(),
                app_id,
                kind,
                user_id: caller,
                name: name.clone(),
                description: text(body.get("description")),
                photo: text(body.get("photo")),
                extensions: ext.clone(),
                permissions: perm.clone(),
                created_at: now,
                updated_at: now,
                ..DialogRow::default()
            };
            let mut members = vec![caller];
            if kind == dialog_type::GROUP {
                members.extend(&occupants);
            } else {
                // Public: the creator and the admins subscribe.
                members.extend(&admins);
            }
            dialog_db::insert(&tx, &row, &members)?;
            for a in &admins {
                dialog_db::set_admin(&tx, &row.id, *a, true)?;
            }
            (row, true)
        };
        let dialog = wire(&state, &tx, &row, caller)?;
        tx.commit()?;
        Ok::<_, ApiError>((dialog, created))
    })?;
    tracing::info!(app_id, user_id = caller, dialog = %dialog.id, created, "dialog created");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(dialog)).into_response())
}

/// The changes of one `push_all` or `pull_all` object.
#[derive(Default)]
struct ListChange {
    occupants: Vec<u64>,
    admins: Vec<u64>,
    pinned: Vec<String>,
}

fn list_change(v: Option<&Value>) -> Result<ListChange, ApiError> {
    let Some(v) = v else {
        return Ok(ListChange::default());
    };
    let field = |name: &str| v.get(name).cloned().unwrap_or(Value::Null);
    let pinned = id_list(&field("pinned_messages_ids"));
    if pinned.iter().any(|p| !is_object_id(p)) {
        return Err(ApiError::unprocessable(
            "pinned_messages_ids",
            "must be message ids",
        ));
    }
    Ok(ListChange {
        occupants: user_ids("occupants_ids", &field("occupants_ids"))?,
        admins: user_ids("admins_ids", &field("admins_ids"))?,
        pinned,
    })
}

/// Adds and removes admins: owner only, admins must be occupants, at most [`MAX_ADMINS`].
/// A private dialog has no admins.
fn change_admins(
    conn: &Connection,
    dialog: &DialogRow,
    caller: u64,
    push: &[u64],
    pull: &[u64],
) -> Result<(), ApiError> {
    if push.is_empty() && pull.is_empty() {
        return Ok(());
    }
    if dialog.user_id != caller || dialog.kind == dialog_type::PRIVATE {
        return Err(no_permission());
    }
    for a in pull {
        dialog_db::set_admin(conn, &dialog.id, *a, false)?;
    }
    for a in push {
        if *a == dialog.user_id {
            continue;
        }
        if dialog_db::membership(conn, &dialog.id, *a)?.is_none() {
            return Err(ApiError::unprocessable(
                "admins_ids",
                format!("user {a} is not an occupant"),
            ));
        }
        dialog_db::set_admin(conn, &dialog.id, *a, true)?;
    }
    if dialog_db::admin_ids(conn, &dialog.id)?.len() > MAX_ADMINS {
        return Err(ApiError::unprocessable(
            "admins_ids",
            format!("at most {MAX_ADMINS} admins"),
        ));
    }
    Ok(())
}

/// `PUT /chat/Dialog/{id}`
async fn update(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Dialog>, ApiError> {
    let caller = session.user_id;
    let push = list_change(body.get("push_all"))?;
    let pull = list_change(body.get("pull_all"))?;
    let now = db::now_ms();
    let dialog = state.db.call(|c| {
        let tx = c.transaction()?;
        let mut row = load(&tx, session.app_id, &id)?;
        let m = require_member(&tx, &row, caller)?;
        let owner = row.user_id == caller;
        let privileged = owner || m.admin;
        let open_kind = matches!(row.kind, dialog_type::GROUP | dialog_type::PRIVATE);
        let may_edit = open_kind || privileged;

        // Plain fields.
        let touches_meta = ["name", "photo", "description", "extensions", "permissions"]
            .iter()
            .any(|k| body.get(k).is_some())
            || !push.pinned.is_empty()
            || !pull.pinned.is_empty();
        if touches_meta && !may_edit {
            return Err(no_permission());
        }
        if row.kind != dialog_type::PRIVATE {
            if let Some(v) = body.get("name") {
                match text(Some(v)).filter(|n| !n.trim().is_empty()) {
                    Some(n) => row.name = Some(n),
                    None => return Err(ApiError::unprocessable("name", "can't be blank")),
                }
            }
        }
        if let Some(v) = body.get("photo") {
            row.photo = text(Some(v)).filter(|s| !s.is_empty());
        }
        if let Some(v) = body.get("description") {
            row.description = text(Some(v)).filter(|s| !s.is_empty());
        }
        if let Some(v) = body.get("extensions") {
            row.extensions = extensions(v)?;
        }
        if let Some(v) = body.get("permissions") {
            row.permissions = permissions(v)?;
        }
        for p in &push.pinned {
            if !row.pinned_messages_ids.contains(p) {
                row.pinned_messages_ids.push(p.clone());
            }
        }
        row.pinned_messages_ids.retain(|p| !pull.pinned.contains(p));

        // Occupants.
        if !push.occupants.is_empty() {
            if row.kind != dialog_type::GROUP {
                return Err(no_permission());
            }
            check_users(&tx, session.app_id, "occupants_ids", &push.occupants)?;
            for u in &push.occupants {
                dialog_db::add_occupant(&tx, &row.id, *u, now)?;
            }
        }
        if !pull.occupants.is_empty() {
            let only_self = pull.occupants.iter().all(|u| *u == caller);
            let allowed = match row.kind {
                dialog_type::GROUP => only_self || owner,
                dialog_type::PUBLIC => only_self,
                _ => false,
            };
            if !allowed {
                return Err(no_permission());
            }
            for u in &pull.occupants {
                dialog_db::remove_occupant(&tx, &row.id, *u)?;
            }
        }
        change_admins(&tx, &row, caller, &push.admins, &pull.admins)?;
        row.updated_at = now;
        dialog_db::update(&tx, &row)?;
        let dialog = wire(&state, &tx, &row, caller)?;
        tx.commit()?;
        Ok::<_, ApiError>(dialog)
    })?;
    // Occupants removed by someone else are kicked from the joined room (§6.7).
    for u in pull.occupants.iter().filter(|u| **u != caller) {
        state.xmpp.kick(session.app_id, &id, *u, caller);
    }
    Ok(Json(dialog))
}

/// `PUT /chat/Dialog/{id}/admins {push_all|pull_all: {admins_ids}}`: the owner only.
async fn admins(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Dialog>, ApiError> {
    let caller = session.user_id;
    let push = list_change(body.get("push_all"))?;
    let pull = list_change(body.get("pull_all"))?;
    let now = db::now_ms();
    let dialog = state.db.call(|c| {
        let tx = c.transaction()?;
        let mut row = load(&tx, session.app_id, &id)?;
        require_member(&tx, &row, caller)?;
        if row.user_id != caller {
            return Err(no_permission());
        }
        change_admins(&tx, &row, caller, &push.admins, &pull.admins)?;
        row.updated_at = now;
        dialog_db::touch(&tx, &row.id, now)?;
        let dialog = wire(&state, &tx, &row, caller)?;
        tx.commit()?;
        Ok::<_, ApiError>(dialog)
    })?;
    Ok(Json(dialog))
}

fn delete_one(
    conn: &Connection,
    session: &SessionRow,
    id: &str,
    force: bool,
    now: i64,
) -> Result<Outcome, ApiError> {
    let caller = session.user_id;
    let row = match load(conn, session.app_id, id) {
        Ok(row) => row,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(Outcome::NotFound),
        Err(e) => return Err(e),
    };
    let Some(m) = dialog_db::member_of(conn, &row, caller)? else {
        return Ok(Outcome::WrongPermissions);
    };
    if force {
        if row.user_id != caller && !m.admin && row.kind != dialog_type::PRIVATE {
            return Ok(Outcome::WrongPermissions);
        }
        dialog_db::delete(conn, &row.id)?;
        return Ok(Outcome::Deleted);
    }
    match row.kind {
        dialog_type::GROUP | dialog_type::PUBLIC => {
            dialog_db::remove_occupant(conn, &row.id, caller)?;
            if row.kind == dialog_type::GROUP && dialog_db::occupant_ids(conn, &row.id)?.is_empty()
            {
                dialog_db::delete(conn, &row.id)?;
            }
        }
        _ => {
            // Private: hidden until the next message. Broadcast: hidden for good.
            dialog_db::set_notifications(conn, &row.id, caller, m.notifications, now)?;
            dialog_db::set_hidden(conn, &row.id, caller, true)?;
        }
    }
    Ok(Outcome::Deleted)
}

/// `DELETE /chat/Dialog/{id}[,{id}…]` (+`force=1`): one id → 200 empty (404/403); several →
/// a [`DeleteResult`].
async fn remove(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(ids): ApiPath<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let q = delete_params(raw.as_deref(), &body);
    let force = force(&q);
    let ids: Vec<String> = query::split_list(&ids).collect();
    let now = db::now_ms();
    let outcomes = state.db.call(|c| {
        let tx = c.transaction()?;
        let mut out = Vec::new();
        for id in &ids {
            out.push(delete_one(&tx, &session, id, force, now)?);
        }
        tx.commit()?;
        Ok::<_, ApiError>(out)
    })?;
    if let [single] = outcomes.as_slice() {
        return match single {
            Outcome::Deleted => Ok(StatusCode::OK.into_response()),
            Outcome::NotFound => Err(ApiError::not_found()),
            Outcome::WrongPermissions => Err(no_permission()),
        };
    }
    let mut result = DeleteResult::default();
    for (id, o) in ids.into_iter().zip(outcomes) {
        result.push(id, o);
    }
    Ok(Json(result).into_response())
}

/// `DELETE /chat/Dialog/clearHistory/{id}` (+`force=1`: for everyone; owner/admin).
async fn clear_history(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let force = force(&delete_params(raw.as_deref(), &body));
    let caller = session.user_id;
    let now = db::now_ms();
    state.db.call(|c| {
        let tx = c.transaction()?;
        let row = load(&tx, session.app_id, &id)?;
        let m = require_member(&tx, &row, caller)?;
        if force {
            if row.user_id != caller && !m.admin && row.kind != dialog_type::PRIVATE {
                return Err(no_permission());
            }
            message_db::delete_all(&tx, &row.id)?;
        } else {
            // A broadcast member may have no row yet.
            dialog_db::set_notifications(&tx, &row.id, caller, m.notifications, now)?;
            dialog_db::clear_history_for(&tx, &row.id, caller)?;
        }
        tx.commit()?;
        Ok::<_, ApiError>(())
    })?;
    Ok(StatusCode::OK)
}

/// `POST /chat/Dialog/{id}/subscribe`: public and group dialogs.
async fn subscribe(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Dialog>, ApiError> {
    let caller = session.user_id;
    let now = db::now_ms();
    let dialog = state.db.call(|c| {
        let tx = c.transaction()?;
        let row = load(&tx, session.app_id, &id)?;
        match row.kind {
            dialog_type::PUBLIC | dialog_type::GROUP => {
                dialog_db::add_occupant(&tx, &row.id, caller, now)?;
            }
            dialog_type::BROADCAST => {}
            _ => return Err(no_permission()),
        }
        let dialog = wire(&state, &tx, &row, caller)?;
        tx.commit()?;
        Ok::<_, ApiError>(dialog)
    })?;
    Ok(Json(dialog))
}

/// `DELETE /chat/Dialog/{id}/subscribe`
async fn unsubscribe(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.db.call(|c| {
        let row = load(c, session.app_id, &id)?;
        match row.kind {
            dialog_type::PUBLIC | dialog_type::GROUP => {
                dialog_db::remove_occupant(c, &row.id, session.user_id)?;
                Ok(())
            }
            dialog_type::BROADCAST => Ok(()),
            _ => Err(no_permission()),
        }
    })?;
    Ok(StatusCode::OK)
}

/// `GET /chat/Dialog/{id}/occupants?limit&skip` → `{"items":[User]}`. Anyone in the app may
/// list a public dialog's subscribers; other dialogs need membership.
async fn occupants(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or(""));
    let (limit, skip) = query::paging(&q, PAGE_LIMIT, PAGE_LIMIT);
    let items = state.db.call(|c| {
        let row = load(c, session.app_id, &id)?;
        if row.kind != dialog_type::PUBLIC {
            require_member(c, &row, session.user_id)?;
        }
        let mut items = Vec::new();
        for u in dialog_db::occupant_page(c, &row.id, limit, skip)? {
            if let Some(user) = user_db::find(c, session.app_id, u)? {
                items.push(user.to_wire());
            }
        }
        Ok::<_, ApiError>(items)
    })?;
    Ok(Json(json!({ "items": items })))
}

/// `GET /chat/Dialog/{id}/notifications`
async fn get_notifications(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<NotificationsEnvelope>, ApiError> {
    let enabled = state.db.call(|c| {
        let row = load(c, session.app_id, &id)?;
        Ok::<_, ApiError>(require_member(c, &row, session.user_id)?.notifications)
    })?;
    Ok(Json(NotificationsEnvelope {
        notifications: Notifications {
            enabled: u8::from(enabled),
        },
    }))
}

/// `PUT /chat/Dialog/{id}/notifications {"enabled": 0|1}` (also `{"notifications":{…}}`).
async fn set_notifications(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<NotificationsEnvelope>, ApiError> {
    let v = body
        .get("enabled")
        .or_else(|| body.get("notifications").and_then(|n| n.get("enabled")))
        .ok_or_else(|| ApiError::unprocessable("enabled", "can't be blank"))?;
    let enabled = flag(Some(v));
    let now = db::now_ms();
    state.db.call(|c| {
        let row = load(c, session.app_id, &id)?;
        require_member(c, &row, session.user_id)?;
        dialog_db::set_notifications(c, &row.id, session.user_id, enabled, now)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(Json(NotificationsEnvelope {
        notifications: Notifications {
            enabled: u8::from(enabled),
        },
    }))
}
