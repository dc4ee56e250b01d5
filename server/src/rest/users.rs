//! Users (protocol reference §3.3–3.4): sign-up, read, update and delete self, and the v2
//! search. Users belong to one application and are invisible to others.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cubechat_wire::auth::{UserEnvelope, UserParams, UserParamsEnvelope, UsersPage};
use cubechat_wire::users::{OnlineCount, OnlineUsers, UsersV1Page};
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::extract::{parse_json, AnySession, ApiPath, JsonBody, MaybeSession, UserSession};
use super::query::{self, Field, FieldKind, Query};
use super::AUTH_KEY_HEADER;
use crate::db::users::{self as user_db, UserRow};
use crate::db::{self, sessions};
use crate::error::{ApiError, FieldErrors};
use crate::password;
use crate::state::AppState;

const MIN_PASSWORD_CHARS: usize = 8;
/// Page size of `GET /users/v2` when no `limit` is given, and its maximum.
const PAGE_LIMIT: u64 = 100;

/// What `GET /users/v2` can filter on.
const SEARCH_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldKind::Int),
    Field::new("login", "login", FieldKind::Text),
    Field::new("email", "email", FieldKind::Text),
    Field::new("full_name", "full_name", FieldKind::Text),
    Field::new("phone", "phone", FieldKind::Text),
    Field::new("external_id", "external_id", FieldKind::Text),
    Field::new("created_at", "created_at", FieldKind::Time),
    Field::new("updated_at", "updated_at", FieldKind::Time),
    Field::new("last_request_at", "last_request_at", FieldKind::Time),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", post(sign_up).get(list_v1))
        .route("/users/v2", get(search))
        .route("/users/by_login", get(by_login))
        .route("/users/by_email", get(by_email))
        .route("/users/by_full_name", get(by_full_name))
        .route("/users/by_tags", get(by_tags))
        .route("/users/online", get(online))
        .route(
            "/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
}

/// `POST /users {"user": {...}}` with a session token, or `CB-AuthKey` without one.
async fn sign_up(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let app_id = match session {
        Some(s) => s.app_id,
        None => {
            let Some(key) = headers.get(AUTH_KEY_HEADER) else {
                return Err(ApiError::no_session());
            };
            let key = key.to_str().map_err(|_| ApiError::unauthorized())?;
            state
                .apps
                .by_auth_key(key.trim())
                .ok_or_else(ApiError::unauthorized)?
                .id
        }
    };
    let UserParamsEnvelope { user: params } = parse_json(&body)?;
    let now = db::now_ms();
    let user = state.db.call(|c| {
        let tx = c.transaction()?;
        let user = create_user(&tx, app_id, &params, now)?;
        tx.commit()?;
        Ok::<_, ApiError>(user)
    })?;
    tracing::info!(app_id, user_id = user.id, "user signed up");
    Ok((
        StatusCode::CREATED,
        Json(UserEnvelope {
            user: user.to_wire(),
        }),
    )
        .into_response())
}

/// Validates `params` and inserts a new user created at `now` (Unix milliseconds). Run it
/// inside a transaction with the rest of the operation.
pub(crate) fn create_user(
    conn: &Connection,
    app_id: u64,
    params: &UserParams,
    now: i64,
) -> Result<UserRow, ApiError> {
    let login = non_blank(params.login.as_deref());
    let email = non_blank(params.email.as_deref());
    let mut errors = FieldErrors::new();
    if login.is_none() && email.is_none() {
        errors.add("base", "Login or email required");
    }
    if let Some(email) = email {
        if !looks_like_email(email) {
            errors.add("email", "is invalid");
        }
    }
    match params.password.as_deref() {
        None | Some("") => errors.add("password", "can't be blank"),
        Some(p) if p.chars().count() < MIN_PASSWORD_CHARS => {
            errors.add("password", "is too short (minimum is 8 characters)");
        }
        Some(_) => {}
    }
    check_unique(conn, app_id, None, login, email, &mut errors)?;
    errors.into_result()?;

    let row = UserRow {
        app_id,
        login: login.map(str::to_owned),
        email: email.map(str::to_owned),
        password_hash: params.password.as_deref().map(password::hash),
        full_name: opt_text(&params.full_name),
        phone: opt_text(&params.phone),
        website: opt_text(&params.website),
        external_id: opt_text(&params.external_id),
        custom_data: opt_text(&params.custom_data),
        avatar: opt_text(&params.avatar),
        user_tags: params.tag_list.as_deref().and_then(normalize_tags),
        timezone: params.timezone,
        is_guest: false,
        created_at: now,
        updated_at: now,
        last_request_at: None,
        ..UserRow::default()
    };
    Ok(user_db::insert(conn, &row)?)
}

