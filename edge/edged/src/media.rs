//! Clips and snapshots for the events that caused them.
//!
//! ```text
//! record stream (per camera, encoded H.264) ─▶ pre-roll ring ─▶ clip writer (MP4, no re-encode)
//!                                                   ▲ request_clip(event id, pre, post)
//! detect worker: new object ──────────────────────┘  (one "incident" clip per camera, extended while
//!                                                      people keep appearing; the events reference it)
//!                object ended ─▶ best frame of the track ─▶ JPEG with its box ─▶ snapshot file
//! recorder reports ─▶ media task ─▶ media.saved events (and disk-full alerts) ─▶ spool
//! janitor: media directory bounded by size and by the disk's free space, oldest first
//! ```
//!
//! Object keys are relative paths (`clips/<camera>/<event id>.mp4`, `snapshots/<camera>/<event
//! id>.jpg`) under the media directory; the same key names the object in cloud storage.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::detect::event_id;
use crate::upload::UploadQueue;
use edge_core::Frame;
use edge_core::track::Track;
use edge_spool::Spool;
use edge_video::{BestShots, ClipAccepted, RecordEvent, Recorder, SnapshotOptions};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vigil_proto::{Alert, Event, EventKind, MediaRef, MediaSaved, Payload, Severity, Source, SourceKind, Timestamp};

/// `[media]`, validated.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Root of `clips/` and `snapshots/`.
    pub dir: PathBuf,
    pub clip_pre: Duration,
    pub clip_post: Duration,
    /// The directory is kept under this size (oldest files deleted first).
    pub max_bytes: u64,
    /// ... and the filesystem above this much free space.
    pub reserve_bytes: u64,
    /// JPEG of each tracked object's best frame when it leaves.
    pub snapshots: bool,
    /// Upload finished clips and snapshots to the cloud (see `upload`).
    pub upload: bool,
}

impl MediaSettings {
    /// The durable upload queue's directory (beside `clips/` and `snapshots/`, out of the janitor's way).
    pub fn upload_queue_dir(&self) -> PathBuf {
        self.dir.join(".upload-queue")
    }
}

/// One camera's media state, checked out by a detect worker together with the camera's analyzer.
#[derive(Debug)]
pub struct CameraMedia {
    camera: Arc<str>,
    recorder: Option<Recorder>,
    shots: BestShots,
    /// The clip new objects are added to while its post-roll runs: (clip id, reference, end).
    incident: Option<(String, MediaRef, Instant)>,
    settings: Option<Arc<MediaSettings>>,
    /// Where finished snapshots are queued for upload.
    upload: Option<UploadQueue>,
}

impl CameraMedia {
    /// No clips or snapshots (no `[media]`).
    pub fn none(camera: Arc<str>) -> CameraMedia {
        CameraMedia {
            camera,
            recorder: None,
            shots: BestShots::default(),
            incident: None,
            settings: None,
            upload: None,
        }
    }

    pub fn new(
        camera: Arc<str>,
        recorder: Option<Recorder>,
        settings: Arc<MediaSettings>,
        upload: Option<UploadQueue>,
    ) -> CameraMedia {
        CameraMedia { camera, recorder, shots: BestShots::default(), incident: None, settings: Some(settings), upload }
    }

    /// After analysis of `frame`: keeps each visible track's best frame, gives new objects a clip and
    /// ended objects a snapshot (mutating their events), and appends `media.saved` for snapshots.
    pub fn process(&mut self, frame: &Arc<Frame>, tracks: &[Track], events: &mut Vec<Event>) {
        let Some(settings) = self.settings.clone() else { return };
        if settings.snapshots {
            for t in tracks.iter().filter(|t| t.last_seen == frame.captured_at) {
                // Prefer big, confident views: score × area.
                self.shots.offer(t.id, t.best_score * t.rect.area(), frame, t.rect);
            }
        }
        let mut saved = Vec::new();
        for e in events.iter_mut() {
            match (&e.kind, &mut e.payload) {
                (EventKind::DetectionPerson | EventKind::DetectionVehicle, Payload::Detection(d)) => {
                    d.clip = self.clip_for(e.id, &settings);
                }
                (EventKind::ObjectEnded, Payload::Object(o)) if settings.snapshots => {
                    let Some(shot) = self.shots.take(o.track) else { continue };
                    let key = format!("snapshots/{}/{}.jpg", self.camera, e.id);
                    match write_snapshot(&settings.dir, &key, &shot) {
                        Ok(bytes) => {
                            let media = MediaRef { key, content_type: "image/jpeg".into() };
                            o.snapshot = Some(media.clone());
                            let event = self.saved_event(e, media, bytes, 0);
                            if let (Some(queue), Payload::Media(m)) = (&self.upload, &event.payload) {
                                queue.push_or_log(m);
                            }
                            saved.push(event);
                        }
                        Err(error) => tracing::warn!(camera = %self.camera, %error, "Snapshot not written."),
                    }
                }
                _ => {}
            }
        }
        // Tracks that ended without an event (never confirmed) release their frames too.
        let live: std::collections::HashSet<u64> = tracks.iter().map(|t| t.id).collect();
        self.shots.retain(|t| live.contains(&t));
        events.extend(saved);
    }

