//! Authentication (protocol reference §3): application and user sessions, sign-up, log-in
//! with login or email, log-in with an existing token, log-out, and automatic renewal of an
//! expired session.

use std::time::{SystemTime, UNIX_EPOCH};

use cubechat_wire::auth::{
    Credentials, Session, SessionEnvelope, User, UserEnvelope, UserParams, UserParamsEnvelope,
};
use cubechat_wire::signature;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::rest::{decode, Auth};

/// How a user identifies at log-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginId {
    /// The user's login name.
    Login(String),
    /// The user's e-mail address.
    Email(String),
}

/// Something that happened to the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A new session was created or adopted. `user_id` is 0 for an application session.
    Started {
        /// The logged-in user's id (0 for an application session).
        user_id: u64,
    },
    /// An expired session was replaced by a fresh one transparently.
    Renewed {
        /// The logged-in user's id (0 for an application session).
        user_id: u64,
    },
    /// The user logged out; an application session remains.
    LoggedOut,
    /// The session expired and could not be renewed: the app must log in again.
    Expired {
        /// Why the session ended (no secret).
        reason: String,
    },
    /// The session was destroyed on request.
    Destroyed,
}

/// A login kept in memory to renew an expired session. Never logged or printed.
#[derive(Clone)]
pub(crate) struct StoredLogin {
    id: LoginId,
    password: String,
}

impl std::fmt::Debug for StoredLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredLogin(<redacted>)")
    }
}

impl LoginId {
    fn validate(&self) -> Result<()> {
        match self {
            LoginId::Login(l) if l.trim().is_empty() => {
                Err(Error::InvalidInput("login is empty".into()))
            }
            LoginId::Email(e) if !e.contains('@') => {
                Err(Error::InvalidInput("email is not an e-mail address".into()))
            }
            _ => Ok(()),
        }
    }

    fn credentials(&self, password: &str) -> Credentials {
        let (login, email) = match self {
            LoginId::Login(l) => (Some(l.clone()), None),
            LoginId::Email(e) => (None, Some(e.clone())),
        };
        Credentials {
            login,
            email,
            password: Some(password.to_owned()),
        }
    }
}

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

impl Client {
    /// Builds the `POST /session` body, signed when an auth secret is configured.
    fn session_body(&self, login: Option<&StoredLogin>) -> Value {
        let mut body = json!({
            "application_id": self.cfg.app_id,
            "auth_key": self.cfg.auth_key,
        });
        if let Some(l) = login {
            body["user"] = json!(l.id.credentials(&l.password));
        }
        if let Some(secret) = &self.cfg.auth_secret {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            body["nonce"] = json!(rand::thread_rng().gen_range(1..u32::MAX));
            body["timestamp"] = json!(now);
            body["signature"] = json!(signature::sign(&body, secret));
        }
        body
    }

    /// `POST /session`, mapping 401/422 to the application, signature or credential error.
    async fn post_session(&self, login: Option<&StoredLogin>) -> Result<Session> {
        let body = self.session_body(login);
        let bytes = self
            .rest
            .send(Method::POST, "session", &[], Some(&body), Auth::None)
            .await
            .map_err(|e| match e {
                Error::InvalidCredentials(m) | Error::SessionExpired(m) => {
                    let lower = m.to_ascii_lowercase();
                    if login.is_some()
                        && !lower.contains("application")
                        && !lower.contains("auth_key")
                    {
                        Error::InvalidCredentials(m)
                    } else {
                        Error::ApplicationRejected(m)
                    }
                }
                Error::Server {
                    status: 422,
                    message,
                } if message.contains("ignature") || message.contains("imestamp") => {
                    Error::SignatureRejected(message)
                }
                Error::NotFound(m) => Error::ApplicationRejected(m),
                other => other,
            })?;
        Ok(decode::<SessionEnvelope>("session", &bytes)?.session)
    }

    fn adopt(&self, session: Session, login: Option<StoredLogin>) {
        let user_id = session.user_id;
        {
            let mut st = self.state();
            st.session = Some(session);
            st.login = login;
        }
        self.emit(SessionEvent::Started { user_id });
        self.open_store_quietly(user_id);
    }

    /// Creates an application session (no user). Needed before sign-up; log-in creates one
    /// on its own when missing.
    #[instrument(skip(self))]
    pub async fn create_session(&self) -> Result<Session> {
        let session = self.post_session(None).await?;
        self.adopt(session.clone(), None);
        Ok(session)
    }

