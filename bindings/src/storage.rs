//! Cloud storage for apps: upload a file or bytes, download to a file, both with a progress
//! listener and a [`CancelToken`]; blob info, URLs, rename, delete, list; and the attachment
//! record of an uploaded blob.

use std::path::PathBuf;
use std::sync::Arc;

use cubechat_core::storage as core;
use cubechat_wire::chat as wire;

use crate::chat::Attachment;
use crate::client::ChatClient;
use crate::error::ChatError;
use crate::handle::Listener;
use crate::runtime::run;

/// A file in cloud storage.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Blob {
    /// Numeric id: rename, delete and info by id use it.
    pub id: u64,
    /// The download key: attachments and URLs use it.
    pub uid: String,
    /// The file name.
    pub name: Option<String>,
    /// The MIME type.
    pub content_type: Option<String>,
    /// Bytes; `None` until the upload completed.
    pub size: Option<u64>,
    /// Public blobs download without a session token.
    pub public: bool,
    /// ISO 8601.
    pub created_at: Option<String>,
    /// ISO 8601.
    pub updated_at: Option<String>,
}

impl From<wire::Blob> for Blob {
    fn from(b: wire::Blob) -> Self {
        Self {
            id: b.id,
            uid: b.uid,
            name: b.name,
            content_type: b.content_type,
            size: b.size,
            public: b.public,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

impl From<Blob> for wire::Blob {
    fn from(b: Blob) -> Self {
        Self {
            id: b.id,
            uid: b.uid,
            name: b.name,
            content_type: b.content_type,
            size: b.size,
            public: b.public,
            created_at: b.created_at,
            updated_at: b.updated_at,
            blob_object_access: None,
        }
    }
}

/// A page of the user's blobs.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
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

/// Options of an upload.
#[derive(Debug, Clone, Default, PartialEq, uniffi::Record)]
pub struct UploadOptions {
    /// The blob's name; defaults to the file name (or "file" for bytes).
    #[uniffi(default)]
    pub name: Option<String>,
    /// MIME type; defaults to a guess from the name's extension.
    #[uniffi(default)]
    pub content_type: Option<String>,
    /// Public blobs download without a session token. Default: private.
    #[uniffi(default = false)]
    pub public: bool,
}

/// Receives the progress of an upload or a download: once at 0, about once per percent,
/// and once at the end.
///
/// Threads: called synchronously inside the transfer, on one of the library's two runtime
/// threads; return quickly (hand the numbers to your UI thread), since a blocking call
/// holds up that thread's other work until it returns.
#[uniffi::export(foreign)]
pub trait TransferListener: Send + Sync {
    /// `done` bytes of `total` (0 when the total is unknown).
    ///
    /// An error or exception raised here is logged once per transfer; the transfer goes on.
    fn on_progress(&self, done: u64, total: u64) -> Result<(), ChatError>;
}

/// Cancels the transfers it is passed to. Cancelling is permanent: make a new token for the
/// next transfer. Cancelling the calling coroutine or task works too.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelToken(core::CancelToken);

#[uniffi::export]
impl CancelToken {
    /// A token not yet cancelled.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Stops every transfer using this token; they fail with `ChatError.Cancelled`.
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

fn progress_fn(listener: Option<Arc<dyn TransferListener>>) -> Option<core::ProgressFn> {
    listener.map(|l| {
        let once = Listener::new("TransferListener");
        let f: core::ProgressFn = Arc::new(move |p: core::TransferProgress| {
            once.deliver(|| l.on_progress(p.done, p.total));
        });
        f
    })
}

/// The attachment record of an uploaded blob, ready for a message: `kind` from its content
/// type (`image`, `video`, `audio`, else `file`), plus id, UID, name, size and content type.
/// Set `width`/`height`/`duration` yourself when you know them.
#[uniffi::export]
pub fn attachment_from_blob(blob: Blob) -> Attachment {
    wire::Attachment::from_blob(&blob.into()).into()
}

#[uniffi::export]
impl ChatClient {
    /// Uploads the file at `path` (streamed, at most 100 MB) and returns the complete blob.
    /// Errors: `InvalidInput` (missing, empty or too large file; nothing sent), `Cancelled`
    /// (the half-made blob is deleted), `Network`, `NotLoggedIn`.
    pub async fn upload_file(
        &self,
        path: String,
        options: UploadOptions,
        listener: Option<Arc<dyn TransferListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Blob, ChatError> {
        self.upload(
            core::UploadSource::File(PathBuf::from(path)),
            options,
            listener,
            cancel,
        )
        .await
    }

    /// Uploads bytes (at most 100 MB) and returns the complete blob. Errors as `upload_file`.
    pub async fn upload_bytes(
        &self,
        data: Vec<u8>,
        options: UploadOptions,
        listener: Option<Arc<dyn TransferListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Blob, ChatError> {
        self.upload(core::UploadSource::Bytes(data), options, listener, cancel)
            .await
    }

    /// Downloads the blob `uid` into the file at `path` (replaced only once the download is
    /// complete; a failed or cancelled download leaves no file). Returns the byte count.
    /// Errors: `NotFound`, `NotLoggedIn` (private blob without a session), `Cancelled`,
    /// `Network`, `InvalidInput` (bad UID or destination folder).
    pub async fn download_file(
        &self,
        uid: String,
        path: String,
        listener: Option<Arc<dyn TransferListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<u64, ChatError> {
        let c = self.core();
        let progress = progress_fn(listener);
        run(async move {
            let token = cancel.map(|t| t.0.clone());
            c.files()
                .download(&uid, &PathBuf::from(path), progress, token.as_ref())
                .await
        })
        .await
    }

    /// The download URL of a blob: `private` adds the session token (a secret: give the URL
    /// only to a trusted loader). Errors: `NotLoggedIn` for a private URL without a session.
    pub fn blob_url(&self, uid: String, private: bool) -> Result<String, ChatError> {
        self.core()
            .files()
            .blob_url(&uid, private)
            .map_err(ChatError::from)
    }

    /// The download URL the service issues for a blob.
    pub async fn blob_download_url(&self, uid: String) -> Result<String, ChatError> {
        let c = self.core();
        run(async move { c.files().blob_download_url(&uid).await }).await
    }

    /// A blob by id (the owner's, or any public one).
    pub async fn blob(&self, id: u64) -> Result<Blob, ChatError> {
        let c = self.core();
        run(async move { c.files().blob(id).await })
            .await
            .map(Into::into)
    }

    /// A blob by UID.
    pub async fn blob_by_uid(&self, uid: String) -> Result<Blob, ChatError> {
        let c = self.core();
        run(async move { c.files().blob_by_uid(&uid).await })
            .await
            .map(Into::into)
    }

    /// Renames a blob (owner only).
    pub async fn rename_blob(&self, id: u64, name: String) -> Result<Blob, ChatError> {
        let c = self.core();
        run(async move { c.files().rename_blob(id, &name).await })
            .await
            .map(Into::into)
    }

    /// Deletes a blob (owner only).
    pub async fn delete_blob(&self, id: u64) -> Result<(), ChatError> {
        let c = self.core();
        run(async move { c.files().delete_blob(id).await }).await
    }

    /// A page (from 1) of the user's blobs, newest first; `per_page` 1–100.
    pub async fn list_blobs(&self, page: u64, per_page: u64) -> Result<BlobPage, ChatError> {
        let c = self.core();
        let p = run(async move { c.files().list_blobs(page, per_page).await }).await?;
        Ok(BlobPage {
            current_page: p.current_page,
            per_page: p.per_page,
            total_entries: p.total_entries,
            items: p.items.into_iter().map(Into::into).collect(),
        })
    }
}

impl ChatClient {
    async fn upload(
        &self,
        source: core::UploadSource,
        options: UploadOptions,
        listener: Option<Arc<dyn TransferListener>>,
        cancel: Option<Arc<CancelToken>>,
    ) -> Result<Blob, ChatError> {
        let c = self.core();
        let progress = progress_fn(listener);
        let upload = core::NewUpload {
            source,
            name: options.name,
            content_type: options.content_type,
            public: options.public,
        };
        run(async move {
            let token = cancel.map(|t| t.0.clone());
            c.files().upload(upload, progress, token.as_ref()).await
        })
        .await
        .map(Into::into)
    }
}
