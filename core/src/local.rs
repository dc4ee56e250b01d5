//! Offline-first chat: the local store put to work.
//!
//! - **Live views**: [`Timeline::watch_dialogs`] (the dialog list by last activity) and
//!   [`Timeline::watch_timeline`] (one dialog's messages) answer from the store at once, then
//!   report every change by position ([`DialogsEvent`], [`TimelineEvent`]: a
//!   [`VectorDiff`]) as real-time events, syncs and the app's own actions change the store.
//!   Every store write that a view may show takes the views lock first and
//!   re-reads the windows of the views it touches under it, so a change is in a snapshot or
//!   in a diff after it, never both and never neither.
//! - **Sync**: on every (re)connection, and when the dialog list is watched,
//!   [`Timeline::sync_local`] fetches the dialogs updated since the last sync
//!   (`updated_at[gte]`) and, for dialogs with cached messages, the messages sent since
//!   (`date_sent[gte]`): the gaps of the time offline. The cache of each dialog stays one
//!   contiguous stretch of history ending now; [`Timeline::load_older`] extends it backwards
//!   from the store, then from the server (`date_sent[lte]`).
//! - **Send queue**: the one way a chat message goes out. [`SendQueue::send_message`] and
//!   [`SendQueue::enqueue_message`] write the message (its local echo, shown in its timeline at
//!   once) and its outbox row in one transaction before anything is sent (on disk before it
//!   leaves: synced at once while offline, by the one commit that hands its burst over while
//!   connected); a worker drains the outbox in order whenever chat is connected (again after
//!   a restart: rows still "in flight" are sent again with the same id, and the server drops
//!   repeats). Files of queued messages upload first. `Sent`, `Failed`, delivered and read events move the message's
//!   [`MessageState`]; a [`Sending`] (what `send_message` returns) resolves with the first
//!   of `Sent` or a failure.
//!
//! One `Local` per logged-in user; its two tasks (event applier, queue worker) hold the
//! client weakly and stop when the client or the store is closed.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::chat::{DialogObserver, Filter, FilterOp, ListParams};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::storage::{NewUpload, UploadSource};
use crate::store::{
    LocalMessage, MessageState, OutboxItem, OutboxKind, Payload, QueuedFile, Store,
};
use crate::stream::{self, EventSink, EventStream};
use crate::view::{diff, VectorDiff};
use crate::xmpp::{
    new_id, now_unix, ChatEvent, ConnectionState, ConnectionStates, OutgoingMessage,
};
use cubechat_wire::chat::{Attachment, Dialog};

/// Dialog pages fetched by one sync (of 100 each).
const SYNC_DIALOG_PAGES: u32 = 100;
/// Message pages fetched per dialog by one sync (of 100 each); past that the older cache of
/// that dialog is dropped so it stays contiguous.
const SYNC_MESSAGE_PAGES: u32 = 10;
const PAGE: u32 = 100;
/// A sync starts this many seconds before the previous one did (clock skew, same-second
/// writes); repeats are dropped by id.
const SYNC_SLACK: i64 = 10;
/// A message whose send was lost with its connection this many times is failed.
const MAX_ATTEMPTS: u32 = 10;
/// Pause before the queue tries again after a transient upload error.
const RETRY_PAUSE: Duration = Duration::from_secs(5);
const CURSOR_SYNCED: &str = "synced_at";
/// At most this many chat events already queued are applied together (one store
/// transaction per run of messages or acknowledgements).
const BURST: usize = 256;

/// A change of the live dialog list ([`Timeline::watch_dialogs`]), by position. The list is
/// ordered by last activity, newest first (as [`Timeline::dialogs_page`]).
pub type DialogsEvent = VectorDiff<Dialog>;

/// A change of one dialog's live timeline ([`Timeline::watch_timeline`]), by position. The
/// list is ordered by `(date_sent, seq)`, oldest first: `seq` is the store's order of
/// arrival, so this user's unsent messages (local echoes) keep their send order.
pub type TimelineEvent = VectorDiff<LocalMessage>;

/// One live view: what its subscriber has been told it shows, and which part of the list
/// it covers (from `bound` on; `None` = all of it).
struct View<T, B> {
    tx: EventSink<VectorDiff<T>>,
    bound: Option<B>,
    shown: Vec<T>,
}

/// A live dialog list; bound: the `(activity, id)` of the last dialog of a full first page.
type DialogsView = View<Dialog, (i64, String)>;
/// A live timeline; bound: the `(date_sent, seq)` of the oldest message of the snapshot.
type TimelineView = View<LocalMessage, (i64, i64)>;

/// The live views of one store.
#[derive(Default)]
struct Subs {
    dialogs: Vec<DialogsView>,
    /// Per dialog.
    timelines: HashMap<String, Vec<TimelineView>>,
}

/// A message [`SendQueue::send_message`] wrote to the store and the send queue (its local echo is
/// in its timeline). Await it for the outcome: the message id once the server acknowledged
/// the message (state `Sent`), or why it was not (see `send_message`). Dropping it does not
/// cancel the send.
pub struct Sending {
    message: LocalMessage,
    outcome: oneshot::Receiver<Result<()>>,
    states: ConnectionStates,
}

impl Sending {
    /// The local echo as stored (state `Queued`, with its final id and `seq`).
    pub fn message(&self) -> &LocalMessage {
        &self.message
    }

    /// The message id (also the stanza id on the wire).
    pub fn id(&self) -> &str {
        &self.message.id
    }
}

impl fmt::Debug for Sending {
    // Without the body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sending")
            .field("id", &self.message.id)
            .field("dialog_id", &self.message.dialog_id)
            .finish_non_exhaustive()
    }
}

impl IntoFuture for Sending {
    type Output = Result<String>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let Sending {
            message,
            mut outcome,
            mut states,
        } = self;
        Box::pin(async move {
            loop {
                tokio::select! {
                    biased;
                    r = &mut outcome => {
                        return match r {
                            Ok(Ok(())) => Ok(message.id),
                            Ok(Err(e)) => Err(e),
                            // The store was closed; the message stays in its queue.
                            Err(_) => Err(Error::Cancelled),
                        };
                    }
                    st = states.recv() => match st {
                        Some(st) if !stopped(&st) => {}
                        // Chat stopped (or the client is gone): the message stays queued.
                        _ => return Err(Error::ChatNotConnected),
                    },
                }
            }
        })
    }
}

/// Chat is neither connected nor on its way there: only the app can start it again.
fn stopped(s: &ConnectionState) -> bool {
    matches!(
        s,
        ConnectionState::Idle | ConnectionState::Disconnected { .. } | ConnectionState::AuthFailed
    )
}

/// The offline-first state of one user: the store, live-view subscribers and the tasks.
pub(crate) struct Local {
    pub(crate) store: Arc<Store>,
    pub(crate) user_id: u64,
    views: Mutex<Subs>,
    /// Wakes the queue worker (a stored permit: no wake-up is lost).
    wake: Notify,
    /// The [`Sending`]s waiting for their message's outcome, by message id.
    sending: Mutex<HashMap<String, oneshot::Sender<Result<()>>>>,
    /// One sync at a time.
    syncing: tokio::sync::Mutex<()>,
    /// Dialogs being fetched in the background (one fetch at a time per dialog): `true` =
    /// asked for again meanwhile, so fetched once more when the fetch ends.
    refreshing: Mutex<HashMap<String, bool>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Live views of single users ([`crate::users::Users::watch`]), by user id. Held from
    /// a users write in the store to its events, and while a view takes its snapshot.
    pub(crate) user_views: Mutex<HashMap<u64, Vec<EventSink<cubechat_wire::auth::User>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Local {
    fn new(store: Store, user_id: u64) -> Self {
        Self {
            store: Arc::new(store),
            user_id,
            views: Mutex::default(),
            wake: Notify::new(),
            sending: Mutex::default(),
            syncing: tokio::sync::Mutex::new(()),
            refreshing: Mutex::default(),
            user_views: Mutex::default(),
            tasks: Mutex::default(),
        }
    }

    /// Stops the tasks; subscribers see their channels close.
    pub(crate) fn close(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        *lock(&self.views) = Subs::default();
        lock(&self.user_views).clear();
        // Their `Sending`s resolve with `Cancelled` (the messages stay in the store's queue).
        lock(&self.sending).clear();
    }

    /// Resolves the [`Sending`] of a message, if one waits.
    fn settle(&self, message_id: &str, outcome: Result<()>) {
        if let Some(tx) = lock(&self.sending).remove(message_id) {
            let _ = tx.send(outcome);
        }
    }

    /// The live views, locked. Take it *before* a store write whose result they are told,
    /// and keep it until they are: the `watch_*` calls read their snapshot under the same
    /// lock, so a change is either in a snapshot or told after it, never both and never
    /// neither. One lock for the dialog list and the timelines.
    fn views(&self) -> Views<'_> {
        Views {
            subs: lock(&self.views),
            store: &self.store,
        }
    }
}