/// Adds "has already been taken" for a login/email used by another user (`except`) of the app.
fn check_unique(
    conn: &Connection,
    app_id: u64,
    except: Option<u64>,
    login: Option<&str>,
    email: Option<&str>,
    errors: &mut FieldErrors,
) -> Result<(), ApiError> {
    let other = |u: Option<UserRow>| u.is_some_and(|u| Some(u.id) != except);
    if let Some(login) = login {
        if other(user_db::find_by_login(conn, app_id, login)?) {
            errors.add("login", "has already been taken");
        }
    }
    if let Some(email) = email {
        if other(user_db::find_by_email(conn, app_id, email)?) {
            errors.add("email", "has already been taken");
        }
    }
    Ok(())
}

/// `GET /users/{id}`
async fn get_user(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<UserEnvelope>, ApiError> {
    let user = state
        .db
        .with(|c| user_db::find(c, session.app_id, id))?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(UserEnvelope {
        user: user.to_wire(),
    }))
}

/// `PUT /users/{id} {"user": {...}}`: only the session's own user. Changing the password
/// needs `old_password`. An empty string clears an optional field.
async fn update_user(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<u64>,
    JsonBody(UserParamsEnvelope { user: params }): JsonBody<UserParamsEnvelope>,
) -> Result<Json<UserEnvelope>, ApiError> {
    if id != session.user_id {
        return Err(ApiError::forbidden(
            "Forbidden. You can only update your own user.",
        ));
    }
    let now = db::now_ms();
    let user = state.db.call(|c| {
        let tx = c.transaction()?;
        let mut user = user_db::find(&tx, session.app_id, id)?.ok_or_else(ApiError::not_found)?;
        apply_update(&tx, &mut user, &params)?;
        user.updated_at = now;
        user_db::update(&tx, &user)?;
        tx.commit()?;
        Ok::<_, ApiError>(user)
    })?;
    tracing::info!(user_id = id, "user updated");
    Ok(Json(UserEnvelope {
        user: user.to_wire(),
    }))
}

fn apply_update(
    conn: &Connection,
    user: &mut UserRow,
    params: &UserParams,
) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    let login = params
        .login
        .as_deref()
        .map(|l| non_blank(Some(l)).map(str::to_owned));
    let email = params
        .email
        .as_deref()
        .map(|e| non_blank(Some(e)).map(str::to_owned));
    if let Some(login) = login {
        user.login = login;
    }
    if let Some(email) = email {
        if let Some(e) = &email {
            if !looks_like_email(e) {
                errors.add("email", "is invalid");
            }
        }
        user.email = email;
    }
    if user.login.is_none() && user.email.is_none() && !user.is_guest {
        errors.add("base", "Login or email required");
    }
    check_unique(
        conn,
        user.app_id,
        Some(user.id),
        user.login.as_deref(),
        user.email.as_deref(),
        &mut errors,
    )?;

    if let Some(new_password) = params.password.as_deref() {
        if new_password.chars().count() < MIN_PASSWORD_CHARS {
            errors.add("password", "is too short (minimum is 8 characters)");
        }
        match params.old_password.as_deref() {
            None | Some("") => errors.add("old_password", "can't be blank"),
            Some(old) => {
                if !user
                    .password_hash
                    .as_deref()
                    .is_some_and(|h| password::verify(old, h))
                {
                    errors.add("old_password", "is invalid");
                }
            }
        }
        user.password_hash = Some(password::hash(new_password));
    }
    errors.into_result()?;

    let set = |field: &mut Option<String>, value: &Option<String>| {
        if let Some(v) = value {
            *field = Some(v.clone()).filter(|v| !v.is_empty());
        }
    };
    set(&mut user.full_name, &params.full_name);
    set(&mut user.phone, &params.phone);
    set(&mut user.website, &params.website);
    set(&mut user.external_id, &params.external_id);
    set(&mut user.custom_data, &params.custom_data);
    set(&mut user.avatar, &params.avatar);
    if let Some(tags) = &params.tag_list {
        user.user_tags = normalize_tags(tags);
    }
    if params.timezone.is_some() {
        user.timezone = params.timezone;
    }
    Ok(())
}

