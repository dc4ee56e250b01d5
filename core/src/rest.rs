//! The REST transport: one `reqwest` client (rustls + ring, bundled Mozilla roots plus an
//! optional extra CA), ConnectyCube headers, and the mapping of HTTP statuses and
//! `{"errors": …}` bodies to [`Error`]. Higher layers (auth, chat) build on `Rest::send`.

use std::time::{Duration, Instant, SystemTime};

use cubechat_wire::{auth::SESSION_DOES_NOT_EXIST, error::ErrorBody};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::debug;
use url::Url;

use crate::config::Config;
use crate::error::{Error, Result};

/// Value of the `CB-SDK` header.
pub(crate) const SDK_HEADER: &str = concat!("cubechat-rust ", env!("CARGO_PKG_VERSION"));

/// Longest server error text kept in an [`Error`].
const MAX_ERROR_TEXT: usize = 300;
/// How many times an idempotent call is retried after 429 or 503.
pub const MAX_RETRIES: u32 = 2;
/// The longest advised wait (`Retry-After`) an idempotent call waits out before retrying;
/// a longer one is returned to the app at once.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// The wait before a retry when a 429 or 503 advises none.
const DEFAULT_RETRY_WAIT: Duration = Duration::from_secs(1);

/// Largest REST response body read (JSON answers): a longer one fails with
/// [`Error::Protocol`] as soon as its `Content-Length` or its bytes show it, before it is
/// held whole. Downloads to a file are streamed and not limited by it.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Bytes of an error response read to describe it; the rest is ignored.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Reads a response body of at most `cap` bytes; a longer one fails with `Protocol`
/// (checked against `Content-Length` first, then while reading).
pub(crate) async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>> {
    let too_big = || Error::Protocol(format!("response body larger than {cap} bytes"));
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Error::from_transport)? {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first [`MAX_ERROR_BODY`] bytes of an error response (what could be read of them).
pub(crate) async fn read_error_body(mut resp: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// How a request identifies itself.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// No credentials (session creation).
    None,
    /// `CB-Token`.
    Token(&'a str),
}

/// A REST endpoint client bound to one base URL.
#[derive(Debug)]
pub(crate) struct Rest {
    http: reqwest::Client,
    base: Url,
}

impl Rest {
    /// Builds the HTTP client from a validated config.
    pub(crate) fn new(cfg: &Config, base: Url) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(cfg.timeouts.connect)
            .timeout(cfg.timeouts.request)
            .use_rustls_tls()
            .https_only(!base.scheme().eq("http"))
            .redirect(reqwest::redirect::Policy::limited(5));
        if let Some(pem) = &cfg.tls.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| {
                Error::InvalidInput("extra_ca_pem is not a valid PEM certificate".into())
            })?;
            if certs.is_empty() {
                return Err(Error::InvalidInput(
                    "extra_ca_pem holds no certificate".into(),
                ));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if cfg.tls.insecure_accept_any_certificate {
            tracing::warn!("TLS certificate verification is OFF (insecure_accept_any_certificate)");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::InvalidInput(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    /// The shared HTTP client (for transfers that do not fit [`Rest::send`]).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The URL of `segments` under the base, with `.json` after the last one if `json`.
    pub(crate) fn url(&self, segments: &[&str], json: bool) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| Error::InvalidInput("api_url cannot be a base URL".into()))?;
            segs.pop_if_empty();
            for (i, p) in segments.iter().enumerate() {
                if json && i + 1 == segments.len() {
                    segs.push(&format!("{p}.json"));
                } else {
                    segs.push(p);
                }
            }
        }
        Ok(url)
    }

    /// Sends one request and returns the body of a 2xx response.
    ///
    /// `path` is relative to the base (e.g. `session`, `users/5`); `.json` is appended as
    /// the JS SDK does. Non-2xx statuses become typed errors: 401 with "Required session does
    /// not exist" is [`Error::SessionExpired`], other 401s [`Error::InvalidCredentials`]
    /// (callers refine it), 403 [`Error::Forbidden`], 404 [`Error::NotFound`], 429
    /// [`Error::RateLimited`], 503 [`Error::ServerBusy`], the rest [`Error::Server`].
    ///
    /// An idempotent call (GET, HEAD, PUT, DELETE) answered 429 or 503 waits the advised
    /// delay (`Retry-After`, 1 s when absent) and tries again, at most [`MAX_RETRIES`] times
    /// and only when the advice is at most [`MAX_RETRY_WAIT`]; otherwise the error (with the
    /// advised delay) is returned at once.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> Result<Vec<u8>> {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let mut retries = 0;
        loop {
            let r = self
                .send_once(method.clone(), path, query, body, auth)
                .await;
            let advised = match &r {
                Err(Error::RateLimited { retry_after } | Error::ServerBusy { retry_after }) => {
                    retry_after.unwrap_or(DEFAULT_RETRY_WAIT)
                }
                _ => return r,
            };
            if !idempotent || retries >= MAX_RETRIES || advised > MAX_RETRY_WAIT {
                return r;
            }
            retries += 1;
            debug!(%method, path, retry = retries, wait_ms = advised.as_millis() as u64, "rest: server asked to wait");
            tokio::time::sleep(advised).await;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
        auth: Auth<'_>,
    ) -> Result<Vec<u8>> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut url = self.url(&segments, true)?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("CB-SDK", SDK_HEADER);
        req = match auth {
            Auth::None => req,
            Auth::Token(t) => req.header("CB-Token", t),
        };
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = Instant::now();
        let resp = req.send().await.map_err(Error::from_transport)?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let body = if status.is_success() {
            read_capped(resp, MAX_RESPONSE_BYTES).await
        } else {
            Ok(read_error_body(resp).await)
        };
        debug!(%method, path, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "rest");
        let body = body?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(response_error(status, retry_after, &body))
        }
    }
}

