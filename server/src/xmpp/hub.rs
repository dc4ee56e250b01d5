//! The [`Hub`]: who is online (bound resources, live or parked for resumption), joined MUC
//! rooms, and delivery to resources with the offline fallback. Routing decisions live in
//! `router.rs`; the per-connection protocol in `session.rs`.
//!
//! Locking: the hub's mutex is never held while the database is used, and the REST side
//! calls the hub only after its database work is committed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cubechat_wire::stanza::{self, NS_CLIENT};
use minidom::Element;
use tokio::sync::{mpsc, watch, Notify};

use super::offline;
use super::util::child;
use crate::db::{self, Db};

/// `(app_id, user_id)`.
pub type UserKey = (u64, u64);

/// How long a session cut without `</stream:stream>` waits for `<resume/>`.
pub const RESUME_WINDOW: Duration = Duration::from_secs(120);

/// How many `(id, destination)` pairs of unsaved messages are remembered per sender to drop
/// resends (see [`Hub::note_routed`]).
pub const RECENT_IDS: usize = 256;

/// One bound resource.
struct Resource {
    tx: mpsc::UnboundedSender<Element>,
    carbons: bool,
    available: bool,
    /// Tigase mobile mode on (`enable="true"`): the app is in the background (§6.10).
    inactive: bool,
    /// The XEP-0016 active list of this session (reported, not enforced).
    active_list: Option<String>,
    /// Connection cut, waiting for resumption.
    parked: bool,
}

/// Stream management state of a session (XEP-0198).
#[derive(Debug, Default)]
pub struct Sm {
    pub id: String,
    pub resumable: bool,
    /// Stanzas received from the client.
    pub inbound: u32,
    /// Stanzas sent to the client.
    pub outbound: u32,
    /// Sent and not acknowledged: `(sequence number, stanza)`.
    pub unacked: VecDeque<(u32, Element)>,
}

