//! One frame's tiles shared between inference workers.
//!
//! A tiling detector's look at a busy frame is many tiles (up to 24 for a 768×576 frame); run by one
//! worker, it holds that camera for as long as all of them take while another worker may sit idle.
//! The worker analysing the frame offers it as a [`TileWork`]; an idle worker picks it up before any
//! new frame and both claim tiles one batch at a time until none is left. The owner then waits for the
//! helper's last batch and merges everything (the merge does not depend on who ran which tile).
//!
//! ```text
//! owner:  ask_help(work) ─▶ claim, run, claim, run … ─▶ withdraw ─▶ join (wait for the helper) ─▶ finish
//! helper: take() = Help(work) ─▶ claim, run, claim, run … ─▶ hand back what it found
//! ```

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use edge_core::Frame;
use edge_detect::{BlazePersonDetector, DetectError, PersonDetection, Tile};

/// Tiles of one frame, claimed a batch at a time by its owner and at most one helper at once.
#[derive(Debug)]
pub struct TileWork {
    frame: Arc<Frame>,
    tiles: Vec<Tile>,
    whole: Option<Tile>,
    /// Tiles per claim (the model's batch).
    batch: usize,
    state: Mutex<WorkState>,
    helpers_done: Condvar,
}

#[derive(Debug, Default)]
struct WorkState {
    /// The first tile nobody has claimed yet.
    next: usize,
    /// Helpers running a batch right now.
    helping: usize,
    /// What helpers found, merged within each tile.
    found: Vec<PersonDetection>,
    /// Tiles helpers ran.
    helped: usize,
    error: Option<DetectError>,
}

impl TileWork {
    /// `tiles` and `whole` as [`BlazePersonDetector::plan`] gives them for `frame`.
    pub fn new(frame: Arc<Frame>, tiles: Vec<Tile>, whole: Option<Tile>, batch: usize) -> Arc<TileWork> {
        Arc::new(TileWork {
            frame,
            tiles,
            whole,
            batch: batch.max(1),
            state: Mutex::new(WorkState::default()),
            helpers_done: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, WorkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn claim(&self, st: &mut WorkState) -> Option<std::ops::Range<usize>> {
        let start = st.next;
        if start >= self.tiles.len() {
            return None;
        }
        st.next = (start + self.batch).min(self.tiles.len());
        Some(start..st.next)
    }

    fn run_batch(
        &self,
        detector: &mut BlazePersonDetector,
        range: std::ops::Range<usize>,
        out: &mut Vec<PersonDetection>,
    ) -> Result<(), DetectError> {
        let f = &self.frame;
        detector.run_some_tiles(&f.rgb, f.width, f.height, &self.tiles[range], self.whole, out).map(|_| ())
    }

    /// The owner's share: claims and runs tiles into `out` until none is left. On an error, no tile
    /// is claimed any more.
    pub fn run(&self, detector: &mut BlazePersonDetector, out: &mut Vec<PersonDetection>) -> Result<(), DetectError> {
        loop {
            let Some(range) = self.claim(&mut self.lock()) else { return Ok(()) };
            if let Err(error) = self.run_batch(detector, range, out) {
                self.lock().next = self.tiles.len();
                return Err(error);
            }
        }
    }

    /// A helper's share: claims and runs tiles as [`TileWork::run`] does and hands what it found to
    /// the owner. Returns the tiles it ran.
    pub fn help(&self, detector: &mut BlazePersonDetector) -> usize {
        let mut range = {
            let mut st = self.lock();
            let Some(range) = self.claim(&mut st) else { return 0 };
            st.helping += 1;
            range
        };
        // Even if this thread unwound mid-batch, the owner must not wait for it forever.
        struct Leave<'a>(&'a TileWork);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.lock().helping -= 1;
                self.0.helpers_done.notify_all();
            }
        }
        let _leave = Leave(self);
        let (mut found, mut ran) = (Vec::new(), 0);
        let error = loop {
            ran += range.len();
            if let Err(error) = self.run_batch(detector, range, &mut found) {
                break Some(error);
            }
            match self.claim(&mut self.lock()) {
                Some(r) => range = r,
                None => break None,
            }
        };
        let mut st = self.lock();
        st.found.append(&mut found);
        st.helped += ran;
        if let Some(error) = error {
            st.next = self.tiles.len();
            st.error.get_or_insert(error);
        }
        ran
    }

    /// After [`TileWork::run`]: waits for a helper still running a batch, then adds what helpers found
    /// to `out`. Returns how many tiles they ran, or a helper's error.
    pub fn join(&self, out: &mut Vec<PersonDetection>) -> Result<usize, DetectError> {
        let mut st = self.lock();
        while st.helping > 0 {
            st = self.helpers_done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if let Some(error) = st.error.take() {
            return Err(error);
        }
        out.append(&mut st.found);
        Ok(st.helped)
    }
}