/// `DELETE /users/{id}`: only the session's own user; its sessions go too. 200, empty body.
async fn delete_user(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<u64>,
) -> Result<StatusCode, ApiError> {
    if id != session.user_id {
        return Err(ApiError::forbidden(
            "Forbidden. You can only delete your own user.",
        ));
    }
    state.db.call(|c| {
        let tx = c.transaction()?;
        sessions::delete_for_user(&tx, id)?;
        db::push::delete_for_user(&tx, session.app_id, id)?;
        db::address_book::delete_for_user(&tx, session.app_id, id)?;
        user_db::delete(&tx, id)?;
        tx.commit()?;
        Ok::<_, ApiError>(())
    })?;
    tracing::info!(user_id = id, "user deleted");
    Ok(StatusCode::OK)
}

/// `GET /users/v2?id[in][]=1&login=…&full_name[start_with]=…&updated_at[gt]=…&limit&offset&sort_desc=…`
async fn search(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Json<UsersPage>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let filter = query::build_filter(&q, SEARCH_FIELDS)?;
    let order = query::order_by(&q, SEARCH_FIELDS, "id ASC");
    let (limit, skip) = query::paging(&q, PAGE_LIMIT, PAGE_LIMIT);
    let (total, rows) = state.db.with(|c| {
        user_db::search(
            c,
            session.app_id,
            &filter.clauses,
            &filter.args,
            &order,
            limit,
            skip,
        )
    })?;
    Ok(Json(UsersPage {
        total_entries: total,
        skip,
        limit,
        items: rows.iter().map(UserRow::to_wire).collect(),
    }))
}

/// Page size of the v1 lists when no `per_page` is given, and its maximum.
const V1_PER_PAGE: u64 = 10;
const V1_MAX_PER_PAGE: u64 = 100;

/// `{current_page, per_page, total_entries, items: [{"user": …}]}` of a v1 list.
fn v1_page(
    state: &AppState,
    app_id: u64,
    q: &Query,
    clauses: &[String],
    args: &[SqlValue],
) -> Result<Json<UsersV1Page>, ApiError> {
    let per_page = q
        .u64("per_page")
        .unwrap_or(V1_PER_PAGE)
        .clamp(1, V1_MAX_PER_PAGE);
    let page = q.u64("page").unwrap_or(1).max(1);
    let order = v1_order(q);
    let (total, rows) = state.db.with(|c| {
        user_db::search(
            c,
            app_id,
            clauses,
            args,
            &order,
            per_page,
            (page - 1).saturating_mul(per_page),
        )
    })?;
    Ok(Json(UsersV1Page {
        current_page: page,
        per_page,
        total_entries: total,
        items: rows
            .iter()
            .map(|u| UserEnvelope { user: u.to_wire() })
            .collect(),
    }))
}