/// The live views, locked (see [`Local::views`]). Each told change re-reads the windows
/// of the views it may touch and sends each the positional diff from what it showed.
struct Views<'a> {
    subs: MutexGuard<'a, Subs>,
    store: &'a Store,
}

impl Views<'_> {
    /// Tells the timelines of `dialog_id` whatever changed in the store.
    fn timeline(&mut self, dialog_id: &str) {
        let store = self.store;
        let Some(list) = self.subs.timelines.get_mut(dialog_id) else {
            return;
        };
        list.retain_mut(|v| {
            refresh(
                v,
                |b| store.timeline_from(dialog_id, b.copied()),
                |m| m.id.clone(),
            )
        });
        if list.is_empty() {
            self.subs.timelines.remove(dialog_id);
        }
    }

    /// Tells the dialog lists whatever changed in the store.
    fn dialogs(&mut self) {
        let store = self.store;
        self.subs.dialogs.retain_mut(|v| {
            refresh(
                v,
                |b| store.dialogs_upto(b.map(|(a, id)| (*a, id.as_str()))),
                |d| d.id.clone(),
            )
        });
    }

    /// Tells the timelines of the dialogs of `msgs` (written: new ones added, known ones
    /// updated).
    fn messages(&mut self, msgs: &[LocalMessage]) {
        let mut seen: Vec<&str> = Vec::new();
        for m in msgs {
            if !seen.contains(&m.dialog_id.as_str()) {
                seen.push(&m.dialog_id);
                self.timeline(&m.dialog_id);
            }
        }
    }

    fn updated(&mut self, m: Option<LocalMessage>) {
        if let Some(m) = m {
            self.timeline(&m.dialog_id);
        }
    }

    fn removed(&mut self, dialog_id: &str) {
        self.timeline(dialog_id);
    }

    fn dialog_changed(&mut self, d: Option<Dialog>) {
        if d.is_some() {
            self.dialogs();
        }
    }
}

/// Re-reads one view's window and sends the diff; `false` = the subscriber is gone.
fn refresh<T: Clone + PartialEq, B>(
    v: &mut View<T, B>,
    read: impl FnOnce(Option<&B>) -> Result<Vec<T>>,
    id: impl Fn(&T) -> String,
) -> bool {
    if v.tx.is_closed() {
        return false;
    }
    match read(v.bound.as_ref()) {
        Ok(now) => {
            for d in diff(&v.shown, &now, id) {
                if v.tx.send(d).is_err() {
                    return false;
                }
            }
            v.shown = now;
        }
        // The view keeps what it showed; the next change is told from there.
        Err(e) => warn!(target: "cubechat_core::store", error = %e, "a live view was not updated"),
    }
    true
}

/// Store file of a user: `{dir}/cubechat-{app}-{user}.sqlite3`.
pub(crate) fn store_file(dir: &Path, app_id: u64, user_id: u64) -> PathBuf {
    dir.join(format!("cubechat-{app_id}-{user_id}.sqlite3"))
}

fn chat_message_to_local(m: crate::xmpp::ChatMessage, me: u64) -> Option<LocalMessage> {
    let dialog_id = m.dialog_id?;
    let outgoing = m.sender_id == me;
    Some(LocalMessage {
        id: m.id,
        dialog_id,
        sender_id: m.sender_id,
        recipient_id: m.recipient_id,
        body: m.body,
        attachments: m.attachments,
        custom: m.custom,
        date_sent: m.date_sent,
        state: if outgoing {
            MessageState::Sent
        } else {
            MessageState::Received
        },
        outgoing,
        edited: false,
        read_ids: Vec::new(),
        delivered_ids: Vec::new(),
        reactions: Default::default(),
        seq: 0,
    })
}

impl Client {
    /// Opens the local store of `user_id` (the file in `Config::store_dir`, or memory) and
    /// starts the sync and send-queue tasks. The store of the logged-in user opens by
    /// itself on first use; call this to show cached data before logging in (offline
    /// start). Opening another user's store closes the current one.
    ///
    /// Errors: `StoreCorrupt`, `StoreTooNew` (the file is left untouched), `Store`.
    pub fn open_store(&self, user_id: u64) -> Result<()> {
        self.local_for(user_id).map(drop)
    }

    /// Opens the store of a user who just logged in (so that its queue drains on the next
    /// connection without the app touching the store). A failure is logged; the app meets
    /// it, typed, on its first store call.
    pub(crate) fn open_store_quietly(&self, user_id: u64) {
        if user_id == 0 {
            return;
        }
        if let Err(e) = self.local_for(user_id) {
            warn!(target: "cubechat_core::store", error = %e, "the local store did not open");
        }
    }

    /// Closes the local store (pending sends stay in the file for the next open).
    pub fn close_store(&self) {
        if let Some(l) = lock(&self.local).take() {
            l.close();
        }
    }

    /// The store of the current user (opening it if needed), for direct reads.
    pub fn store(&self) -> Result<Arc<Store>> {
        Ok(self.local()?.store.clone())
    }

    pub(crate) fn local(&self) -> Result<Arc<Local>> {
        let open = lock(&self.local).clone();
        if let Some(l) = open {
            let session_user = self.current_session().map(|s| s.user_id).unwrap_or(0);
            if session_user == 0 || session_user == l.user_id {
                self.start_local_tasks(&l);
                return Ok(l);
            }
        }
        let user = self
            .current_session()
            .map(|s| s.user_id)
            .filter(|u| *u != 0)
            .ok_or(Error::NotLoggedIn)?;
        self.local_for(user)
    }

    fn local_for(&self, user_id: u64) -> Result<Arc<Local>> {
        if user_id == 0 {
            return Err(Error::InvalidInput("user id must be positive".into()));
        }
        let mut slot = lock(&self.local);
        if let Some(l) = slot.as_ref().filter(|l| l.user_id == user_id).cloned() {
            drop(slot);
            self.start_local_tasks(&l);
            return Ok(l);
        }
        let path = self
            .config()
            .store_dir
            .as_deref()
            .map(|d| store_file(d, self.config().app_id, user_id));
        let store = Store::open(path.as_deref())?;
        info!(target: "cubechat_core::store", user_id, persistent = path.is_some(), "local store opened");
        let local = Arc::new(Local::new(store, user_id));
        if let Some(old) = slot.replace(local.clone()) {
            old.close();
        }
        drop(slot);
        self.start_local_tasks(&local);
        Ok(local)
    }

