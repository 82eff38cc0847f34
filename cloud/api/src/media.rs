//! Where clips and snapshots are stored: an S3 bucket (or any S3-protocol store) or a local
//! directory (the embedded default), through `object_store`.
//!
//! Architecture invariants:
//! - Edges never hold bucket credentials: they send parts to the cloud (`routes::media`), which
//!   writes them here with its own credentials.
//! - Objects are named `<tenant>/<site>/<edge key>`; the edge key is checked by [`check_key`]
//!   before anything reaches the store, so no edge can name a path outside its own prefix.
//! - An object is readable under its final name only once complete and verified (size and
//!   SHA-256 of what the store holds), so the event's link never points at a partial file.
//!
//! Resumability lives in PostgreSQL (`media_objects`, `media_parts`): on S3 each part is a part of
//! a native multipart upload (`MultipartStore`), whose id and ETags are recorded; on the local
//! filesystem, which has no multipart API, each part is a staging file under `_staging/`,
//! assembled (atomically, through a temporary file) on completion.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{GetResult, ObjectStoreExt as _, WriteMultipart};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// Default size of an upload part (S3 needs at least 5 MiB for every part but the last).
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Smallest part size allowed with S3.
pub const MIN_S3_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part size (one part is held in memory while it is stored).
pub const MAX_PART_SIZE: u64 = 64 * 1024 * 1024;
/// Largest file accepted.
pub const MAX_OBJECT_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Longest edge key accepted.
pub const MAX_KEY_LEN: usize = 300;

/// The S3 settings of `vigil-cloud serve` (credentials come from the environment).
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// e.g. `http://minio:9000`; `None` for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), as most self-hosted servers want.
    pub path_style: bool,
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Debug)]
enum Backend {
    /// The store and its root directory.
    Local(Arc<LocalFileSystem>, std::path::PathBuf),
    S3(Arc<AmazonS3>),
}

/// The media store and its upload parameters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaStore {
    backend: Arc<Backend>,
    part_size: u64,
    /// For logs and `/health`-like descriptions: `file:///dir` or `s3://bucket`.
    describe: Arc<str>,
}

/// A failure of the object store.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The object (or part) does not exist.
    #[error("object not found")]
    NotFound,
    /// The stored object does not match what the edge announced.
    #[error("stored object has {bytes} bytes and sha256 {sha256}, not what was announced")]
    Mismatch { bytes: u64, sha256: String },
    /// The store failed (unreachable, refused, disk error): retry later.
    #[error("object store failure")]
    Store(#[source] object_store::Error),
}

impl From<object_store::Error> for MediaError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => MediaError::NotFound,
            other => MediaError::Store(other),
        }
    }
}