    /// The clip a new object's event references: the running incident's (extended), or a new one.
    fn clip_for(&mut self, event: Uuid, settings: &MediaSettings) -> Option<MediaRef> {
        let recorder = self.recorder.as_ref()?;
        let now = Instant::now();
        if let Some((id, media, end)) = &mut self.incident
            && now < *end
        {
            match recorder.request_clip(
                id.clone(),
                settings.clip_pre,
                settings.clip_post,
                settings.dir.join(&media.key),
            ) {
                Ok(ClipAccepted::Extended) => {
                    *end = now + settings.clip_post;
                    return Some(media.clone());
                }
                Ok(ClipAccepted::Started) => {} // the old one had just finished: this started a new file
                Err(error) => {
                    tracing::debug!(camera = %self.camera, %error, "No clip for this event.");
                    return None;
                }
            }
        }
        let id = event.to_string();
        let media = MediaRef { key: format!("clips/{}/{id}.mp4", self.camera), content_type: "video/mp4".into() };
        if let Some(parent) = settings.dir.join(&media.key).parent()
            && let Err(error) = std::fs::create_dir_all(parent)
        {
            tracing::warn!(camera = %self.camera, %error, "Cannot create the clip directory.");
            return None;
        }
        match recorder.request_clip(id.clone(), settings.clip_pre, settings.clip_post, settings.dir.join(&media.key)) {
            Ok(_) => {
                self.incident = Some((id, media.clone(), now + settings.clip_post));
                Some(media)
            }
            Err(error) => {
                tracing::debug!(camera = %self.camera, %error, "No clip for this event.");
                None
            }
        }
    }

    fn saved_event(&self, of: &Event, media: MediaRef, bytes: u64, duration_ms: u64) -> Event {
        Event {
            id: event_id(of.occurred_at),
            tenant: of.tenant,
            site: of.site,
            zone: of.zone.clone(),
            source: Source { kind: SourceKind::Camera, id: self.camera.to_string() },
            kind: EventKind::MediaSaved,
            occurred_at: of.occurred_at,
            payload: Payload::Media(MediaSaved { media, event: of.id, bytes, duration_ms }),
        }
    }
}

fn write_snapshot(dir: &Path, key: &str, shot: &edge_video::BestShot) -> Result<u64, String> {
    let jpeg = edge_video::encode_snapshot(&shot.frame, &[shot.rect], &SnapshotOptions::default())
        .map_err(|e| e.to_string())?;
    let path = dir.join(key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let part = path.with_extension("jpg.part");
    std::fs::write(&part, &jpeg).map_err(|e| e.to_string())?;
    std::fs::rename(&part, &path).map_err(|e| e.to_string())?;
    Ok(jpeg.len() as u64)
}

/// Turns recorder reports into events: `media.saved` for finished clips, alerts when continuous
/// recording pauses for lack of disk. Runs until every recorder is gone.
pub async fn media_task(
    mut reports: mpsc::UnboundedReceiver<RecordEvent>,
    ids: (Uuid, Uuid),
    settings: Arc<MediaSettings>,
    spool: Spool,
    spooled: Arc<Notify>,
    upload: Option<UploadQueue>,
) {
    let (tenant, site) = ids;
    while let Some(report) = reports.recv().await {
        let now = Timestamp::from(chrono::Utc::now());
        let event = |camera: &str, kind, payload| Event {
            id: event_id(now),
            tenant,
            site,
            zone: None,
            source: Source { kind: SourceKind::Camera, id: camera.to_owned() },
            kind,
            occurred_at: now,
            payload,
        };
        let out = match report {
            RecordEvent::Clip(c) => match (&c.error, Uuid::parse_str(&c.id)) {
                (None, Ok(origin)) => {
                    let key = c.path.strip_prefix(&settings.dir).map(|p| p.to_string_lossy().into_owned());
                    let key = key.unwrap_or_else(|_| c.path.to_string_lossy().into_owned());
                    tracing::info!(camera = %c.camera, %key, bytes = c.bytes, secs = c.duration.as_secs_f32(), truncated = c.truncated, "Clip saved.");
                    let media = MediaSaved {
                        media: MediaRef { key, content_type: "video/mp4".into() },
                        event: origin,
                        bytes: c.bytes,
                        duration_ms: c.duration.as_millis() as u64,
                    };
                    Some(event(&c.camera, EventKind::MediaSaved, Payload::Media(media)))
                }
                (None, Err(_)) => {
                    tracing::info!(camera = %c.camera, path = %c.path.display(), "Clip saved (rule or operator request).");
                    None
                }
                (Some(error), _) => {
                    tracing::warn!(camera = %c.camera, %error, id = %c.id, "Clip failed.");
                    None
                }
            },
            RecordEvent::DiskFull { camera, free_bytes, reserve_bytes } => {
                tracing::error!(%camera, free_bytes, reserve_bytes, "Disk full: continuous recording paused.");
                let message = format!("recording_paused_disk_full: {camera} ({free_bytes} bytes free)");
                let alert = Alert { rule: None, severity: Severity::Critical, message };
                Some(event(&camera, EventKind::AlertTriggered, Payload::Alert(alert)))
            }
            RecordEvent::DiskOk { camera, .. } => {
                tracing::warn!(%camera, "Disk space back: continuous recording resumed.");
                let alert =
                    Alert { rule: None, severity: Severity::Info, message: format!("recording_resumed: {camera}") };
                Some(event(&camera, EventKind::AlertTriggered, Payload::Alert(alert)))
            }
            RecordEvent::SegmentFailed { camera, path, error } => {
                tracing::warn!(%camera, path = %path.display(), %error, "Recording segment failed.");
                None
            }
            RecordEvent::Segment(_) | RecordEvent::SegmentsDeleted { .. } => None,
        };
        if let Some(e) = out {
            let spool = spool.clone();
            let upload = upload.clone();
            let appended = tokio::task::spawn_blocking(move || {
                let appended = spool.append(std::slice::from_ref(&e));
                // A clip is queued for upload once its media.saved event is durable.
                if let (Ok(_), Some(queue), Payload::Media(m)) = (&appended, &upload, &e.payload) {
                    queue.push_or_log(m);
                }
                appended
            });
            match appended.await {
                Ok(Ok(_)) => spooled.notify_one(),
                Ok(Err(error)) => tracing::error!(%error, "Media event could not be spooled."),
                Err(error) => tracing::error!(%error, "Media event task failed."),
            }
        }
    }
}

/// Files under `dir` (recursively), oldest first: (modified, size, path). `.part` files in progress are left alone.
fn media_files(dir: &Path) -> Vec<(std::time::SystemTime, u64, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e != "part") {
                out.push((meta.modified().unwrap_or(std::time::UNIX_EPOCH), meta.len(), path));
            }
        }
    }
    out.sort();
    out
}

