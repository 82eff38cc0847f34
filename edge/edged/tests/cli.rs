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

    // Values fixed, and the edge provisioned (a tenant, no enrolment): now the missing model,
    // runtime and token are reported together.
    let provisioned = edged::DEFAULT_CONFIG.replace(
        "tenant = \"00000000-0000-0000-0000-000000000000\"",
        "tenant = \"0190a000-0000-7000-8000-000000000001\"",
    );
    std::fs::write(&path, provisioned).unwrap();
    let out = edge().arg("check-config").arg(&path).env_remove("VIGIL_EDGE_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8(out.stderr).unwrap();
    for needle in ["detector.model", "detector.onnxruntime", "token"] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }

    // The shipped default waits to be enrolled: no token yet is not a problem.
    std::fs::write(&path, edged::DEFAULT_CONFIG).unwrap();
    let out = edge().arg("check-config").arg(&path).env_remove("VIGIL_EDGE_TOKEN").output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("detector.model") && !err.contains("token"), "{err}");
}

#[test]
fn enrol_needs_an_enrolment_file_and_writes_nothing_when_the_cloud_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edged.toml");
    let without = edged::DEFAULT_CONFIG.replace("enrolment = \"/var/lib/vigil/enrolment.toml\"\n", "");
    std::fs::write(&path, without).unwrap();
    let enrol = |path: &std::path::Path| {
        edge()
            .arg("--config")
            .arg(path)
            .args(["enrol", "--cloud", "http://127.0.0.1:9", "--code", "ABCD-EFGH-JKMN"])
            .output()
            .unwrap()
    };
    let out = enrol(&path);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cloud.enrolment"));

    let state = dir.path().join("enrolment.toml");
    let token = dir.path().join("edge.token");
    let with = edged::DEFAULT_CONFIG
        .replace("/var/lib/vigil/enrolment.toml", &state.display().to_string())
        .replace("/etc/vigil/edge.token", &token.display().to_string());
    std::fs::write(&path, with).unwrap();
    let out = enrol(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the cloud") && !err.contains("ABCD"), "{err}");
    assert!(!state.exists() && !token.exists());
}

#[test]
fn run_with_a_missing_config_file_exits_78_without_panicking() {
    let out = edge().args(["--config", "/nonexistent/edged.toml", "run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot read"));
}