impl MediaStore {
    /// Objects under the local directory `dir` (created when missing).
    pub fn local(dir: &std::path::Path, part_size: u64) -> anyhow::Result<MediaStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create media directory {}: {e}", dir.display()))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| anyhow::anyhow!("cannot use media directory {}: {e}", dir.display()))?;
        check_part_size(part_size, 1)?;
        Ok(MediaStore {
            backend: Arc::new(Backend::Local(Arc::new(fs), dir.to_path_buf())),
            part_size,
            describe: format!("file://{}", dir.display()).into(),
        })
    }

    /// Objects in an S3 bucket.
    pub fn s3(settings: &S3Settings, part_size: u64) -> anyhow::Result<MediaStore> {
        check_part_size(part_size, MIN_S3_PART_SIZE)?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(!settings.path_style)
            .with_allow_http(settings.allow_http);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        // The error text names the setting, never a credential's value.
        let s3 = builder.build().map_err(|e| anyhow::anyhow!("invalid S3 media settings: {e}"))?;
        Ok(MediaStore {
            backend: Arc::new(Backend::S3(Arc::new(s3))),
            part_size,
            describe: format!("s3://{}", settings.bucket).into(),
        })
    }

    /// Part size edges are told to use.
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// `file:///dir` or `s3://bucket`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Whether the backend has native multipart uploads (S3).
    pub fn is_multipart(&self) -> bool {
        matches!(*self.backend, Backend::S3(_))
    }

    /// Starts a native multipart upload (S3); `None` for the filesystem backend.
    pub async fn begin(&self, path: &Path) -> Result<Option<String>, MediaError> {
        match &*self.backend {
            Backend::S3(s3) => Ok(Some(s3.create_multipart(path).await?)),
            Backend::Local(..) => Ok(None),
        }
    }

    /// Stores part `part` (0-based) of the upload `upload` of `path`; returns the backend's part
    /// id (ETag) to record, empty for the filesystem backend.
    pub async fn put_part(
        &self,
        path: &Path,
        upload: Uuid,
        multipart: Option<&str>,
        part: u32,
        data: Bytes,
    ) -> Result<String, MediaError> {
        match &*self.backend {
            Backend::S3(s3) => {
                let id = multipart.ok_or(MediaError::NotFound)?.to_owned();
                let stored = s3.put_part(path, &id, part as usize, data.into()).await?;
                Ok(stored.content_id)
            }
            Backend::Local(fs, _) => {
                fs.put(&staging(upload, part), data.into()).await?;
                Ok(String::new())
            }
        }
    }

    /// Assembles the parts (in order; `etags` as recorded), then checks that the stored object
    /// has `bytes` bytes and the SHA-256 `sha256` (the object is removed when it does not).
    pub async fn complete(
        &self,
        path: &Path,
        upload: Uuid,
        multipart: Option<&str>,
        etags: Vec<String>,
        bytes: u64,
        sha256: &str,
    ) -> Result<(), MediaError> {
        let (size, digest) = match &*self.backend {
            Backend::S3(s3) => {
                let id = multipart.ok_or(MediaError::NotFound)?.to_owned();
                let parts = etags.into_iter().map(|content_id| PartId { content_id }).collect();
                s3.complete_multipart(path, &id, parts).await?;
                // Verify what the bucket now holds, end to end.
                digest_of(s3.get(path).await?).await?
            }
            Backend::Local(fs, root) => {
                let mut writer = WriteMultipart::new(fs.put_multipart(path).await?);
                let mut hasher = Sha256::new();
                let mut size = 0u64;
                for part in 0..etags.len() as u32 {
                    let mut stream = fs.get(&staging(upload, part)).await?.into_stream();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk?;
                        hasher.update(&chunk);
                        size += chunk.len() as u64;
                        writer.put(chunk);
                    }
                }
                writer.finish().await?;
                remove_staging(fs, root, upload, etags.len() as u32).await;
                (size, hex::encode(hasher.finalize()))
            }
        };
        if size != bytes || digest != sha256 {
            if let Err(error) = self.delete(path).await {
                tracing::warn!(%error, %path, "Cannot remove an object that failed verification.");
            }
            return Err(MediaError::Mismatch { bytes: size, sha256: digest });
        }
        Ok(())
    }

    /// Abandons an unfinished upload (best effort: failures are only logged).
    pub async fn abort(&self, path: &Path, upload: Uuid, multipart: Option<&str>, parts: u32) {
        let result = match (&*self.backend, multipart) {
            (Backend::S3(s3), Some(id)) => s3.abort_multipart(path, &id.to_owned()).await,
            (Backend::S3(_), None) => Ok(()),
            (Backend::Local(fs, root), _) => {
                remove_staging(fs, root, upload, parts).await;
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, %path, "Cannot abort an upload; the store may keep its parts until it expires them.");
        }
    }

    /// Reads an object.
    pub async fn get(&self, path: &Path) -> Result<GetResult, MediaError> {
        Ok(match &*self.backend {
            Backend::S3(s3) => s3.get(path).await?,
            Backend::Local(fs, _) => fs.get(path).await?,
        })
    }

    /// Deletes an object.
    pub async fn delete(&self, path: &Path) -> Result<(), MediaError> {
        match &*self.backend {
            Backend::S3(s3) => s3.delete(path).await?,
            Backend::Local(fs, _) => fs.delete(path).await?,
        }
        Ok(())
    }
}

fn check_part_size(part_size: u64, min: u64) -> anyhow::Result<()> {
    if !(min..=MAX_PART_SIZE).contains(&part_size) {
        anyhow::bail!("media part size must be between {min} and {MAX_PART_SIZE} bytes, got {part_size}");
    }
    Ok(())
}

/// Size and SHA-256 of an object, streamed.
async fn digest_of(object: GetResult) -> Result<(u64, String), MediaError> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = object.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Deletes the staged parts of an upload and their directory (best effort).
async fn remove_staging(fs: &LocalFileSystem, root: &std::path::Path, upload: Uuid, parts: u32) {
    for part in 0..parts {
        let _ = fs.delete(&staging(upload, part)).await;
    }
    let _ = tokio::fs::remove_dir(root.join(STAGING).join(upload.to_string())).await;
}

/// The filesystem backend's directory for parts (not a tenant prefix: those are uuids).
const STAGING: &str = "_staging";

/// Where the filesystem backend keeps part `part` of upload `upload` until completion.
fn staging(upload: Uuid, part: u32) -> Path {
    Path::from(format!("{STAGING}/{upload}/{part:05}"))
}

/// The object's name in the store: `<tenant>/<site>/<edge key>` (the key checked by [`check_key`]),
/// the ids as 32 hex digits (compact: some S3 servers store multipart state in file names).
pub fn object_path(tenant: Uuid, site: Uuid, key: &str) -> Path {
    Path::from(format!("{}/{}/{key}", tenant.simple(), site.simple()))
}

