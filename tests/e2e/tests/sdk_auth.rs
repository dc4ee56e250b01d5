//! cubechat-core's authentication end to end against a real cubeserver process: sign-up,
//! log-in by login and e-mail, sessions, log-out, destroy, token adoption, automatic
//! renewal (once, even under concurrency), and a distinct typed error per failure.
#![allow(clippy::unwrap_used)]

use cubechat_core::{Client, Error, LoginId, SessionEvent, UserParams};

use cubechat_e2e as common;

use common::{start, unique, APP, PASSWORD};

async fn sign_up(c: &Client, login: &str) -> cubechat_core::User {
    c.auth()
        .sign_up(UserParams {
            login: Some(login.into()),
            password: Some(PASSWORD.into()),
            full_name: Some("Rust Tester".into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_up_log_in_session_log_out_destroy() {
    let server = start().await;
    let c = server.client();
    assert!(matches!(
        c.auth().get_session().await,
        Err(Error::NotLoggedIn)
    ));
    let login = unique("rs");
    let created = sign_up(&c, &login).await;
    assert_eq!(created.login.as_deref(), Some(login.as_str()));
    let me = c
        .auth()
        .log_in(LoginId::Login(login.clone()), PASSWORD)
        .await
        .unwrap();
    assert_eq!(me.id, created.id);
    let s = c.auth().get_session().await.unwrap();
    assert_eq!((s.user_id, s.application_id), (me.id, APP.0));
    c.auth().log_out().await.unwrap();
    assert_eq!(c.auth().get_session().await.unwrap().user_id, 0);
    c.auth().destroy_session().await.unwrap();
    assert!(c.current_session().is_none());
    c.auth().destroy_session().await.unwrap(); // idempotent
}

#[tokio::test]
async fn email_login_one_call_session_and_token_adoption() {
    let server = start().await;
    let email = format!("{}@example.com", unique("e"));
    let a = server.client();
    a.auth()
        .sign_up(UserParams {
            email: Some(email.clone()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let s = a
        .auth()
        .create_user_session(LoginId::Email(email.clone()), PASSWORD)
        .await
        .unwrap();
    assert!(s.user_id > 0);
    let b = server.client_with(|c| c.auth_secret = None); // unsigned requests work too
    let adopted = b
        .auth()
        .use_token(&a.session_token().unwrap())
        .await
        .unwrap();
    assert_eq!(adopted.user_id, s.user_id);
    assert!(matches!(
        b.auth().use_token("").await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn each_failure_has_its_own_error() {
    let server = start().await;
    let login = unique("rs");
    sign_up(&server.client(), &login).await;
    let id = LoginId::Login(login);
    let e = server
        .client()
        .auth()
        .log_in(id.clone(), "wrong-password")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials(_)), "{e:?}");
    let e = server
        .client_with(|c| c.app_id = 999)
        .auth()
        .log_in(id.clone(), PASSWORD)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ApplicationRejected(_)), "{e:?}");
    let e = server
        .client_with(|c| c.auth_key = "nope".into())
        .auth()
        .create_session()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ApplicationRejected(_)), "{e:?}");
    let e = server
        .client_with(|c| c.auth_secret = Some("wrong".into()))
        .auth()
        .log_in(id.clone(), PASSWORD)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SignatureRejected(_)), "{e:?}");
    let e = server
        .client_with(|c| c.api_url = "http://127.0.0.1:1".into())
        .auth()
        .create_session()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Network(_)), "{e:?}");
    let e = server
        .client()
        .auth()
        .use_token(&"0".repeat(40))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SessionExpired(_)), "{e:?}");
}

#[tokio::test]
async fn expired_session_is_renewed_once_under_concurrency() {
    let server = start().await;
    let c = server.client();
    let login = unique("rs");
    sign_up(&c, &login).await;
    let me = c
        .auth()
        .log_in(LoginId::Login(login), PASSWORD)
        .await
        .unwrap();
    let (_, mut events) = c.subscribe_session();
    let old = c.session_token().unwrap();
    server.expire_all_sessions().await;
    let calls = (0..5).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.auth().get_session().await })
    });
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().user_id, me.id);
    }
    assert_ne!(c.session_token().unwrap(), old);
    assert_eq!(
        events.try_recv().unwrap(),
        SessionEvent::Renewed { user_id: me.id }
    );
    assert!(events.try_recv().is_err(), "renewed more than once");
}

#[tokio::test]
async fn token_session_cannot_be_renewed_and_reports_expired() {
    let server = start().await;
    let a = server.client();
    let login = unique("rs");
    sign_up(&a, &login).await;
    a.auth()
        .log_in(LoginId::Login(login.clone()), PASSWORD)
        .await
        .unwrap();
    let b = server.client();
    b.auth()
        .use_token(&a.session_token().unwrap())
        .await
        .unwrap();
    let (_, mut events) = b.subscribe_session();
    server.expire_all_sessions().await;
    let e = b.auth().get_session().await.unwrap_err();
    assert!(matches!(e, Error::SessionExpired(_)), "{e:?}");
    assert!(matches!(
        events.try_recv().unwrap(),
        SessionEvent::Expired { .. }
    ));
    assert!(b.current_session().is_none());
    // Logging in over an adopted session that expired unnoticed starts a fresh one.
    let c = server.client();
    a.auth().get_session().await.unwrap(); // renewed from a's stored login
    c.auth()
        .use_token(&a.session_token().unwrap())
        .await
        .unwrap();
    server.expire_all_sessions().await;
    let me = c
        .auth()
        .log_in(LoginId::Login(login.clone()), PASSWORD)
        .await
        .unwrap();
    assert_eq!(c.auth().get_session().await.unwrap().user_id, me.id);
    // An application session, by contrast, renews itself.
    let app = server.client();
    app.auth().create_session().await.unwrap();
    server.expire_all_sessions().await;
    assert_eq!(app.auth().get_session().await.unwrap().user_id, 0);
}
