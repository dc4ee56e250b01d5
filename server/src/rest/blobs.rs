//! Cloud storage (protocol reference §5). The flow the SDKs drive:
//!
//! 1. `POST /blobs` creates an empty blob and answers with `blob_object_access.params`: the
//!    upload URL (`/blobs/upload` on this server) whose query parameters are the form fields
//!    to post back, S3 style: `key` (the UID), `Content-Type`, `Expires`, `acl`,
//!    `success_action_status` and a one-time `signature`.
//! 2. A multipart `POST` to that URL carries those fields and then `file`; it needs no session
//!    (the signature is the authority), answers `201` with an S3-like XML body.
//! 3. `PUT /blobs/{id}/complete` with `{"size": n}` or `{"blob": {"size": n}}` (the size, if
//!    given, must be the uploaded length) makes the blob downloadable.
//! 4. Download by UID: `GET /blobs/{uid}` (no `.json`) or `GET /blobs/{uid}/download`. Public
//!    blobs need nothing; private ones need a live session of the application, as
//!    `?token=` or `CB-Token`.
//!
//! Also: blob info by id or UID (`GET /blobs/{id}`, `GET /blobs/{uid}.json`), the download URL
//! (`GET /blobs/{uid}/object?download_url=1`), rename (`PUT /blobs/{id}`), delete, and the
//! deprecated owner listing (`GET /blobs?page&per_page`). Only the owner renames, completes,
//! deletes or sees a private blob's info by id.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use cubechat_wire::chat::{Blob, BlobEnvelope, BlobObjectAccess};
use cubechat_wire::time::iso8601;
use serde_json::{json, Value};

use super::dialogs::{flag, int, no_permission};
use super::extract::{ApiPath, JsonBody, MaybeSession, UserSession};
use super::query::Query;
use super::{token_of, JsonSuffix};
use crate::db::blobs::{self as blob_db, BlobRow, NewBlob};
use crate::db::sessions::{self, SessionRow};
use crate::db::{self, random_token};
use crate::error::{ApiError, FieldErrors};
use crate::state::AppState;

/// The largest blob accepted (§5: 100 MB).
pub const MAX_BLOB_BYTES: u64 = 100 * 1024 * 1024;
/// How long an upload URL stays valid.
const UPLOAD_TTL_SECS: i64 = 3600;
/// The path of the upload URL.
pub const UPLOAD_PATH: &str = "/blobs/upload";
/// Room for the multipart framing and the form fields around the file.
const FORM_OVERHEAD: usize = 64 * 1024;

