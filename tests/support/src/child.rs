//! Child processes that cannot outlive their test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::Context as _;

/// A running child process, killed (SIGKILL) and reaped when the guard drops.
///
/// Invariant: once the guard is gone, so is the process.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
    log: Option<PathBuf>,
}

impl ChildGuard {
    /// Guards an already spawned child; `name` is used in messages.
    pub fn new(name: impl Into<String>, child: Child) -> ChildGuard {
        ChildGuard { child, name: name.into(), log: None }
    }

    /// Spawns `cmd` with stdin closed and stdout and stderr appended to `<log_dir>/<name>.log`.
    pub fn spawn_logged(name: &str, cmd: &mut Command, log_dir: &Path) -> anyhow::Result<ChildGuard> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open log file {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("cannot duplicate {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot spawn {name} ({:?})", cmd.get_program()))?;
        Ok(ChildGuard { child, name: name.to_owned(), log: Some(log) })
    }

    /// The operating-system process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where stdout and stderr go, for children spawned with [`ChildGuard::spawn_logged`].
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The whole log so far (empty when there is none or it cannot be read).
    pub fn log(&self) -> String {
        self.log.as_deref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log(), lines)
    }

    /// The exit status if the child has exited, without blocking.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child.try_wait().with_context(|| format!("cannot poll {}", self.name))
    }

    /// Blocks until the child exits (use after asking it to stop).
    pub fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        self.child.wait().with_context(|| format!("cannot wait for {}", self.name))
    }

    /// Kills the child with SIGKILL and reaps it; a no-op when it already exited.
    pub fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Gives access to the inner child (e.g. to send it a signal by pid).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let mut guard = ChildGuard::spawn_logged(
            "echoer",
            Command::new("sh").args(["-c", "echo hello; echo oops >&2"]),
            dir.path(),
        )
        .unwrap();
        assert!(guard.wait().unwrap().success());
        assert_eq!(guard.log(), "hello\noops\n");
        assert_eq!(guard.log_tail(1), "oops");
        assert_eq!(guard.log_path(), Some(dir.path().join("echoer.log").as_path()));
    }

    #[test]
    fn kills_and_reaps_on_drop() {
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        let mut guard = ChildGuard::new("sleeper", child);
        assert!(guard.try_wait().unwrap().is_none());
        let pid = guard.id();
        drop(guard);
        // Reaped, not just killed: no zombie left behind either.
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "child {pid} survived its guard");
    }

    #[test]
    fn tail_takes_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
