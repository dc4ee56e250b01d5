//! Query-string (and form-body) parameters the way the ConnectyCube SDKs send them
//! (protocol reference §2.3): bracketed keys (`updated_at[gt]=1`, `id[in][]=1&id[in][]=2`),
//! comma-joined lists (`id[in]=1,2`), repeated keys, `+` or `%20` for spaces and possibly
//! percent-encoded brackets.
//!
//! [`Query`] keeps every pair in order; [`build_filter`] turns the ones naming known fields
//! into SQL conditions, so each list endpoint only declares its [`Field`]s.

use cubechat_wire::time::{parse_iso8601_millis, unix_seconds_to_millis};
use rusqlite::types::Value as SqlValue;

use crate::error::ApiError;

/// One `name[sub][sub]=value` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The key before the first `[`.
    pub name: String,
    /// The bracketed parts, e.g. `["in", ""]` for `id[in][]`.
    pub path: Vec<String>,
    pub value: String,
}

/// All pairs of a query string, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub params: Vec<Param>,
}

impl Query {
    /// Parses a raw query string (without the `?`). Never fails: undecodable bytes become
    /// U+FFFD, a malformed bracket key is kept whole as the name.
    pub fn parse(raw: &str) -> Self {
        let params = url::form_urlencoded::parse(raw.as_bytes())
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| {
                let (name, path) = split_key(&k);
                Param {
                    name,
                    path,
                    value: v.into_owned(),
                }
            })
            .collect();
        Self { params }
    }

    /// The first plain `name=value` (no brackets).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name && p.path.is_empty())
            .map(|p| p.value.as_str())
    }

    /// Every value given for `name[op]` or `name[op][]`, comma-separated values split and
    /// trimmed, empty items dropped. With `op == ""`, the plain `name=` and `name[]=` forms.
    pub fn list(&self, name: &str, op: &str) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.params {
            if p.name == name && op_of(&p.path) == Some(op) {
                out.extend(split_list(&p.value));
            }
        }
        out
    }

    /// A non-negative integer parameter; `None` when absent or not a number.
    pub fn u64(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(|v| v.trim().parse().ok())
    }
}

/// Splits `a, b,,c` into `["a", "b", "c"]`.
pub fn split_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `id[in][]` → `("id", ["in", ""])`; anything not of the form `name[..][..]` stays whole.
fn split_key(key: &str) -> (String, Vec<String>) {
    let Some(open) = key.find('[') else {
        return (key.to_owned(), Vec::new());
    };
    let name = &key[..open];
    let mut rest = &key[open..];
    let mut path = Vec::new();
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return (key.to_owned(), Vec::new());
        };
        let Some(close) = inner.find(']') else {
            return (key.to_owned(), Vec::new());
        };
        path.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    if name.is_empty() {
        return (key.to_owned(), Vec::new());
    }
    (name.to_owned(), path)
}

/// The operator a key path denotes: `[]` and `[""]` → `""`, `[op]` and `[op, ""]` → `op`.
fn op_of(path: &[String]) -> Option<&str> {
    match path {
        [] => Some(""),
        [op] => Some(op.as_str()),
        [op, last] if last.is_empty() => Some(op.as_str()),
        _ => None,
    }
}

/// How a filterable field's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Integers.
    Int,
    /// Text; `start_with` allowed.
    Text,
    /// Unix milliseconds in the database (`created_at`, `updated_at`, ...); accepts Unix
    /// seconds (integer or decimal) or ISO-8601 (with optional milliseconds) and compares
    /// in milliseconds, so a change half a second after `updated_at[gt]=T` is found.
    Time,
    /// Unix seconds in the database (`date_sent`, `last_message_date_sent`: integers on the
    /// wire); accepts the same values as [`FieldKind::Time`] and compares in milliseconds
    /// too (`date_sent[lt]=T.5` includes a message of second `T`).
    UnixSeconds,
}