    /// Starts the event applier and the queue worker once, from the first call made
    /// inside a tokio runtime (a store opened elsewhere gets them on its next use there,
    /// at the latest with `connect_chat`).
    fn start_local_tasks(&self, local: &Arc<Local>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            debug!(target: "cubechat_core::queue", "no runtime yet: store tasks start later");
            return;
        };
        let mut tasks = lock(&local.tasks);
        if !tasks.is_empty() {
            return;
        }
        let events = self.chat().subscribe_chat();
        let (state, states) = self.chat().subscribe_connection();
        let applier = rt.spawn(apply_events(
            self.me.clone(),
            Arc::downgrade(local),
            events,
            states,
            state == ConnectionState::Connected,
        ));
        let worker = rt.spawn(queue_worker(self.me.clone(), Arc::downgrade(local)));
        tasks.extend([applier, worker]);
    }

    // ------------------------------------------------------------------ live views

    /// One page of history at or before `second` (newest first), with the whole of its
    /// oldest second (so the cache never ends in the middle of one). `true` = a full page
    /// (older history may exist).
    async fn history_before(
        &self,
        dialog_id: &str,
        second: Option<i64>,
    ) -> Result<(Vec<cubechat_wire::chat::Message>, bool)> {
        let filters = second
            .map(|s| {
                vec![Filter {
                    field: "date_sent".into(),
                    op: FilterOp::Lte,
                    value: s.to_string(),
                }]
            })
            .unwrap_or_default();
        let p = ListParams {
            filters,
            limit: Some(PAGE),
            skip: None,
            sort: Some(("date_sent".into(), true)),
        };
        let mut page = self.messages().history(dialog_id, &p, false).await?.items;
        let full = page.len() as u32 >= PAGE;
        if full {
            if let Some(oldest) = page.iter().map(|m| m.date_sent).min() {
                let p = ListParams {
                    filters: vec![Filter {
                        field: "date_sent".into(),
                        op: FilterOp::Eq,
                        value: oldest.to_string(),
                    }],
                    limit: Some(PAGE),
                    skip: None,
                    sort: None,
                };
                let same = self.messages().history(dialog_id, &p, false).await?.items;
                page.retain(|m| m.date_sent != oldest);
                page.extend(same);
            }
        }
        Ok((page, full))
    }

    // ------------------------------------------------------------------ sync

    /// Fetches a dialog's messages sent since `since` (newest first) into the store.
    async fn fill_gap(&self, local: &Local, dialog_id: &str, since: i64) -> Result<()> {
        if local.store.oldest(dialog_id)?.is_none() {
            return Ok(()); // nothing cached: loaded when the timeline is read
        }
        let mut before = None;
        for _ in 0..SYNC_MESSAGE_PAGES {
            let (page, full) = self.history_before(dialog_id, before).await?;
            let oldest = page.iter().map(|m| m.date_sent).min();
            // Oldest first (the page is newest first, the server's insertion order breaking
            // ties), so messages of one second take their places in the timeline in order.
            let msgs: Vec<LocalMessage> = page
                .into_iter()
                .rev()
                .filter(|m| m.date_sent >= since)
                .map(|m| LocalMessage::from_history(m, local.user_id))
                .collect();
            {
                let mut v = local.views();
                local.store.put_messages(&msgs)?;
                v.messages(&msgs);
            }
            match oldest {
                Some(o) if full && o >= since => before = Some(o - 1),
                _ => return Ok(()),
            }
        }
        // More missed than one sync fetches: keep the cache contiguous, and live timelines
        // with it.
        if let Some(b) = before {
            let mut v = local.views();
            if !local.store.trim_older(dialog_id, b + 1)?.is_empty() {
                v.removed(dialog_id);
            }
        }
        Ok(())
    }

    /// Fetches one dialog into the store (after a system message about it): changed, or
    /// removed when the server no longer lists it for this user.
    async fn refresh_dialog(&self, local: &Local, dialog_id: &str) -> Result<()> {
        let p = ListParams {
            filters: vec![Filter {
                field: "_id".into(),
                op: FilterOp::Eq,
                value: dialog_id.to_owned(),
            }],
            limit: Some(1),
            ..Default::default()
        };
        let items = self.dialogs().list_dialogs(&p).await?.items;
        let mut v = local.views();
        if items.is_empty() {
            if local.store.remove_dialog(dialog_id)? {
                v.dialogs();
                v.removed(dialog_id);
            }
        } else {
            local.store.put_dialogs(&items)?;
            v.dialogs();
        }
        Ok(())
    }
}

impl DialogObserver for Client {
    /// Stores dialogs returned by the app's own REST calls and tells subscribers.
    fn dialogs_changed(&self, dialogs: &[Dialog]) {
        let Some(local) = lock(&self.local).clone() else {
            return;
        };
        let mut v = local.views();
        let r = local.store.put_dialogs(dialogs);
        v.dialogs();
        if let Err(e) = r {
            warn!(target: "cubechat_core::store", error = %e, "could not store dialogs");
        }
    }

    /// Forgets dialogs the app deleted or left.
    fn dialogs_removed(&self, ids: &[String]) {
        let Some(local) = lock(&self.local).clone() else {
            return;
        };
        let mut v = local.views();
        for id in ids {
            match local.store.remove_dialog(id) {
                Ok(true) => {
                    v.dialogs();
                    v.removed(id);
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(target: "cubechat_core::store", error = %e, "could not remove a dialog")
                }
            }
        }
    }
}

impl Client {
    // ------------------------------------------------------------------ send queue

    /// The one way a message enters the send queue: checks it, writes it and its outbox row,
    /// tells its timelines and wakes the worker. `outcome` (of a `Sending`) is registered
    /// before the worker can see the message.
    fn queue_message(
        &self,
        m: OutgoingMessage,
        files: Vec<QueuedFile>,
        outcome: Option<oneshot::Sender<Result<()>>>,
    ) -> Result<LocalMessage> {
        let mut check = m.clone();
        if !files.is_empty() && check.attachments.is_empty() && check.body.trim().is_empty() {
            // The files become attachments: a message of files only is valid.
            check.attachments.push(Attachment {
                kind: "file".into(),
                ..Default::default()
            });
        }
        self.chat().check_outgoing(&check)?;
        for f in &files {
            if f.path.as_os_str().is_empty() {
                return Err(Error::InvalidInput("attachment file path is empty".into()));
            }
            for (what, v) in [
                ("file name", &f.name),
                ("file content type", &f.content_type),
            ] {
                if let Some(v) = v {
                    crate::xmpp::check_text(what, v)?;
                }
            }
        }
        let local = self.local()?;
        let id = new_id();
        let date_sent = m.date_sent.unwrap_or_else(now_unix);
        let msg = LocalMessage {
            id,
            dialog_id: m.dialog_id.clone(),
            sender_id: local.user_id,
            recipient_id: m.recipient_id,
            body: m.body.clone(),
            attachments: m.attachments.clone(),
            custom: m.custom.clone(),
            date_sent,
            state: MessageState::Queued,
            outgoing: true,
            edited: false,
            read_ids: Vec::new(),
            delivered_ids: Vec::new(),
            reactions: Default::default(),
            seq: 0,
        };
        let payload = Payload {
            recipient_id: m.recipient_id,
            body: m.body,
            attachments: m.attachments,
            files,
            custom: m.custom,
            save_to_history: m.save_to_history,
            date_sent,
            markable: m.markable,
            silent: m.silent,
            last: false,
        };
        if let Some(tx) = outcome {
            let mut waiting = lock(&local.sending);
            // Forget the dropped `Sending`s (their messages go out all the same).
            waiting.retain(|_, tx| !tx.is_closed());
            waiting.insert(msg.id.clone(), tx);
        }
        let written = {
            let mut v = local.views();
            // With its dialog's preview when it is saved to history (a dialog the store does
            // not know catches up at the next sync).
            // Queued while connected, it is synced to disk with the burst it goes out with
            // (before it leaves); else at once.
            let connected = self.chat().connection_state() == ConnectionState::Connected;
            local
                .store
                .queue_new_message(&msg, &payload, !connected)
                .map(|(msg, dialog_changed)| {
                    v.messages(std::slice::from_ref(&msg));
                    if dialog_changed {
                        v.dialogs();
                    }
                    msg
                })
        };
        let msg = match written {
            Ok(msg) => msg,
            Err(e) => {
                lock(&local.sending).remove(&msg.id);
                return Err(e);
            }
        };
        debug!(target: "cubechat_core::queue", id = %msg.id, "message queued");
        local.wake.notify_one();
        Ok(msg)
    }

    fn own_message(&self, local: &Local, message_id: &str) -> Result<LocalMessage> {
        let m = local
            .store
            .message(message_id)?
            .ok_or_else(|| Error::NotFound("message is not in the store".into()))?;
        if !m.outgoing || m.sender_id != local.user_id {
            return Err(Error::Forbidden(
                "only your own messages can be changed".into(),
            ));
        }
        Ok(m)
    }

    /// The changed message, told to its views through `v` (held since the change).
    fn changed_message(
        &self,
        local: &Local,
        v: &mut Views<'_>,
        message_id: &str,
    ) -> Result<LocalMessage> {
        let m = local
            .store
            .message(message_id)?
            .ok_or_else(|| Error::NotFound("message is not in the store".into()))?;
        v.timeline(&m.dialog_id);
        v.dialog_changed(local.store.relink_last(&m.dialog_id, message_id)?);
        Ok(m)
    }
}

// ---------------------------------------------------------------------- tasks

/// Applies chat events to the store and tells subscribers; syncs on every connection.
async fn apply_events(
    client: Weak<Client>,
    local: Weak<Local>,
    mut events: crate::xmpp::ChatEvents,
    mut states: ConnectionStates,
    connected: bool,
) {
    if connected {
        spawn_sync(&client);
    }
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let (Some(c), Some(l)) = (client.upgrade(), local.upgrade()) else { break };
                // With whatever is queued behind it right now (no waiting for more).
                let mut burst = vec![ev];
                while burst.len() < BURST {
                    match events.try_recv() {
                        Ok(ev) => burst.push(ev),
                        Err(_) => break,
                    }
                }
                apply_burst(&c, &l, burst);
            }
            st = states.recv() => {
                let Some(st) = st else { break };
                if st == ConnectionState::Connected {
                    let Some(l) = local.upgrade() else { break };
                    l.wake.notify_one();
                    spawn_sync(&client);
                }
            }
        }
    }
}

