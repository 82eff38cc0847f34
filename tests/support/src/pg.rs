//! A throwaway PostgreSQL cluster for tests.
//!
//! Layout of the temporary directory (owned by the `postgres` user when the tests run as root,
//! because `initdb` refuses to run as root):
//!
//! ```text
//! <tmp>/vigil-pg-XXXXXX/
//!   data/         the cluster (initdb -D)
//!   server.log    the postmaster's log
//!   .s.PGSQL.N    the unix socket
//! ```
//!
//! Invariant: the cluster and its directory disappear when the [`PgCluster`] drops *or* when the
//! test process exits, whichever comes first. A watchdog shell in its own process group blocks on
//! a pipe whose write end only this process holds; when the pipe closes it stops the cluster
//! (`pg_ctl stop -m immediate`) and removes the directory. This also covers clusters kept in a
//! `static` (never dropped) and test processes killed by a timeout.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::child::tail;
use crate::paths::free_port;

/// Where Debian's `postgresql-15` puts the server binaries; `VIGIL_PG_BIN` overrides it.
const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How many times a start is retried on a fresh port when the chosen one was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// How long to wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Stops the cluster and removes its directory once stdin reaches end-of-file.
/// Arguments: $1 pg_ctl, $2 data dir, $3 root dir, $4 "1" to run pg_ctl as the postgres user.
const WATCHDOG: &str = r#"
cat >/dev/null
if [ -f "$2/postmaster.pid" ]; then
  if [ "$4" = 1 ]; then
    runuser -u postgres -- "$1" stop -D "$2" -m immediate -w -t 20 >/dev/null 2>&1
  else
    "$1" stop -D "$2" -m immediate -w -t 20 >/dev/null 2>&1
  fi
  pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null)
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
fi
rm -rf "$3"
"#;

/// A running PostgreSQL 15 cluster on `127.0.0.1:<port>`, with trust authentication for the
/// superuser `postgres`. Stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
    watchdog: Child,
    /// Closing this (on drop or process exit) tells the watchdog to tear the cluster down.
    watchdog_pipe: Option<ChildStdin>,
}

