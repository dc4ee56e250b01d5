//! Cloud storage (protocol reference §5): attachments as blobs.
//!
//! [`Files::upload`] creates a blob, streams the file as a multipart form to the upload URL
//! the server returns, and marks the blob complete; [`Files::download`] streams a blob into a
//! file. Both report [`TransferProgress`] and stop on a [`CancelToken`] (or when their future
//! is dropped). A failed or cancelled upload deletes the half-made blob; a failed or cancelled
//! download leaves no file behind. Neither is bounded by the REST request timeout: a transfer
//! fails only when it makes no progress for that long.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cubechat_wire::chat::{Blob, BlobEnvelope};
use futures_util::stream;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use url::Url;

use crate::api::Api;
use crate::error::{Error, Result};

/// The largest file the service stores (100 MB).
pub const MAX_BLOB_BYTES: u64 = 100 * 1024 * 1024;
/// Bytes read from disk (or the network) per step; progress is reported at most per step.
const CHUNK: usize = 64 * 1024;
/// Longest blob name accepted.
const MAX_NAME: usize = 255;
/// Upper bound of one transfer; the stall timeout is what normally ends a stuck one.
const TRANSFER_CEILING: Duration = Duration::from_secs(24 * 3600);

/// How far a transfer got. `total` is 0 when the size is unknown (a download without
/// `Content-Length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferProgress {
    /// Bytes transferred so far.
    pub done: u64,
    /// Bytes to transfer in total (0 when unknown).
    pub total: u64,
}

/// Receives [`TransferProgress`] as a transfer moves: once at 0, then each time another
/// percent is done, and once at the end.
pub type ProgressFn = Arc<dyn Fn(TransferProgress) + Send + Sync>;

/// Cancels transfers it is given to. Cheap to clone; cancelling is permanent.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every transfer using this token, now and later.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Where the bytes of an upload come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A file on disk, streamed (never read whole into memory).
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

/// A file to upload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Where the bytes come from.
    pub source: UploadSource,
    /// The blob's name; defaults to the file name (or "file" for bytes).
    pub name: Option<String>,
    /// MIME type; defaults to a guess from the name's extension.
    pub content_type: Option<String>,
    /// Public blobs download without a token.
    pub public: bool,
}

/// A page of the caller's blobs (`GET /blobs`, deprecated by the service but served).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BlobPage {
    /// The page number (from 1).
    pub current_page: u64,
    /// The page size.
    pub per_page: u64,
    /// How many entries exist in total.
    pub total_entries: u64,
    /// The cloud files of this page.
    pub items: Vec<Blob>,
}

#[derive(Deserialize)]
struct RawBlobPage {
    current_page: u64,
    per_page: u64,
    total_entries: u64,
    items: Vec<BlobEnvelope>,
}

/// A MIME type for a file name, from its extension; `application/octet-stream` otherwise.
pub fn guess_content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "json" => "application/json",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

fn check_uid(uid: &str) -> Result<()> {
    if uid.is_empty() || uid.len() > 128 || !uid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::InvalidInput(
            "a blob UID is a non-empty string of letters and digits".into(),
        ));
    }
    Ok(())
}

fn check_id(id: u64) -> Result<()> {
    if id == 0 {
        return Err(Error::InvalidInput("a blob id must be positive".into()));
    }
    Ok(())
}

/// Reports progress at most once per percent (plus the start and the end).
struct Reporter {
    progress: Option<ProgressFn>,
    total: u64,
    next: AtomicU64,
}

impl Reporter {
    fn new(progress: Option<ProgressFn>, total: u64) -> Self {
        Self {
            progress,
            total,
            next: AtomicU64::new(0),
        }
    }

    fn report(&self, done: u64) {
        let Some(p) = &self.progress else { return };
        let next = self.next.load(Ordering::Relaxed);
        let finished = self.total > 0 && done >= self.total;
        if done < next && !finished {
            return;
        }
        if finished && next == u64::MAX {
            return;
        }
        let step = (self.total / 100).max(1);
        let following = if finished {
            u64::MAX
        } else {
            (done / step + 1) * step
        };
        self.next.store(following, Ordering::Relaxed);
        p(TransferProgress {
            done,
            total: self.total,
        });
    }
}