/// The delay a response's `Retry-After` header advises, if any.
pub(crate) fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a past date is no wait). `None`
/// when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// [`status_error`], with 429 and 503 carrying the advised delay.
pub(crate) fn response_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Error {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited { retry_after },
        StatusCode::SERVICE_UNAVAILABLE => Error::ServerBusy { retry_after },
        _ => status_error(status, body),
    }
}

/// Turns an error status and body into an [`Error`].
pub(crate) fn status_error(status: StatusCode, body: &[u8]) -> Error {
    let messages = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.messages())
        .unwrap_or_default();
    let mut text = if messages.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        messages.join("; ")
    };
    if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    match status {
        StatusCode::UNAUTHORIZED
            if messages
                .iter()
                .any(|m| m == SESSION_DOES_NOT_EXIST || m == "Token is required") =>
        {
            Error::SessionExpired(text)
        }
        StatusCode::UNAUTHORIZED => Error::InvalidCredentials(text),
        StatusCode::FORBIDDEN => Error::Forbidden(text),
        StatusCode::NOT_FOUND => Error::NotFound(text),
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited { retry_after: None },
        StatusCode::SERVICE_UNAVAILABLE => Error::ServerBusy { retry_after: None },
        s => Error::Server {
            status: s.as_u16(),
            message: text,
        },
    }
}