/// `order=asc date created_at` (the JS SDK's `users.get({order})`), else by id.
fn v1_order(q: &Query) -> String {
    if let Some(o) = q.get("order") {
        let parts: Vec<&str> = o.split_whitespace().collect();
        if let [dir, _, field] = parts.as_slice() {
            if let Some(f) = SEARCH_FIELDS.iter().find(|f| f.param == *field) {
                let dir = if dir.eq_ignore_ascii_case("desc") {
                    "DESC"
                } else {
                    "ASC"
                };
                return format!("{} {dir}, id {dir}", f.column);
            }
        }
    }
    "id ASC".to_owned()
}

/// One `filter[]=<type> <field> <op> <value>` of the v1 list → an SQL condition.
fn v1_filter(
    text: &str,
    clauses: &mut Vec<String>,
    args: &mut Vec<SqlValue>,
) -> Result<(), ApiError> {
    let bad = || ApiError::unprocessable("filter", format!("is invalid: {text}"));
    let mut parts = text.trim().splitn(4, ' ');
    let (Some(kind), Some(field), Some(op), Some(value)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let f = SEARCH_FIELDS
        .iter()
        .find(|f| f.param == field)
        .ok_or_else(bad)?;
    if !matches!(kind, "number" | "string" | "date") {
        return Err(bad());
    }
    let typed = |v: &str| -> Result<SqlValue, ApiError> {
        match f.kind {
            FieldKind::Int => v
                .trim()
                .parse::<i64>()
                .map(SqlValue::Integer)
                .map_err(|_| bad()),
            FieldKind::Time | FieldKind::UnixSeconds => {
                cubechat_wire::time::unix_seconds_to_millis(v)
                    .or_else(|| cubechat_wire::time::parse_iso8601_millis(v.trim()))
                    .map(SqlValue::Integer)
                    .ok_or_else(bad)
            }
            FieldKind::Text => Ok(SqlValue::Text(v.to_owned())),
        }
    };
    let col = f.column;
    let list = || -> Result<Vec<SqlValue>, ApiError> {
        query::split_list(value).map(|v| typed(&v)).collect()
    };
    let clause = match op {
        "eq" => {
            args.push(typed(value)?);
            format!("{col} = ?")
        }
        "ne" => {
            args.push(typed(value)?);
            format!("({col} IS NULL OR {col} <> ?)")
        }
        "gt" | "lt" | "ge" | "le" => {
            args.push(typed(value)?);
            let sql = match op {
                "gt" => ">",
                "lt" => "<",
                "ge" => ">=",
                _ => "<=",
            };
            format!("{col} {sql} ?")
        }
        "in" | "nin" => {
            let values = list()?;
            if values.is_empty() {
                return Err(bad());
            }
            let marks = vec!["?"; values.len()].join(", ");
            args.extend(values);
            if op == "in" {
                format!("{col} IN ({marks})")
            } else {
                format!("({col} IS NULL OR {col} NOT IN ({marks}))")
            }
        }
        "between" => {
            let values = list()?;
            let [lo, hi] = <[SqlValue; 2]>::try_from(values).map_err(|_| bad())?;
            args.push(lo);
            args.push(hi);
            format!("{col} BETWEEN ? AND ?")
        }
        _ => return Err(bad()),
    };
    clauses.push(clause);
    Ok(())
}

/// `GET /users?filter[]=number id in 1,2&page&per_page&order=…` (v1; the v2 filter
/// parameters work here too).
async fn list_v1(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Json<UsersV1Page>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let filter = query::build_filter(&q, SEARCH_FIELDS)?;
    let (mut clauses, mut args) = (filter.clauses, filter.args);
    for p in q.params.iter().filter(|p| p.name == "filter") {
        v1_filter(&p.value, &mut clauses, &mut args)?;
    }
    v1_page(&state, session.app_id, &q, &clauses, &args)
}

/// The one non-blank query parameter `name`, or a 422 naming it.
fn required<'q>(q: &'q Query, name: &str) -> Result<&'q str, ApiError> {
    non_blank(q.get(name)).ok_or_else(|| ApiError::unprocessable(name, "can't be blank"))
}