pub fn routes() -> Router<AppState> {
    let body_limit = usize::try_from(MAX_BLOB_BYTES).unwrap_or(usize::MAX) + FORM_OVERHEAD;
    Router::new()
        .route("/blobs", post(create).get(list))
        .route(
            UPLOAD_PATH,
            post(upload).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/blobs/{key}", get(show).put(rename).delete(remove))
        .route("/blobs/{id}/complete", put(complete))
        .route("/blobs/{uid}/download", get(download))
        .route("/blobs/{uid}/object", get(object))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// `POST /blobs` `{"blob":{"name","content_type","public"}}` → the blob with its upload access.
async fn create(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let fields = body.get("blob").unwrap_or(&body);
    let name = text(fields.get("name"));
    let content_type = text(fields.get("content_type"));
    let mut errors = FieldErrors::new();
    if content_type.is_none() {
        errors.add("content_type", "can't be blank");
    }
    if name.as_ref().is_some_and(|n| n.len() > 255) {
        errors.add("name", "is too long (maximum is 255 characters)");
    }
    errors.into_result()?;
    let public = fields.get("public").is_some_and(|v| flag(Some(v)));
    let now = db::now();
    let secret = random_token();
    let expires = now + UPLOAD_TTL_SECS;
    let new = NewBlob {
        app_id: session.app_id,
        user_id: session.user_id,
        name: name.as_deref(),
        content_type: content_type.as_deref(),
        public,
        upload_secret: &secret,
        upload_expires_at: expires,
    };
    let row = state.db.call(|c| {
        let uid = random_token()[..32].to_owned();
        Ok::<_, ApiError>(blob_db::create(c, &new, &uid, now)?)
    })?;
    let mut blob = row.to_wire();
    blob.blob_object_access = Some(BlobObjectAccess {
        id: row.id,
        blob_id: row.id,
        expires: Some(iso8601(expires)),
        object_access_type: Some("Write".into()),
        params: Some(upload_url(&headers, &row)),
        download_url: None,
    });
    Ok((StatusCode::CREATED, Json(BlobEnvelope { blob })).into_response())
}

/// The upload URL of `row`, on the host the client reached us by.
fn upload_url(headers: &HeaderMap, row: &BlobRow) -> String {
    let acl = if row.public {
        "public-read"
    } else {
        "authenticated-read"
    };
    let fields = [
        ("Content-Type", row.content_type.as_deref().unwrap_or("")),
        ("Expires", &iso8601(row.upload_expires_at)),
        ("acl", acl),
        ("key", &row.uid),
        ("success_action_status", "201"),
        ("signature", &row.upload_secret),
    ];
    let query: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("{}{UPLOAD_PATH}?{}", base_url(headers), query.join("&"))
}

/// `http://host[:port]` as the request's `Host` names it.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Percent-encodes everything but RFC 3986 unreserved characters (never `+` for a space: the
/// JS SDK decodes values with `decodeURIComponent`).
fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The multipart upload: form fields `key` and `signature` (any order), then `file`.
async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let mut key = None;
    let mut signature = None;
    let mut file: Option<Vec<u8>> = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                if (bytes.len() + chunk.len()) as u64 > MAX_BLOB_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            file = Some(bytes);
        } else {
            let value = field.text().await.map_err(bad_form)?;
            match name.as_str() {
                "key" => key = Some(value),
                "signature" => signature = Some(value),
                _ => {}
            }
        }
    }
    let (Some(key), Some(signature), Some(file)) = (key, signature, file) else {
        return Err(ApiError::bad_request(
            "The upload needs the key, signature and file fields",
        ));
    };
    let now = db::now();
    let row = state.db.call(|c| {
        let row = blob_db::by_uid(c, &key)?
            .filter(|r| r.upload_secret == signature)
            .ok_or_else(|| ApiError::forbidden("Invalid upload signature"))?;
        if row.upload_expires_at < now {
            return Err(ApiError::forbidden("The upload URL has expired"));
        }
        if row.is_complete() {
            return Err(ApiError::forbidden("The blob is already complete"));
        }
        blob_db::store_bytes(c, row.id, &file, now)?;
        Ok(row)
    })?;
    tracing::debug!(blob = row.id, bytes = file.len(), "blob uploaded");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}/blobs/{}</Location>\
         <Key>{}</Key></PostResponse>",
        base_url(&headers),
        row.uid,
        row.uid
    );
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/xml")],
        xml,
    )
        .into_response())
}

fn bad_form(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request(format!("Malformed multipart body: {}", e.body_text()))
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        cubechat_wire::error::ErrorBody::base("The file is larger than 100 MB"),
    )
}

/// The owner's blob `id`; 404 unknown (or of another application), 403 someone else's.
fn owned(c: &rusqlite::Connection, session: &SessionRow, id: u64) -> Result<BlobRow, ApiError> {
    let row = blob_db::by_id(c, id)?
        .filter(|r| r.app_id == session.app_id)
        .ok_or_else(ApiError::not_found)?;
    if row.user_id != session.user_id {
        return Err(no_permission());
    }
    Ok(row)
}

