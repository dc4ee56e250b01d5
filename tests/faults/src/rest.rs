//! A hostile REST server for the engine's tests: plain HTTP/1.1 over tokio TCP on
//! 127.0.0.1 (a free port), answering every request according to one [`Case`]: wrong JSON
//! types, truncated bodies, HTML error pages, 429/503 with `Retry-After`, redirect loops and
//! slowloris drips. It counts the requests it saw, so tests can tell retries apart.
//!
//! Every answer carries `Connection: close`; request bodies are read (up to
//! [`MAX_REQUEST`] bytes) and ignored.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request (head and body) read; the rest is ignored.
pub const MAX_REQUEST: usize = 1 << 20;

/// How the server misbehaves.
#[derive(Debug, Clone)]
pub enum Case {
    /// 200 with `body` as `application/json` (e.g. the right keys with the wrong types).
    Json(String),
    /// 200 with a `Content-Length` of `declared` but only `body` sent, then the connection
    /// closes.
    Truncated { body: String, declared: usize },
    /// `status` with an HTML page (what a proxy or load balancer sends).
    Html { status: u16 },
    /// `status` (429 or 503) with `Retry-After: retry_after` (omitted when `None`) for the
    /// first `times` requests, then 200 with `then` as JSON.
    RetryAfter {
        status: u16,
        retry_after: Option<String>,
        times: usize,
        then: String,
    },
    /// 302 to the same path, forever.
    RedirectLoop,
    /// 200 whose headers promise `declared` bytes of JSON, then one byte per `every`.
    SlowBody { declared: usize, every: Duration },
    /// The status line and headers one byte per `every`.
    SlowHead { every: Duration },
}

/// The server; it stops when dropped.
pub struct HostileRest {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HostileRest {
    /// Starts the server on 127.0.0.1 on a free port.
    pub async fn start(case: Case) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let case = case.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    // The client going away mid-answer is part of the game.
                    let _ = serve(sock, &case, &count).await;
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests arrived (complete heads) so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HostileRest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
/// Returns the request path, or `None` when the client closed first.
async fn read_request(sock: &mut TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REQUEST);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        have += n;
    }
    Ok(Some(path))
}

fn answer(status: u16, reason: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

fn json(status: u16, body: &str) -> Vec<u8> {
    answer(
        status,
        "OK",
        &[("Content-Type", "application/json".into())],
        body,
    )
}

async fn serve(mut sock: TcpStream, case: &Case, count: &AtomicUsize) -> io::Result<()> {
    let Some(path) = read_request(&mut sock).await? else {
        return Ok(());
    };
    let n = count.fetch_add(1, Ordering::SeqCst);
    match case {
        Case::Json(body) => sock.write_all(&json(200, body)).await?,
        Case::Truncated { body, declared } => {
            let bytes = answer(
                200,
                "OK",
                &[
                    ("Content-Type", "application/json".into()),
                    ("Content-Length", declared.to_string()),
                ],
                body,
            );
            sock.write_all(&bytes).await?;
        }
        Case::Html { status } => {
            let page = format!(
                "<!DOCTYPE html><html><head><title>{status} Error</title></head><body>\
                 <h1>{status}</h1><p>The upstream server is not available.</p></body></html>"
            );
            let bytes = answer(
                *status,
                "Error",
                &[("Content-Type", "text/html; charset=utf-8".into())],
                &page,
            );
            sock.write_all(&bytes).await?;
        }
        Case::RetryAfter {
            status,
            retry_after,
            times,
            then,
        } => {
            if n < *times {
                let mut headers = vec![("Content-Type", "text/plain".to_owned())];
                if let Some(r) = retry_after {
                    headers.push(("Retry-After", r.clone()));
                }
                let bytes = answer(*status, "Slow Down", &headers, "slow down");
                sock.write_all(&bytes).await?;
            } else {
                sock.write_all(&json(200, then)).await?;
            }
        }
        Case::RedirectLoop => {
            let bytes = answer(302, "Found", &[("Location", path)], "");
            sock.write_all(&bytes).await?;
        }
        Case::SlowBody { declared, every } => {
            let head = answer(
                200,
                "OK",
                &[
                    ("Content-Type", "application/json".into()),
                    ("Content-Length", declared.to_string()),
                ],
                "",
            );
            sock.write_all(&head).await?;
            for _ in 0..*declared {
                tokio::time::sleep(*every).await;
                sock.write_all(b" ").await?;
            }
        }
        Case::SlowHead { every } => {
            for b in json(200, "{}") {
                tokio::time::sleep(*every).await;
                sock.write_all(&[b]).await?;
            }
        }
    }
    sock.flush().await?;
    // Let the client read everything before the close.
    let _ = sock.shutdown().await;
    Ok(())
}
