//! The engine against a hostile REST server (`cubechat-faults`): wrong JSON types, truncated
//! bodies, HTML error pages, 429/503 with `Retry-After`, redirect loops and slowloris. Each
//! case ends in a typed error (or, for advised waits, a bounded retry), never a panic, and
//! within a bounded time.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cubechat_core::{Client, Config, Error};
use cubechat_faults::rest::{Case, HostileRest};

const SESSION: &str =
    r#"{"session": {"id": 1, "user_id": 3, "application_id": 7, "token": "t", "ts": 0}}"#;

async fn server(case: Case) -> (HostileRest, Arc<Client>) {
    let s = HostileRest::start(case).await.unwrap();
    let mut cfg = Config::new(7, "key-7", s.url());
    cfg.timeouts.request = Duration::from_secs(2);
    let c = Client::new(cfg).unwrap();
    (s, c)
}

/// No case may take longer than this (retries included).
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the call ended in bounded time")
}

#[tokio::test]
async fn wrong_json_types_are_protocol_errors() {
    for body in [
        r#"{"session": {"id": "one", "application_id": [], "token": 5}}"#,
        r#"{"session": null}"#,
        r#"[]"#,
        r#""session""#,
        r#"{"session": {"id": 1e400}}"#,
        "",
    ] {
        let (s, c) = server(Case::Json(body.into())).await;
        let r = bounded(c.auth().create_session()).await;
        assert!(matches!(r, Err(Error::Protocol(_))), "{body}: {r:?}");
        assert_eq!(s.requests(), 1);
    }
}

#[tokio::test]
async fn truncated_bodies_are_typed_errors() {
    let (_s, c) = server(Case::Truncated {
        body: r#"{"session": {"id": 1, "user_"#.into(),
        declared: 500,
    })
    .await;
    let r = bounded(c.auth().create_session()).await;
    assert!(
        matches!(r, Err(Error::Network(_) | Error::Protocol(_))),
        "{r:?}"
    );
}

/// What an error must match.
type Check = Box<dyn Fn(&Error) -> bool>;

#[tokio::test]
async fn html_error_pages_are_typed_errors() {
    let cases: Vec<(_, Check)> = vec![
        (
            500,
            Box::new(
                |e: &Error| matches!(e, Error::Server { status: 500, message } if message == "HTTP 500"),
            ),
        ),
        (
            502,
            Box::new(|e| matches!(e, Error::Server { status: 502, .. })),
        ),
        (
            503,
            Box::new(|e| *e == Error::ServerBusy { retry_after: None }),
        ),
        (200, Box::new(|e| matches!(e, Error::Protocol(_)))),
        // POST /session: an unknown path means an unknown application.
        (
            404,
            Box::new(|e| matches!(e, Error::ApplicationRejected(_))),
        ),
    ];
    for (status, check) in cases {
        let (_s, c) = server(Case::Html { status }).await;
        let e = bounded(c.auth().create_session()).await.unwrap_err();
        assert!(check(&e), "{status}: {e:?}");
        assert!(!e.to_string().contains("html"), "no page text: {e}");
    }
}

fn retry(status: u16, after: Option<&str>, times: usize) -> Case {
    Case::RetryAfter {
        status,
        retry_after: after.map(String::from),
        times,
        then: SESSION.into(),
    }
}

#[tokio::test]
async fn idempotent_calls_wait_out_short_advice_and_retry() {
    // GET /session (use_token) answered 429 twice with "1 s", then 200.
    let (s, c) = server(retry(429, Some("1"), 2)).await;
    let session = bounded(c.auth().use_token("t")).await.unwrap();
    assert_eq!(session.user_id, 3);
    assert_eq!(s.requests(), 3);
    // A 503 with an HTTP date already past: retried at once.
    let (s, c) = server(retry(503, Some("Sun, 06 Nov 1994 08:49:37 GMT"), 1)).await;
    bounded(c.auth().use_token("t")).await.unwrap();
    assert_eq!(s.requests(), 2);
    // No advice: retried after a short default wait.
    let (s, c) = server(retry(503, None, 1)).await;
    bounded(c.auth().use_token("t")).await.unwrap();
    assert_eq!(s.requests(), 2);
}

#[tokio::test]
async fn retries_are_bounded_and_long_advice_is_returned() {
    // Always 429: two retries, then the error with the advice.
    let (s, c) = server(retry(429, Some("0"), usize::MAX)).await;
    let r = bounded(c.auth().use_token("t")).await;
    assert_eq!(
        r.unwrap_err(),
        Error::RateLimited {
            retry_after: Some(Duration::ZERO)
        }
    );
    assert_eq!(s.requests(), 3);
    // Advice over 30 s: not waited out, returned at once.
    let (s, c) = server(retry(503, Some("120"), usize::MAX)).await;
    let r = bounded(c.auth().use_token("t")).await;
    assert_eq!(
        r.unwrap_err(),
        Error::ServerBusy {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn non_idempotent_calls_return_the_advice_at_once() {
    let (s, c) = server(retry(429, Some("5"), usize::MAX)).await;
    let e = bounded(c.auth().create_session()).await.unwrap_err();
    assert_eq!(
        e,
        Error::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        }
    );
    assert!(e.to_string().contains("retry after 5 s"), "{e}");
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn redirect_loops_are_protocol_errors() {
    let (s, c) = server(Case::RedirectLoop).await;
    let r = bounded(c.auth().create_session()).await;
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
    assert!(s.requests() <= 6, "{} requests", s.requests());
}

#[tokio::test]
async fn slowloris_ends_with_the_request_timeout() {
    for case in [
        Case::SlowBody {
            declared: 100_000,
            every: Duration::from_millis(100),
        },
        Case::SlowHead {
            every: Duration::from_millis(200),
        },
    ] {
        let (_s, c) = server(case.clone()).await;
        let r = bounded(c.auth().create_session()).await;
        assert!(
            matches!(&r, Err(Error::Network(m)) if m.contains("timed out")),
            "{case:?}: {r:?}"
        );
    }
}
