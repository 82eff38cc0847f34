//! Finding ports, fixtures and workspace binaries.

use std::net::TcpListener;
use std::path::PathBuf;

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process may take it in between: callers that
/// start a server on it should retry with a new port when binding fails.
///
/// # Panics
///
/// When the loopback interface cannot bind at all (the machine is unusable for tests).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("invariant: can bind 127.0.0.1:0");
    listener.local_addr().expect("invariant: a bound socket has an address").port()
}

/// The directory holding the runtime fixtures (ONNX Runtime, models, footage).
///
/// Taken from `VIGIL_FIXTURES`, which `.cargo/config.toml` points at `<repo>/.fixtures`.
///
/// # Panics
///
/// When the variable is unset or the directory does not exist: run `tests/setup/fixtures.sh` first.
pub fn fixtures_dir() -> PathBuf {
    let Some(dir) = std::env::var_os("VIGIL_FIXTURES") else {
        panic!("VIGIL_FIXTURES is not set; run tests through cargo and run tests/setup/fixtures.sh first");
    };
    let dir = PathBuf::from(dir);
    assert!(dir.is_dir(), "fixtures directory {} is missing; run tests/setup/fixtures.sh first", dir.display());
    dir
}

/// Path of the workspace binary `name` built in the same profile as the running test.
///
/// A test executable lives in `target/<profile>/deps/`; binaries live in `target/<profile>/`.
///
/// # Panics
///
/// When the binary has not been built: build it with `cargo build --workspace --bins` (adding
/// `--release` for release tests).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("invariant: the test knows its own path");
    let mut dir = exe.parent().expect("invariant: an executable lives in a directory").to_path_buf();
    if dir.file_name().is_some_and(|d| d == "deps") {
        dir.pop();
    }
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "workspace binary `{name}` not found at {}; build it with cargo build --workspace --bins",
        bin.display()
    );
    bin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
