//! A real S3-protocol server (`s3s-fs`) for tests, and a real S3 client (`aws` CLI) to read back
//! what our code stored, independently of it.
//!
//! `s3s-fs` is installed by `tests/setup/deps.sh` (`cargo install s3s-fs --features binary`), the
//! `aws` CLI too (`pip install awscli`). Both are found on `PATH` or in `~/.cargo/bin` or `~/.local/bin`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::{ChildGuard, free_port};

/// Access key the server accepts (tests only).
pub const S3_ACCESS_KEY: &str = "vigil-test-access";
/// Secret key the server accepts (tests only).
pub const S3_SECRET_KEY: &str = "vigil-test-secret-key-0123456789";
/// Region our clients sign for (s3s-fs accepts any).
pub const S3_REGION: &str = "us-east-1";

/// A running `s3s-fs` on a free loopback port, storing under a temporary directory; killed and
/// removed on drop.
#[derive(Debug)]
pub struct S3Server {
    child: ChildGuard,
    port: u16,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server and waits until it accepts connections; `buckets` are created (as
    /// directories of its root, which is how s3s-fs stores buckets).
    pub fn start(buckets: &[&str]) -> anyhow::Result<S3Server> {
        let program = find_program("s3s-fs")?;
        let dir = tempfile::tempdir().context("cannot create a temporary directory for s3s-fs")?;
        let root = dir.path().join("data");
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket)).context("cannot create a bucket directory")?;
        }
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&program);
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                .arg(&root)
                .env("RUST_LOG", "warn");
            let mut child = ChildGuard::spawn_logged(&format!("s3s-fs-{port}"), &mut cmd, dir.path())?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Ok(S3Server { child, port, dir });
                }
                if child.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last_error = child.log_tail(20);
            child.kill();
        }
        bail!("s3s-fs did not start: {last_error}")
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// Where the server keeps its buckets.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Reads `bucket/key` with the `aws` CLI (`s3api get-object`) into memory.
    pub fn get_object(&self, bucket: &str, key: &str) -> anyhow::Result<Vec<u8>> {
        let out = self.dir.path().join(format!("get-{}", free_port()));
        let output = self
            .aws()?
            .args(["s3api", "get-object", "--bucket", bucket, "--key", key])
            .arg(&out)
            .output()
            .context("cannot run the aws cli")?;
        if !output.status.success() {
            bail!("aws s3api get-object {bucket}/{key} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let bytes = std::fs::read(&out).context("cannot read what the aws cli downloaded")?;
        let _ = std::fs::remove_file(&out);
        Ok(bytes)
    }

    /// Lists the keys under `prefix` with the `aws` CLI (`s3api list-objects-v2`).
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let output = self
            .aws()?
            .args(["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix])
            .args(["--query", "Contents[].Key", "--output", "text"])
            .output()
            .context("cannot run the aws cli")?;
        if !output.status.success() {
            bail!("aws s3api list-objects-v2 failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text.split_whitespace().filter(|k| *k != "None").map(str::to_owned).collect())
    }

    /// An `aws` command aimed at this server with its credentials.
    fn aws(&self) -> anyhow::Result<Command> {
        let mut cmd = Command::new(find_program("aws")?);
        cmd.args(["--endpoint-url", &self.endpoint()])
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
            .env("AWS_DEFAULT_REGION", S3_REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE");
        Ok(cmd)
    }
}

/// `name` on `PATH`, or in `~/.cargo/bin` or `~/.local/bin` (where `deps.sh` installs them).
fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).with_context(|| {
        format!("`{name}` not found on PATH, in ~/.cargo/bin or ~/.local/bin: run tests/setup/deps.sh")
    })
}