    /// Creates a user session in one call (`POST /session` with the user's credentials).
    ///
    /// The cloud answers 401 both for an unknown application and a wrong password here;
    /// that is reported as [`Error::InvalidCredentials`] unless the server names the
    /// application. Use [`Client::log_in`] to tell the two apart.
    #[instrument(skip(self, password))]
    pub async fn create_user_session(&self, id: LoginId, password: &str) -> Result<Session> {
        id.validate()?;
        check_password(password)?;
        let login = StoredLogin {
            id,
            password: password.to_owned(),
        };
        let session = self.post_session(Some(&login)).await?;
        info!(user_id = session.user_id, "user session created");
        self.adopt(session.clone(), Some(login));
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
        if self.session_token().is_none() {
            self.create_session().await?;
        }
        let body = json!(UserParamsEnvelope { user: params });
        let user: UserEnvelope = self.call(Method::POST, "users", &[], Some(&body)).await?;
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
        if self.session_token().is_none() {
            self.create_session().await?;
        }
        let creds = id.credentials(password);
        let body = json!(creds);
        let user: UserEnvelope = match self.call(Method::POST, "login", &[], Some(&body)).await {
            // The session under the login (e.g. an adopted token) expired and could not be
            // renewed: logging in is how the app recovers, so start from a fresh session.
            Err(Error::SessionExpired(_)) => {
                self.create_session().await?;
                self.call(Method::POST, "login", &[], Some(&body)).await?
            }
            r => r?,
        };
        let user = user.user;
        let user_id = user.id;
        {
            let mut st = self.state();
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
        self.emit(SessionEvent::Started { user_id });
        self.open_store_quietly(user_id);
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
            .rest
            .send(Method::GET, "session", &[], None, Auth::Token(token))
            .await?;
        let mut session = decode::<SessionEnvelope>("session", &bytes)?.session;
        if session.token.is_empty() {
            session.token = token.to_owned();
        }
        self.adopt(session.clone(), None);
        Ok(session)
    }

    /// Fetches the current session from the server (`GET /session`) and refreshes the
    /// local copy.
    pub async fn get_session(&self) -> Result<Session> {
        let env: SessionEnvelope = self.call(Method::GET, "session", &[], None).await?;
        let mut session = env.session;
        let mut st = self.state();
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
        self.call_empty(Method::DELETE, "login", &[], None).await?;
        {
            let mut st = self.state();
            if let Some(s) = st.session.as_mut() {
                s.user_id = 0;
                s.user = None;
            }
            st.login = None;
        }
        self.close_store();
        self.emit(SessionEvent::LoggedOut);
        Ok(())
    }

    /// Destroys the session (`DELETE /session`) and forgets it locally. A session the
    /// server no longer knows counts as destroyed. Calling it without a session is a no-op.
    pub async fn destroy_session(&self) -> Result<()> {
        let Some(token) = self.session_token() else {
            return Ok(());
        };
        match self
            .rest
            .send(Method::DELETE, "session", &[], None, Auth::Token(&token))
            .await
        {
            Ok(_) | Err(Error::SessionExpired(_)) => {}
            Err(e) => return Err(e),
        }
        *self.state() = Default::default();
        self.emit(SessionEvent::Destroyed);
        Ok(())
    }

    /// A token for a chat login that the server just rejected with `stale`: the current
    /// token when the session was already replaced meanwhile, or a renewed one when a login is
    /// stored. `None` when nothing newer can be had (an adopted token, no session, or the
    /// renewal failed), so the rejection stands.
    pub(crate) async fn token_after_chat_rejection(&self, stale: &str) -> Option<String> {
        {
            let st = self.state();
            match st.session.as_ref() {
                None => return None,
                Some(s) if s.token != stale => return Some(s.token.clone()),
                Some(_) if st.login.is_none() => return None,
                Some(_) => {}
            }
        }
        self.renew_session(stale).await.ok()
    }

    /// Replaces an expired session, once, and returns the new token.
    ///
    /// Concurrent callers renew once: whoever comes second finds a token different from its
    /// stale one and uses it. A user session is re-created from the stored login; an
    /// application session is re-created as such; a session adopted from a token cannot be
    /// renewed and ends with [`SessionEvent::Expired`].
    pub(crate) async fn renew_session(&self, stale: &str) -> Result<String> {
        let _guard = self.renewal.lock().await;
        let (current, login, user_id) = {
            let st = self.state();
            let s = st.session.as_ref();
            (
                s.map(|s| s.token.clone()),
                st.login.clone(),
                s.map_or(0, |s| s.user_id),
            )
        };
        match current {
            Some(t) if t != stale => return Ok(t),
            None => return Err(Error::NotLoggedIn),
            Some(_) => {}
        }
        let outcome = match (&login, user_id) {
            (Some(l), _) => self.post_session(Some(l)).await,
            (None, 0) => self.post_session(None).await,
            (None, _) => Err(Error::SessionExpired(
                "the session token expired and no login is stored to renew it".into(),
            )),
        };
        match outcome {
            Ok(session) => {
                let token = session.token.clone();
                let user_id = session.user_id;
                self.state().session = Some(session);
                info!(user_id, "session renewed");
                self.emit(SessionEvent::Renewed { user_id });
                Ok(token)
            }
            // A network failure says nothing about the session: keep it and let the caller retry.
            Err(e @ Error::Network(_)) => Err(e),
            Err(e) => {
                let reason = e.to_string();
                warn!(%reason, "session expired and could not be renewed");
                *self.state() = Default::default();
                self.emit(SessionEvent::Expired {
                    reason: reason.clone(),
                });
                Err(Error::SessionExpired(reason))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Config;
    use serde_json::Value;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    fn session_json(token: &str, user_id: u64) -> Value {
        json!({"session": {"id": 1, "user_id": user_id, "application_id": 7, "token": token, "ts": 0}})
    }

    async fn client(server: &MockServer, secret: Option<&str>) -> std::sync::Arc<Client> {
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
            .await
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
            .await
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
            .await
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
        let c = client(&server, None).await;
        c.log_in(LoginId::Login("bob".into()), "pw").await.unwrap();
        let (_, mut rx) = c.subscribe_session();
        assert_eq!(c.get_session().await.unwrap().user_id, 5);
        assert_eq!(c.session_token().as_deref(), Some("fresh"));
        assert_eq!(rx.try_recv().unwrap(), SessionEvent::Renewed { user_id: 5 });
    }

    #[test]
    fn stored_login_debug_is_redacted() {
        let l = StoredLogin {
            id: LoginId::Login("bob".into()),
            password: "pw-123".into(),
        };
        assert!(!format!("{l:?}").contains("pw-123"));
    }
}
