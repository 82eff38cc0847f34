//! The `vigil-edge` binary's configuration commands, run as a process.

use std::process::Command;

fn edge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil-edge"))
}

#[test]
fn print_default_config_prints_the_shipped_file() {
    let out = edge().arg("print-default-config").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), edged::DEFAULT_CONFIG);
}

#[test]
fn check_config_reports_every_problem_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edged.toml");
    std::fs::write(&path, edged::DEFAULT_CONFIG.replace("analyze_fps = 2.0", "analyze_fps = -1.0")).unwrap();
    let out = edge().arg("check-config").arg(&path).env_remove("VIGIL_EDGE_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cameras[0].analyze_fps"), "{err}");

    // Values fixed: now the missing model, runtime and token are reported together.
    std::fs::write(&path, edged::DEFAULT_CONFIG).unwrap();
    let out = edge().arg("check-config").arg(&path).env_remove("VIGIL_EDGE_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    for needle in ["detector.model", "detector.onnxruntime", "token"] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
}

#[test]
fn run_with_a_missing_config_file_exits_78_without_panicking() {
    let out = edge().args(["--config", "/nonexistent/edged.toml", "run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot read"));
}
