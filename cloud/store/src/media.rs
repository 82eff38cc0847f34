//! Clips and snapshots uploaded by edges: one row per (tenant, site, edge key) and the parts
//! received so far.
//!
//! Invariants:
//! - Every query is scoped by the tenant, and edge-side queries by the edge's site too: an edge can
//!   neither see nor touch another site's uploads (row-level security also keeps tenants apart).
//! - Announcing is idempotent: the same key with the same size and SHA-256 finds the same upload
//!   with its parts; a different file under the key of an unfinished upload restarts it (the
//!   caller aborts the old multipart upload); a different file under a completed key is a conflict.
//! - Everything needed to resume (the backend's multipart id and each part's ETag) is here, so an
//!   upload survives an edge cut and a cloud restart.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::{EdgeIdentity, SiteScope, Store, StoreError, TenantId};

/// An upload, in progress or complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct MediaUpload {
    pub id: Uuid,
    pub site_id: Uuid,
    pub edge_id: Uuid,
    /// The edge's key, e.g. `clips/cam-1/0193….mp4`.
    pub key: String,
    pub content_type: String,
    pub bytes: i64,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    pub part_size: i64,
    pub event_id: Option<Uuid>,
    #[serde(skip)]
    pub multipart_id: Option<String>,
    /// `uploading` or `complete`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl MediaUpload {
    /// Whether the object is stored and readable.
    pub fn is_complete(&self) -> bool {
        self.status == "complete"
    }
}

/// One received part.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MediaPart {
    /// 0-based.
    pub part: i32,
    pub bytes: i64,
    /// The backend's id of the stored part (S3 ETag), empty for the filesystem backend.
    pub etag: String,
}

/// Input of [`Store::announce_media`] (validated by the caller).
#[derive(Debug, Clone)]
pub struct NewMedia<'a> {
    pub key: &'a str,
    pub content_type: &'a str,
    pub bytes: i64,
    pub sha256: &'a str,
    pub part_size: i64,
    pub event_id: Option<Uuid>,
}

/// What [`Store::announce_media`] found or created.
#[derive(Debug, Clone)]
pub struct Announced {
    pub upload: MediaUpload,
    /// Parts already received, by part number.
    pub parts: Vec<MediaPart>,
    /// The multipart id of an unfinished upload of a different file under the same key, which
    /// this announce replaced: the caller should abort it in the backend.
    pub replaced_multipart: Option<String>,
}

const COLUMNS: &str = "id, site_id, edge_id, key, content_type, bytes, sha256, part_size, event_id, multipart_id, \
                       status, created_at, completed_at";