/// `GET /users/by_login?login=` → `{"user"}` or 404.
async fn by_login(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserEnvelope>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let login = required(&q, "login")?;
    let user = state
        .db
        .with(|c| user_db::find_by_login(c, session.app_id, login))?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(UserEnvelope {
        user: user.to_wire(),
    }))
}

/// `GET /users/by_email?email=` → `{"user"}` or 404.
async fn by_email(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserEnvelope>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let email = required(&q, "email")?;
    let user = state
        .db
        .with(|c| user_db::find_by_email(c, session.app_id, email))?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(UserEnvelope {
        user: user.to_wire(),
    }))
}

/// `GET /users/by_full_name?full_name=&page&per_page`: a case-insensitive substring.
async fn by_full_name(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Json<UsersV1Page>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let name = required(&q, "full_name")?.to_lowercase();
    v1_page(
        &state,
        session.app_id,
        &q,
        &["instr(lower(full_name), ?) > 0".to_owned()],
        &[SqlValue::Text(name)],
    )
}

/// `GET /users/by_tags?tags=a,b&page&per_page`: users with any of the tags.
async fn by_tags(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Json<UsersV1Page>, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let tags = q.list("tags", "");
    if tags.is_empty() {
        return Err(ApiError::unprocessable("tags", "can't be blank"));
    }
    let clause = vec!["instr(',' || user_tags || ',', ?) > 0"; tags.len()].join(" OR ");
    let args: Vec<SqlValue> = tags
        .iter()
        .map(|t| SqlValue::Text(format!(",{t},")))
        .collect();
    v1_page(&state, session.app_id, &q, &[format!("({clause})")], &args)
}