impl Sm {
    /// Drops everything the client acknowledged with `h`.
    pub fn ack(&mut self, h: u32) {
        while let Some((seq, _)) = self.unacked.front() {
            if (h.wrapping_sub(*seq) as i32) >= 0 {
                self.unacked.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records a stanza sent to the client.
    pub fn sent(&mut self, el: &Element) {
        self.outbound = self.outbound.wrapping_add(1);
        self.unacked.push_back((self.outbound, el.clone()));
    }
}

/// A bound session, independent of its connection (so it can be parked and resumed).
#[derive(Debug)]
pub struct SessionCore {
    pub key: UserKey,
    pub resource: String,
    /// Everything routed to this resource.
    pub rx: mpsc::UnboundedReceiver<Element>,
    pub sm: Option<Sm>,
}

struct Parked {
    core: SessionCore,
    generation: u64,
}

#[derive(Default)]
struct Inner {
    users: HashMap<UserKey, BTreeMap<String, Resource>>,
    parked: HashMap<String, Parked>,
    /// SM ids of sessions with a live connection: notified to hand the session over.
    live_sm: HashMap<String, Arc<Notify>>,
    /// Joined MUC rooms: `(app, dialog)` → full JID → user id.
    rooms: HashMap<(u64, String), BTreeMap<String, u64>>,
    /// Last-activity subscriptions (§6.9): watched user → subscribed resources.
    watchers: HashMap<UserKey, BTreeSet<(UserKey, String)>>,
    /// Per sender, the last [`RECENT_IDS`] `(message id, bare destination)` pairs routed
    /// without storage, oldest first.
    recent: HashMap<UserKey, VecDeque<(String, String)>>,
    generation: u64,
}

/// Shared by the XMPP listeners and the REST handlers (through `AppState`).
pub struct Hub {
    pub(super) db: Db,
    pub domain: String,
    inner: Mutex<Inner>,
    resume_window: Duration,
    shutdown: watch::Sender<bool>,
    /// Serialises "no available resource: store offline" against "became available: flush
    /// the offline store", so a stanza is never stored after the flush that should have
    /// taken it, nor delivered live ahead of older stored ones. Taken before `inner`; held
    /// while the offline table is used (the hub's `inner` never is).
    offline_gate: Mutex<()>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hub")
    }
}

fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Hub {
    pub fn new(db: Db, domain: &str) -> Self {
        Self::with_resume_window(db, domain, RESUME_WINDOW)
    }

    pub fn with_resume_window(db: Db, domain: &str, resume_window: Duration) -> Self {
        Self {
            db,
            domain: domain.to_owned(),
            inner: Mutex::new(Inner::default()),
            resume_window,
            shutdown: watch::channel(false).0,
            offline_gate: Mutex::new(()),
        }
    }

    pub fn resume_window(&self) -> Duration {
        self.resume_window
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn offline_gate(&self) -> MutexGuard<'_, ()> {
        self.offline_gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once [`Hub::shut_down`] was called.
    pub fn shutdown_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Tells every session and timer to stop.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn user_jid(&self, (app, uid): UserKey) -> String {
        stanza::user_jid(uid, app, &self.domain)
    }

    pub fn full_jid(&self, key: UserKey, resource: &str) -> String {
        format!("{}/{resource}", self.user_jid(key))
    }

    pub fn room_jid(&self, app: u64, dialog_id: &str) -> String {
        stanza::room_jid(app, dialog_id, &self.domain)
    }

    /// Binds a resource: the requested one if free, else a long unique server one.
    pub fn bind(&self, key: UserKey, requested: Option<&str>) -> SessionCore {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        let taken =
            |inner: &Inner, r: &str| inner.users.get(&key).is_some_and(|m| m.contains_key(r));
        let resource = match requested.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) if !taken(&inner, r) => r.to_owned(),
            _ => loop {
                let r = format!("{}-cubeserver-{}", db::now(), random_hex(6));
                if !taken(&inner, &r) {
                    break r;
                }
            },
        };
        let first = inner.users.get(&key).is_none_or(|m| m.is_empty());
        inner.users.entry(key).or_default().insert(
            resource.clone(),
            Resource {
                tx,
                carbons: false,
                available: false,
                inactive: false,
                active_list: None,
                parked: false,
            },
        );
        drop(inner);
        if first {
            self.notify_watchers(key, 0);
        }
        SessionCore {
            key,
            resource,
            rx,
            sm: None,
        }
    }

    /// Records a live SM session; the returned notify asks its connection to hand it over.
    pub fn sm_live(&self, id: &str) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        self.lock().live_sm.insert(id.to_owned(), n.clone());
        n
    }

    fn sm_gone(&self, id: &str) {
        self.lock().live_sm.remove(id);
    }

    pub fn set_carbons(&self, key: UserKey, resource: &str, on: bool) {
        if let Some(r) = self
            .lock()
            .users
            .get_mut(&key)
            .and_then(|m| m.get_mut(resource))
        {
            r.carbons = on;
        }
    }

    pub fn carbons_enabled(&self, key: UserKey, resource: &str) -> bool {
        self.lock()
            .users
            .get(&key)
            .and_then(|m| m.get(resource))
            .is_some_and(|r| r.carbons)
    }

    /// Sets availability; true when the resource just became available.
    pub fn set_available(&self, key: UserKey, resource: &str, on: bool) -> bool {
        let mut inner = self.lock();
        match inner.users.get_mut(&key).and_then(|m| m.get_mut(resource)) {
            Some(r) => {
                let was = r.available;
                r.available = on;
                on && !was
            }
            None => false,
        }
    }

    /// Initial (or unavailable) presence of a resource without `to`. When the resource just
    /// became available, the user's offline stanzas are taken and queued to it, oldest
    /// first, before any live stanza routed after this call (see [`Hub::deliver_user`]).
    /// Returns how many stored stanzas were flushed.
    pub fn presence_changed(&self, key: UserKey, resource: &str, available: bool) -> usize {
        let _gate = self.offline_gate();
        if !self.set_available(key, resource, available) {
            return 0;
        }
        let stored = self.take_offline(key);
        let n = stored.len();
        for m in stored {
            self.send_to(key, resource, m);
        }
        n
    }