/// Runs `work` until it finishes, `cancel` fires, or `last_progress` is older than `stall`.
async fn supervise<T>(
    work: impl std::future::Future<Output = Result<T>>,
    cancel: Option<&CancelToken>,
    last_progress: &AtomicU64,
    started: Instant,
    stall: Duration,
) -> Result<T> {
    let cancelled = async {
        match cancel {
            Some(c) => c.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let watchdog = async {
        let tick = (stall / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(tick).await;
            let last = Duration::from_millis(last_progress.load(Ordering::Relaxed));
            if started.elapsed().saturating_sub(last) > stall {
                return;
            }
        }
    };
    tokio::select! {
        r = work => r,
        () = cancelled => Err(Error::Cancelled),
        () = watchdog => Err(Error::Network(format!(
            "the transfer made no progress for {} s", stall.as_secs()
        ))),
    }
}

fn mark(last_progress: &AtomicU64, started: Instant) {
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    last_progress.store(ms, Ordering::Relaxed);
}

/// Cloud files (`client.files()`): upload, download and manage blobs. A feature object over
/// the REST session ([`Api`]); cheap to clone.
#[derive(Clone, Debug)]
pub struct Files {
    api: Arc<Api>,
}

impl Files {
    /// The file endpoints over `api`.
    pub fn new(api: Arc<Api>) -> Self {
        Self { api }
    }

    /// Uploads a file or bytes and returns the complete blob (with its `size`). Put its `uid`
    /// (and `id`, `name`, `size`, `content_type`) into a message attachment.
    ///
    /// Checked before any request: the file exists and is a regular file, it is not empty and
    /// at most 100 MB, the name is at most 255 bytes. Errors: [`Error::Cancelled`] when
    /// `cancel` fires; a blob created before a failure is deleted again (best effort).
    pub async fn upload(
        &self,
        upload: NewUpload,
        progress: Option<ProgressFn>,
        cancel: Option<&CancelToken>,
    ) -> Result<Blob> {
        let (size, default_name) = match &upload.source {
            UploadSource::File(path) => {
                let meta = tokio::fs::metadata(path).await.map_err(|e| {
                    Error::InvalidInput(format!("cannot read {}: {e}", path.display()))
                })?;
                if !meta.is_file() {
                    return Err(Error::InvalidInput(format!(
                        "{} is not a regular file",
                        path.display()
                    )));
                }
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "file".into());
                (meta.len(), name)
            }
            UploadSource::Bytes(b) => (b.len() as u64, "file".to_owned()),
        };
        if size == 0 {
            return Err(Error::InvalidInput("the file is empty".into()));
        }
        if size > MAX_BLOB_BYTES {
            return Err(Error::InvalidInput(format!(
                "the file is {size} bytes; the maximum is {MAX_BLOB_BYTES}"
            )));
        }
        let name = upload
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(default_name);
        if name.len() > MAX_NAME {
            return Err(Error::InvalidInput(format!(
                "a blob name is at most {MAX_NAME} bytes"
            )));
        }
        let content_type = upload
            .content_type
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| guess_content_type(&name).to_owned());
        if cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Cancelled);
        }
        // The guard is armed from the moment the server answers the creation until the
        // upload ends either way: if this future is dropped at any point, the blob is deleted.
        let (blob, mut guard) = self
            .create_blob(
                json!({"blob": {
                    "name": name, "content_type": content_type, "public": upload.public,
                }}),
                cancel,
            )
            .await?;
        let sent = self
            .send_and_complete(&blob, upload.source, size, progress, cancel)
            .await;
        match sent {
            // The completed blob as the server now has it (size, `updated_at`); if that read
            // fails, the upload still succeeded and the known fields are returned.
            Ok(()) => {
                guard.id = None;
                Ok(self.blob(blob.id).await.unwrap_or(Blob {
                    size: Some(size),
                    blob_object_access: None,
                    ..blob
                }))
            }
            Err(e) => {
                // Nothing half-made stays behind; the original error is what matters. The
                // guard stays armed while deleting, so dropping this future now still deletes.
                if let Err(cleanup) = self.delete_blob(blob.id).await {
                    tracing::debug!(blob = blob.id, error = %cleanup, "could not delete an unfinished blob");
                }
                guard.id = None;
                Err(e)
            }
        }
    }

    /// Creates a blob record (`POST /blobs`) in a task of its own, so the answer is seen
    /// even when the caller stops waiting: the new blob travels with an armed
    /// [`UnfinishedBlob`], so if `cancel` fires or this future is dropped while the request
    /// is in flight (or before its answer is read), the blob is deleted at once.
    async fn create_blob(
        &self,
        body: serde_json::Value,
        cancel: Option<&CancelToken>,
    ) -> Result<(Blob, UnfinishedBlob)> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<(Blob, UnfinishedBlob)>>();
        let api = self.api.clone();
        let create = async move {
            let r = api
                .call::<BlobEnvelope>(Method::POST, "blobs", &[], Some(&body))
                .await
                .map(|e| {
                    let guard = UnfinishedBlob::armed(&api, e.blob.id);
                    (e.blob, guard)
                });
            // Nobody waits any more (cancelled or abandoned): dropping the answer here, or
            // later with the receiver, deletes the blob through its guard.
            drop(tx.send(r));
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(create)),
            // Not inside a runtime (cannot happen with reqwest): create inline.
            Err(_) => create.await,
        }
        let cancelled = async {
            match cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = rx => r.unwrap_or(Err(Error::Cancelled)),
            () = cancelled => Err(Error::Cancelled),
        }
    }

    async fn send_and_complete(
        &self,
        blob: &Blob,
        source: UploadSource,
        size: u64,
        progress: Option<ProgressFn>,
        cancel: Option<&CancelToken>,
    ) -> Result<()> {
        let params = blob
            .blob_object_access
            .as_ref()
            .and_then(|a| a.params.as_deref())
            .ok_or_else(|| Error::Protocol("the new blob has no upload URL".into()))?;
        let upload_url = Url::parse(params)
            .map_err(|_| Error::Protocol("the blob's upload URL is not a URL".into()))?;
        if !matches!(upload_url.scheme(), "http" | "https") {
            return Err(Error::Protocol("the blob's upload URL is not HTTP".into()));
        }
        let fields: Vec<(String, String)> = upload_url.query_pairs().into_owned().collect();
        let mut target = upload_url.clone();
        target.set_query(None);
        target.set_fragment(None);

        let boundary = format!("cubechat-{:032x}", rand::random::<u128>());
        let mut head = Vec::new();
        for (k, v) in &fields {
            head.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{v}\r\n",
                    form_name(k)
                )
                .as_bytes(),
            );
        }
        let file_name = form_name(blob.name.as_deref().unwrap_or("file"));
        let content_type = blob
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        head.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {}\r\n\r\n",
                form_name(&content_type)
            )
            .as_bytes(),
        );
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        let length = head.len() as u64 + size + tail.len() as u64;

        let started = Instant::now();
        let last_progress = Arc::new(AtomicU64::new(0));
        let reporter = Arc::new(Reporter::new(progress, size));
        reporter.report(0);
        let body = file_body(source, head, tail, {
            let reporter = reporter.clone();
            let last_progress = last_progress.clone();
            move |done| {
                mark(&last_progress, started);
                reporter.report(done);
            }
        })
        .await?;

        let mut req = self
            .api
            .rest()
            .http()
            .post(target.clone())
            .timeout(TRANSFER_CEILING)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body);
        // Like the JS SDK: the service's own headers never go to S3.
        if !target.as_str().contains("s3.amazonaws.com") {
            if let Some(token) = self.api.session_token() {
                req = req.header("CB-Token", token);
            }
            req = req.header("CB-SDK", crate::rest::SDK_HEADER);
        }
        let send = async {
            let resp = req.send().await.map_err(Error::from_transport)?;
            let status = resp.status();
            let after = crate::rest::retry_after(&resp);
            let text = crate::rest::read_error_body(resp).await;
            if status.is_success() {
                Ok(())
            } else {
                Err(crate::rest::response_error(status, after, &text))
            }
        };
        supervise(
            send,
            cancel,
            &last_progress,
            started,
            self.api.config().timeouts.request,
        )
        .await?;
        tracing::debug!(
            blob = blob.id,
            bytes = size,
            ms = started.elapsed().as_millis() as u64,
            "uploaded"
        );
        if cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Cancelled);
        }
        self.api
            .call_empty(
                Method::PUT,
                &format!("blobs/{}/complete", blob.id),
                &[],
                Some(&json!({"size": size})),
            )
            .await
    }

    /// Downloads the blob `uid` into `dest` (replacing it) and returns the number of bytes.
    /// The bytes go to a temporary file next to `dest`, renamed into place only when complete.
    /// Sends the session token if there is one (private blobs need it; public ones do not).
    pub async fn download(
        &self,
        uid: &str,
        dest: &Path,
        progress: Option<ProgressFn>,
        cancel: Option<&CancelToken>,
    ) -> Result<u64> {
        check_uid(uid)?;
        let file_name = dest
            .file_name()
            .ok_or_else(|| Error::InvalidInput("the destination has no file name".into()))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir()) {
            return Err(Error::InvalidInput(format!(
                "the destination folder {} does not exist",
                dir.display()
            )));
        }
        if cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(Error::Cancelled);
        }
        let partial = dir.join(format!(
            ".{}.{:016x}.part",
            file_name.to_string_lossy(),
            rand::random::<u64>()
        ));
        // Removes the partial file however this future ends: error, cancel token, or being
        // dropped (the app cancelled its task).
        let mut guard = PartialFile(Some(partial.clone()));
        let n = self.download_to(uid, &partial, progress, cancel).await?;
        tokio::fs::rename(&partial, dest)
            .await
            .map_err(|e| Error::InvalidInput(format!("cannot write {}: {e}", dest.display())))?;
        guard.0 = None;
        Ok(n)
    }

    async fn download_to(
        &self,
        uid: &str,
        partial: &Path,
        progress: Option<ProgressFn>,
        cancel: Option<&CancelToken>,
    ) -> Result<u64> {
        let url = self.api.rest().url(&["blobs", uid], false)?;
        let started = Instant::now();
        let last_progress = AtomicU64::new(0);
        let work = async {
            let token = self.api.session_token();
            let mut resp = self.get_blob_bytes(&url, token.as_deref()).await;
            if let (Err(Error::SessionExpired(_)), Some(stale)) = (&resp, &token) {
                let fresh = self.api.renew_session(stale).await?;
                resp = self.get_blob_bytes(&url, Some(&fresh)).await;
            }
            if token.is_none() && matches!(resp, Err(Error::SessionExpired(_))) {
                return Err(Error::NotLoggedIn);
            }
            let mut resp = resp?;
            let total = resp.content_length().unwrap_or(0);
            if total > MAX_BLOB_BYTES {
                return Err(Error::Protocol(format!(
                    "the blob is {total} bytes, over the {MAX_BLOB_BYTES} limit"
                )));
            }
            let reporter = Reporter::new(progress, total);
            reporter.report(0);
            let mut file = tokio::fs::File::create(partial).await.map_err(|e| {
                Error::InvalidInput(format!("cannot write {}: {e}", partial.display()))
            })?;
            let mut done = 0u64;
            while let Some(chunk) = resp.chunk().await.map_err(Error::from_transport)? {
                done += chunk.len() as u64;
                if done > MAX_BLOB_BYTES {
                    return Err(Error::Protocol(format!(
                        "the blob is over the {MAX_BLOB_BYTES} bytes limit"
                    )));
                }
                file.write_all(&chunk).await.map_err(|e| {
                    Error::InvalidInput(format!("cannot write {}: {e}", partial.display()))
                })?;
                mark(&last_progress, started);
                reporter.report(done);
            }
            if total > 0 && done != total {
                return Err(Error::Network(format!(
                    "the download ended after {done} of {total} bytes"
                )));
            }
            file.flush().await.map_err(|e| {
                Error::InvalidInput(format!("cannot write {}: {e}", partial.display()))
            })?;
            file.sync_all().await.map_err(|e| {
                Error::InvalidInput(format!("cannot write {}: {e}", partial.display()))
            })?;
            if total == 0 {
                Reporter::new(reporter.progress.clone(), done).report(done);
            }
            Ok(done)
        };
        let n = supervise(
            work,
            cancel,
            &last_progress,
            started,
            self.api.config().timeouts.request,
        )
        .await?;
        tracing::debug!(
            bytes = n,
            ms = started.elapsed().as_millis() as u64,
            "downloaded"
        );
        Ok(n)
    }

    async fn get_blob_bytes(&self, url: &Url, token: Option<&str>) -> Result<reqwest::Response> {
        let mut req = self
            .api
            .rest()
            .http()
            .get(url.clone())
            .timeout(TRANSFER_CEILING)
            .header("CB-SDK", crate::rest::SDK_HEADER);
        if let Some(t) = token {
            req = req.header("CB-Token", t);
        }
        let resp = req.send().await.map_err(Error::from_transport)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let after = crate::rest::retry_after(&resp);
        let body = crate::rest::read_error_body(resp).await;
        Err(crate::rest::response_error(status, after, &body))
    }

    /// The download URL of a blob, as the JS SDK builds it: `{api}/blobs/{uid}` for a public
    /// blob, plus `?token={session token}` for a private one ([`Error::NotLoggedIn`] without a
    /// session). The private URL carries a secret: hand it only to a trusted image loader.
    pub fn blob_url(&self, uid: &str, private: bool) -> Result<String> {
        check_uid(uid)?;
        let mut url = self.api.rest().url(&["blobs", uid], false)?;
        if private {
            let token = self.api.session_token().ok_or(Error::NotLoggedIn)?;
            url.query_pairs_mut().append_pair("token", &token);
        }
        Ok(url.into())
    }

    /// The blob with this numeric id (its owner, or anyone for a public blob).
    pub async fn blob(&self, id: u64) -> Result<Blob> {
        check_id(id)?;
        let e: BlobEnvelope = self
            .api
            .call(Method::GET, &format!("blobs/{id}"), &[], None)
            .await?;
        Ok(e.blob)
    }

    /// The blob with this UID (`GET /blobs/{uid}.json`).
    pub async fn blob_by_uid(&self, uid: &str) -> Result<Blob> {
        check_uid(uid)?;
        let e: BlobEnvelope = self
            .api
            .call(Method::GET, &format!("blobs/{uid}"), &[], None)
            .await?;
        Ok(e.blob)
    }

    /// The download URL the service issues for a blob (`GET /blobs/{uid}/object`).
    pub async fn blob_download_url(&self, uid: &str) -> Result<String> {
        check_uid(uid)?;
        let e: BlobEnvelope = self
            .api
            .call(
                Method::GET,
                &format!("blobs/{uid}/object"),
                &[("download_url".into(), "1".into())],
                None,
            )
            .await?;
        e.blob
            .blob_object_access
            .and_then(|a| a.download_url.or(a.params))
            .ok_or_else(|| Error::Protocol("the blob object has no download URL".into()))
    }

    /// Renames a blob (owner only).
    pub async fn rename_blob(&self, id: u64, name: &str) -> Result<Blob> {
        check_id(id)?;
        if name.trim().is_empty() || name.len() > MAX_NAME {
            return Err(Error::InvalidInput(format!(
                "a blob name is 1 to {MAX_NAME} bytes"
            )));
        }
        let e: BlobEnvelope = self
            .api
            .call(
                Method::PUT,
                &format!("blobs/{id}"),
                &[],
                Some(&json!({"blob": {"name": name}})),
            )
            .await?;
        Ok(e.blob)
    }

    /// Deletes a blob and its bytes (owner only).
    pub async fn delete_blob(&self, id: u64) -> Result<()> {
        check_id(id)?;
        self.api
            .call_empty(Method::DELETE, &format!("blobs/{id}"), &[], None)
            .await
    }

    /// A page (1-based) of the caller's blobs, newest first; `per_page` is 1–100.
    pub async fn list_blobs(&self, page: u64, per_page: u64) -> Result<BlobPage> {
        if page == 0 || !(1..=100).contains(&per_page) {
            return Err(Error::InvalidInput(
                "page starts at 1 and per_page is 1 to 100".into(),
            ));
        }
        let raw: RawBlobPage = self
            .api
            .call(
                Method::GET,
                "blobs",
                &[
                    ("page".into(), page.to_string()),
                    ("per_page".into(), per_page.to_string()),
                ],
                None,
            )
            .await?;
        Ok(BlobPage {
            current_page: raw.current_page,
            per_page: raw.per_page,
            total_entries: raw.total_entries,
            items: raw.items.into_iter().map(|e| e.blob).collect(),
        })
    }
}