/// Checks an edge key: `clips/<camera>/<name>.mp4` (`video/mp4`) or
/// `snapshots/<camera>/<name>.jpg` (`image/jpeg`); camera and name of ASCII letters, digits,
/// `-`, `_` and (name only, not first) `.`; at most [`MAX_KEY_LEN`] bytes. Returns why not.
pub fn check_key(key: &str, content_type: &str) -> Result<(), &'static str> {
    if key.len() > MAX_KEY_LEN {
        return Err("too long");
    }
    let mut segments = key.split('/');
    let (Some(kind), Some(camera), Some(file), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err("expected clips/<camera>/<name>.mp4 or snapshots/<camera>/<name>.jpg");
    };
    let (extension, expected_type) = match kind {
        "clips" => (".mp4", "video/mp4"),
        "snapshots" => (".jpg", "image/jpeg"),
        _ => return Err("expected clips/<camera>/<name>.mp4 or snapshots/<camera>/<name>.jpg"),
    };
    let plain = |s: &str, dots: bool| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (dots && b == b'.'))
    };
    if !plain(camera, false) {
        return Err("the camera id must be letters, digits, - and _");
    }
    let Some(name) = file.strip_suffix(extension) else {
        return Err("clips end in .mp4 and snapshots in .jpg");
    };
    if !plain(name, true) || name.contains("..") {
        return Err("the file name must be letters, digits, -, _ and single dots");
    }
    if content_type != expected_type {
        return Err("the content type does not match the key (video/mp4 for clips, image/jpeg for snapshots)");
    }
    Ok(())
}

/// Number of parts of a `bytes`-byte file cut in `part_size` parts.
pub fn part_count(bytes: u64, part_size: u64) -> u64 {
    bytes.div_ceil(part_size.max(1))
}

/// Size part `part` must have.
pub fn part_len(bytes: u64, part_size: u64, part: u64) -> u64 {
    bytes.saturating_sub(part.saturating_mul(part_size)).min(part_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_strictly() {
        let ok = [
            ("clips/cam-1/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.mp4", "video/mp4"),
            ("snapshots/front_door/0193a1b2.jpg", "image/jpeg"),
            ("clips/c/a.b.mp4", "video/mp4"),
        ];
        for (key, ty) in ok {
            assert_eq!(check_key(key, ty), Ok(()), "{key}");
        }
        let long = format!("clips/cam/{}.mp4", "a".repeat(300));
        let bad = [
            ("clips/cam-1/x.mp4", "image/jpeg"),
            ("snapshots/cam-1/x.mp4", "video/mp4"),
            ("clips/../x.mp4", "video/mp4"),
            ("clips/cam/../x.mp4", "video/mp4"),
            ("clips/cam/..mp4", "video/mp4"),
            ("clips/cam/a..b.mp4", "video/mp4"),
            ("clips/cam/.hidden.mp4", "video/mp4"),
            ("clips/cam/x.mp4/y", "video/mp4"),
            ("/clips/cam/x.mp4", "video/mp4"),
            ("clips//x.mp4", "video/mp4"),
            ("clips/cam/.mp4", "video/mp4"),
            ("recordings/cam/x.mp4", "video/mp4"),
            ("clips/cam/x.MP4", "video/mp4"),
            ("clips/cam/x y.mp4", "video/mp4"),
            ("clips/cam/x%2f.mp4", "video/mp4"),
            ("clips/cäm/x.mp4", "video/mp4"),
            ("clips/cam/x\0.mp4", "video/mp4"),
            ("clips/cam.1/x.mp4", "video/mp4"),
            ("", "video/mp4"),
            (long.as_str(), "video/mp4"),
        ];
        for (key, ty) in bad {
            assert!(check_key(key, ty).is_err(), "{key:?} accepted");
        }
    }

    #[test]
    fn parts_cover_the_file_exactly() {
        // (bytes, part size) -> sizes of every part
        let cases: [(u64, u64, &[u64]); 5] =
            [(1, 8, &[1]), (8, 8, &[8]), (9, 8, &[8, 1]), (24, 8, &[8, 8, 8]), (25, 10, &[10, 10, 5])];
        for (bytes, size, expected) in cases {
            let n = part_count(bytes, size);
            let got: Vec<u64> = (0..n).map(|p| part_len(bytes, size, p)).collect();
            assert_eq!(got, expected, "{bytes}/{size}");
            assert_eq!(part_len(bytes, size, n), 0, "nothing past the last part");
        }
    }

    #[test]
    fn object_paths_are_namespaced_by_tenant_and_site() {
        let (t, s) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(
            object_path(t, s, "clips/cam/x.mp4").as_ref(),
            format!("{}/{}/clips/cam/x.mp4", t.simple(), s.simple()),
            "one object path per (tenant, site, key)"
        );
    }

    #[test]
    fn settings_never_print_credentials() {
        let s = S3Settings {
            bucket: "b".into(),
            endpoint: None,
            region: "r".into(),
            path_style: true,
            allow_http: false,
            access_key_id: Some("AKIDSECRET".into()),
            secret_access_key: Some("verysecret".into()),
        };
        let text = format!("{s:?}");
        assert!(!text.contains("AKIDSECRET") && !text.contains("verysecret"), "{text}");
    }
}