    /// Available resources of a user: bound and initial presence sent (parked ones
    /// included: what they get waits for resumption).
    pub fn available_resources(&self, key: UserKey) -> Vec<String> {
        self.lock()
            .users
            .get(&key)
            .map(|m| {
                m.iter()
                    .filter(|(_, r)| r.available)
                    .map(|(res, _)| res.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Resource names of a user (live or parked).
    pub fn resources(&self, key: UserKey) -> Vec<String> {
        self.lock()
            .users
            .get(&key)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the user has any bound resource.
    pub fn is_online(&self, key: UserKey) -> bool {
        self.lock().users.get(&key).is_some_and(|m| !m.is_empty())
    }

    /// Online users of an application.
    pub fn online_users(&self, app: u64) -> Vec<u64> {
        self.lock()
            .users
            .iter()
            .filter(|((a, _), m)| *a == app && !m.is_empty())
            .map(|((_, u), _)| *u)
            .collect()
    }

    /// Sends to one resource if it is available (see [`Hub::deliver_user`]); false when it
    /// is not bound or has not sent its initial presence.
    pub fn deliver_available(&self, key: UserKey, resource: &str, el: Element) -> bool {
        let _gate = self.offline_gate();
        self.lock()
            .users
            .get(&key)
            .and_then(|m| m.get(resource))
            .is_some_and(|r| r.available && r.tx.send(el).is_ok())
    }

    /// Sends to one resource; false when it is not bound.
    pub fn send_to(&self, key: UserKey, resource: &str, el: Element) -> bool {
        self.lock()
            .users
            .get(&key)
            .and_then(|m| m.get(resource))
            .is_some_and(|r| r.tx.send(el).is_ok())
    }

    /// Sends a copy to every resource of the user except `except`, addressed with `to` set
    /// to the resource's full JID when `readdress`. Returns how many got it.
    pub fn send_to_user(
        &self,
        key: UserKey,
        el: &Element,
        except: Option<&str>,
        readdress: bool,
        carbons_only: bool,
    ) -> usize {
        let jid = self.user_jid(key);
        let inner = self.lock();
        let Some(m) = inner.users.get(&key) else {
            return 0;
        };
        let mut n = 0;
        for (res, r) in m {
            if Some(res.as_str()) == except || (carbons_only && !r.carbons) {
                continue;
            }
            let mut copy = el.clone();
            if readdress {
                super::util::set_attr(&mut copy, "to", &format!("{jid}/{res}"));
            }
            if r.tx.send(copy).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Sent carbons (XEP-0280) of `msg` to the sender's other carbon-enabled resources.
    pub fn sent_carbons(&self, key: UserKey, except: Option<&str>, msg: &Element) {
        let bare = self.user_jid(key);
        let targets: Vec<String> = {
            let inner = self.lock();
            inner
                .users
                .get(&key)
                .map(|m| {
                    m.iter()
                        .filter(|(res, r)| r.carbons && Some(res.as_str()) != except)
                        .map(|(res, _)| res.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        for res in targets {
            let c = stanza::carbon(msg, true, &format!("{bare}/{res}"), &bare);
            self.send_to(key, &res, c);
        }
    }

    /// Remembers that `sender` routed message `id` to `to` (a bare JID); `false` when it
    /// already did among its last [`RECENT_IDS`] such messages: a resend (after a lost
    /// stream-management ack or a client restart) that must not be delivered again.
    /// Only for messages without `save_to_history`; stored ones are checked in the database.
    pub fn note_routed(&self, sender: UserKey, id: &str, to: &str) -> bool {
        let mut inner = self.lock();
        let seen = inner.recent.entry(sender).or_default();
        if seen.iter().any(|(i, t)| i == id && t == to) {
            return false;
        }
        if seen.len() >= RECENT_IDS {
            seen.pop_front();
        }
        seen.push_back((id.to_owned(), to.to_owned()));
        true
    }

    /// Delivers to every *available* resource of the user (keeping `to`). A resource that
    /// is bound but has not sent its initial presence gets nothing: with no available
    /// resource the stanza is stored for offline delivery when `offline` (else dropped), and
    /// the initial presence flushes it after the older stored ones
    /// ([`Hub::presence_changed`]). Returns the number of resources reached.
    pub fn deliver_user(&self, key: UserKey, el: &Element, offline: bool) -> usize {
        let _gate = self.offline_gate();
        let n = {
            let inner = self.lock();
            inner.users.get(&key).map_or(0, |m| {
                m.values()
                    .filter(|r| r.available && r.tx.send(el.clone()).is_ok())
                    .count()
            })
        };
        if n == 0 && offline {
            self.store_offline(key, el);
        }
        n
    }

    pub fn store_offline(&self, (app, uid): UserKey, el: &Element) {
        let text = String::from(el);
        if let Err(e) = self
            .db
            .with(|c| offline::store(c, app, uid, &text, db::now()))
        {
            tracing::warn!(error = %e, "offline storage failed");
        }
    }

    /// Offline stanzas of the user, removed from storage, each with a `<delay>`.
    pub fn take_offline(&self, (app, uid): UserKey) -> Vec<Element> {
        let rows = match self.db.with(|c| offline::take_all(c, app, uid)) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading offline storage failed");
                return Vec::new();
            }
        };
        rows.into_iter()
            .filter_map(|(text, at)| {
                let mut el: Element = text.parse().ok()?;
                if child(&el, "delay").is_none() {
                    el.append_child(stanza::delay(at, &self.domain));
                }
                Some(el)
            })
            .collect()
    }

    /// Parks a session whose connection was cut, for [`Hub::resume`]; it expires after the
    /// resume window.
    pub fn park(self: &Arc<Self>, core: SessionCore) {
        let Some(id) = core.sm.as_ref().map(|s| s.id.clone()) else {
            self.end(core);
            return;
        };
        let generation = {
            let mut inner = self.lock();
            inner.generation += 1;
            let g = inner.generation;
            inner.live_sm.remove(&id);
            if let Some(r) = inner
                .users
                .get_mut(&core.key)
                .and_then(|m| m.get_mut(&core.resource))
            {
                r.parked = true;
            }
            inner.parked.insert(
                id.clone(),
                Parked {
                    core,
                    generation: g,
                },
            );
            g
        };
        let hub = self.clone();
        let window = self.resume_window;
        let stop = self.shutdown_signal();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(window) => {}
                () = stop => {}
            }
            let expired = {
                let mut inner = hub.lock();
                match inner.parked.get(&id) {
                    Some(p) if p.generation == generation => inner.parked.remove(&id),
                    _ => None,
                }
            };
            if let Some(p) = expired {
                tracing::debug!(sm = %id, "parked session expired");
                hub.end(p.core);
            }
        });
    }

    /// Takes a parked session of `key` for resumption. A session whose connection is still
    /// open is asked to hand over first (waits a little).
    pub async fn resume(&self, id: &str, key: UserKey) -> Option<SessionCore> {
        for _ in 0..40 {
            {
                let mut inner = self.lock();
                if let Some(p) = inner.parked.get(id) {
                    if p.core.key != key {
                        return None;
                    }
                    let core = inner.parked.remove(id).map(|p| p.core);
                    if let Some(c) = &core {
                        if let Some(r) = inner
                            .users
                            .get_mut(&c.key)
                            .and_then(|m| m.get_mut(&c.resource))
                        {
                            r.parked = false;
                        }
                    }
                    return core;
                }
                match inner.live_sm.get(id) {
                    Some(n) => n.notify_one(),
                    None => return None,
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Ends a session for good: leaves rooms, unbinds, and stores its undelivered 1-1
    /// stanzas offline when the user has no other available resource (those got them too).
    pub fn end(&self, mut core: SessionCore) {
        if let Some(sm) = &core.sm {
            self.sm_gone(&sm.id);
        }
        let full = self.full_jid(core.key, &core.resource);
        let (rooms_left, logged_out) = {
            let mut inner = self.lock();
            let mut logged_out = false;
            if let Some(m) = inner.users.get_mut(&core.key) {
                m.remove(&core.resource);
                if m.is_empty() {
                    inner.users.remove(&core.key);
                    logged_out = true;
                }
            }
            let me = (core.key, core.resource.clone());
            for subs in inner.watchers.values_mut() {
                subs.remove(&me);
            }
            inner.watchers.retain(|_, s| !s.is_empty());
            let mut left = Vec::new();
            for ((app, dialog), occupants) in inner.rooms.iter_mut() {
                if occupants.remove(&full).is_some() {
                    left.push((*app, dialog.clone(), occupants.clone()));
                }
            }
            inner.rooms.retain(|_, o| !o.is_empty());
            (left, logged_out)
        };
        if logged_out {
            let (app, uid) = core.key;
            let now = db::now();
            if let Err(e) = self.db.with(|c| db::activity::set_logout(c, app, uid, now)) {
                tracing::warn!(error = %e, "recording the logout time failed");
            }
            self.notify_watchers(core.key, 1);
        }
        for (app, dialog, others) in rooms_left {
            let from = format!("{}/{}", self.room_jid(app, &dialog), core.key.1);
            for (jid, uid) in others {
                let p = super::router::occupant_presence(&from, &jid, true);
                self.deliver_full(&jid, uid, app, p);
            }
        }
        let mut pending: Vec<Element> = core
            .sm
            .take()
            .map(|s| s.unacked.into_iter().map(|(_, e)| e).collect())
            .unwrap_or_default();
        core.rx.close();
        while let Ok(el) = core.rx.try_recv() {
            pending.push(el);
        }
        let _gate = self.offline_gate();
        if !self.available_resources(core.key).is_empty() {
            return;
        }
        for el in pending.iter().filter(|e| offline_worthy(e)) {
            self.store_offline(core.key, el);
        }
    }

    fn deliver_full(&self, full: &str, uid: u64, app: u64, el: Element) {
        if let Some((_, res)) = full.split_once('/') {
            self.send_to((app, uid), res, el);
        }
    }

    // --- MUC occupancy -------------------------------------------------------------------

    /// Joins; returns the other joined occupants `(full JID, user id)` before the join.
    pub fn join_room(&self, app: u64, dialog: &str, full: &str, uid: u64) -> Vec<(String, u64)> {
        let mut inner = self.lock();
        let room = inner.rooms.entry((app, dialog.to_owned())).or_default();
        let others = room
            .iter()
            .filter(|(j, _)| j.as_str() != full)
            .map(|(j, u)| (j.clone(), *u))
            .collect();
        room.insert(full.to_owned(), uid);
        others
    }

    /// Leaves; returns the remaining occupants.
    pub fn leave_room(&self, app: u64, dialog: &str, full: &str) -> Vec<(String, u64)> {
        let mut inner = self.lock();
        let key = (app, dialog.to_owned());
        let Some(room) = inner.rooms.get_mut(&key) else {
            return Vec::new();
        };
        room.remove(full);
        let rest = room.iter().map(|(j, u)| (j.clone(), *u)).collect();
        if room.is_empty() {
            inner.rooms.remove(&key);
        }
        rest
    }

    /// Removes every joined resource of `uid` from a room; returns `(their full JIDs, the
    /// remaining occupants)`.
    pub fn remove_from_room(
        &self,
        app: u64,
        dialog: &str,
        uid: u64,
    ) -> (Vec<String>, Vec<(String, u64)>) {
        let mut inner = self.lock();
        let key = (app, dialog.to_owned());
        let Some(room) = inner.rooms.get_mut(&key) else {
            return (Vec::new(), Vec::new());
        };
        let removed: Vec<String> = room
            .iter()
            .filter(|(_, u)| **u == uid)
            .map(|(j, _)| j.clone())
            .collect();
        for j in &removed {
            room.remove(j);
        }
        let rest = room.iter().map(|(j, u)| (j.clone(), *u)).collect();
        if room.is_empty() {
            inner.rooms.remove(&key);
        }
        (removed, rest)
    }

    pub(super) fn send_presence_to(&self, app: u64, full: &str, uid: u64, el: Element) {
        self.deliver_full(full, uid, app, el);
    }

    // --- activity: mobile mode, last activity, pushes ----------------------------------------

    /// Tigase mobile mode (§6.10): `inactive` = the app is in the background.
    pub fn set_inactive(&self, key: UserKey, resource: &str, inactive: bool) {
        if let Some(r) = self
            .lock()
            .users
            .get_mut(&key)
            .and_then(|m| m.get_mut(resource))
        {
            r.inactive = inactive;
        }
    }

    pub fn set_active_list(&self, key: UserKey, resource: &str, name: Option<&str>) {
        if let Some(r) = self
            .lock()
            .users
            .get_mut(&key)
            .and_then(|m| m.get_mut(resource))
        {
            r.active_list = name.map(str::to_owned);
        }
    }

    pub fn active_list(&self, key: UserKey, resource: &str) -> Option<String> {
        self.lock()
            .users
            .get(&key)
            .and_then(|m| m.get(resource))
            .and_then(|r| r.active_list.clone())
    }

    /// Whether a message to the user should produce a push: nobody online, or every
    /// resource inactive (mobile mode) or cut off and waiting for resumption.
    pub fn wants_push(&self, key: UserKey) -> bool {
        self.lock()
            .users
            .get(&key)
            .is_none_or(|m| m.values().all(|r| r.inactive || r.parked))
    }

    /// XEP-0012 seconds for a user: 0 while any resource is bound, else the time since the
    /// last logout (at least 1, so that 0 always means online; a user who never logged in
    /// counts from the account's creation).
    pub fn last_activity_seconds(&self, (app, uid): UserKey) -> Result<Option<u64>, db::DbError> {
        if self.is_online((app, uid)) {
            return Ok(Some(0));
        }
        let (user, logout) = self.db.with(|c| {
            Ok((
                db::users::find(c, app, uid)?,
                db::activity::logout_at(c, app, uid)?,
            ))
        })?;
        let Some(user) = user else {
            return Ok(None);
        };
        let since = logout.unwrap_or(user.created_at.div_euclid(1000));
        Ok(Some(u64::try_from(db::now() - since).unwrap_or(0).max(1)))
    }

    /// Subscribes (or unsubscribes) a resource to a user's login/logout events.
    pub fn watch(&self, watcher: UserKey, resource: &str, watched: UserKey, on: bool) {
        let mut inner = self.lock();
        let me = (watcher, resource.to_owned());
        if on {
            inner.watchers.entry(watched).or_default().insert(me);
        } else if let Some(s) = inner.watchers.get_mut(&watched) {
            s.remove(&me);
            if s.is_empty() {
                inner.watchers.remove(&watched);
            }
        }
    }

    /// The last-activity event (§6.9) to every subscribed resource: `type="result"` with a
    /// fresh id, so xmpp.js does not answer it with an error echo.
    fn notify_watchers(&self, watched: UserKey, seconds: u64) {
        let subs: Vec<(UserKey, String)> = self
            .lock()
            .watchers
            .get(&watched)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let from = self.user_jid(watched);
        for (key, res) in subs {
            let to = self.full_jid(key, &res);
            let id = format!("{}:lastActivity", db::object_id());
            let mut iq = Element::builder("iq", NS_CLIENT).build();
            for (k, v) in [
                ("type", "result"),
                ("id", &id),
                ("from", &from),
                ("to", &to),
            ] {
                super::util::set_attr(&mut iq, k, v);
            }
            iq.append_child(stanza::last_activity(seconds));
            self.send_to(key, &res, iq);
        }
    }
}

/// Stanzas worth keeping for an offline user: 1-1 content, edits, deletes, reactions and
/// system messages (not typing, markers, presences or iqs).
pub fn offline_worthy(el: &Element) -> bool {
    if el.name() != "message" || el.ns() != NS_CLIENT {
        return false;
    }
    if !matches!(el.attr("type"), Some("chat" | "headline" | "normal") | None) {
        return false;
    }
    if el.attr("type").is_none() && child(el, "body").is_none() {
        // carbons and other wrappers
        return false;
    }
    let r = stanza::classify(el);
    !matches!(
        r.what,
        stanza::Incoming::Typing { .. }
            | stanza::Incoming::Marker { .. }
            | stanza::Incoming::Error { .. }
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hub() -> Arc<Hub> {
        Arc::new(Hub::with_resume_window(
            Db::open(":memory:").unwrap(),
            "chat",
            Duration::from_millis(50),
        ))
    }

    fn msg(body: &str) -> Element {
        stanza::chat_message(
            stanza::ChatKind::Chat,
            "m1",
            "5-1@chat",
            body,
            &stanza::ExtraParams::default(),
        )
    }

    #[test]
    fn note_routed_is_per_sender_and_destination_and_bounded() {
        let hub = hub();
        assert!(hub.note_routed((1, 5), "m1", "6-1@chat"));
        assert!(!hub.note_routed((1, 5), "m1", "6-1@chat"), "a resend");
        assert!(
            hub.note_routed((1, 5), "m1", "7-1@chat"),
            "another destination"
        );
        assert!(hub.note_routed((1, 8), "m1", "6-1@chat"), "another sender");
        for i in 0..RECENT_IDS {
            assert!(hub.note_routed((1, 5), &format!("n{i}"), "6-1@chat"));
        }
        assert!(hub.note_routed((1, 5), "m1", "6-1@chat"), "forgotten");
    }

    #[test]
    fn sm_ack_trims() {
        let mut sm = Sm::default();
        for _ in 0..3 {
            sm.sent(&msg("x"));
        }
        sm.ack(2);
        assert_eq!(sm.unacked.len(), 1);
        assert_eq!(sm.unacked[0].0, 3);
        sm.ack(1);
        assert_eq!(sm.unacked.len(), 1);
    }

    #[tokio::test]
    async fn bind_is_unique_and_delivers() {
        let hub = hub();
        let mut a = hub.bind((1, 5), Some("phone"));
        let b = hub.bind((1, 5), Some("phone"));
        assert_eq!(
            hub.deliver_user((1, 5), &msg("early"), true),
            0,
            "no presence yet"
        );
        assert_eq!(hub.presence_changed((1, 5), &a.resource, true), 1);
        assert_eq!(hub.presence_changed((1, 5), &b.resource, true), 0);
        assert_eq!(
            child(&a.rx.try_recv().unwrap(), "body").unwrap().text(),
            "early"
        );
        assert_eq!(a.resource, "phone");
        assert_ne!(b.resource, "phone");
        assert!(b.resource.contains("-cubeserver-"));
        assert_eq!(hub.deliver_user((1, 5), &msg("hi"), true), 2);
        assert!(a.rx.try_recv().is_ok());
        hub.end(b);
        hub.end(a);
        assert!(!hub.is_online((1, 5)));
        assert_eq!(hub.deliver_user((1, 5), &msg("later"), true), 0);
        let stored = hub.take_offline((1, 5));
        assert_eq!(stored.len(), 1);
        assert!(child(&stored[0], "delay").is_some());
        assert!(hub.take_offline((1, 5)).is_empty());
    }

    #[tokio::test]
    async fn parked_session_expires_into_offline_storage() {
        let hub = hub();
        let mut core = hub.bind((1, 6), None);
        hub.presence_changed((1, 6), &core.resource, true);
        let mut sm = Sm {
            id: "s1".into(),
            resumable: true,
            ..Sm::default()
        };
        sm.sent(&msg("unacked"));
        core.sm = Some(sm);
        hub.park(core);
        hub.deliver_user((1, 6), &msg("queued"), true);
        let typing = stanza::typing(stanza::ChatKind::Chat, "6-1@chat", true, None);
        hub.deliver_user((1, 6), &typing, true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(hub.resume("s1", (1, 6)).await.is_none());
        let stored = hub.take_offline((1, 6));
        let bodies: Vec<String> = stored
            .iter()
            .map(|e| child(e, "body").unwrap().text())
            .collect();
        assert_eq!(bodies, ["unacked", "queued"]);
    }

    #[tokio::test]
    async fn parked_session_resumes_with_its_queue() {
        let hub = hub();
        let mut core = hub.bind((1, 7), None);
        hub.presence_changed((1, 7), &core.resource, true);
        core.sm = Some(Sm {
            id: "s2".into(),
            resumable: true,
            ..Sm::default()
        });
        hub.park(core);
        hub.deliver_user((1, 7), &msg("while parked"), true);
        assert!(hub.resume("s2", (1, 8)).await.is_none(), "other user");
        let mut core = hub.resume("s2", (1, 7)).await.unwrap();
        assert!(core.rx.try_recv().is_ok());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(hub.is_online((1, 7)), "a resumed session does not expire");
        hub.end(core);
    }
}
