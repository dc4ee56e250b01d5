//! The address book (protocol reference §3.5): a user's contacts per device, and the users
//! registered with those phones.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use cubechat_wire::address_book::{
    RegisteredUser, RegisteredUserItem, RegisteredUsers, UploadResponse,
};
use cubechat_wire::auth::User;
use serde_json::{json, Value};

use super::extract::{JsonBody, UserSession};
use super::query::Query;
use crate::db::address_book::{self as book_db, normalize_phone, Contact};
use crate::db::users as user_db;
use crate::error::ApiError;
use crate::state::AppState;

/// Most contacts one upload may carry.
pub const MAX_CONTACTS: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/address_book", get(read).post(upload))
        .route("/address_book/registered_users", get(registered))
}

fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true"),
        _ => false,
    }
}

fn udid_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// `POST /address_book {"contacts": [...], "udid"?, "force"?}` →
/// `{"created", "updated", "deleted", "rejected": {"<index>": [reason]}}`.
async fn upload(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<UploadResponse>, ApiError> {
    let Some(contacts) = body.get("contacts").and_then(Value::as_array) else {
        return Err(ApiError::unprocessable("contacts", "must be an array"));
    };
    if contacts.len() > MAX_CONTACTS {
        return Err(ApiError::unprocessable(
            "contacts",
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    let udid = udid_of(body.get("udid"));
    let force = flag(body.get("force"));
    let mut rejected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // (index, contact, destroy)
    let mut valid = Vec::new();
    for (i, c) in contacts.iter().enumerate() {
        let phone = match c.get("phone") {
            Some(Value::String(s)) => normalize_phone(s),
            Some(Value::Number(n)) => normalize_phone(&n.to_string()),
            _ => None,
        };
        let name = match c.get("name") {
            None | Some(Value::Null) => Some(String::new()),
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => None,
        };
        match (phone, name) {
            (Some(phone), Some(name)) => {
                valid.push((Contact { name, phone }, flag(c.get("destroy"))))
            }
            (None, _) => {
                rejected.insert(i.to_string(), vec!["phone is invalid".to_owned()]);
            }
            (_, None) => {
                rejected.insert(i.to_string(), vec!["name is invalid".to_owned()]);
            }
        }
    }
    let (app_id, user_id) = (session.app_id, session.user_id);
    let (created, updated, deleted) = state.db.call(|c| {
        let tx = c.transaction()?;
        let before: Vec<String> = book_db::list(&tx, app_id, user_id, &udid)?
            .into_iter()
            .map(|c| c.phone)
            .collect();
        let (mut created, mut updated, mut deleted) = (0u64, 0u64, 0u64);
        let mut kept = Vec::new();
        for (contact, destroy) in &valid {
            if *destroy {
                if book_db::remove(&tx, app_id, user_id, &udid, &contact.phone)? {
                    deleted += 1;
                }
            } else {
                if book_db::put(&tx, app_id, user_id, &udid, contact)? {
                    created += 1;
                } else {
                    updated += 1;
                }
                kept.push(contact.phone.clone());
            }
        }
        if force {
            for phone in before.iter().filter(|p| !kept.contains(p)) {
                if book_db::remove(&tx, app_id, user_id, &udid, phone)? {
                    deleted += 1;
                }
            }
        }
        tx.commit()?;
        Ok::<_, ApiError>((created, updated, deleted))
    })?;
    tracing::info!(
        user_id,
        created,
        updated,
        deleted,
        rejected = rejected.len(),
        "address book uploaded"
    );
    Ok(Json(UploadResponse {
        created,
        updated,
        deleted,
        rejected,
    }))
}

/// The contacts of `udid`, or of every book of the user (by phone, first name wins) without.
fn contacts(
    state: &AppState,
    app_id: u64,
    user_id: u64,
    udid: Option<&str>,
) -> Result<Vec<Contact>, ApiError> {
    Ok(state.db.with(|c| match udid {
        Some(u) => book_db::list(c, app_id, user_id, u),
        None => {
            let mut stmt = c.prepare_cached(
                "SELECT name, phone FROM address_book WHERE app_id = ?1 AND user_id = ?2 \
                 ORDER BY phone, udid",
            )?;
            let rows = stmt.query_map(rusqlite::params![app_id, user_id], |r| {
                Ok(Contact {
                    name: r.get(0)?,
                    phone: r.get(1)?,
                })
            })?;
            let mut out: Vec<Contact> = Vec::new();
            for row in rows {
                let row = row?;
                if out.last().is_none_or(|l| l.phone != row.phone) {
                    out.push(row);
                }
            }
            Ok(out)
        }
    })?)
}

/// `GET /address_book?udid=` → `[{"name", "phone"}]`.
async fn read(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let udid = q.get("udid").map(str::trim).filter(|u| !u.is_empty());
    let list = contacts(&state, session.app_id, session.user_id, udid)?;
    Ok(Json(Value::Array(
        list.iter()
            .map(|c| json!({"name": c.name, "phone": c.phone}))
            .collect(),
    )))
}

/// `GET /address_book/registered_users?compact=0|1&udid=` → `{"items": [user +
/// address_book_name]}`: the app's users whose phone is in the book (the caller excluded).
async fn registered(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Json<RegisteredUsers>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let udid = q.get("udid").map(str::trim).filter(|u| !u.is_empty());
    let compact = q
        .get("compact")
        .is_some_and(|v| matches!(v.trim(), "1" | "true"));
    let book: BTreeMap<String, String> = contacts(&state, session.app_id, session.user_id, udid)?
        .into_iter()
        .map(|c| (c.phone, c.name))
        .collect();
    let users = state.db.with(|c| user_db::with_phone(c, session.app_id))?;
    let mut items = Vec::new();
    for u in users.iter().filter(|u| u.id != session.user_id) {
        let Some(phone) = u.phone.as_deref().and_then(normalize_phone) else {
            continue;
        };
        let Some(name) = book.get(&phone) else {
            continue;
        };
        let user = if compact {
            User {
                id: u.id,
                phone: u.phone.clone(),
                ..User::default()
            }
        } else {
            u.to_wire()
        };
        items.push(RegisteredUserItem::Bare(RegisteredUser {
            user,
            address_book_name: Some(name.clone()),
        }));
    }
    Ok(Json(RegisteredUsers { items }))
}
