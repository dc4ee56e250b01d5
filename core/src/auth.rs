//! Authentication (protocol reference §3): application and user sessions, sign-up, log-in
//! with login or email, log-in with an existing token, log-out, and automatic renewal of an
//! expired session.

use cubechat_wire::auth::{
    Session, SessionEnvelope, User, UserEnvelope, UserParams, UserParamsEnvelope,
};
use reqwest::Method;
use serde_json::json;
use tracing::{info, instrument};

use std::sync::Arc;

use crate::api::{Api, StoredLogin};
use crate::error::{Error, Result};
use crate::rest::{decode, Auth as Credential};

pub use crate::api::{LoginId, SessionEvent};

fn check_password(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::InvalidInput("password is empty".into()));
    }
    if password.len() > 1024 {
        return Err(Error::InvalidInput(
            "password is longer than 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Sessions and users (`client.auth()`): application and user sessions, sign-up, log-in,
/// log-out, adopting a token. A feature object over the REST session ([`Api`]); cheap to
/// clone. The user's store opens when a user session starts and closes at log-out (the
/// client's session hook).
#[derive(Clone, Debug)]
pub struct Auth {
    api: Arc<Api>,
}

impl Auth {
    /// The authentication endpoints over `api`.
    pub fn new(api: Arc<Api>) -> Self {
        Self { api }
    }
    /// Creates an application session (no user). Needed before sign-up; log-in creates one
    /// on its own when missing.
    #[instrument(skip(self))]
    pub async fn create_session(&self) -> Result<Session> {
        let session = self.api.post_session(None).await?;
        self.api.adopt(session.clone(), None);
        Ok(session)
    }

    /// Creates a user session in one call (`POST /session` with the user's credentials).
    ///
    /// The cloud answers 401 both for an unknown application and a wrong password here;
    /// that is reported as [`Error::InvalidCredentials`] unless the server names the
    /// application. Use [`Auth::log_in`] to tell the two apart.
    #[instrument(skip(self, password))]
    pub async fn create_user_session(&self, id: LoginId, password: &str) -> Result<Session> {
        id.validate()?;
        check_password(password)?;
        let login = StoredLogin {
            id,
            password: password.to_owned(),
        };
        let session = self.api.post_session(Some(&login)).await?;
        info!(user_id = session.user_id, "user session created");
        self.api.adopt(session.clone(), Some(login));
        Ok(session)
    }

    /// Signs up a new user. Uses the current session, creating an application session first
    /// when there is none. Does not log the new user in.
    #[instrument(skip(self, params))]
    pub async fn sign_up(&self, params: UserParams) -> Result<User> {
        let has_id = [&params.login, &params.email]
            .iter()
            .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()));
        if !has_id {
            return Err(Error::InvalidInput(
                "sign-up needs a login or an email".into(),
            ));
        }
        check_password(params.password.as_deref().unwrap_or_default())?;
        if self.api.session_token().is_none() {
            self.create_session().await?;
        }
        let body = json!(UserParamsEnvelope { user: params });
        let user: UserEnvelope = self
            .api
            .call(Method::POST, "users", &[], Some(&body))
            .await?;
        Ok(user.user)
    }

    /// Logs a user in on the current application session (`POST /login`), creating the
    /// application session first when there is none.
    ///
    /// Errors: [`Error::ApplicationRejected`] / [`Error::SignatureRejected`] when the
    /// application session cannot be created, [`Error::InvalidCredentials`] for a wrong
    /// login or password.
    #[instrument(skip(self, password))]
    pub async fn log_in(&self, id: LoginId, password: &str) -> Result<User> {
        id.validate()?;
        check_password(password)?;
        if self.api.session_token().is_none() {
            self.create_session().await?;
        }
        let creds = id.credentials(password);
        let body = json!(creds);
        let user: UserEnvelope = match self.api.call(Method::POST, "login", &[], Some(&body)).await
        {
            // The session under the login (e.g. an adopted token) expired and could not be
            // renewed: logging in is how the app recovers, so start from a fresh session.
            Err(Error::SessionExpired(_)) => {
                self.create_session().await?;
                self.api
                    .call(Method::POST, "login", &[], Some(&body))
                    .await?
            }
            r => r?,
        };
        let user = user.user;
        let user_id = user.id;
        {
            let mut st = self.api.state();
            if let Some(s) = st.session.as_mut() {
                s.user_id = user.id;
                s.user = Some(user.clone());
            }
            st.login = Some(StoredLogin {
                id,
                password: password.to_owned(),
            });
        }
        info!(user_id, "logged in");
        self.api.emit(SessionEvent::Started { user_id });
        Ok(user)
    }

    /// Adopts an existing session token (e.g. from the app's own backend) after checking it
    /// with `GET /session`. An expired token gives [`Error::SessionExpired`]. Such a session
    /// cannot be renewed automatically.
    #[instrument(skip(self, token))]
    pub async fn use_token(&self, token: &str) -> Result<Session> {
        let token = token.trim();
        if token.is_empty() || token.len() > 512 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidInput("token is empty or malformed".into()));
        }
        let bytes = self
            .api
            .rest()
            .send(Method::GET, "session", &[], None, Credential::Token(token))
            .await?;
        let mut session = decode::<SessionEnvelope>("session", &bytes)?.session;
        if session.token.is_empty() {
            session.token = token.to_owned();
        }
        self.api.adopt(session.clone(), None);
        Ok(session)
    }

    /// Fetches the current session from the server (`GET /session`) and refreshes the
    /// local copy.
    pub async fn get_session(&self) -> Result<Session> {
        let env: SessionEnvelope = self.api.call(Method::GET, "session", &[], None).await?;
        let mut session = env.session;
        let mut st = self.api.state();
        if session.token.is_empty() {
            if let Some(old) = &st.session {
                session.token = old.token.clone();
            }
        }
        st.session = Some(session.clone());
        Ok(session)
    }

    /// Logs the user out (`DELETE /login`); the application session stays.
    pub async fn log_out(&self) -> Result<()> {
        self.api
            .call_empty(Method::DELETE, "login", &[], None)
            .await?;
        {
            let mut st = self.api.state();
            if let Some(s) = st.session.as_mut() {
                s.user_id = 0;
                s.user = None;
            }
            st.login = None;
        }
        self.api.emit(SessionEvent::LoggedOut);
        Ok(())
    }

    /// Destroys the session (`DELETE /session`) and forgets it locally. A session the
    /// server no longer knows counts as destroyed. Calling it without a session is a no-op.
    pub async fn destroy_session(&self) -> Result<()> {
        let Some(token) = self.api.session_token() else {
            return Ok(());
        };
        match self
            .api
            .rest()
            .send(
                Method::DELETE,
                "session",
                &[],
                None,
                Credential::Token(&token),
            )
            .await
        {
            Ok(_) | Err(Error::SessionExpired(_)) => {}
            Err(e) => return Err(e),
        }
        *self.api.state() = Default::default();
        self.api.emit(SessionEvent::Destroyed);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Client;
    use crate::Config;
    use cubechat_wire::signature;
    use serde_json::Value;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    fn session_json(token: &str, user_id: u64) -> Value {
        json!({"session": {"id": 1, "user_id": user_id, "application_id": 7, "token": token, "ts": 0}})
    }

    fn client(server: &MockServer, secret: Option<&str>) -> Arc<Client> {
        let mut cfg = Config::new(7, "key-7", server.uri());
        cfg.auth_secret = secret.map(String::from);
        Client::new(cfg).unwrap()
    }

    #[tokio::test]
    async fn session_request_is_signed_verifiably() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/session.json"))
            .and(|r: &Request| {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                signature::verify(&body, "s3cret") && body["application_id"] == 7
            })
            .respond_with(ResponseTemplate::new(201).set_body_json(session_json("t1", 0)))
            .expect(1)
            .mount(&server)
            .await;
        let s = client(&server, Some("s3cret"))
            .auth()
            .create_session()
            .await
            .unwrap();
        assert_eq!(s.token, "t1");
    }

    #[tokio::test]
    async fn malformed_and_failing_answers_are_typed() {
        let server = MockServer::start().await;
        Mock::given(path("/session.json"))
            .respond_with(
                ResponseTemplate::new(201).set_body_string(r#"{"session": {"token": "leak"#),
            )
            .mount(&server)
            .await;
        let e = client(&server, None)
            .auth()
            .create_session()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Protocol(m) if !m.contains("leak")),
            "{e:?}"
        );

        let server = MockServer::start().await;
        Mock::given(path("/session.json"))
            .respond_with(ResponseTemplate::new(503).set_body_string("<html>down</html>"))
            .mount(&server)
            .await;
        let e = client(&server, None)
            .auth()
            .create_session()
            .await
            .unwrap_err();
        assert_eq!(e, Error::ServerBusy { retry_after: None });
    }

    #[tokio::test]
    async fn expired_token_renews_from_stored_login_and_retries() {
        let server = MockServer::start().await;
        // First session (app), then the user session made on renewal.
        Mock::given(method("POST"))
            .and(path("/session.json"))
            .and(|r: &Request| !String::from_utf8_lossy(&r.body).contains("\"user\""))
            .respond_with(ResponseTemplate::new(201).set_body_json(session_json("app", 0)))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/session.json"))
            .and(|r: &Request| String::from_utf8_lossy(&r.body).contains("\"user\""))
            .respond_with(ResponseTemplate::new(201).set_body_json(session_json("fresh", 5)))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/login.json"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"user": {"id": 5}})))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/session.json"))
            .and(header("CB-Token", "app"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(
                    json!({"errors": {"base": ["Required session does not exist"]}}),
                ),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/session.json"))
            .and(header("CB-Token", "fresh"))
            .respond_with(ResponseTemplate::new(200).set_body_json(session_json("fresh", 5)))
            .mount(&server)
            .await;
        let c = client(&server, None);
        c.auth()
            .log_in(LoginId::Login("bob".into()), "pw")
            .await
            .unwrap();
        let (_, mut rx) = c.subscribe_session();
        assert_eq!(c.auth().get_session().await.unwrap().user_id, 5);
        assert_eq!(c.session_token().as_deref(), Some("fresh"));
        assert_eq!(rx.try_recv().unwrap(), SessionEvent::Renewed { user_id: 5 });
    }
}