/// Decodes a JSON body, describing failures without quoting the body.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::malformed_json(what, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses() {
        let e = status_error(
            StatusCode::UNAUTHORIZED,
            br#"{"errors":{"base":["Required session does not exist"]}}"#,
        );
        assert!(matches!(e, Error::SessionExpired(_)));
        let e = status_error(StatusCode::UNAUTHORIZED, br#"{"errors":["Unauthorized"]}"#);
        assert_eq!(e, Error::InvalidCredentials("Unauthorized".into()));
        let e = status_error(
            StatusCode::FORBIDDEN,
            br#"{"errors":{"base":["Forbidden. Need user."]}}"#,
        );
        assert_eq!(e, Error::Forbidden("Forbidden. Need user.".into()));
        let e = status_error(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(
            e,
            Error::Server {
                status: 502,
                message: "HTTP 502".into()
            }
        );
        let e = status_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"errors":{"login":["has already been taken"]}}"#,
        );
        assert_eq!(
            e,
            Error::Server {
                status: 422,
                message: "login has already been taken".into()
            }
        );
    }

    #[test]
    fn retry_after_values() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:27 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        let e = response_error(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(7)),
            b"",
        );
        assert_eq!(
            e,
            Error::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(e.to_string().contains("retry after 7 s"), "{e}");
        assert_eq!(
            status_error(StatusCode::SERVICE_UNAVAILABLE, b"<html>"),
            Error::ServerBusy { retry_after: None }
        );
    }

    #[test]
    fn long_error_text_is_cut() {
        let long = format!(r#"{{"errors":["{}"]}}"#, "é".repeat(400));
        match status_error(StatusCode::INTERNAL_SERVER_ERROR, long.as_bytes()) {
            Error::Server { message, .. } => assert!(message.len() <= MAX_ERROR_TEXT + 3),
            other => panic!("{other:?}"),
        }
    }

    /// A one-shot HTTP server on 127.0.0.1 answering every request with `head` followed by
    /// `body_len` bytes of `x` (written in pieces).
    async fn serve_once(head: String, body_len: usize) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut tcp, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp.write_all(head.as_bytes()).await;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = body_len;
            let chunked = head.contains("chunked");
            while left > 0 {
                let n = left.min(chunk.len());
                let r = if chunked {
                    let mut piece = format!("{n:x}\r\n").into_bytes();
                    piece.extend_from_slice(&chunk[..n]);
                    piece.extend_from_slice(b"\r\n");
                    tcp.write_all(&piece).await
                } else {
                    tcp.write_all(&chunk[..n]).await
                };
                if r.is_err() {
                    return; // the client stopped reading: good
                }
                left -= n;
            }
            if chunked {
                let _ = tcp.write_all(b"0\r\n\r\n").await;
            }
        });
        Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap()
    }

    async fn get(base: Url) -> Result<Vec<u8>> {
        let cfg = Config::new(1, "k", base.as_str());
        let rest = Rest::new(&cfg, base).unwrap();
        rest.send(Method::GET, "users", &[], None, Auth::None).await
    }

    #[tokio::test]
    async fn oversized_response_is_refused_by_its_length() {
        let len = MAX_RESPONSE_BYTES + 1;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        );
        let base = serve_once(head, len).await;
        match get(base).await {
            Err(Error::Protocol(m)) => assert!(m.contains("larger than"), "{m}"),
            other => panic!("expected Protocol, got {:?}", other.map(|b| b.len())),
        }
    }

    #[tokio::test]
    async fn oversized_chunked_response_is_refused_while_reading() {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
        let base = serve_once(head, MAX_RESPONSE_BYTES + 64 * 1024).await;
        match get(base).await {
            Err(Error::Protocol(m)) => assert!(m.contains("larger than"), "{m}"),
            other => panic!("expected Protocol, got {:?}", other.map(|b| b.len())),
        }
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_read() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
        let base = serve_once(head, 1024 * 1024).await;
        assert_eq!(get(base).await.unwrap().len(), 1024 * 1024);
    }

    #[tokio::test]
    async fn a_huge_error_page_still_maps_to_its_status() {
        let len = 64 * 1024 * 1024;
        let head = format!(
            "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {len}\r\n\r\n"
        );
        let base = serve_once(head, len).await;
        assert_eq!(
            get(base).await,
            Err(Error::Server {
                status: 502,
                message: "HTTP 502".into()
            })
        );
    }

    #[test]
    fn decode_errors_do_not_quote_the_body() {
        let e = decode::<u64>("session", br#""secret-token""#).unwrap_err();
        assert!(!e.to_string().contains("secret-token"), "{e}");
    }
}
