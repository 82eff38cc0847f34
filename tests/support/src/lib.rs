//! Test harness pieces shared by integration and end-to-end tests.
//!
//! - [`PgCluster`]: a throwaway PostgreSQL 15 cluster on a free loopback port;
//! - [`free_port`], [`fixtures_dir`], [`workspace_bin`]: locating things;
//! - [`ChildGuard`]: a child process that is killed when the guard drops.
//!
//! Invariant: nothing started here outlives the test process. Children die with their guard, and a
//! PostgreSQL cluster is torn down by a detached watchdog as soon as the test process exits, even
//! when the cluster lives in a `static` (whose `Drop` never runs) or the process is killed.
//!
//! This crate is synchronous and has no database driver, so any test (sync or async) can use it.

mod child;
mod paths;
mod pg;

pub use child::ChildGuard;
pub use paths::{fixtures_dir, free_port, workspace_bin};
pub use pg::PgCluster;
