//! Uploads finished clips and snapshots to the cloud, resumably, at the lowest priority.
//!
//! ```text
//! media task (clip saved) ─┐                                   ┌─ POST /api/edge/media (announce: what does the cloud hold?)
//! detect worker (snapshot) ┴▶ UploadQueue (one fsync'd file ──▶ ├─ PUT  …/{id}/part?n= (only the missing parts, paced)
//!                              per item, oldest first)          └─ POST …/{id}/complete (cloud verifies size + SHA-256)
//! ```
//!
//! Invariants:
//! - Edges never hold bucket credentials: every byte goes through the cloud's edge-token API.
//! - An item leaves the queue only when the cloud says the object is complete, or for good (the
//!   file was deleted locally before it was sent — counted as `missing` —, or the cloud refuses it),
//!   and then it moves to `failed/` with the reason, never silently. The queue survives restarts
//!   and `kill -9` (each item is written to a temporary file, fsync'd and renamed).
//! - Resume asks the cloud: after a cut (or a restart of either side) the announce returns the
//!   parts already received and only the others are sent.
//! - One upload at a time, paced by the shared [`Bandwidth`] at [`Priority::Media`], so media never
//!   delays event batches; failures back off like the event sender.

use std::collections::HashMap;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use edge_core::Backoff;
use edge_uplink::{MediaAnnounce, Uplink, UplinkError};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_proto::MediaSaved;

use crate::bandwidth::{Bandwidth, Priority};

/// Bytes handed to the HTTP body at a time (each paced by the bandwidth cap).
const CHUNK: usize = 64 * 1024;
/// Largest part the edge reads into memory (the cloud's limit too).
const MAX_PART_SIZE: u64 = 64 * 1024 * 1024;
/// Announce/send/complete rounds for one item before it is given up (each round resumes).
const ROUNDS: usize = 4;

/// Counters on `/status`, `/metrics` and in heartbeats.
#[derive(Debug, Default)]
pub struct UploadStats {
    /// Items waiting in the queue.
    pub queued: AtomicU64,
    /// Objects the cloud confirmed complete.
    pub uploaded: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub parts_sent: AtomicU64,
    /// Files deleted locally (janitor, operator) before they were uploaded.
    pub missing: AtomicU64,
    /// Items the cloud refused for good (moved to `failed/`).
    pub failed: AtomicU64,
    /// Attempts that failed and were retried later (cloud down, link cut).
    pub retries: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// One queued item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMedia {
    pub key: String,
    pub content_type: String,
    pub event: Option<Uuid>,
}

/// The durable queue: `<dir>/<uuid v7>.json` per item (oldest first by name), `<dir>/failed/`.
#[derive(Debug, Clone)]
pub struct UploadQueue {
    dir: Arc<PathBuf>,
    wake: Arc<Notify>,
}

impl UploadQueue {
    /// Opens (creates) the queue directory.
    pub fn open(dir: &Path) -> std::io::Result<UploadQueue> {
        std::fs::create_dir_all(dir.join("failed"))?;
        Ok(UploadQueue { dir: Arc::new(dir.to_path_buf()), wake: Arc::new(Notify::new()) })
    }

    /// Queues a saved clip or snapshot; durable when this returns `Ok`.
    pub fn push(&self, media: &MediaSaved) -> std::io::Result<()> {
        let item = QueuedMedia {
            key: media.media.key.clone(),
            content_type: media.media.content_type.clone(),
            event: Some(media.event),
        };
        let name = format!("{}.json", Uuid::now_v7());
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(&item).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(&name))?;
        std::fs::File::open(&*self.dir)?.sync_all()?;
        self.wake.notify_one();
        Ok(())
    }

    /// Pushes, logging (never failing) when the queue cannot be written.
    pub fn push_or_log(&self, media: &MediaSaved) {
        if let Err(error) = self.push(media) {
            tracing::error!(%error, key = %media.media.key, "Cannot queue a media file for upload; it stays on disk only.");
        }
    }

    /// Queued items, oldest first. An unreadable item is moved to `failed/`.
    pub fn list(&self) -> Vec<(PathBuf, QueuedMedia)> {
        let Ok(entries) = std::fs::read_dir(&*self.dir) else { return Vec::new() };
        let mut files: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
        files.sort();
        let mut out = Vec::with_capacity(files.len());
        for path in files {
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<QueuedMedia>(&b).map_err(|e| e.to_string()))
            {
                Ok(item) => out.push((path, item)),
                Err(error) => self.fail(&path, &format!("unreadable queue item: {error}")),
            }
        }
        out
    }

    /// Removes an uploaded item.
    pub fn done(&self, item: &Path) {
        if let Err(error) = std::fs::remove_file(item) {
            tracing::warn!(%error, item = %item.display(), "Cannot remove an uploaded item from the queue; it will be announced again (the cloud knows it is complete).");
        }
    }

    /// Moves an item to `failed/`, with the reason beside it.
    pub fn fail(&self, item: &Path, reason: &str) {
        let Some(name) = item.file_name() else { return };
        let target = self.dir.join("failed").join(name);
        let _ = std::fs::write(target.with_extension("reason"), reason);
        if let Err(error) = std::fs::rename(item, &target) {
            tracing::error!(%error, item = %item.display(), "Cannot move a failed upload aside; removing it.");
            let _ = std::fs::remove_file(item);
        }
    }
}

