//! The `users` table. Users belong to one application; every lookup takes the app id.

use cubechat_wire::auth::User;
use cubechat_wire::time::iso8601_of_millis;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// One stored user. `password_hash` never leaves the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    pub id: u64,
    pub app_id: u64,
    pub login: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub external_id: Option<String>,
    pub custom_data: Option<String>,
    pub avatar: Option<String>,
    pub user_tags: Option<String>,
    pub timezone: Option<i64>,
    pub is_guest: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_request_at: Option<i64>,
}

impl UserRow {
    /// The wire object (§3.4).
    pub fn to_wire(&self) -> User {
        User {
            id: self.id,
            login: self.login.clone(),
            email: self.email.clone(),
            full_name: self.full_name.clone(),
            phone: self.phone.clone(),
            website: self.website.clone(),
            external_id: self.external_id.clone(),
            custom_data: self.custom_data.clone(),
            avatar: self.avatar.clone(),
            user_tags: self.user_tags.clone(),
            timezone: self.timezone,
            is_guest: self.is_guest.then_some(true),
            created_at: Some(iso8601_of_millis(self.created_at)),
            updated_at: Some(iso8601_of_millis(self.updated_at)),
            last_request_at: self.last_request_at.map(iso8601_of_millis),
        }
    }
}

const COLUMNS: &str = "id, app_id, login, email, password_hash, full_name, phone, website, \
    external_id, custom_data, avatar, user_tags, timezone, is_guest, created_at, updated_at, \
    last_request_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        app_id: r.get(1)?,
        login: r.get(2)?,
        email: r.get(3)?,
        password_hash: r.get(4)?,
        full_name: r.get(5)?,
        phone: r.get(6)?,
        website: r.get(7)?,
        external_id: r.get(8)?,
        custom_data: r.get(9)?,
        avatar: r.get(10)?,
        user_tags: r.get(11)?,
        timezone: r.get(12)?,
        is_guest: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
        last_request_at: r.get(16)?,
    })
}

/// Inserts `row` (its `id` is ignored) and returns it with the new id.
pub fn insert(conn: &Connection, row: &UserRow) -> rusqlite::Result<UserRow> {
    conn.execute(
        "INSERT INTO users (app_id, login, email, password_hash, full_name, phone, website, \
         external_id, custom_data, avatar, user_tags, timezone, is_guest, created_at, updated_at, \
         last_request_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            row.app_id,
            row.login,
            row.email,
            row.password_hash,
            row.full_name,
            row.phone,
            row.website,
            row.external_id,
            row.custom_data,
            row.avatar,
            row.user_tags,
            row.timezone,
            row.is_guest,
            row.created_at,
            row.updated_at,
            row.last_request_at,
        ],
    )?;
    let id = u64::try_from(conn.last_insert_rowid()).unwrap_or(0);
    Ok(UserRow { id, ..row.clone() })
}

/// Writes every column of `row` back (by id).
pub fn update(conn: &Connection, row: &UserRow) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE users SET login = ?2, email = ?3, password_hash = ?4, full_name = ?5, phone = ?6, \
         website = ?7, external_id = ?8, custom_data = ?9, avatar = ?10, user_tags = ?11, \
         timezone = ?12, is_guest = ?13, updated_at = ?14, last_request_at = ?15 WHERE id = ?1",
        params![
            row.id,
            row.login,
            row.email,
            row.password_hash,
            row.full_name,
            row.phone,
            row.website,
            row.external_id,
            row.custom_data,
            row.avatar,
            row.user_tags,
            row.timezone,
            row.is_guest,
            row.updated_at,
            row.last_request_at,
        ],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: u64) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM users WHERE id = ?1", [id])? > 0)
}

pub fn find(conn: &Connection, app_id: u64, id: u64) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE app_id = ?1 AND id = ?2"),
        params![app_id, id],
        from_row,
    )
    .optional()
}

pub fn find_by_login(
    conn: &Connection,
    app_id: u64,
    login: &str,
) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE app_id = ?1 AND login = ?2"),
        params![app_id, login],
        from_row,
    )
    .optional()
}

/// Emails compare case-insensitively (the column is `COLLATE NOCASE`).
pub fn find_by_email(
    conn: &Connection,
    app_id: u64,
    email: &str,
) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE app_id = ?1 AND email = ?2"),
        params![app_id, email],
        from_row,
    )
    .optional()
}

/// The app's users that have a phone, by id.
pub fn with_phone(conn: &Connection, app_id: u64) -> rusqlite::Result<Vec<UserRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE app_id = ?1 AND phone IS NOT NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([app_id], from_row)?;
    rows.collect()
}

pub fn touch_last_request(conn: &Connection, id: u64, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE users SET last_request_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

/// A filtered page of an application's users: `where_sql` is a list of SQL conditions (with
/// `?` placeholders matching `args`), `order_sql` an `ORDER BY` body from an allow-list.
pub fn search(
    conn: &Connection,
    app_id: u64,
    where_sql: &[String],
    args: &[SqlValue],
    order_sql: &str,
    limit: u64,
    offset: u64,
) -> rusqlite::Result<(u64, Vec<UserRow>)> {
    let mut clauses = vec!["app_id = ?".to_owned()];
    clauses.extend(where_sql.iter().cloned());
    let where_all = clauses.join(" AND ");
    let mut all_args = vec![SqlValue::Integer(i64::try_from(app_id).unwrap_or(i64::MAX))];
    all_args.extend(args.iter().cloned());

    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM users WHERE {where_all}"),
        params_from_iter(all_args.iter()),
        |r| r.get(0),
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut page_args = all_args;
    page_args.push(SqlValue::Integer(limit));
    page_args.push(SqlValue::Integer(offset));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM users WHERE {where_all} ORDER BY {order_sql} LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt
        .query_map(params_from_iter(page_args.iter()), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((u64::try_from(total).unwrap_or(0), rows))
}