/// Which files to delete (oldest first) so that the total stays under `max_bytes` and free space
/// above `reserve_bytes`.
pub fn plan_cleanup(
    files: &[(std::time::SystemTime, u64, PathBuf)],
    free: u64,
    max_bytes: u64,
    reserve_bytes: u64,
) -> Vec<PathBuf> {
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    let mut free = free;
    let mut delete = Vec::new();
    for (_, size, path) in files {
        if total <= max_bytes && free >= reserve_bytes {
            break;
        }
        total -= size;
        free += size;
        delete.push(path.clone());
    }
    delete
}

/// Keeps the media directory bounded, every 30 s, until cancelled.
pub async fn janitor(settings: Arc<MediaSettings>, cancel: CancellationToken) {
    loop {
        let s = settings.clone();
        let removed = tokio::task::spawn_blocking(move || {
            // Continuous recordings have their own retention; this bounds what events reference.
            let mut files = media_files(&s.dir.join("clips"));
            files.extend(media_files(&s.dir.join("snapshots")));
            files.sort();
            let free = edge_video::record::statvfs_free_space(&s.dir).unwrap_or(u64::MAX);
            let delete = plan_cleanup(&files, free, s.max_bytes, s.reserve_bytes);
            delete.iter().filter(|p| std::fs::remove_file(p).is_ok()).count()
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            tracing::warn!(removed, dir = %settings.dir.display(), "Oldest clips and snapshots deleted to stay within the media bounds.");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

/// `start_recording` / `save_clip` from rules, by camera id.
#[derive(Debug)]
pub struct Recorders {
    pub by_camera: Vec<(String, Recorder)>,
    pub dir: PathBuf,
}

impl crate::rules::Recording for Recorders {
    fn save_clip(&self, camera: &str, pre: Duration, post: Duration, reason: &str) -> Result<String, String> {
        let Some((_, rec)) = self.by_camera.iter().find(|(c, _)| c == camera) else {
            return Err(format!("camera {camera} does not record"));
        };
        let id = format!("{}-{}", reason.replace([':', '/'], "-"), Uuid::now_v7());
        let key = format!("clips/{camera}/{id}.mp4");
        let path = self.dir.join(&key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        rec.request_clip(id, pre, post, path).map_err(|e| e.to_string())?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn cleanup_deletes_oldest_until_under_size_and_above_reserve() {
        let f = |secs: u64, size: u64, name: &str| (UNIX_EPOCH + Duration::from_secs(secs), size, PathBuf::from(name));
        let files = vec![f(1, 100, "a"), f(2, 100, "b"), f(3, 100, "c")];
        let names = |v: Vec<PathBuf>| v.into_iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>();
        assert!(plan_cleanup(&files, 10_000, 300, 1_000).is_empty(), "within bounds");
        assert_eq!(names(plan_cleanup(&files, 10_000, 250, 1_000)), ["a"], "over size");
        assert_eq!(names(plan_cleanup(&files, 850, 1_000, 1_000)), ["a", "b"], "below the reserve");
        assert_eq!(names(plan_cleanup(&files, 0, 1_000, 1_000)), ["a", "b", "c"], "everything, and still short");
    }
}
