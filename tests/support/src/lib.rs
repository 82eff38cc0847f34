//! Test harness pieces shared by integration and end-to-end tests.
//!
//! - [`PgCluster`]: a throwaway PostgreSQL 15 cluster on a free loopback port;
//! - [`free_port`], [`fixtures_dir`], [`workspace_bin`]: locating things;
//! - [`ChildGuard`]: a child process that is killed when the guard drops;
//! - [`S3Server`]: a real S3-protocol server (`s3s-fs`) read back with the `aws` CLI.
//!
//! Invariant: nothing started here outlives the test process. Children die with their guard, and a
//! PostgreSQL cluster is torn down by a detached watchdog as soon as the test process exits, even
//! when the cluster lives in a `static` (whose `Drop` never runs) or the process is killed.
//!
//! This crate is synchronous and has no database driver, so any test (sync or async) can use it.

mod child;
mod paths;
mod pg;
mod s3;

pub use child::ChildGuard;
pub use paths::{fixtures_dir, free_port, workspace_bin};
pub use pg::PgCluster;
pub use s3::{S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, S3Server};