/// `GET /users/online?limit&offset` → `{"users": [...]}` (users with an XMPP resource
/// online, by id); `?count=true` → `{"count": n}`.
async fn online(
    State(state): State<AppState>,
    AnySession(session): AnySession,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let mut ids = state.xmpp.online_users(session.app_id);
    ids.sort_unstable();
    if q.get("count")
        .is_some_and(|v| matches!(v.trim(), "1" | "true"))
    {
        return Ok(Json(OnlineCount {
            count: u64::try_from(ids.len()).unwrap_or(u64::MAX),
        })
        .into_response());
    }
    let (limit, offset) = query::paging(&q, PAGE_LIMIT, PAGE_LIMIT);
    let page: Vec<u64> = ids
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    let users = state.db.with(|c| {
        page.iter()
            .filter_map(|id| user_db::find(c, session.app_id, *id).transpose())
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(OnlineUsers {
        users: users.iter().map(UserRow::to_wire).collect(),
    })
    .into_response())
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn opt_text(s: &Option<String>) -> Option<String> {
    s.clone().filter(|s| !s.is_empty())
}

/// `"a, b,,c"` → `"a,b,c"`; `None` when no tag is left.
fn normalize_tags(tags: &str) -> Option<String> {
    let list: Vec<String> = query::split_list(tags).collect();
    (!list.is_empty()).then(|| list.join(","))
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::super::tests::{app_token, call, test_state, user_token};

    #[tokio::test]
    async fn sign_up_and_validation() {
        let state = test_state();
        // No token, no auth key.
        let body = json!({"user": {"login": "carol", "password": "password1"}});
        let r = call(&state, "POST", "/users.json", &[], Some(body.clone())).await;
        assert_eq!(
            (r.status, r.json()),
            (
                401,
                json!({"errors": {"base": ["Required session does not exist"]}})
            )
        );
        let r = call(
            &state,
            "POST",
            "/users.json",
            &[("CB-AuthKey", "bogus")],
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (401, json!({"errors": ["Unauthorized"]}))
        );
        // With CB-AuthKey.
        let r = call(&state, "POST", "/users.json", &[("CB-AuthKey", "key-7")], Some(json!({"user": {
            "login": "carol", "password": "password1", "full_name": "Carol C", "tag_list": "a, b", "custom_data": "{\"x\":1}"
        }}))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let u = r.json()["user"].clone();
        assert!(u["id"].as_u64().unwrap() > 0);
        assert_eq!(u["login"], "carol");
        assert_eq!(u["user_tags"], "a,b");
        assert!(u["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(u.get("password").is_none());

        // With an app token: duplicates and short passwords.
        let token = app_token(&state).await;
        let h = [("CB-Token", token.as_str())];
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"login": "carol", "password": "password1"}})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"errors": {"login": ["has already been taken"]}})
            )
        );
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"login": "dave", "password": "short"}})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"errors": {"password": ["is too short (minimum is 8 characters)"]}})
            )
        );
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"email": "D@x.io", "password": "password1"}})),
        )
        .await;
        assert_eq!(r.status, 201);
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"email": "d@X.io", "password": "password1"}})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"errors": {"email": ["has already been taken"]}})
            )
        );
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"password": "password1"}})),
        )
        .await;
        assert_eq!(r.status, 422);
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"login": "eve"}})),
        )
        .await;
        assert_eq!(
            r.json(),
            json!({"errors": {"password": ["can't be blank"]}})
        );
        let r = call(&state, "POST", "/users", &h, Some(json!("{\"user\":"))).await;
        assert_eq!(
            (r.status, r.json()),
            (400, json!({"errors": {"base": ["Malformed JSON"]}}))
        );
        let r = call(
            &state,
            "POST",
            "/users",
            &h,
            Some(json!({"user": {"login": 5}})),
        )
        .await;
        assert_eq!(r.status, 422);

        // App 8 does not see app 7's users; the same login is free there.
        let r = call(
            &state,
            "POST",
            "/users",
            &[("CB-AuthKey", "key-8")],
            Some(json!({"user": {"login": "carol", "password": "password1"}})),
        )
        .await;
        assert_eq!(r.status, 201);
    }

    #[tokio::test]
    async fn read_update_delete() {
        let state = test_state();
        let (alice, alice_id) = user_token(&state, "alice").await;
        let (_bob, bob_id) = user_token(&state, "bob").await;
        let app = app_token(&state).await;
        let ha = [("CB-Token", alice.as_str())];

        let r = call(
            &state,
            "GET",
            &format!("/users/{bob_id}.json"),
            &[("CB-Token", &app)],
            None,
        )
        .await;
        assert_eq!(
            (r.status, r.json()["user"]["login"].clone()),
            (200, json!("bob"))
        );
        for bad in ["/users/999999", "/users/abc.json"] {
            let r = call(&state, "GET", bad, &ha, None).await;
            assert_eq!(
                (r.status, r.json()),
                (404, json!({"errors": {"base": ["Not found"]}}))
            );
        }

        // Update: app session → 403 need user; someone else → 403.
        let upd = json!({"user": {"full_name": "Alice A", "tag_list": "x"}});
        let r = call(
            &state,
            "PUT",
            &format!("/users/{alice_id}"),
            &[("CB-Token", &app)],
            Some(upd.clone()),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (403, json!({"errors": {"base": ["Forbidden. Need user."]}}))
        );
        let r = call(
            &state,
            "PUT",
            &format!("/users/{bob_id}"),
            &ha,
            Some(upd.clone()),
        )
        .await;
        assert_eq!(r.status, 403);
        let r = call(
            &state,
            "PUT",
            &format!("/users/{alice_id}.json"),
            &ha,
            Some(upd),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["user"]["full_name"], "Alice A");
        assert_eq!(r.json()["user"]["user_tags"], "x");
        let r = call(
            &state,
            "PUT",
            &format!("/users/{alice_id}"),
            &ha,
            Some(json!({"user": {"login": "bob"}})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()),
            (
                422,
                json!({"errors": {"login": ["has already been taken"]}})
            )
        );

        // Password change needs the old password.
        let path = format!("/users/{alice_id}");
        let r = call(
            &state,
            "PUT",
            &path,
            &ha,
            Some(json!({"user": {"password": "newpassword"}})),
        )
        .await;
        assert_eq!(
            r.json(),
            json!({"errors": {"old_password": ["can't be blank"]}})
        );
        let r = call(
            &state,
            "PUT",
            &path,
            &ha,
            Some(json!({"user": {"password": "newpassword", "old_password": "bad"}})),
        )
        .await;
        assert_eq!(
            r.json(),
            json!({"errors": {"old_password": ["is invalid"]}})
        );
        let r = call(
            &state,
            "PUT",
            &path,
            &ha,
            Some(json!({"user": {"password": "newpassword", "old_password": "password1"}})),
        )
        .await;
        assert_eq!(r.status, 200);
        let r = call(
            &state,
            "POST",
            "/login",
            &[("CB-Token", &app)],
            Some(json!({"login": "alice", "password": "newpassword"})),
        )
        .await;
        assert_eq!(r.status, 201);

        // Delete: not someone else; self → 200 empty, sessions gone.
        let r = call(&state, "DELETE", &format!("/users/{bob_id}"), &ha, None).await;
        assert_eq!(r.status, 403);
        let r = call(
            &state,
            "DELETE",
            &format!("/users/{alice_id}.json"),
            &ha,
            None,
        )
        .await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        let r = call(&state, "GET", "/session", &ha, None).await;
        assert_eq!(r.status, 401);
        // `app` was upgraded to alice by POST /login, so it went with her.
        let r = call(&state, "GET", "/session", &[("CB-Token", &app)], None).await;
        assert_eq!(r.status, 401);
        let app = app_token(&state).await;
        let r = call(
            &state,
            "GET",
            &format!("/users/{alice_id}"),
            &[("CB-Token", &app)],
            None,
        )
        .await;
        assert_eq!(r.status, 404);
    }

    #[tokio::test]
    async fn search_v2() {
        let state = test_state();
        let mut ids = Vec::new();
        for login in ["ann", "andy", "bert", "carl"] {
            ids.push(user_token(&state, login).await.1);
        }
        let r = call(&state, "PUT", "/users/0", &[], Some(json!({}))).await;
        assert_eq!(r.status, 401);
        let token = app_token(&state).await;
        let h = [("CB-Token", token.as_str())];
        let get = |q: String| {
            let state = state.clone();
            async move {
                call(&state, "GET", &format!("/users/v2.json?{q}"), &h, None)
                    .await
                    .json()
            }
        };

        let v = get(String::new()).await;
        assert_eq!(
            (
                v["total_entries"].clone(),
                v["skip"].clone(),
                v["limit"].clone()
            ),
            (json!(4), json!(0), json!(100))
        );
        let v = get(format!("id[in][]={}&id[in][]={}", ids[0], ids[2])).await;
        let logins: Vec<_> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].clone())
            .collect();
        assert_eq!(logins, vec![json!("ann"), json!("bert")]);
        let v = get(format!("id[in]={}%2C{}&sort_desc=id", ids[0], ids[1])).await;
        assert_eq!(v["items"][0]["login"], "andy");
        let v = get("login=carl".into()).await;
        assert_eq!(v["total_entries"], 1);
        // full_name start_with: set names first.
        let v = get("full_name[start_with]=x".into()).await;
        assert_eq!(v["total_entries"], 0);
        let v = get("limit=2&offset=1".into()).await;
        assert_eq!(
            (
                v["total_entries"].clone(),
                v["items"].as_array().unwrap().len(),
                v["skip"].clone()
            ),
            (json!(4), 2, json!(1))
        );
        assert_eq!(v["items"][0]["login"], "andy");
        let v = get(format!("updated_at[gt]={}", crate::db::now() + 100)).await;
        assert_eq!(v["total_entries"], 0);
        let v = get(format!("updated_at[gt]={}", crate::db::now() - 100)).await;
        assert_eq!(v["total_entries"], 4);
        let r = call(&state, "GET", "/users/v2?id[in][]=abc", &h, None).await;
        assert_eq!(r.status, 422);
        let r = call(&state, "GET", "/users/v2", &[], None).await;
        assert_eq!(r.status, 401);
    }
}
