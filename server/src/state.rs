//! [`AppState`]: what every handler (and the XMPP hub) shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{AppConfig, Config};
use crate::db::Db;
use crate::xmpp::Hub;

/// The configured applications, by id.
#[derive(Debug, Default)]
pub struct Apps {
    by_id: BTreeMap<u64, AppConfig>,
}

impl Apps {
    pub fn new(apps: impl IntoIterator<Item = AppConfig>) -> Self {
        Self {
            by_id: apps.into_iter().map(|a| (a.id, a)).collect(),
        }
    }

    pub fn get(&self, id: u64) -> Option<&AppConfig> {
        self.by_id.get(&id)
    }

    /// The application with this auth key (the lowest id if several share it).
    pub fn by_auth_key(&self, auth_key: &str) -> Option<&AppConfig> {
        self.by_id.values().find(|a| a.auth_key == auth_key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &AppConfig> {
        self.by_id.values()
    }
}

/// Runtime settings derived from [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Session lifetime in seconds.
    pub session_ttl: i64,
    /// The chat (JID) domain.
    pub chat_domain: String,
}

/// Shared by all handlers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Db,
    pub apps: Arc<Apps>,
    pub settings: Arc<Settings>,
    /// XMPP routing: the REST handlers push through it (a no-op when nobody is connected
    /// besides offline storage).
    pub xmpp: Arc<Hub>,
}

impl AppState {
    pub fn new(db: Db, config: &Config) -> Self {
        Self {
            xmpp: Arc::new(Hub::new(db.clone(), config.chat_domain())),
            db,
            apps: Arc::new(Apps::new(config.effective_apps())),
            settings: Arc::new(Settings {
                session_ttl: i64::try_from(config.session_ttl).unwrap_or(i64::MAX),
                chat_domain: config.chat_domain().to_owned(),
            }),
        }
    }
}