/// A field a list endpoint lets clients filter (and sort) on.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The parameter name.
    pub param: &'static str,
    /// The SQL column (trusted, from code).
    pub column: &'static str,
    pub kind: FieldKind,
}

impl Field {
    pub const fn new(param: &'static str, column: &'static str, kind: FieldKind) -> Self {
        Self {
            param,
            column,
            kind,
        }
    }
}

/// SQL conditions (`?` placeholders) and their arguments, in order.
#[derive(Debug, Default, PartialEq)]
pub struct SqlFilter {
    pub clauses: Vec<String>,
    pub args: Vec<SqlValue>,
}

/// Builds conditions from every parameter naming one of `fields`. Operators: none (equal;
/// several values mean "any of"), `ne`, `in`, `nin`, `all` (equal to every value), `gt`,
/// `gte`, `lt`, `lte`, `ctn` (case-sensitive contains), and `start_with` for text. Parameters naming no field are ignored; a bad operator or value on
/// a known field is a 422.
pub fn build_filter(query: &Query, fields: &[Field]) -> Result<SqlFilter, ApiError> {
    let mut filter = SqlFilter::default();
    // Group values by (field, op) so repeated `id[in][]=` pairs form one list.
    let mut groups: Vec<(&Field, String, Vec<String>)> = Vec::new();
    for p in &query.params {
        let Some(field) = fields.iter().find(|f| f.param == p.name) else {
            continue;
        };
        let Some(op) = op_of(&p.path) else {
            return Err(invalid(&p.name, "unsupported operator"));
        };
        let values: Vec<String> = match op {
            "in" | "nin" | "all" => split_list(&p.value).collect(),
            // A plain text value may itself contain commas ("Smith, John").
            "" if field.kind == FieldKind::Text => Some(p.value.clone())
                .filter(|v| !v.is_empty())
                .into_iter()
                .collect(),
            "" => split_list(&p.value).collect(),
            _ => vec![p.value.clone()],
        };
        match groups
            .iter_mut()
            .find(|(f, o, _)| f.param == field.param && o == op)
        {
            Some((_, _, list)) => list.extend(values),
            None => groups.push((field, op.to_owned(), values)),
        }
    }
    for (field, op, values) in groups {
        let scaled;
        let col = if field.kind == FieldKind::UnixSeconds {
            scaled = format!("({} * 1000)", field.column);
            scaled.as_str()
        } else {
            field.column
        };
        let typed = values
            .iter()
            .map(|v| typed_value(field, v))
            .collect::<Result<Vec<_>, _>>()?;
        let placeholders = |n: usize| vec!["?"; n].join(", ");
        let clause = match op.as_str() {
            "" if typed.is_empty() => continue,
            "in" if typed.is_empty() => "0".to_owned(),
            "" | "in" => format!("{col} IN ({})", placeholders(typed.len())),
            "nin" | "all" if typed.is_empty() => continue,
            // A scalar field equals "all of" the values only when they are all equal.
            "all" => vec![format!("{col} = ?"); typed.len()].join(" AND "),
            "nin" => format!(
                "({col} IS NULL OR {col} NOT IN ({}))",
                placeholders(typed.len())
            ),
            "ne" | "gt" | "gte" | "lt" | "lte" | "start_with" | "ctn" => {
                if typed.len() != 1 {
                    return Err(invalid(field.param, "expects one value"));
                }
                match op.as_str() {
                    "ne" => format!("({col} IS NULL OR {col} <> ?)"),
                    "gt" => format!("{col} > ?"),
                    "gte" => format!("{col} >= ?"),
                    "lt" => format!("{col} < ?"),
                    "lte" => format!("{col} <= ?"),
                    // Case-sensitive "contains".
                    "ctn" => format!("instr({col}, ?) > 0"),
                    _ => {
                        if field.kind != FieldKind::Text {
                            return Err(invalid(field.param, "start_with needs a text field"));
                        }
                        format!("{col} LIKE ? ESCAPE '\\'")
                    }
                }
            }
            other => {
                return Err(invalid(
                    field.param,
                    &format!("unsupported operator {other}"),
                ))
            }
        };
        if op == "start_with" {
            if let Some(SqlValue::Text(prefix)) = typed.first() {
                filter
                    .args
                    .push(SqlValue::Text(format!("{}%", escape_like(prefix))));
            }
        } else {
            filter.args.extend(typed);
        }
        filter.clauses.push(clause);
    }
    Ok(filter)
}