fn spawn_sync(client: &Weak<Client>) {
    let client = client.clone();
    tokio::spawn(async move {
        let Some(c) = client.upgrade() else { return };
        if let Err(e) = c.timeline().sync_local().await {
            info!(target: "cubechat_core::store", error = %e, "sync with the server failed");
        }
    });
}

/// Fetches a dialog in the background (events keep flowing meanwhile). One fetch per
/// dialog at a time: asked for again meanwhile, it runs once more when the fetch ends (so
/// the last change is seen); after a failed fetch it waits [`RETRY_PAUSE`] first.
fn spawn_refresh(c: &Client, l: &Arc<Local>, dialog_id: &str) {
    {
        let mut busy = lock(&l.refreshing);
        if let Some(again) = busy.get_mut(dialog_id) {
            *again = true;
            return;
        }
        busy.insert(dialog_id.to_owned(), false);
    }
    let (Some(c), l, d) = (c.me.upgrade(), Arc::downgrade(l), dialog_id.to_owned()) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let Some(local) = l.upgrade() else { return };
            let failed = c.refresh_dialog(&local, &d).await.is_err_and(|e| {
                debug!(target: "cubechat_core::store", error = %e, "dialog fetch failed");
                true
            });
            drop(local);
            if failed {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            let Some(local) = l.upgrade() else { return };
            let mut busy = lock(&local.refreshing);
            match busy.get_mut(&d) {
                Some(again) if *again => *again = false,
                _ => {
                    busy.remove(&d);
                    return;
                }
            }
        }
    });
}

/// Applies a burst of chat events in order: each run of messages is one store
/// transaction ([`Store::put_received`]), each run of acknowledgements another
/// ([`Store::ack_sent`]); the live views hear of a run once it is committed.
fn apply_burst(c: &Client, l: &Arc<Local>, burst: Vec<ChatEvent>) {
    let mut msgs: Vec<(LocalMessage, bool)> = Vec::new();
    let mut acks: Vec<String> = Vec::new();
    for ev in burst {
        match ev {
            ChatEvent::Message(m) => {
                flush_acks(l, &mut acks);
                let unread = !m.carbon;
                if let Some(msg) = chat_message_to_local(m, l.user_id) {
                    let unread = unread && !msg.outgoing;
                    msgs.push((msg, unread));
                }
            }
            ChatEvent::Sent { message_id } => {
                flush_messages(c, l, &mut msgs);
                acks.push(message_id);
            }
            ev => {
                flush_messages(c, l, &mut msgs);
                flush_acks(l, &mut acks);
                if let Err(e) = apply(c, l, ev) {
                    warn!(target: "cubechat_core::store", error = %e, "could not apply a chat event");
                }
            }
        }
    }
    flush_messages(c, l, &mut msgs);
    flush_acks(l, &mut acks);
}

/// Stores a run of received messages and tells the views. A message already stored (a
/// repeat, a sync after a reconnection, a history page) is not added, so not told again as
/// new (its timelines re-read it all the same).
fn flush_messages(c: &Client, l: &Arc<Local>, msgs: &mut Vec<(LocalMessage, bool)>) {
    if msgs.is_empty() {
        return;
    }
    let msgs = std::mem::take(msgs);
    let mut v = l.views();
    let dialogs: Vec<String> = {
        let mut ids: Vec<String> = Vec::new();
        for (m, _) in &msgs {
            if !ids.contains(&m.dialog_id) {
                ids.push(m.dialog_id.clone());
            }
        }
        ids
    };
    match l.store.put_received(msgs) {
        Ok(r) => {
            for d in &dialogs {
                v.timeline(d);
            }
            if !r.dialogs.is_empty() {
                v.dialogs();
            }
            drop(v);
            for e in &r.errors {
                warn!(target: "cubechat_core::store", error = %e, "could not store a received message");
            }
            // Dialogs the store does not know yet (new, or created elsewhere).
            for d in &r.unknown {
                spawn_refresh(c, l, d);
            }
        }
        Err(e) => {
            warn!(target: "cubechat_core::store", error = %e, "could not store a received message")
        }
    }
}

/// Applies a run of acknowledgements: the rows leave the outbox, the messages show `Sent`
/// and their [`Sending`]s resolve.
fn flush_acks(l: &Local, acks: &mut Vec<String>) {
    if acks.is_empty() {
        return;
    }
    let ids: Vec<&str> = acks.iter().map(String::as_str).collect();
    let mut v = l.views();
    match l.store.ack_sent(&ids) {
        Ok(acked) => {
            let mut seen: Vec<&str> = Vec::new();
            for m in acked.iter().filter_map(|a| a.sent.as_ref()) {
                if !seen.contains(&m.dialog_id.as_str()) {
                    seen.push(&m.dialog_id);
                    v.timeline(&m.dialog_id);
                }
            }
            drop(v);
            for a in acked.into_iter().filter(|a| a.kind == OutboxKind::Message) {
                l.settle(&a.message_id, Ok(()));
            }
        }
        Err(e) => {
            warn!(target: "cubechat_core::store", error = %e, "could not apply acknowledgements")
        }
    }
    acks.clear();
}