/// `PUT /blobs/{id}/complete` `{"size": n}` (or `{"blob":{"size": n}}`).
async fn complete(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<u64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let size = int(body.get("size")).or_else(|| int(body.get("blob")?.get("size")));
    let now = db::now();
    state.db.call(|c| {
        let row = owned(c, &session, id)?;
        if row.uploaded == 0 && blob_db::bytes(c, id)?.is_none() {
            return Err(ApiError::unprocessable("base", "The file was not uploaded"));
        }
        if size.is_some_and(|s| s != row.uploaded) {
            return Err(ApiError::unprocessable(
                "size",
                format!("does not match the uploaded file ({} bytes)", row.uploaded),
            ));
        }
        blob_db::complete(c, id, row.uploaded, now)?;
        Ok(())
    })?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /blobs/{key}`: with a numeric key, the blob's info; with a UID, its info when the path
/// ended in `.json`, else its bytes.
async fn show(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    suffix: Option<Extension<JsonSuffix>>,
    ApiPath(key): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if let Ok(id) = key.parse::<u64>() {
        let session = session.ok_or_else(ApiError::no_session)?;
        let row = state.db.call(|c| {
            let row = blob_db::by_id(c, id)?
                .filter(|r| r.app_id == session.app_id)
                .ok_or_else(ApiError::not_found)?;
            if !row.public && row.user_id != session.user_id {
                return Err(no_permission());
            }
            Ok::<_, ApiError>(row)
        })?;
        return Ok(Json(BlobEnvelope {
            blob: row.to_wire(),
        })
        .into_response());
    }
    if suffix.is_some() {
        let session = session.ok_or_else(ApiError::no_session)?;
        let row = by_uid(&state, session.app_id, &key)?;
        return Ok(Json(BlobEnvelope {
            blob: row.to_wire(),
        })
        .into_response());
    }
    serve_bytes(&state, session, raw.as_deref(), &key)
}

/// `GET /blobs/{uid}/download`: the bytes.
async fn download(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    ApiPath(uid): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    serve_bytes(&state, session, raw.as_deref(), &uid)
}

fn by_uid(state: &AppState, app_id: u64, uid: &str) -> Result<BlobRow, ApiError> {
    state.db.call(|c| {
        blob_db::by_uid(c, uid)?
            .filter(|r| r.app_id == app_id)
            .ok_or_else(ApiError::not_found)
    })
}

/// The bytes of a complete blob. A private blob needs a live session of its application, from
/// `CB-Token` or `?token=`.
fn serve_bytes(
    state: &AppState,
    header_session: Option<SessionRow>,
    raw_query: Option<&str>,
    uid: &str,
) -> Result<Response, ApiError> {
    let now = db::now();
    let query_token = raw_query
        .map(Query::parse)
        .and_then(|q| q.get("token").map(str::to_owned))
        .filter(|t| !t.is_empty());
    let (row, bytes) = state.db.call(|c| {
        let row = blob_db::by_uid(c, uid)?
            .filter(BlobRow::is_complete)
            .ok_or_else(ApiError::not_found)?;
        if !row.public {
            let session = match (&header_session, &query_token) {
                (Some(s), _) => Some(s.clone()),
                (None, Some(t)) => sessions::find_live(c, t, now)?,
                (None, None) => None,
            };
            match session {
                Some(s) if s.app_id == row.app_id => {}
                Some(_) => return Err(ApiError::not_found()),
                None => return Err(ApiError::no_session()),
            }
        }
        let bytes = blob_db::bytes(c, row.id)?.unwrap_or_default();
        Ok::<_, ApiError>((row, bytes))
    })?;
    let content_type = row
        .content_type
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=0".to_owned()),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// `GET /blobs/{uid}/object?download_url=1`: the blob with a read access holding its
/// download URL (with the caller's token for a private blob).
async fn object(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    headers: HeaderMap,
    ApiPath(uid): ApiPath<String>,
) -> Result<Response, ApiError> {
    let row = by_uid(&state, session.app_id, &uid)?;
    if !row.is_complete() {
        return Err(ApiError::not_found());
    }
    let mut url = format!("{}/blobs/{}", base_url(&headers), row.uid);
    if !row.public {
        if let Some(token) = token_of(&headers) {
            url = format!("{url}?token={}", percent_encode(token));
        }
    }
    let mut blob: Blob = row.to_wire();
    blob.blob_object_access = Some(BlobObjectAccess {
        id: row.id,
        blob_id: row.id,
        expires: Some(iso8601(db::now() + UPLOAD_TTL_SECS)),
        object_access_type: Some("Read".into()),
        params: Some(url.clone()),
        download_url: Some(url),
    });
    Ok(Json(BlobEnvelope { blob }).into_response())
}

/// `PUT /blobs/{id}` `{"blob":{"name":…}}`: the owner renames a blob.
async fn rename(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<u64>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let fields = body.get("blob").unwrap_or(&body);
    let name = text(fields.get("name"))
        .ok_or_else(|| ApiError::unprocessable("name", "can't be blank"))?;
    let now = db::now();
    let row = state.db.call(|c| {
        owned(c, &session, id)?;
        blob_db::rename(c, id, &name, now)?;
        blob_db::by_id(c, id)?.ok_or_else(ApiError::not_found)
    })?;
    Ok(Json(BlobEnvelope {
        blob: row.to_wire(),
    })
    .into_response())
}

/// `DELETE /blobs/{id}`: the owner deletes a blob and its bytes.
async fn remove(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    ApiPath(id): ApiPath<u64>,
) -> Result<Response, ApiError> {
    state.db.call(|c| {
        owned(c, &session, id)?;
        blob_db::delete(c, id)?;
        Ok::<_, ApiError>(())
    })?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /blobs?page=1&per_page=10` (deprecated): the caller's blobs, newest first.
async fn list(
    State(state): State<AppState>,
    UserSession(session): UserSession,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(raw.as_deref().unwrap_or_default());
    let page = q.u64("page").unwrap_or(1).max(1);
    let per_page = q.u64("per_page").unwrap_or(10).clamp(1, 100);
    let (rows, total) = state.db.call(|c| {
        Ok::<_, ApiError>(blob_db::list(
            c,
            session.app_id,
            session.user_id,
            per_page,
            (page - 1) * per_page,
        )?)
    })?;
    let items: Vec<Value> = rows.iter().map(|r| json!({"blob": r.to_wire()})).collect();
    Ok(Json(json!({
        "current_page": page,
        "per_page": per_page,
        "total_entries": total,
        "items": items,
    }))
    .into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::percent_encode;
    use crate::rest::app;
    use crate::rest::tests::{call, test_state, user_token, Reply};
    use crate::state::AppState;

    #[test]
    fn encodes_for_decode_uri_component() {
        assert_eq!(percent_encode("text/plain; a=b"), "text%2Fplain%3B%20a%3Db");
        assert_eq!(percent_encode("A-z_0.9~"), "A-z_0.9~");
    }

    async fn req(s: &AppState, token: &str, method: &str, uri: &str, body: Option<Value>) -> Reply {
        call(s, method, uri, &[("CB-Token", token)], body).await
    }

    /// Posts `fields` then `file` as multipart/form-data to the upload URL `params`.
    async fn upload(s: &AppState, params: &str, file: &[u8], tamper: bool) -> (u16, String) {
        let url = url::Url::parse(params).unwrap();
        let boundary = "----cubetest";
        let mut body = Vec::new();
        for (k, v) in url.query_pairs() {
            let v = if tamper && k == "signature" {
                "0".into()
            } else {
                v
            };
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut r = Request::builder()
            .method("POST")
            .uri(url.path())
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("host", "127.0.0.1:9")
            .body(Body::from(body))
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))));
        let resp = app(s.clone()).oneshot(r).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn private_blob_flow_and_permissions() {
        let s = test_state();
        let (owner, _) = user_token(&s, "owner").await;
        let (other, _) = user_token(&s, "other").await;
        let r = req(
            &s,
            &owner,
            "POST",
            "/blobs.json",
            Some(json!({"blob": {"name": "a b.txt"}})),
        )
        .await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json()["errors"]["content_type"][0], "can't be blank");
        let r = req(
            &s,
            &owner,
            "POST",
            "/blobs.json",
            Some(json!({"blob": {"name": "a b.txt", "content_type": "text/plain; charset=utf-8", "public": false}})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let blob = r.json()["blob"].clone();
        let (id, uid) = (
            blob["id"].as_u64().unwrap(),
            blob["uid"].as_str().unwrap().to_owned(),
        );
        assert_eq!(uid.len(), 32);
        assert_eq!(blob["size"], Value::Null);
        let access = &blob["blob_object_access"];
        assert_eq!(access["object_access_type"], "Write");
        let params = access["params"].as_str().unwrap();
        assert!(
            params.starts_with(
                "http://127.0.0.1/blobs/upload?Content-Type=text%2Fplain%3B%20charset%3Dutf-8&"
            ),
            "{params}"
        );
        assert!(params.contains(&format!("key={uid}")));

        // Not downloadable, not completable before the upload; a bad signature is refused.
        assert_eq!(
            req(
                &s,
                &owner,
                "PUT",
                &format!("/blobs/{id}/complete.json"),
                Some(json!({"size": 3}))
            )
            .await
            .status,
            422
        );
        assert_eq!(upload(&s, params, b"abc", true).await.0, 403);
        let (status, xml) = upload(&s, params, b"hello world", false).await;
        assert_eq!(status, 201, "{xml}");
        assert!(xml.contains(&format!("<Key>{uid}</Key>")));
        assert_eq!(
            req(&s, &owner, "GET", &format!("/blobs/{uid}"), None)
                .await
                .status,
            404
        );

        // Only the owner completes, with the right size (either body shape).
        assert_eq!(
            req(
                &s,
                &other,
                "PUT",
                &format!("/blobs/{id}/complete.json"),
                Some(json!({"size": 11}))
            )
            .await
            .status,
            403
        );
        let r = req(
            &s,
            &owner,
            "PUT",
            &format!("/blobs/{id}/complete.json"),
            Some(json!({"size": 12})),
        )
        .await;
        assert_eq!(
            (r.status, r.json()["errors"]["size"][0].as_str().unwrap()),
            (422, "does not match the uploaded file (11 bytes)")
        );
        let r = req(
            &s,
            &owner,
            "PUT",
            &format!("/blobs/{id}/complete.json"),
            Some(json!({"blob": {"size": 11}})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(upload(&s, params, b"again", false).await.0, 403);

        // Download: private needs a session of the app, by header or query.
        let r = call(&s, "GET", &format!("/blobs/{uid}"), &[], None).await;
        assert_eq!(r.status, 401);
        let r = call(&s, "GET", &format!("/blobs/{uid}?token=nope"), &[], None).await;
        assert_eq!(r.status, 401);
        let r = call(&s, "GET", &format!("/blobs/{uid}?token={other}"), &[], None).await;
        assert_eq!((r.status, r.text.as_str()), (200, "hello world"));
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        let r = req(&s, &owner, "GET", &format!("/blobs/{uid}/download"), None).await;
        assert_eq!((r.status, r.text.as_str()), (200, "hello world"));

        // Info by UID (.json) for any user; by id only the owner for a private blob.
        let r = req(&s, &other, "GET", &format!("/blobs/{uid}.json"), None).await;
        assert_eq!(
            (r.status, r.json()["blob"]["size"].as_u64()),
            (200, Some(11))
        );
        assert_eq!(
            req(&s, &other, "GET", &format!("/blobs/{id}.json"), None)
                .await
                .status,
            403
        );
        let r = req(&s, &owner, "GET", &format!("/blobs/{id}.json"), None).await;
        assert_eq!(r.json()["blob"]["name"], "a b.txt");
        let r = req(
            &s,
            &owner,
            "GET",
            &format!("/blobs/{uid}/object.json?download_url=1"),
            None,
        )
        .await;
        let url = r.json()["blob"]["blob_object_access"]["download_url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(url, format!("http://127.0.0.1/blobs/{uid}?token={owner}"));

        // Rename and delete: owner only.
        assert_eq!(
            req(
                &s,
                &other,
                "PUT",
                &format!("/blobs/{id}.json"),
                Some(json!({"blob": {"name": "x"}}))
            )
            .await
            .status,
            403
        );
        let r = req(
            &s,
            &owner,
            "PUT",
            &format!("/blobs/{id}.json"),
            Some(json!({"blob": {"name": "c.txt"}})),
        )
        .await;
        assert_eq!(r.json()["blob"]["name"], "c.txt");
        let r = req(&s, &owner, "GET", "/blobs.json?page=1&per_page=5", None).await;
        assert_eq!(
            (
                r.json()["total_entries"].as_u64(),
                r.json()["items"][0]["blob"]["id"].as_u64()
            ),
            (Some(1), Some(id))
        );
        assert_eq!(
            req(&s, &other, "GET", "/blobs.json", None).await.json()["total_entries"],
            0
        );
        assert_eq!(
            req(&s, &other, "DELETE", &format!("/blobs/{id}.json"), None)
                .await
                .status,
            403
        );
        assert_eq!(
            req(&s, &owner, "DELETE", &format!("/blobs/{id}.json"), None)
                .await
                .status,
            200
        );
        assert_eq!(
            req(&s, &owner, "GET", &format!("/blobs/{uid}"), None)
                .await
                .status,
            404
        );
        assert_eq!(
            req(&s, &owner, "DELETE", &format!("/blobs/{id}.json"), None)
                .await
                .status,
            404
        );
    }

    #[tokio::test]
    async fn public_blob_needs_no_token() {
        let s = test_state();
        let (owner, _) = user_token(&s, "owner").await;
        let r = req(&s, &owner, "POST", "/blobs", Some(json!({"blob": {"name": "p.bin", "content_type": "application/octet-stream", "public": "true"}}))).await;
        let blob = r.json()["blob"].clone();
        assert_eq!(blob["public"], true);
        let params = blob["blob_object_access"]["params"].as_str().unwrap();
        assert!(params.contains("acl=public-read"));
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        assert_eq!(upload(&s, params, &data, false).await.0, 201);
        let id = blob["id"].as_u64().unwrap();
        assert_eq!(
            req(
                &s,
                &owner,
                "PUT",
                &format!("/blobs/{id}/complete"),
                Some(json!({}))
            )
            .await
            .status,
            200
        );
        let uid = blob["uid"].as_str().unwrap();
        let mut r = Request::builder()
            .uri(format!("/blobs/{uid}"))
            .body(Body::empty())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 1))));
        let resp = app(s.clone()).oneshot(r).await.unwrap();
        assert_eq!(resp.status(), 200);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), data.as_slice());
        let (other, _) = user_token(&s, "other").await;
        assert_eq!(
            req(&s, &other, "GET", &format!("/blobs/{id}"), None)
                .await
                .status,
            200
        );
    }
}
