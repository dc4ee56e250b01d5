//! Cloud storage (protocol reference §5): blob records and their bytes. A blob is created
//! empty with a one-time upload secret, receives its bytes through the multipart upload, and
//! becomes downloadable once the owner marks it complete. Nothing here knows about HTTP.

use cubechat_wire::chat::Blob;
use cubechat_wire::time::iso8601;
use rusqlite::{params, Connection, OptionalExtension, Row};

/// One stored blob (without its bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlobRow {
    pub id: u64,
    pub uid: String,
    pub app_id: u64,
    pub user_id: u64,
    pub name: Option<String>,
    pub content_type: Option<String>,
    pub public: bool,
    /// The size declared on completion (the uploaded length).
    pub size: Option<u64>,
    pub upload_secret: String,
    pub upload_expires_at: i64,
    /// Length of the uploaded bytes, 0 before the upload.
    pub uploaded: u64,
    pub completed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl BlobRow {
    /// The wire object, without `blob_object_access`.
    pub fn to_wire(&self) -> Blob {
        Blob {
            id: self.id,
            uid: self.uid.clone(),
            content_type: self.content_type.clone(),
            name: self.name.clone(),
            size: self.size,
            public: self.public,
            created_at: Some(iso8601(self.created_at)),
            updated_at: Some(iso8601(self.updated_at)),
            blob_object_access: None,
        }
    }

    /// Whether the bytes can be downloaded.
    pub fn is_complete(&self) -> bool {
        self.completed_at.is_some()
    }
}

/// What a new blob needs.
#[derive(Debug, Clone)]
pub struct NewBlob<'a> {
    pub app_id: u64,
    pub user_id: u64,
    pub name: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub public: bool,
    pub upload_secret: &'a str,
    pub upload_expires_at: i64,
}

const COLUMNS: &str = "id, uid, app_id, user_id, name, content_type, public, size, upload_secret, \
                       upload_expires_at, uploaded, completed_at, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<BlobRow> {
    Ok(BlobRow {
        id: r.get(0)?,
        uid: r.get(1)?,
        app_id: r.get(2)?,
        user_id: r.get(3)?,
        name: r.get(4)?,
        content_type: r.get(5)?,
        public: r.get(6)?,
        size: r.get(7)?,
        upload_secret: r.get(8)?,
        upload_expires_at: r.get(9)?,
        uploaded: r.get(10)?,
        completed_at: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// Inserts a new empty blob with the given `uid`.
pub fn create(c: &Connection, b: &NewBlob<'_>, uid: &str, now: i64) -> rusqlite::Result<BlobRow> {
    c.execute(
        "INSERT INTO blobs(uid, app_id, user_id, name, content_type, public, upload_secret,
                           upload_expires_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            uid,
            b.app_id,
            b.user_id,
            b.name,
            b.content_type,
            b.public,
            b.upload_secret,
            b.upload_expires_at,
            now
        ],
    )?;
    let id = u64::try_from(c.last_insert_rowid()).unwrap_or_default();
    by_id(c, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// The blob with this numeric id.
pub fn by_id(c: &Connection, id: u64) -> rusqlite::Result<Option<BlobRow>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM blobs WHERE id = ?1"),
        [id],
        row,
    )
    .optional()
}

/// The blob with this UID.
pub fn by_uid(c: &Connection, uid: &str) -> rusqlite::Result<Option<BlobRow>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM blobs WHERE uid = ?1"),
        [uid],
        row,
    )
    .optional()
}

/// Stores (or replaces) the bytes of a blob.
pub fn store_bytes(c: &Connection, id: u64, bytes: &[u8], now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO blob_data(blob_id, bytes) VALUES (?1, ?2)
         ON CONFLICT(blob_id) DO UPDATE SET bytes = excluded.bytes",
        params![id, bytes],
    )?;
    c.execute(
        "UPDATE blobs SET uploaded = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, bytes.len(), now],
    )?;
    Ok(())
}

/// The bytes of a blob, if uploaded.
pub fn bytes(c: &Connection, id: u64) -> rusqlite::Result<Option<Vec<u8>>> {
    c.query_row(
        "SELECT bytes FROM blob_data WHERE blob_id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()
}

/// Marks a blob complete with its size.
pub fn complete(c: &Connection, id: u64, size: u64, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE blobs SET size = ?2, completed_at = ?3, updated_at = ?3 WHERE id = ?1",
        params![id, size, now],
    )?;
    Ok(())
}

/// Renames a blob.
pub fn rename(c: &Connection, id: u64, name: &str, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE blobs SET name = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, name, now],
    )?;
    Ok(())
}

/// Deletes a blob and its bytes.
pub fn delete(c: &Connection, id: u64) -> rusqlite::Result<bool> {
    Ok(c.execute("DELETE FROM blobs WHERE id = ?1", [id])? > 0)
}

/// A page of the user's blobs, newest first, and the total.
pub fn list(
    c: &Connection,
    app_id: u64,
    user_id: u64,
    limit: u64,
    skip: u64,
) -> rusqlite::Result<(Vec<BlobRow>, u64)> {
    let total = c.query_row(
        "SELECT COUNT(*) FROM blobs WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
        |r| r.get(0),
    )?;
    let mut stmt = c.prepare(&format!(
        "SELECT {COLUMNS} FROM blobs WHERE app_id = ?1 AND user_id = ?2
         ORDER BY id DESC LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = stmt
        .query_map(params![app_id, user_id, limit, skip], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn lifecycle() {
        let db = Db::open(":memory:").unwrap();
        db.with(|c| {
            let new = NewBlob {
                app_id: 7,
                user_id: 3,
                name: Some("a.txt"),
                content_type: Some("text/plain"),
                public: false,
                upload_secret: "s",
                upload_expires_at: 100,
            };
            let b = create(c, &new, "u1", 10)?;
            assert_eq!((b.uploaded, b.size, b.is_complete()), (0, None, false));
            assert_eq!(bytes(c, b.id)?, None);
            store_bytes(c, b.id, b"hello", 11)?;
            store_bytes(c, b.id, b"hello!", 12)?;
            complete(c, b.id, 6, 13)?;
            let b = by_uid(c, "u1")?.unwrap();
            assert_eq!((b.uploaded, b.size, b.is_complete()), (6, Some(6), true));
            assert_eq!(bytes(c, b.id)?.unwrap(), b"hello!");
            assert_eq!(
                b.to_wire().created_at.as_deref(),
                Some("1970-01-01T00:00:10Z")
            );
            rename(c, b.id, "b.txt", 14)?;
            create(c, &new, "u2", 15)?;
            let (page, total) = list(c, 7, 3, 1, 0)?;
            assert_eq!((page[0].uid.as_str(), total), ("u2", 2));
            assert_eq!(list(c, 7, 4, 10, 0)?.1, 0);
            assert!(delete(c, b.id)?);
            assert!(!delete(c, b.id)?);
            assert_eq!(bytes(c, b.id)?, None);
            assert_eq!(by_id(c, b.id)?, None);
            Ok(())
        })
        .unwrap();
    }
}