fn apply(c: &Client, l: &Arc<Local>, ev: ChatEvent) -> Result<()> {
    let store = &l.store;
    match ev {
        ChatEvent::Message(_) | ChatEvent::Sent { .. } => {
            apply_burst(c, l, vec![ev]);
        }
        ChatEvent::Failed { message_id, reason } => {
            let Some(item) = store.outbox_item(&message_id)? else {
                return Ok(());
            };
            if item.failed {
                // Bounced, then lost before its acknowledgement: no ack will come.
                l.settle(&item.message_id, Err(Error::Network(reason.clone())));
            }
            // The session is gone: everything unacknowledged goes again, in order.
            store.reset_in_flight()?;
            if item.attempts >= MAX_ATTEMPTS {
                let reason = format!("not sent after {MAX_ATTEMPTS} attempts: {reason}");
                fail(l, &item, &reason, Some(Error::Network(reason.clone())))?;
            }
            l.wake.notify_one();
        }
        ChatEvent::MessageError {
            message_id, code, ..
        } => {
            if let Some(m) = store.message(&message_id)? {
                if m.outgoing {
                    let reason = format!("rejected by the server ({code})");
                    if let Some(item) = store.outbox_item(&message_id)? {
                        // Its `Sending` resolves at the acknowledgement all the same (the
                        // bounce may come before or after it): the state tells the rest.
                        fail(l, &item, &reason, None)?;
                    } else {
                        let mut v = l.views();
                        v.updated(store.set_state(&message_id, &MessageState::Failed { reason })?);
                    }
                }
            }
        }
        ChatEvent::Delivered {
            message_id,
            user_id,
            ..
        } => {
            let mut v = l.views();
            v.updated(store.mark(&message_id, user_id, false)?);
        }
        ChatEvent::Read {
            message_id,
            user_id,
            ..
        } => {
            let mut v = l.views();
            v.updated(store.mark(&message_id, user_id, true)?);
        }
        ChatEvent::Edited {
            message_id, body, ..
        } => {
            let mut v = l.views();
            if let Some(m) = store.edit(&message_id, &body)? {
                v.timeline(&m.dialog_id);
                v.dialog_changed(store.relink_last(&m.dialog_id, &m.id)?);
            }
        }
        ChatEvent::Deleted { message_id, .. } => {
            let mut v = l.views();
            if let Some(dialog_id) = store.remove_message(&message_id)? {
                v.removed(&dialog_id);
                v.dialog_changed(store.relink_last(&dialog_id, &message_id)?);
            }
        }
        ChatEvent::Reactions {
            message_id,
            user_id,
            add,
            remove,
            ..
        } => {
            let mut v = l.views();
            v.updated(store.react(&message_id, user_id, l.user_id, &add, &remove)?);
        }
        ChatEvent::System(s) => {
            if let Some(d) = s.custom.get("dialog_id") {
                if crate::xmpp::check_dialog(d).is_ok() {
                    spawn_refresh(c, l, d);
                }
            }
        }
        ChatEvent::Kicked { dialog_id, .. } => {
            let mut v = l.views();
            if store.remove_dialog(&dialog_id)? {
                v.dialogs();
                v.removed(&dialog_id);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The send payload of a stored message (one that failed after it left the queue).
fn payload_of(m: &LocalMessage) -> Payload {
    Payload {
        recipient_id: m.recipient_id,
        body: m.body.clone(),
        attachments: m.attachments.clone(),
        files: Vec::new(),
        custom: m.custom.clone(),
        save_to_history: true,
        date_sent: m.date_sent,
        markable: false,
        silent: false,
        last: false,
    }
}

/// Fails a pending send: a message keeps its payload for `retry` (and its [`Sending`], if
/// any, resolves with `error`; `None`: at the acknowledgement still to come); an edit or
/// delete is dropped (the local copy already shows it).
fn fail(l: &Local, item: &OutboxItem, reason: &str, error: Option<Error>) -> Result<()> {
    warn!(target: "cubechat_core::queue", id = %item.op_id, reason, "send failed");
    match item.kind {
        OutboxKind::Message => {
            {
                let mut v = l.views();
                v.updated(l.store.fail_queued(&item.message_id, reason)?);
            }
            if let Some(e) = error {
                l.settle(&item.message_id, Err(e));
            }
        }
        _ => {
            l.store.remove_outbox(&item.op_id)?;
        }
    }
    Ok(())
}

/// Drains the outbox whenever woken while connected.
async fn queue_worker(client: Weak<Client>, local: Weak<Local>) {
    loop {
        let Some(l) = local.upgrade() else { return };
        {
            let Some(c) = client.upgrade() else { return };
            let r = if c.chat().connection_state() == ConnectionState::Connected {
                drain(&c, &l).await
            } else {
                // Queued while connected, but the connection went first: on disk now.
                l.store.sync_queue()
            };
            if let Err(e) = r {
                warn!(target: "cubechat_core::queue", error = %e, "send queue stopped");
            }
        }
        // Holding the Local while waiting is fine: closing it aborts this task.
        l.wake.notified().await;
    }
}

/// Whether an error of an upload may go away by itself (then the message waits).
fn transient(e: &Error) -> bool {
    matches!(
        e,
        Error::Network(_)
            | Error::SessionExpired(_)
            | Error::NotLoggedIn
            | Error::Cancelled
            | Error::RateLimited { .. }
            | Error::ServerBusy { .. }
    ) || matches!(e, Error::Server { status, .. } if *status >= 500 || *status == 429)
}

async fn drain(c: &Client, l: &Arc<Local>) -> Result<()> {
    let items = l.store.pending_outbox()?;
    // `items[k..marked]` were marked in flight with the current group, not yet handed over.
    let mut marked = 0;
    for (k, item) in items.iter().enumerate() {
        if c.chat().connection_state() != ConnectionState::Connected {
            return hand_back(l, &items[k..marked.max(k)]);
        }
        let sent = if item.kind == OutboxKind::Message && !item.payload.files.is_empty() {
            let mut p = item.payload.clone();
            while let Some(f) = p.files.first().cloned() {
                let up = NewUpload {
                    source: UploadSource::File(f.path.clone()),
                    name: f.name.clone(),
                    content_type: f.content_type.clone(),
                    public: f.public,
                };
                match c.files().upload(up, None, None).await {
                    Ok(blob) => {
                        p.attachments.push(Attachment::from_blob(&blob));
                        p.files.remove(0);
                        let mut v = l.views();
                        l.store.update_queued(&item.message_id, &p)?;
                        v.timeline(&item.dialog_id);
                    }
                    Err(e) if transient(&e) => {
                        // Later messages wait too (order); try again in a while.
                        info!(target: "cubechat_core::queue", error = %e, "attachment upload will be retried");
                        retry_later(l);
                        return hand_back(l, &[]);
                    }
                    Err(e) => {
                        fail(l, item, &format!("attachment upload failed: {e}"), Some(e))?;
                        break;
                    }
                }
            }
            if !p.files.is_empty() {
                continue;
            }
            l.store.start_sending(&[item.op_id.as_str()])?;
            marked = k + 1;
            send_item(c, item, &p)
        } else {
            if k >= marked {
                // This item and the ones after it that need no upload are handed over
                // together: one commit marks them in flight, synced to disk with every
                // queue write before it (a group commit).
                marked = k + items[k..]
                    .iter()
                    .take_while(|i| i.kind != OutboxKind::Message || i.payload.files.is_empty())
                    .count();
                let ids: Vec<&str> = items[k..marked].iter().map(|i| i.op_id.as_str()).collect();
                l.store.start_sending(&ids)?;
            }
            send_item(c, item, &item.payload)
        };
        match sent {
            Ok(()) => {
                debug!(target: "cubechat_core::queue", id = %item.op_id, "handed to the connection")
            }
            Err(Error::ChatNotConnected) => return hand_back(l, &items[k..marked.max(k + 1)]),
            Err(e) => {
                l.store.stop_sending(&[item.op_id.as_str()])?;
                fail(l, item, &e.to_string(), Some(e))?;
            }
        }
    }
    Ok(())
}

/// Hands one outbox item (marked in flight) to the connection; `p`: its payload with the
/// files uploaded.
fn send_item(c: &Client, item: &OutboxItem, p: &Payload) -> Result<()> {
    match item.kind {
        OutboxKind::Message => {
            let m = OutgoingMessage {
                dialog_id: item.dialog_id.clone(),
                recipient_id: p.recipient_id,
                body: p.body.clone(),
                attachments: p.attachments.clone(),
                custom: p.custom.clone(),
                save_to_history: p.save_to_history,
                date_sent: Some(p.date_sent),
                markable: p.markable,
                silent: p.silent,
            };
            c.chat().send_message_as(&item.op_id, m)
        }
        OutboxKind::Edit => c.chat().send_edit_as(
            &item.op_id,
            &item.dialog_id,
            item.payload.recipient_id,
            &item.message_id,
            &item.payload.body,
            item.payload.last,
        ),
        OutboxKind::Delete => c.chat().send_delete_as(
            &item.op_id,
            &item.dialog_id,
            item.payload.recipient_id,
            &item.message_id,
        ),
    }
}

/// The queue stops before the end: `rest` (marked in flight, not handed over) waits again,
/// and whatever was queued without a sync to disk is synced now.
fn hand_back(l: &Local, rest: &[OutboxItem]) -> Result<()> {
    if !rest.is_empty() {
        let ids: Vec<&str> = rest.iter().map(|i| i.op_id.as_str()).collect();
        l.store.stop_sending(&ids)?;
    }
    l.store.sync_queue()
}

fn retry_later(l: &Arc<Local>) {
    let l = Arc::downgrade(l);
    tokio::spawn(async move {
        tokio::time::sleep(RETRY_PAUSE).await;
        if let Some(l) = l.upgrade() {
            l.wake.notify_one();
        }
    });
}

/// The local store at work for the app (`client.timeline()`): the live dialog list and live
/// timelines (snapshot, then positional diffs), older pages, and the sync with the server.
#[derive(Clone, Copy, Debug)]
pub struct Timeline<'a> {
    client: &'a Client,
}

impl<'a> Timeline<'a> {
    /// The timeline feature of `client`.
    pub fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// The dialog list from the store (first `limit`, newest activity first) and a
    /// receiver of its later changes as positional diffs ([`VectorDiff`]): applied in order
    /// to the snapshot, they give the list as the store has it, nothing twice and nothing
    /// missed. The view covers the list down to the last dialog of the snapshot when it was
    /// a full page (a dialog moving below it leaves the view; further pages:
    /// [`Timeline::dialogs_page`]), else the whole list. Starts a background sync with the
    /// server (the store is served first whatever the network does).
    pub fn watch_dialogs(&self, limit: u32) -> Result<(Vec<Dialog>, EventStream<DialogsEvent>)> {
        let local = self.client.local()?;
        let (tx, rx) = stream::channel();
        let snapshot = {
            // Under the lock every writer holds from its store write to its diffs.
            let mut v = local.views();
            let snapshot = local.store.dialogs_page(limit.max(1), None)?;
            // A full page: the view covers the list down to its last dialog; else all.
            let bound = match snapshot.last() {
                Some(d) if snapshot.len() >= limit.max(1) as usize => {
                    let key = local.store.dialog_key(&d.id)?;
                    Some((
                        key.unwrap_or_else(|| crate::store::dialog_activity(d)),
                        d.id.clone(),
                    ))
                }
                _ => None,
            };
            v.subs.dialogs.push(View {
                tx,
                bound,
                shown: snapshot.clone(),
            });
            snapshot
        };
        let rt = tokio::runtime::Handle::try_current();
        if let (Some(me), Ok(rt)) = (self.client.me.upgrade(), rt) {
            rt.spawn(async move {
                if let Err(e) = me.timeline().sync_local().await {
                    debug!(target: "cubechat_core::store", error = %e, "background sync failed");
                }
            });
        }
        Ok((snapshot, rx))
    }

    /// A further page of the dialog list: `after` = the last dialog of the previous page.
    pub fn dialogs_page(&self, limit: u32, after: Option<&Dialog>) -> Result<Vec<Dialog>> {
        let local = self.client.local()?;
        let after = after.map(|d| (crate::store::dialog_activity(d), d.id.as_str()));
        let after = match after {
            Some((_, id)) => {
                // The stored activity may be ahead of the dialog object's own fields.
                let stored = local.store.dialog(id)?;
                stored
                    .map(|d| (crate::store::dialog_activity(&d), id))
                    .or(after)
            }
            None => None,
        };
        local.store.dialogs_page(limit.max(1), after)
    }

    /// Like [`Timeline::dialogs_page`] with the previous page's last dialog given by id, as
    /// apps hold it. Errors: [`Error::NotFound`] when that dialog is not in the store.
    pub fn dialogs_page_after_id(
        &self,
        limit: u32,
        after_dialog_id: Option<&str>,
    ) -> Result<Vec<Dialog>> {
        let after = match after_dialog_id {
            Some(id) => Some(
                self.client
                    .local()?
                    .store
                    .dialog(id)?
                    .ok_or_else(|| Error::NotFound("dialog is not in the store".into()))?,
            ),
            None => None,
        };
        self.client.timeline().dialogs_page(limit, after.as_ref())
    }

    /// The newest `limit` cached messages of a dialog (oldest first) and a receiver of the
    /// view's later changes as positional diffs ([`VectorDiff`]): applied in order to the
    /// snapshot, they give the timeline as the store has it, nothing twice and nothing
    /// missed. The view covers the messages from the oldest of the snapshot on (an empty
    /// snapshot: all of them, so pages that [`Timeline::load_older`] stores arrive in it too);
    /// older messages: [`Timeline::load_older`].
    pub fn watch_timeline(
        &self,
        dialog_id: &str,
        limit: u32,
    ) -> Result<(Vec<LocalMessage>, EventStream<TimelineEvent>)> {
        crate::xmpp::check_dialog(dialog_id)?;
        let local = self.client.local()?;
        let (tx, rx) = stream::channel();
        // Under the lock every writer holds from its store write to its diffs.
        let mut v = local.views();
        let snapshot = local.store.timeline(dialog_id, None, limit.max(1))?;
        let view = View {
            tx,
            bound: snapshot.first().map(|m| (m.date_sent, m.seq)),
            shown: snapshot.clone(),
        };
        v.subs
            .timelines
            .entry(dialog_id.to_owned())
            .or_default()
            .push(view);
        Ok((snapshot, rx))
    }

    /// Up to `limit` messages older than `before` (a message id; `None` = the newest),
    /// oldest first: from the store, then from the server's history (stored on the way).
    /// Fewer than `limit` means the start of the dialog was reached.
    pub async fn load_older(
        &self,
        dialog_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<LocalMessage>> {
        crate::xmpp::check_dialog(dialog_id)?;
        if limit == 0 || limit > PAGE {
            return Err(Error::InvalidInput("limit must be within 1..=100".into()));
        }
        let local = self.client.local()?;
        let anchor = match before {
            Some(id) => {
                let m = local
                    .store
                    .message(id)?
                    .ok_or_else(|| Error::NotFound("message is not in the store".into()))?;
                Some((m.date_sent, m.seq))
            }
            None => None,
        };
        let cached = local.store.timeline(dialog_id, anchor, limit)?;
        if cached.len() as u32 >= limit || local.store.history_complete(dialog_id)? {
            return Ok(cached);
        }
        // The cache ends here: continue from the server, from the oldest cached second on
        // (inclusive: messages of that second may be missing; repeats are dropped by id).
        let from = match local.store.oldest(dialog_id)? {
            Some(m) => Some(m.date_sent),
            None => anchor.map(|a| a.0),
        };
        let (page, full) = self.client.history_before(dialog_id, from).await?;
        let msgs: Vec<LocalMessage> = page
            .into_iter()
            .map(|m| LocalMessage::from_history(m, local.user_id))
            .collect();
        {
            // Views reaching that far back (e.g. opened on an empty cache) hear them too.
            let mut v = local.views();
            local.store.put_messages(&msgs)?;
            v.messages(&msgs);
        }
        if !full {
            local.store.set_history_complete(dialog_id)?;
        }
        local.store.timeline(dialog_id, anchor, limit)
    }

    /// Brings the store up to date with the server: dialogs updated since the last sync
    /// (all of them the first time) and, for those with cached messages, the messages sent
    /// since (filling what was missed offline). Runs by itself on every (re)connection and
    /// when the dialog list is watched; subscribers see the changes.
    pub async fn sync_local(&self) -> Result<()> {
        let local = self.client.local()?;
        let _one = local.syncing.lock().await;
        let started = now_unix();
        let since: Option<i64> = local
            .store
            .cursor(CURSOR_SYNCED)?
            .and_then(|s| s.parse().ok());
        let mut changed = Vec::new();
        for page in 0..SYNC_DIALOG_PAGES {
            let p = ListParams {
                filters: since
                    .map(|s| {
                        vec![Filter {
                            field: "updated_at".into(),
                            op: FilterOp::Gte,
                            value: s.to_string(),
                        }]
                    })
                    .unwrap_or_default(),
                limit: Some(PAGE),
                skip: Some(page * PAGE),
                sort: Some(("updated_at".into(), false)),
            };
            let items = self.client.dialogs().list_dialogs(&p).await?.items;
            let n = items.len();
            {
                let mut v = local.views();
                local.store.put_dialogs(&items)?;
                v.dialogs();
            }
            changed.extend(items);
            if n < PAGE as usize {
                break;
            }
        }
        if let Some(since) = since {
            for d in &changed {
                self.client.fill_gap(&local, &d.id, since).await?;
            }
        }
        local
            .store
            .set_cursor(CURSOR_SYNCED, &(started - SYNC_SLACK).to_string())?;
        debug!(target: "cubechat_core::store", dialogs = changed.len(), "local store synced");
        Ok(())
    }

    /// Marks every message of a dialog read on the server and sets its unread count to 0.
    pub async fn mark_dialog_read(&self, dialog_id: &str) -> Result<()> {
        let local = self.client.local()?;
        self.client.messages().mark_all_read(dialog_id).await?;
        let mut v = local.views();
        local.store.set_unread(dialog_id, 0)?;
        v.dialogs();
        Ok(())
    }
}

/// The send queue (`client.send_queue()`): the one way a chat message goes out. Every
/// message is written to the store (its local echo) and the outbox before it is sent; the
/// queue's worker drains the outbox in order whenever chat is connected.
#[derive(Clone, Copy, Debug)]
pub struct SendQueue<'a> {
    client: &'a Client,
}

impl<'a> SendQueue<'a> {
    /// The send queue of `client`.
    pub fn new(client: &'a Client) -> Self {
        Self { client }
    }

    /// Sends a chat message through the send queue: the same path as
    /// [`SendQueue::enqueue_message`], plus a [`Sending`] to `.await` for the server's
    /// acknowledgement (`client.send_queue().send_message(m)?.await?` gives the id).
    ///
    /// When this returns `Ok`, the message (its local echo, state `Queued`, with its final
    /// id: [`Sending::message`]) is already in the store and its open timelines heard
    /// `Added`, after every message sent or queued before it: send order is call order,
    /// whenever the returned [`Sending`]s are awaited. Awaiting it gives the message id once
    /// the server acknowledged receiving the message (stream management ack, the `Sent`
    /// event; the state is `Sent` and timelines heard `Updated` by then), or the reason it
    /// was not sent: `Network` (lost with its connection too many times; state `Failed`, the
    /// store keeps it for [`SendQueue::retry_message`]), `Cancelled` (the app cancelled it with
    /// `cancel_message`, or closed the store). A message the server receives but refuses to
    /// route (a bounce: blocked by a privacy list, not a room occupant) is acknowledged too,
    /// so the call still returns its id: the bounce comes as a `MessageError` event, before or
    /// after the acknowledgement, and turns the state `Failed`. Dropping the `Sending` does
    /// not cancel the send.
    ///
    /// A cut mid-send: the message stays in the queue (state `Queued`) and the `Sending`
    /// keeps waiting while the connection is restored (`Reconnecting`); it then goes out
    /// again under the same id (or the resumed stream repeats it), and the server drops a
    /// repeat: it is delivered once, in order. If chat stops instead (`disconnect_chat`,
    /// `destroy_chat`, reconnection given up, credentials rejected, network unavailable), the
    /// `Sending` resolves with `ChatNotConnected` so that nobody waits forever, and the
    /// message stays queued: it goes out on the next connection (see
    /// [`SendQueue::pending_messages`]; [`SendQueue::cancel_message`] drops it).
    ///
    /// Chat must be connecting or connected: otherwise `ChatNotConnected` and nothing is
    /// stored (to write while offline, use `enqueue_message`). The store is the logged-in
    /// user's; a chat session without a REST session (log-in by password) uses the store
    /// `connect_chat` opened for its user (in memory unless `Config::store_dir` is set).
    ///
    /// Errors (nothing is stored): `InvalidInput` (empty or oversized, bad custom keys),
    /// `ChatNotConnected`, `NotLoggedIn`, store errors.
    pub fn send_message(&self, m: OutgoingMessage) -> Result<Sending> {
        self.client.chat().check_outgoing(&m)?;
        // Subscribed before the write: no state change after it goes unseen.
        let (state, states) = self.client.chat().subscribe_connection();
        if stopped(&state) {
            return Err(Error::ChatNotConnected);
        }
        let (tx, outcome) = oneshot::channel();
        let message = self.client.queue_message(m, Vec::new(), Some(tx))?;
        Ok(Sending {
            message,
            outcome,
            states,
        })
    }

    /// Writes a message to the store and the send queue, and returns it (state `Queued`,
    /// with its final id). It is sent as soon as chat is connected, in order with the other
    /// queued messages (and those of [`SendQueue::send_message`]), also after a restart of the
    /// app; `files` are uploaded first and become attachments. Works offline. Errors:
    /// `InvalidInput` (nothing is stored), `NotLoggedIn`, store errors.
    pub fn enqueue_message(
        &self,
        m: OutgoingMessage,
        files: Vec<QueuedFile>,
    ) -> Result<LocalMessage> {
        self.client.queue_message(m, files, None)
    }

    /// Queues a failed message again (at the end of the queue).
    /// Errors: `NotFound` (unknown), `InvalidInput` (the message is not failed).
    pub fn retry_message(&self, message_id: &str) -> Result<LocalMessage> {
        let local = self.client.local()?;
        let m = local
            .store
            .message(message_id)?
            .ok_or_else(|| Error::NotFound("message is not in the store".into()))?;
        if !matches!(m.state, MessageState::Failed { .. }) {
            return Err(Error::InvalidInput(
                "only a failed message can be retried".into(),
            ));
        }
        // The kept payload when the send failed in the queue; else the message itself.client.
        let payload = payload_of(&m);
        let again = {
            let mut v = local.views();
            local.store.requeue(message_id, &payload, &m.dialog_id)?;
            v.timeline(&m.dialog_id);
            // Read before the worker is woken: it may send it (and move it on) at once.
            local.store.message(message_id)?
        };
        local.wake.notify_one();
        again.ok_or_else(|| Error::NotFound("message is not in the store".into()))
    }

    /// Drops a queued or failed message (it was never acknowledged by the server).
    /// Errors: `NotFound`, `InvalidInput` (already sent: delete it instead).
    pub fn cancel_message(&self, message_id: &str) -> Result<()> {
        let local = self.client.local()?;
        let m = local
            .store
            .message(message_id)?
            .ok_or_else(|| Error::NotFound("message is not in the store".into()))?;
        let pending = local.store.outbox_item(message_id)?;
        match (&m.state, pending) {
            (MessageState::Failed { .. }, _) => {}
            (MessageState::Queued, Some(item)) if !item.in_flight => {}
            (MessageState::Queued, _) => {
                return Err(Error::InvalidInput(
                    "the message is being sent; delete it once sent".into(),
                ))
            }
            _ => {
                return Err(Error::InvalidInput(
                    "the message was sent; delete it instead".into(),
                ))
            }
        }
        {
            let mut v = local.views();
            local.store.cancel(message_id)?;
            v.removed(&m.dialog_id);
            v.dialog_changed(local.store.relink_last(&m.dialog_id, message_id)?);
        }
        local.settle(message_id, Err(Error::Cancelled));
        Ok(())
    }

    /// Edits one of this user's messages. Queued (not yet sent) or failed: the queued
    /// message itself changes, and is sent once with the new body. Sent: the local copy
    /// changes now and the edit is queued (sent over chat in order, also after a restart).
    pub fn edit_local_message(&self, message_id: &str, body: &str) -> Result<LocalMessage> {
        crate::xmpp::check_body(body)?;
        let local = self.client.local()?;
        let m = self.client.own_message(&local, message_id)?;
        if let Some(item) = local.store.outbox_item(message_id)? {
            if !item.in_flight {
                let mut p = item.payload;
                p.body = body.to_owned();
                let mut v = local.views();
                local.store.update_queued(message_id, &p)?;
                return self.client.changed_message(&local, &mut v, message_id);
            }
        }
        if let MessageState::Failed { .. } = m.state {
            // Failed after the server acknowledged it: the retry sends the stored body.
            let mut v = local.views();
            local.store.edit(message_id, body)?;
            return self.client.changed_message(&local, &mut v, message_id);
        }
        let last = local
            .store
            .dialog(&m.dialog_id)?
            .and_then(|d| d.last_message_id)
            .is_some_and(|l| l == m.id);
        let payload = Payload {
            recipient_id: m.recipient_id,
            body: body.to_owned(),
            last,
            ..Default::default()
        };
        let mut v = local.views();
        local
            .store
            .enqueue_change(&new_id(), &m, OutboxKind::Edit, &payload)?;
        local.wake.notify_one();
        self.client.changed_message(&local, &mut v, message_id)
    }

    /// Deletes one of this user's messages. Queued or failed: it is dropped and never sent.
    /// Sent: the local copy goes now and the deletion is queued (sent over chat, for
    /// everyone, in order, also after a restart).
    pub fn delete_local_message(&self, message_id: &str) -> Result<()> {
        let local = self.client.local()?;
        let m = self.client.own_message(&local, message_id)?;
        let pending = local.store.outbox_item(message_id)?;
        let unsent = matches!(m.state, MessageState::Failed { .. })
            || pending.as_ref().is_some_and(|i| !i.in_flight);
        if unsent {
            return self.client.send_queue().cancel_message(message_id);
        }
        let payload = Payload {
            recipient_id: m.recipient_id,
            ..Default::default()
        };
        {
            let mut v = local.views();
            local
                .store
                .enqueue_change(&new_id(), &m, OutboxKind::Delete, &payload)?;
            v.removed(&m.dialog_id);
            v.dialog_changed(local.store.relink_last(&m.dialog_id, message_id)?);
        }
        local.wake.notify_one();
        Ok(())
    }

    /// Messages of this user not yet acknowledged by the server, in send order: queued
    /// ones, then failed ones (which wait for `retry_message` or `cancel_message`).
    pub fn pending_messages(&self) -> Result<Vec<LocalMessage>> {
        let local = self.client.local()?;
        let mut out = Vec::new();
        for item in local.store.outbox()? {
            if item.kind == OutboxKind::Message {
                if let Some(m) = local.store.message(&item.message_id)? {
                    out.push(m);
                }
            }
        }
        out.extend(local.store.failed_outgoing()?);
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The live-view contract: views opened while changes of every kind arrive from
    //! several tasks, rebuilt from snapshot + diffs, equal a fresh read of the store.

    use super::*;
    use rand::Rng;

    const ME: u64 = 1;
    const PEER: u64 = 2;

    fn incoming(dialog_id: &str, date_sent: i64, body: &str) -> ChatEvent {
        ChatEvent::Message(crate::xmpp::ChatMessage {
            id: new_id(),
            dialog_id: Some(dialog_id.to_owned()),
            sender_id: PEER,
            recipient_id: Some(ME),
            body: body.to_owned(),
            attachments: Vec::new(),
            custom: Default::default(),
            date_sent,
            save_to_history: true,
            markable: false,
            delayed: false,
            carbon: false,
            group: false,
        })
    }

    /// One random change: a message (often out of order), a local echo, its ack, an
    /// edit, a deletion, a reaction, a receipt, or a dialog renamed by the app. Chat events
    /// go to `burst` (applied together by the caller, as the event applier does).
    fn one_change(
        c: &Client,
        l: &Arc<Local>,
        dialogs: &[String],
        ids: &Mutex<Vec<String>>,
        burst: &mut Vec<ChatEvent>,
    ) {
        let mut rng = rand::thread_rng();
        let d = &dialogs[rng.gen_range(0..dialogs.len())];
        let pick = |rng: &mut rand::rngs::ThreadRng| {
            let ids = lock(ids);
            (!ids.is_empty()).then(|| ids[rng.gen_range(0..ids.len())].clone())
        };
        // 2024-01-01T00:00:00Z: messages and renames race for the top of the dialog list.
        let base = 1_704_067_200;
        let ev = match rng.gen_range(0..11) {
            0..=2 => incoming(d, base + rng.gen_range(0..20), "hi"),
            // A repeat (sync, history page): known, so it updates the stored copy.
            10 => match pick(&mut rng).and_then(|id| l.store.message(&id).unwrap()) {
                Some(m) if !m.outgoing => {
                    let mut again = incoming(&m.dialog_id, m.date_sent, "hi again");
                    if let ChatEvent::Message(r) = &mut again {
                        r.id = m.id;
                    }
                    again
                }
                _ => return,
            },
            3 => {
                let m = OutgoingMessage {
                    dialog_id: d.clone(),
                    recipient_id: Some(PEER),
                    body: "echo".into(),
                    attachments: Vec::new(),
                    custom: Default::default(),
                    save_to_history: true,
                    date_sent: Some(base + rng.gen_range(0..20)),
                    markable: false,
                    silent: false,
                };
                let m = c.send_queue().enqueue_message(m, Vec::new()).unwrap();
                lock(ids).push(m.id);
                return;
            }
            4 => {
                let renamed = Dialog {
                    id: d.clone(),
                    name: Some(format!("n{}", rng.gen_range(0..100))),
                    updated_at: Some(format!("2024-01-01T00:00:{:02}Z", rng.gen_range(0..60))),
                    ..Dialog::default()
                };
                c.dialogs_changed(&[renamed]);
                return;
            }
            5 => match pick(&mut rng) {
                Some(id) => ChatEvent::Sent { message_id: id },
                None => return,
            },
            6 => match pick(&mut rng) {
                Some(id) => ChatEvent::Edited {
                    message_id: id,
                    dialog_id: Some(d.clone()),
                    user_id: PEER,
                    body: format!("edit {}", rng.gen::<u8>()),
                    last: false,
                },
                None => return,
            },
            7 => match pick(&mut rng) {
                Some(id) => ChatEvent::Deleted {
                    message_id: id,
                    dialog_id: Some(d.clone()),
                    user_id: PEER,
                },
                None => return,
            },
            8 => match pick(&mut rng) {
                Some(id) => ChatEvent::Reactions {
                    message_id: id,
                    dialog_id: Some(d.clone()),
                    user_id: PEER,
                    add: vec!["+1".into()],
                    remove: Vec::new(),
                },
                None => return,
            },
            _ => match pick(&mut rng) {
                Some(id) => ChatEvent::Read {
                    message_id: id,
                    dialog_id: Some(d.clone()),
                    user_id: PEER,
                },
                None => return,
            },
        };
        if let ChatEvent::Message(m) = &ev {
            if !lock(ids).contains(&m.id) {
                lock(ids).push(m.id.clone());
            }
        }
        burst.push(ev);
    }

    enum Opened {
        Timeline(String, Vec<LocalMessage>, EventStream<TimelineEvent>),
        Dialogs(Vec<Dialog>, EventStream<DialogsEvent>),
    }

    /// The snapshot with every diff received so far applied, and how many there were.
    fn rebuild<T>(mut list: Vec<T>, rx: &mut EventStream<VectorDiff<T>>) -> (Vec<T>, usize) {
        let mut n = 0;
        while let Ok(d) = rx.try_recv() {
            d.apply(&mut list).unwrap();
            n += 1;
        }
        (list, n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn views_rebuilt_from_diffs_equal_a_fresh_read() {
        let c = Client::new(crate::Config::new(7, "k", "https://api.example.com")).unwrap();
        let l = c.local_for(ME).unwrap();
        let dialogs: Vec<String> = (0..3).map(|_| new_id()).collect();
        let seed: Vec<Dialog> = dialogs
            .iter()
            .map(|id| Dialog {
                id: id.clone(),
                occupants_ids: vec![ME, PEER],
                updated_at: Some("2024-01-01T00:00:00Z".into()),
                ..Dialog::default()
            })
            .collect();
        c.dialogs_changed(&seed);
        let (mut views, mut diffs, mut dialog_diffs) = (0, 0, 0);
        for _round in 0..50 {
            let ids = Arc::new(Mutex::new(Vec::new()));
            let mut writers = Vec::new();
            for _ in 0..3 {
                let (c, l, dialogs, ids) = (c.clone(), l.clone(), dialogs.clone(), ids.clone());
                writers.push(tokio::spawn(async move {
                    for _ in 0..30 {
                        // Bursts of 1 to 4 events, as queued when the applier wakes.
                        let mut burst = Vec::new();
                        for _ in 0..rand::random::<u32>() % 4 + 1 {
                            one_change(&c, &l, &dialogs, &ids, &mut burst);
                        }
                        apply_burst(&c, &l, burst);
                        if rand::random::<bool>() {
                            tokio::task::yield_now().await;
                        }
                    }
                }));
            }
            let mut openers = Vec::new();
            for _ in 0..2 {
                let (c, dialogs) = (c.clone(), dialogs.clone());
                openers.push(tokio::spawn(async move {
                    let mut opened = Vec::new();
                    for _ in 0..3 {
                        let pause: u32 = rand::random::<u32>() % 20;
                        for _ in 0..pause {
                            tokio::task::yield_now().await;
                        }
                        let n = rand::random::<u32>() % 14 + 1;
                        opened.push(if rand::random::<bool>() {
                            let d = dialogs[rand::random::<usize>() % dialogs.len()].clone();
                            let (snap, rx) = c.timeline().watch_timeline(&d, n).unwrap();
                            Opened::Timeline(d, snap, rx)
                        } else {
                            let (snap, rx) = c.timeline().watch_dialogs(n % 4 + 1).unwrap();
                            Opened::Dialogs(snap, rx)
                        });
                    }
                    opened
                }));
            }
            for w in writers {
                w.await.unwrap();
            }
            for o in openers {
                for v in o.await.unwrap() {
                    views += 1;
                    match v {
                        Opened::Timeline(d, snap, mut rx) => {
                            let bound = snap.first().map(|m| (m.date_sent, m.seq));
                            let (seen, n) = rebuild(snap, &mut rx);
                            diffs += n;
                            assert_eq!(seen, l.store.timeline_from(&d, bound).unwrap());
                            if !seen.is_empty() {
                                let (fresh, _rx) =
                                    c.timeline().watch_timeline(&d, seen.len() as u32).unwrap();
                                assert_eq!(seen, fresh);
                            }
                        }
                        Opened::Dialogs(snap, mut rx) => {
                            let (seen, n) = rebuild(snap, &mut rx);
                            dialog_diffs += n;
                            let fresh = c
                                .timeline()
                                .dialogs_page(seen.len().max(1) as u32, None)
                                .unwrap();
                            assert_eq!(seen, fresh[..seen.len()]);
                        }
                    }
                }
            }
        }
        assert_eq!(views, 300);
        assert!(diffs > 0 && dialog_diffs > 0, "{diffs} {dialog_diffs}");
    }

    #[tokio::test]
    async fn a_burst_from_an_unknown_dialog_is_stored_and_fetches_it_once() {
        let c = Client::new(crate::Config::new(7, "k", "https://api.example.com")).unwrap();
        let l = c.local_for(ME).unwrap();
        let d = new_id();
        let base = 1_704_067_200;
        let burst: Vec<ChatEvent> = (0..100).map(|i| incoming(&d, base + i, "hi")).collect();
        apply_burst(&c, &l, burst);
        let stored = l.store.timeline(&d, None, 1000).unwrap();
        assert_eq!(stored.len(), 100, "every message, in order");
        assert!(stored.windows(2).all(|w| w[0].date_sent < w[1].date_sent));
        // One fetch registered (this runtime has not run it yet), not one per message.
        assert_eq!(lock(&l.refreshing).len(), 1);
        assert_eq!(lock(&l.refreshing).get(&d), Some(&false));
        // More messages meanwhile: the same fetch runs once more when it ends.
        for i in 0..10 {
            apply_burst(&c, &l, vec![incoming(&d, base + 100 + i, "hi")]);
        }
        assert_eq!(lock(&l.refreshing).len(), 1);
        assert_eq!(lock(&l.refreshing).get(&d), Some(&true));
        assert_eq!(l.store.timeline(&d, None, 1000).unwrap().len(), 110);
    }
}