impl Store {
    /// Finds the edge's upload of `new.key` or creates it (see the module invariants).
    pub async fn announce_media(&self, edge: &EdgeIdentity, new: &NewMedia<'_>) -> Result<Announced, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let found: Option<MediaUpload> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM media_objects WHERE tenant_id = $1 AND site_id = $2 AND key = $3 FOR UPDATE"
        )))
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(new.key)
        .fetch_optional(&mut *tx)
        .await?;
        let announced = match found {
            Some(upload) if upload.bytes == new.bytes && upload.sha256 == new.sha256 => {
                let parts = parts(&mut tx, edge.tenant_id, upload.id).await?;
                Announced { upload, parts, replaced_multipart: None }
            }
            Some(upload) if upload.is_complete() => {
                return Err(StoreError::Conflict { field: "key" });
            }
            Some(old) => {
                sqlx::query("DELETE FROM media_parts WHERE tenant_id = $1 AND upload_id = $2")
                    .bind(edge.tenant_id.as_uuid())
                    .bind(old.id)
                    .execute(&mut *tx)
                    .await?;
                let upload: MediaUpload = sqlx::query_as(AssertSqlSafe(format!(
                    "UPDATE media_objects SET content_type = $3, bytes = $4, sha256 = $5, part_size = $6, \
                     event_id = $7, multipart_id = NULL, edge_id = $8, updated_at = now() \
                     WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
                )))
                .bind(edge.tenant_id.as_uuid())
                .bind(old.id)
                .bind(new.content_type)
                .bind(new.bytes)
                .bind(new.sha256)
                .bind(new.part_size)
                .bind(new.event_id)
                .bind(edge.edge_id)
                .fetch_one(&mut *tx)
                .await?;
                Announced { upload, parts: Vec::new(), replaced_multipart: old.multipart_id }
            }
            None => {
                let upload: MediaUpload = sqlx::query_as(AssertSqlSafe(format!(
                    "INSERT INTO media_objects (id, tenant_id, site_id, edge_id, key, content_type, bytes, sha256, \
                     part_size, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
                )))
                .bind(Uuid::now_v7())
                .bind(edge.tenant_id.as_uuid())
                .bind(edge.site_id)
                .bind(edge.edge_id)
                .bind(new.key)
                .bind(new.content_type)
                .bind(new.bytes)
                .bind(new.sha256)
                .bind(new.part_size)
                .bind(new.event_id)
                .fetch_one(&mut *tx)
                .await?;
                Announced { upload, parts: Vec::new(), replaced_multipart: None }
            }
        };
        tx.commit().await?;
        Ok(announced)
    }

    /// Records the backend's multipart id of an upload that has none yet; returns the id in
    /// effect (another request's, when it won the race: the caller then aborts its own).
    pub async fn set_media_multipart(
        &self,
        edge: &EdgeIdentity,
        id: Uuid,
        multipart_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        sqlx::query(
            "UPDATE media_objects SET multipart_id = $4, updated_at = now() \
             WHERE tenant_id = $1 AND site_id = $2 AND id = $3 AND multipart_id IS NULL",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .bind(multipart_id)
        .execute(&mut *tx)
        .await?;
        let current: Option<Option<String>> = sqlx::query_scalar(
            "SELECT multipart_id FROM media_objects WHERE tenant_id = $1 AND site_id = $2 AND id = $3",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(current.flatten())
    }

    /// The edge's upload `id` (of its own site) with its parts; `None` for another site's or
    /// tenant's id.
    pub async fn edge_media_upload(
        &self,
        edge: &EdgeIdentity,
        id: Uuid,
    ) -> Result<Option<(MediaUpload, Vec<MediaPart>)>, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let upload: Option<MediaUpload> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM media_objects WHERE tenant_id = $1 AND site_id = $2 AND id = $3"
        )))
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let found = match upload {
            Some(upload) => {
                let parts = parts(&mut tx, edge.tenant_id, upload.id).await?;
                Some((upload, parts))
            }
            None => None,
        };
        tx.commit().await?;
        Ok(found)
    }

    /// Records a received part (a resent part replaces the earlier one). `false` when the upload
    /// is not the edge's site's or no longer in progress.
    pub async fn record_media_part(
        &self,
        edge: &EdgeIdentity,
        id: Uuid,
        part: i32,
        bytes: i64,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let inserted = sqlx::query(
            "INSERT INTO media_parts (tenant_id, upload_id, part, bytes, etag) \
             SELECT tenant_id, id, $4, $5, $6 FROM media_objects \
             WHERE tenant_id = $1 AND site_id = $2 AND id = $3 AND status = 'uploading' \
             ON CONFLICT (upload_id, part) DO UPDATE SET bytes = EXCLUDED.bytes, etag = EXCLUDED.etag, \
             received_at = now()",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .bind(part)
        .bind(bytes)
        .bind(etag)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Marks the upload complete (the object is stored and verified).
    pub async fn complete_media(&self, edge: &EdgeIdentity, id: Uuid) -> Result<Option<MediaUpload>, StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        let upload = sqlx::query_as(AssertSqlSafe(format!(
            "UPDATE media_objects SET status = 'complete', completed_at = now(), updated_at = now() \
             WHERE tenant_id = $1 AND site_id = $2 AND id = $3 RETURNING {COLUMNS}"
        )))
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM media_parts WHERE tenant_id = $1 AND upload_id = $2")
            .bind(edge.tenant_id.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(upload)
    }

    /// Forgets every part and the multipart id of an unfinished upload (after a failed
    /// verification): the edge sends the file again.
    pub async fn restart_media(&self, edge: &EdgeIdentity, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(edge.tenant_id).await?;
        sqlx::query("DELETE FROM media_parts WHERE tenant_id = $1 AND upload_id = $2")
            .bind(edge.tenant_id.as_uuid())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE media_objects SET multipart_id = NULL, updated_at = now() \
             WHERE tenant_id = $1 AND site_id = $2 AND id = $3 AND status = 'uploading'",
        )
        .bind(edge.tenant_id.as_uuid())
        .bind(edge.site_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One of the tenant's media objects (within `sites`), complete or not.
    pub async fn media_object(
        &self,
        tenant: TenantId,
        sites: SiteScope<'_>,
        id: Uuid,
    ) -> Result<Option<MediaUpload>, StoreError> {
        let mut tx = self.tenant_tx(tenant).await?;
        let row = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM media_objects \
             WHERE tenant_id = $1 AND ($2::uuid[] IS NULL OR site_id = ANY($2)) AND id = $3"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The tenant's media objects with these (site, key) pairs, in any order.
    pub async fn media_by_keys(
        &self,
        tenant: TenantId,
        keys: &[(Uuid, String)],
    ) -> Result<Vec<MediaUpload>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sites: Vec<Uuid> = keys.iter().map(|(s, _)| *s).collect();
        let names: Vec<&str> = keys.iter().map(|(_, k)| k.as_str()).collect();
        let mut tx = self.tenant_tx(tenant).await?;
        let rows = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM media_objects WHERE tenant_id = $1 \
             AND (site_id, key) IN (SELECT * FROM UNNEST($2::uuid[], $3::text[]))"
        )))
        .bind(tenant.as_uuid())
        .bind(sites)
        .bind(names)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

async fn parts(tx: &mut crate::Tx, tenant: TenantId, upload: Uuid) -> Result<Vec<MediaPart>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT part, bytes, etag FROM media_parts WHERE tenant_id = $1 AND upload_id = $2 ORDER BY part",
    )
    .bind(tenant.as_uuid())
    .bind(upload)
    .fetch_all(&mut **tx)
    .await?)
}