/// Parts still to send, in order: every part of `0..parts` the cloud has not `received`.
pub fn missing_parts(parts: u64, received: &[u64]) -> Vec<u64> {
    (0..parts).filter(|n| !received.contains(n)).collect()
}

/// `(offset, length)` of part `n` of a `bytes`-byte file in `part_size` parts.
pub fn part_range(bytes: u64, part_size: u64, n: u64) -> (u64, u64) {
    let offset = n.saturating_mul(part_size);
    (offset, bytes.saturating_sub(offset).min(part_size))
}

/// A key names a file below the media directory: relative, no `..`, no root.
pub fn key_is_local(key: &str) -> bool {
    !key.is_empty() && Path::new(key).components().all(|c| matches!(c, Component::Normal(_)))
}

/// How long one part may take at `kbps` (0 = unlimited): its transfer time twice over, plus a
/// minute; at most the cloud's part timeout.
pub fn part_timeout(len: u64, kbps: u64) -> Duration {
    let secs = if kbps == 0 { len / (256 * 1024) } else { len.saturating_mul(8) / kbps.saturating_mul(1000) };
    Duration::from_secs((60 + 2 * secs).min(595))
}

/// What became of one item.
#[derive(Debug)]
enum Outcome {
    Done { bytes: u64 },
    Missing,
    Refused(String),
    Retry(String),
}

fn classify(error: UplinkError) -> Outcome {
    match error {
        UplinkError::Refused { status, body } if !matches!(status, 404 | 408 | 409 | 429) => {
            Outcome::Refused(format!("http {status}: {body}"))
        }
        other => Outcome::Retry(other.to_string()),
    }
}

/// The uploader task.
#[derive(Debug)]
pub struct Uploader {
    pub queue: UploadQueue,
    pub media_dir: PathBuf,
    pub uplink: Uplink,
    pub bandwidth: Arc<Bandwidth>,
    pub stats: Arc<UploadStats>,
    pub backoff: Backoff,
    /// (path, size, mtime) → SHA-256, so a retried upload does not hash its file again.
    hashes: HashMap<PathBuf, (u64, SystemTime, String)>,
}