fn typed_value(field: &Field, value: &str) -> Result<SqlValue, ApiError> {
    let v = value.trim();
    match field.kind {
        FieldKind::Text => Ok(SqlValue::Text(value.to_owned())),
        FieldKind::Int => v
            .parse::<i64>()
            .map(SqlValue::Integer)
            .map_err(|_| invalid(field.param, "must be an integer")),
        FieldKind::Time | FieldKind::UnixSeconds => unix_seconds_to_millis(v)
            .or_else(|| parse_iso8601_millis(v))
            .map(SqlValue::Integer)
            .ok_or_else(|| invalid(field.param, "must be Unix seconds or an ISO-8601 time")),
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn invalid(param: &str, why: &str) -> ApiError {
    ApiError::unprocessable("base", format!("Invalid filter {param}: {why}"))
}

/// `ORDER BY` body from `sort_desc=<field>` / `sort_asc=<field>` if the field is in
/// `sortable` (trusted column names), else `default`. `id` breaks ties.
pub fn order_by(query: &Query, sortable: &[Field], default: &str) -> String {
    for (param, dir) in [("sort_desc", "DESC"), ("sort_asc", "ASC")] {
        if let Some(value) = query.get(param) {
            // The JS SDK may send `sort_desc=date_sent` or `sort_desc=integer updated_at`.
            let name = value.split_whitespace().last().unwrap_or_default();
            if let Some(f) = sortable.iter().find(|f| f.param == name) {
                return if f.column == "id" {
                    format!("id {dir}")
                } else {
                    format!("{} {dir}, id {dir}", f.column)
                };
            }
            tracing::debug!(param, value, "ignoring an unsupported sort field");
        }
    }
    default.to_owned()
}

/// `(limit, offset)` from `limit` and `offset` (or `skip`): limit defaults to `default`
/// and is clamped to `1..=max`.
pub fn paging(query: &Query, default: u64, max: u64) -> (u64, u64) {
    let limit = query.u64("limit").unwrap_or(default).clamp(1, max);
    let offset = query
        .u64("offset")
        .or_else(|| query.u64("skip"))
        .unwrap_or(0);
    (limit, offset)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field::new("id", "id", FieldKind::Int),
        Field::new("login", "login", FieldKind::Text),
        Field::new("full_name", "full_name", FieldKind::Text),
        Field::new("updated_at", "updated_at", FieldKind::Time),
    ];

    #[test]
    fn parses_brackets_and_encodings() {
        let q = Query::parse("id[in][]=1&id[in][]=2&full_name%5Bstart_with%5D=Al+B%C3%A9&login=a%2Cb&x[=1&[y]=2&=3&flag");
        assert_eq!(
            q.params[0],
            Param {
                name: "id".into(),
                path: vec!["in".into(), String::new()],
                value: "1".into()
            }
        );
        assert_eq!(q.list("id", "in"), vec!["1", "2"]);
        assert_eq!(q.params[2].name, "full_name");
        assert_eq!(q.params[2].path, vec!["start_with"]);
        assert_eq!(q.params[2].value, "Al Bé");
        assert_eq!(q.get("login"), Some("a,b"));
        assert_eq!(q.list("login", ""), vec!["a", "b"]);
        assert_eq!(q.params[4].name, "x[");
        assert_eq!(q.params[5].name, "[y]");
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.params.len(), 7, "the empty key is dropped");
        assert_eq!(Query::parse(""), Query::default());
    }

    #[test]
    fn comma_lists_and_repeats_merge() {
        let q = Query::parse("id[in]=1%2C%202&id[in][]=3");
        assert_eq!(q.list("id", "in"), vec!["1", "2", "3"]);
        let f = build_filter(&q, FIELDS).unwrap();
        assert_eq!(f.clauses, vec!["id IN (?, ?, ?)"]);
        assert_eq!(
            f.args,
            vec![
                SqlValue::Integer(1),
                SqlValue::Integer(2),
                SqlValue::Integer(3)
            ]
        );
    }

    #[test]
    fn filter_operators() {
        let q = Query::parse(
            "login=bob,by&full_name[start_with]=a_b%25&updated_at[gt]=1700000000&updated_at[lte]=2024-01-01T00:00:00Z&unknown[x]=1&limit=500&offset=5",
        );
        let f = build_filter(&q, FIELDS).unwrap();
        assert_eq!(
            f.clauses,
            vec![
                "login IN (?)",
                "full_name LIKE ? ESCAPE '\\'",
                "updated_at > ?",
                "updated_at <= ?"
            ]
        );
        assert_eq!(
            f.args,
            vec![
                SqlValue::Text("bob,by".into()),
                SqlValue::Text("a\\_b\\%%".into()),
                SqlValue::Integer(1_700_000_000_000),
                SqlValue::Integer(1_704_067_200_000),
            ]
        );
        assert_eq!(paging(&q, 100, 100), (100, 5));
        assert_eq!(paging(&Query::parse("limit=0&skip=3"), 100, 100), (1, 3));
        assert_eq!(paging(&Query::parse("limit=x"), 100, 100), (100, 0));
    }

    #[test]
    fn times_compare_in_milliseconds() {
        let fields = &[
            Field::new("updated_at", "updated_at", FieldKind::Time),
            Field::new("date_sent", "date_sent", FieldKind::UnixSeconds),
        ];
        let q = Query::parse(
            "updated_at[gt]=1700000000.5&updated_at[lt]=2023-11-14T22:13:20.250Z&date_sent[lte]=1700000000",
        );
        let f = build_filter(&q, fields).unwrap();
        assert_eq!(
            f.clauses,
            vec![
                "updated_at > ?",
                "updated_at < ?",
                "(date_sent * 1000) <= ?"
            ]
        );
        assert_eq!(
            f.args,
            vec![
                SqlValue::Integer(1_700_000_000_500),
                SqlValue::Integer(1_700_000_000_250),
                SqlValue::Integer(1_700_000_000_000),
            ]
        );
    }

    #[test]
    fn filter_errors() {
        for bad in [
            "id[in][]=x",
            "id[start_with]=1",
            "id[foo]=1",
            "updated_at[gt]=yesterday",
            "id[a][b]=1",
        ] {
            let e = build_filter(&Query::parse(bad), FIELDS).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{bad}");
        }
        // An empty `in` list matches nothing.
        let f = build_filter(&Query::parse("id[in]="), FIELDS).unwrap();
        assert_eq!(f.clauses, vec!["0"]);
    }

    #[test]
    fn contains_and_all() {
        let q = Query::parse("login[ctn]=a_b&id[all]=3,3");
        let f = build_filter(&q, FIELDS).unwrap();
        assert_eq!(f.clauses, vec!["instr(login, ?) > 0", "id = ? AND id = ?"]);
        assert_eq!(
            f.args,
            vec![
                SqlValue::Text("a_b".into()),
                SqlValue::Integer(3),
                SqlValue::Integer(3)
            ]
        );
    }

    #[test]
    fn sorting() {
        assert_eq!(
            order_by(&Query::parse("sort_desc=id"), FIELDS, "id ASC"),
            "id DESC"
        );
        assert_eq!(
            order_by(&Query::parse("sort_asc=updated_at"), FIELDS, "id ASC"),
            "updated_at ASC, id ASC"
        );
        assert_eq!(
            order_by(&Query::parse("sort_desc=nope"), FIELDS, "id ASC"),
            "id ASC"
        );
    }
}