impl PgCluster {
    /// Creates and starts a fresh cluster; blocks until it accepts connections.
    ///
    /// Takes about a second. Errors carry the failing command's output and the server log tail.
    pub fn start() -> anyhow::Result<PgCluster> {
        let bin = std::env::var_os("VIGIL_PG_BIN").map_or_else(|| PathBuf::from(DEFAULT_PG_BIN), PathBuf::from);
        if !bin.join("initdb").is_file() {
            bail!(
                "PostgreSQL server binaries not found in {} (install postgresql-15 with tests/setup/deps.sh, \
                 or set VIGIL_PG_BIN)",
                bin.display()
            );
        }
        let as_root = std::fs::metadata("/proc/self").context("cannot read /proc/self")?.uid() == 0;

        let dir = tempfile::Builder::new()
            .prefix("vigil-pg-")
            .tempdir()
            .context("cannot create a temporary directory for PostgreSQL")?
            .keep();
        let data = dir.join("data");

        // From here on the watchdog owns the directory's removal.
        let (watchdog, watchdog_pipe) = match spawn_watchdog(&bin, &data, &dir, as_root) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let mut cluster = PgCluster { port: 0, dir, bin, as_root, watchdog, watchdog_pipe: Some(watchdog_pipe) };
        cluster.init(as_root)?;
        cluster.start_server(as_root)?;
        Ok(cluster)
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of the `postgres` maintenance database.
    pub fn url(&self) -> String {
        self.db_url("postgres")
    }

    /// Creates database `name` (lowercase letters, digits and `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            bail!("invalid database name {name:?}: use 1-63 lowercase letters, digits and underscores");
        }
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-c")
            .arg(format!("CREATE DATABASE {name}"))
            .env("PGCONNECT_TIMEOUT", "10");
        run(&mut cmd, "psql CREATE DATABASE")?;
        Ok(self.db_url(name))
    }

    /// Stops the server like a crash or a pulled plug would (`pg_ctl stop -m immediate`): every
    /// connection drops at once, nothing is shut down cleanly. [`PgCluster::start_again`] brings
    /// it back on the same port and data directory (crash recovery replays the WAL).
    pub fn stop_immediate(&self) -> anyhow::Result<()> {
        run(
            self.pg_command("pg_ctl", self.as_root).arg("stop").arg("-D").arg(self.data_dir()).args([
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
            ]),
            "pg_ctl stop -m immediate",
        )?;
        Ok(())
    }

    /// Starts the stopped server again on the same port and data directory; blocks until it
    /// accepts connections.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let mut cmd = self.pg_command("pg_ctl", self.as_root);
        cmd.arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", &READY_TIMEOUT.as_secs().to_string()])
            .arg("-o")
            .arg(format!("-p {}", self.port));
        run(&mut cmd, "pg_ctl start (again)").with_context(|| self.log_context())?;
        self.wait_ready().with_context(|| self.log_context())
    }

    /// The cluster's temporary directory (data, log, socket); gone after drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn db_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a server binary, as the `postgres` user when this process is root.
    fn pg_command(&self, tool: &str, as_root: bool) -> Command {
        let program = self.bin.join(tool);
        if as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn init(&self, as_root: bool) -> anyhow::Result<()> {
        if as_root {
            run(
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.dir),
                "chown the cluster directory to postgres",
            )?;
        }
        run(
            self.pg_command("initdb", as_root).arg("-D").arg(self.data_dir()).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]),
            "initdb",
        )?;
        // Appended settings win over the defaults initdb wrote earlier in the file.
        let conf = format!(
            "\n# vigil test cluster\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n",
            self.dir.display().to_string().replace('\'', "''")
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .context("cannot append to postgresql.conf")?;
        Ok(())
    }

    fn start_server(&mut self, as_root: bool) -> anyhow::Result<()> {
        let log = self.dir.join("server.log");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let mut cmd = self.pg_command("pg_ctl", as_root);
            cmd.arg("start")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", &READY_TIMEOUT.as_secs().to_string()])
                .arg("-o")
                .arg(format!("-p {port}"));
            match run(&mut cmd, "pg_ctl start") {
                Ok(_) => {
                    self.port = port;
                    return self.wait_ready().with_context(|| self.log_context());
                }
                Err(e) => {
                    let log_text = self.log();
                    let port_taken = log_text.contains("already in use") || log_text.contains("could not bind");
                    if port_taken && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    return Err(e.context(self.log_context()));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let status = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-t", "5", "-p"])
                .arg(self.port.to_string())
                .status()
                .context("cannot run pg_isready")?;
            if status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL on port {} not ready after {READY_TIMEOUT:?}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_context(&self) -> String {
        format!("PostgreSQL server log tail:\n{}", tail(&self.log(), 30))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // End-of-file on the pipe makes the watchdog stop the server and delete the directory.
        drop(self.watchdog_pipe.take());
        let _ = self.watchdog.wait();
    }
}

/// Starts the teardown watchdog in its own process group (so a Ctrl-C or a group kill aimed at
/// the tests does not take it down before it has cleaned up).
fn spawn_watchdog(bin: &Path, data: &Path, dir: &Path, as_root: bool) -> anyhow::Result<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("vigil-pg-watchdog")
        .arg(bin.join("pg_ctl"))
        .arg(data)
        .arg(dir)
        .arg(if as_root { "1" } else { "0" })
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot spawn the PostgreSQL cleanup watchdog (sh)")?;
    let pipe = child.stdin.take().context("watchdog has no stdin pipe")?;
    Ok((child, pipe))
}

/// Runs `cmd` to completion; a non-zero exit becomes an error with its output.
fn run(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let output = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot run {what} ({cmd:?})"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}