impl Uploader {
    pub fn new(
        queue: UploadQueue,
        media_dir: PathBuf,
        uplink: Uplink,
        bandwidth: Arc<Bandwidth>,
        stats: Arc<UploadStats>,
        backoff: Backoff,
    ) -> Uploader {
        Uploader { queue, media_dir, uplink, bandwidth, stats, backoff, hashes: HashMap::new() }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let queue = self.queue.clone();
            let items = tokio::task::spawn_blocking(move || queue.list()).await.unwrap_or_default();
            self.stats.queued.store(items.len() as u64, Relaxed);
            if items.is_empty() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    _ = self.queue.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
                continue;
            }
            for (file, item) in items {
                let outcome = tokio::select! {
                    biased;
                    // An interrupted upload resumes from what the cloud holds next time.
                    _ = cancel.cancelled() => return,
                    o = self.upload(&item) => o,
                };
                match outcome {
                    Outcome::Done { bytes } => {
                        self.queue.done(&file);
                        self.stats.uploaded.fetch_add(1, Relaxed);
                        self.stats.queued.fetch_sub(1, Relaxed);
                        if self.backoff.attempts() > 0 {
                            tracing::info!("Cloud reachable again; uploading media.");
                        }
                        self.backoff.reset();
                        tracing::info!(key = %item.key, bytes, "Media uploaded.");
                    }
                    Outcome::Missing => {
                        self.queue.fail(&file, "the file was deleted before it was uploaded");
                        self.stats.missing.fetch_add(1, Relaxed);
                        self.stats.queued.fetch_sub(1, Relaxed);
                        tracing::warn!(key = %item.key, "Media file deleted (media bounds) before it was uploaded; the event keeps its reference without an object.");
                    }
                    Outcome::Refused(reason) => {
                        self.stats.failed.fetch_add(1, Relaxed);
                        self.stats.queued.fetch_sub(1, Relaxed);
                        tracing::error!(key = %item.key, %reason, "Cloud refused a media upload; kept in the failed queue.");
                        self.queue.fail(&file, &reason);
                    }
                    Outcome::Retry(error) => {
                        self.stats.retries.fetch_add(1, Relaxed);
                        *self.stats.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
                        if self.backoff.attempts() == 0 {
                            tracing::warn!(%error, key = %item.key, "Media upload interrupted; it resumes later.");
                        }
                        let delay = self.backoff.next_delay(rand::random::<f64>());
                        tokio::select! {
                            biased;
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        break;
                    }
                }
            }
        }
    }

    async fn upload(&mut self, item: &QueuedMedia) -> Outcome {
        if !key_is_local(&item.key) {
            return Outcome::Refused(format!("key {:?} is not below the media directory", item.key));
        }
        let path = self.media_dir.join(&item.key);
        for _ in 0..ROUNDS {
            let (bytes, sha256) = match self.digest(&path).await {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Missing,
                Err(e) => return Outcome::Retry(format!("cannot read {}: {e}", path.display())),
            };
            let announce = MediaAnnounce {
                key: item.key.clone(),
                content_type: item.content_type.clone(),
                bytes,
                sha256,
                event: item.event.map(|e| e.to_string()),
            };
            let state = match self.uplink.announce_media(&announce).await {
                Ok(state) => state,
                // Another file is already stored under this key: retrying cannot help.
                Err(UplinkError::Refused { status: 409, body }) => {
                    return Outcome::Refused(format!("http 409: {body}"));
                }
                Err(e) => return classify(e),
            };
            if state.complete {
                return Outcome::Done { bytes };
            }
            if !(1..=MAX_PART_SIZE).contains(&state.part_size) || state.parts != bytes.div_ceil(state.part_size) {
                return Outcome::Retry(format!(
                    "the cloud answered {} parts of {} bytes for a {bytes}-byte file",
                    state.parts, state.part_size
                ));
            }
            for n in missing_parts(state.parts, &state.received) {
                let (offset, len) = part_range(bytes, state.part_size, n);
                let data = match read_range(&path, offset, len).await {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Missing,
                    Err(e) => return Outcome::Retry(format!("cannot read {}: {e}", path.display())),
                };
                let body = paced(data, self.bandwidth.clone());
                let timeout = part_timeout(len, self.bandwidth.kbps());
                if let Err(e) = self.uplink.put_media_part(&state.id, n, len, body, timeout).await {
                    // A cut, or the upload was restarted in the cloud: resume after a backoff.
                    return classify(e);
                }
                self.stats.parts_sent.fetch_add(1, Relaxed);
                self.stats.bytes_sent.fetch_add(len, Relaxed);
            }
            match self.uplink.complete_media(&state.id).await {
                Ok(done) if done.complete => return Outcome::Done { bytes },
                Ok(_) => {}
                // Parts missing (409) or the assembled object differs (422: the file changed or was
                // corrupted on the way): announce again, with a fresh hash.
                Err(UplinkError::Refused { status: 409 | 422, .. }) => {
                    self.hashes.remove(&path);
                }
                Err(e) => return classify(e),
            }
        }
        Outcome::Refused(format!("not complete after {ROUNDS} rounds"))
    }

    /// Size and SHA-256 of `path`, cached by size and modification time.
    async fn digest(&mut self, path: &Path) -> std::io::Result<(u64, String)> {
        let meta = tokio::fs::metadata(path).await?;
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some((size, at, sha)) = self.hashes.get(path)
            && *size == meta.len()
            && *at == modified
        {
            return Ok((*size, sha.clone()));
        }
        let owned = path.to_path_buf();
        let (size, sha) =
            tokio::task::spawn_blocking(move || sha256_file(&owned)).await.map_err(std::io::Error::other)??;
        if self.hashes.len() > 1024 {
            self.hashes.clear();
        }
        self.hashes.insert(path.to_path_buf(), (size, modified, sha.clone()));
        Ok((size, sha))
    }
}

/// Size and lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

async fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Bytes> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut data = vec![0u8; len as usize];
        file.read_exact(&mut data)?;
        Ok(Bytes::from(data))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `data` as a body stream of [`CHUNK`]-byte pieces, each waiting for the bandwidth cap.