/// Deletes the file at its path when dropped, unless disarmed (`.0 = None`).
struct PartialFile(Option<PathBuf>);

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Deletes a created but unfinished blob when dropped (the upload failed, was cancelled, or
/// its future was dropped mid-way), unless disarmed (`id = None`): the deletion runs as a
/// task on the runtime that created the blob.
struct UnfinishedBlob {
    api: std::sync::Weak<Api>,
    id: Option<u64>,
    rt: Option<tokio::runtime::Handle>,
}

impl UnfinishedBlob {
    fn armed(api: &Arc<Api>, id: u64) -> Self {
        Self {
            api: Arc::downgrade(api),
            id: Some(id),
            rt: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

impl Drop for UnfinishedBlob {
    fn drop(&mut self) {
        let (Some(id), Some(api)) = (self.id.take(), self.api.upgrade()) else {
            return;
        };
        let Some(rt) = self
            .rt
            .take()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            return;
        };
        rt.spawn(async move {
            if let Err(e) = Files::new(api).delete_blob(id).await {
                tracing::debug!(blob = id, error = %e, "could not delete an abandoned blob");
            }
        });
    }
}

/// A form field name or file name, with the characters that would break the header escaped.
fn form_name(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "%22")
        .replace(['\r', '\n'], " ")
}

/// The multipart body: `head`, the source's bytes read in [`CHUNK`]s (each reported to
/// `on_sent` as the running total), then `tail`.
async fn file_body(
    source: UploadSource,
    head: Vec<u8>,
    tail: Vec<u8>,
    on_sent: impl Fn(u64) + Send + Sync + 'static,
) -> Result<reqwest::Body> {
    enum Src {
        File(tokio::fs::File),
        Bytes(Vec<u8>, usize),
    }
    let src = match source {
        UploadSource::File(path) => Src::File(
            tokio::fs::File::open(&path)
                .await
                .map_err(|e| Error::InvalidInput(format!("cannot read {}: {e}", path.display())))?,
        ),
        UploadSource::Bytes(b) => Src::Bytes(b, 0),
    };
    // States: 0 = head, 1 = file bytes, 2 = tail, 3 = done.
    let state = (0u8, src, Some(head), Some(tail), 0u64);
    let on_sent = Arc::new(on_sent);
    let s = stream::unfold(state, move |(step, mut src, head, tail, sent)| {
        let on_sent = on_sent.clone();
        async move {
            match step {
                0 => {
                    let h = head.unwrap_or_default();
                    Some((Ok(h), (1, src, None, tail, sent)))
                }
                1 => {
                    let chunk = match &mut src {
                        Src::File(f) => {
                            let mut buf = vec![0u8; CHUNK];
                            match f.read(&mut buf).await {
                                Ok(n) => {
                                    buf.truncate(n);
                                    Ok(buf)
                                }
                                Err(e) => Err(e),
                            }
                        }
                        Src::Bytes(b, at) => {
                            let end = (*at + CHUNK).min(b.len());
                            let out = b[*at..end].to_vec();
                            *at = end;
                            Ok(out)
                        }
                    };
                    match chunk {
                        Ok(c) if c.is_empty() => {
                            let t = tail.unwrap_or_default();
                            Some((Ok(t), (3, src, None, None, sent)))
                        }
                        Ok(c) => {
                            let sent = sent + c.len() as u64;
                            on_sent(sent);
                            Some((Ok(c), (1, src, None, tail, sent)))
                        }
                        Err(e) => Some((Err(e), (3, src, None, None, sent))),
                    }
                }
                _ => None,
            }
        }
    });
    Ok(reqwest::Body::wrap_stream(s))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn guesses_content_types() {
        assert_eq!(guess_content_type("a.JPG"), "image/jpeg");
        assert_eq!(guess_content_type("clip.mp4"), "video/mp4");
        assert_eq!(guess_content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn reporter_reports_each_percent_once_and_the_end() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let r = Reporter::new(
            Some(Arc::new(move |p: TransferProgress| {
                s.lock().unwrap().push(p.done)
            })),
            1000,
        );
        for done in (0..=1000).step_by(3) {
            r.report(done);
        }
        r.report(1000);
        r.report(1000);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first(), Some(&0));
        assert_eq!(seen.last(), Some(&1000));
        assert!(seen.len() <= 102, "{}", seen.len());
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seen.iter().filter(|d| **d == 1000).count(), 1);
    }

    #[tokio::test]
    async fn cancel_token_wakes_waiters() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.cancelled().await });
        tokio::task::yield_now().await;
        assert!(!t.is_cancelled());
        t.cancel();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        // Already cancelled: returns at once.
        t.cancelled().await;
    }

    mod mocked {
        use super::*;
        use crate::{Client, Config};
        use serde_json::Value;
        use tokio::io::AsyncReadExt;
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        async fn logged_in(server: &MockServer, params: &str) -> Arc<Client> {
            Mock::given(method("GET"))
                .and(path("/session.json"))
                .respond_with(ResponseTemplate::new(200).set_body_json(
                    json!({"session": {"id": 1, "user_id": 3, "application_id": 7, "token": "t", "ts": 0}}),
                ))
                .mount(server)
                .await;
            let blob: Value = json!({"blob": {"id": 5, "uid": "abc", "content_type": "text/plain",
                "blob_object_access": {"id": 5, "blob_id": 5, "params": params}}});
            Mock::given(method("POST"))
                .and(path("/blobs.json"))
                .respond_with(ResponseTemplate::new(201).set_body_json(blob))
                .mount(server)
                .await;
            Mock::given(method("DELETE"))
                .and(path("/blobs/5.json"))
                .respond_with(ResponseTemplate::new(200))
                .expect(1)
                .mount(server)
                .await;
            let mut cfg = Config::new(7, "key-7", server.uri());
            cfg.timeouts.request = Duration::from_millis(800);
            let c = Client::new(cfg).unwrap();
            c.auth().use_token("t").await.unwrap();
            c
        }

        fn bytes(n: usize) -> NewUpload {
            NewUpload {
                source: UploadSource::Bytes(vec![7; n]),
                name: None,
                content_type: None,
                public: false,
            }
        }

        /// An upload target that swallows the body and never answers: the stall timeout
        /// ends the upload, and the unfinished blob is deleted.
        #[tokio::test]
        async fn stalled_upload_fails_and_cleans_up() {
            let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = sink.local_addr().unwrap().port();
            tokio::spawn(async move {
                while let Ok((mut sock, _)) = sink.accept().await {
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 65536];
                        while sock.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                    });
                }
            });
            let server = MockServer::start().await;
            let c = logged_in(
                &server,
                &format!("http://127.0.0.1:{port}/up?key=abc&signature=s"),
            )
            .await;
            let r = tokio::time::timeout(
                Duration::from_secs(20),
                c.files().upload(bytes(1 << 20), None, None),
            )
            .await
            .unwrap();
            assert!(
                matches!(&r, Err(Error::Network(m)) if m.contains("no progress")),
                "{r:?}"
            );
        }

        /// Waits (bounded) until the server saw `n` deletions of blob 5.
        async fn deletions(server: &MockServer, n: usize) -> usize {
            let mut seen = 0;
            for _ in 0..500 {
                seen = server
                    .received_requests()
                    .await
                    .unwrap_or_default()
                    .iter()
                    .filter(|r| r.method.as_str() == "DELETE" && r.url.path() == "/blobs/5.json")
                    .count();
                if seen >= n {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }

        /// The app gives up (drops the upload, or cancels its token) while the blob's
        /// creation is still in flight: once the server answers, the new blob is deleted.
        #[tokio::test]
        async fn abandoned_while_creating_deletes_the_blob() {
            for by_token in [false, true] {
                let server = MockServer::start().await;
                Mock::given(method("GET"))
                    .and(path("/session.json"))
                    .respond_with(ResponseTemplate::new(200).set_body_json(
                        json!({"session": {"id": 1, "user_id": 3, "application_id": 7, "token": "t", "ts": 0}}),
                    ))
                    .mount(&server)
                    .await;
                let blob: Value = json!({"blob": {"id": 5, "uid": "abc",
                    "blob_object_access": {"id": 5, "blob_id": 5, "params": "http://127.0.0.1:1/up"}}});
                Mock::given(method("POST"))
                    .and(path("/blobs.json"))
                    .respond_with(
                        ResponseTemplate::new(201)
                            .set_body_json(blob)
                            .set_delay(Duration::from_millis(300)),
                    )
                    .mount(&server)
                    .await;
                Mock::given(method("DELETE"))
                    .and(path("/blobs/5.json"))
                    .respond_with(ResponseTemplate::new(200))
                    .mount(&server)
                    .await;
                let c = Client::new(Config::new(7, "key-7", server.uri())).unwrap();
                c.auth().use_token("t").await.unwrap();
                let token = CancelToken::new();
                let files = c.files();
                let upload = files.upload(bytes(3), None, Some(&token));
                // Give up once the creation request has reached the server.
                let asked = async {
                    for _ in 0..500 {
                        let posts = server
                            .received_requests()
                            .await
                            .unwrap_or_default()
                            .iter()
                            .any(|r| r.method.as_str() == "POST");
                        if posts {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                if by_token {
                    let t = token.clone();
                    let (r, ()) = tokio::join!(upload, async {
                        asked.await;
                        t.cancel();
                    });
                    assert_eq!(r, Err(Error::Cancelled));
                } else {
                    tokio::select! {
                        r = upload => panic!("finished: {r:?}"),
                        () = asked => {}
                    }
                }
                assert_eq!(deletions(&server, 1).await, 1, "by_token={by_token}");
            }
        }

        #[tokio::test]
        async fn malformed_upload_url_is_a_protocol_error() {
            let server = MockServer::start().await;
            let c = logged_in(&server, "ftp://x/y").await;
            let r = c.files().upload(bytes(3), None, None).await;
            assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
        }
    }

    #[test]
    fn uid_rules() {
        assert!(check_uid("0da38eb7c55d2debbff0913fb596a528").is_ok());
        assert!(check_uid("").is_err());
        assert!(check_uid("../etc").is_err());
        assert!(check_id(0).is_err());
    }
}