fn paced(
    data: Bytes,
    bandwidth: Arc<Bandwidth>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(0usize, move |at| {
        let (data, bandwidth) = (data.clone(), bandwidth.clone());
        async move {
            if at >= data.len() {
                return None;
            }
            let end = (at + CHUNK).min(data.len());
            bandwidth.acquire((end - at) as u64, Priority::Media).await;
            Some((Ok(data.slice(at..end)), end))
        }
    })
}

#[cfg(test)]
mod tests {
    use vigil_proto::MediaRef;

    use super::*;

    #[test]
    fn resume_sends_only_what_the_cloud_lacks() {
        // (parts, received) -> to send
        let cases: [(u64, &[u64], &[u64]); 5] =
            [(1, &[], &[0]), (3, &[], &[0, 1, 2]), (3, &[0, 2], &[1]), (3, &[2, 0, 1], &[]), (4, &[3, 7], &[0, 1, 2])];
        for (parts, received, expected) in cases {
            assert_eq!(missing_parts(parts, received), expected, "{parts} parts, {received:?} received");
        }
    }

    #[test]
    fn failures_are_retried_later_or_given_up_by_kind() {
        let refused = |status| UplinkError::Refused { status, body: String::new() };
        let cases = [
            (UplinkError::Unavailable("connection reset".into()), true),
            (UplinkError::Unauthorized(401), true),
            (UplinkError::Protocol("bad json".into()), true),
            (refused(404), true), // the upload was restarted or is gone: announce again
            (refused(409), true),
            (refused(429), true),
            (refused(400), false), // a key or size the cloud will never take
            (refused(413), false),
            (refused(422), false),
        ];
        for (error, retry) in cases {
            let what = format!("{error:?}");
            assert_eq!(matches!(classify(error), Outcome::Retry(_)), retry, "{what}");
        }
    }

    #[test]
    fn part_ranges_tile_the_file() {
        // (bytes, part size, n) -> (offset, len)
        let cases =
            [(10, 4, 0, (0, 4)), (10, 4, 1, (4, 4)), (10, 4, 2, (8, 2)), (10, 4, 3, (12, 0)), (4, 4, 0, (0, 4))];
        for (bytes, size, n, expected) in cases {
            assert_eq!(part_range(bytes, size, n), expected, "{bytes}/{size} part {n}");
        }
    }

    #[test]
    fn keys_must_stay_below_the_media_directory() {
        for ok in ["clips/cam/x.mp4", "snapshots/c/y.jpg"] {
            assert!(key_is_local(ok), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../x", "clips/../../x", "./x"] {
            assert!(!key_is_local(bad), "{bad}");
        }
    }

    #[test]
    fn part_timeouts_follow_the_cap() {
        assert_eq!(part_timeout(8 << 20, 0), Duration::from_secs(60 + 2 * 32));
        // 1 MiB at 1000 kbit/s: 8 s of transfer.
        assert_eq!(part_timeout(1 << 20, 1000), Duration::from_secs(60 + 2 * 8));
        assert_eq!(part_timeout(64 << 20, 128), Duration::from_secs(595), "capped below the cloud's");
    }

    #[test]
    fn the_queue_survives_a_reopen_and_keeps_order_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let saved = |n: u8| MediaSaved {
            media: MediaRef { key: format!("clips/cam/{n}.mp4"), content_type: "video/mp4".into() },
            event: Uuid::from_u128(u128::from(n)),
            bytes: 1,
            duration_ms: 1,
        };
        let q = UploadQueue::open(dir.path()).unwrap();
        for n in 1..=3 {
            q.push(&saved(n)).unwrap();
        }
        // A torn write from a crash (never renamed) and garbage are not items.
        std::fs::write(dir.path().join("x.json.tmp"), b"{").unwrap();
        std::fs::write(dir.path().join("zzz.json"), b"not json").unwrap();
        drop(q);

        let q = UploadQueue::open(dir.path()).unwrap();
        let items = q.list();
        let keys: Vec<&str> = items.iter().map(|(_, i)| i.key.as_str()).collect();
        assert_eq!(keys, ["clips/cam/1.mp4", "clips/cam/2.mp4", "clips/cam/3.mp4"]);
        assert_eq!(items[0].1.event, Some(Uuid::from_u128(1)));
        assert!(dir.path().join("failed/zzz.json").exists(), "garbage moved aside");
        q.done(&items[0].0);
        q.fail(&items[1].0, "gone");
        let left: Vec<String> = q.list().into_iter().map(|(_, i)| i.key).collect();
        assert_eq!(left, ["clips/cam/3.mp4"]);
        let failed = std::fs::read_dir(dir.path().join("failed")).unwrap().count();
        assert_eq!(failed, 4, "two items, each with its reason");
    }

    #[test]
    fn file_digests_match_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            (3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned())
        );
    }
}
