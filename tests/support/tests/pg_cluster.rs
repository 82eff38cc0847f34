//! The throwaway PostgreSQL cluster starts, serves, creates databases and cleans up after itself.

use std::net::TcpStream;
use std::process::Command;

use test_support::PgCluster;

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn cluster_lifecycle() {
    let pg = PgCluster::start().unwrap();
    let port = pg.port();
    assert_eq!(pg.url(), format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    assert_eq!(psql(&pg.url(), "SELECT 1"), "1");
    assert!(psql(&pg.url(), "SHOW server_version").starts_with("15"));
    assert_eq!(psql(&pg.url(), "SHOW fsync"), "off");

    let url = pg.create_database("lifecycle_db").unwrap();
    assert!(url.ends_with("/lifecycle_db"));
    assert_eq!(psql(&url, "SELECT current_database()"), "lifecycle_db");

    let err = pg.create_database("lifecycle_db").unwrap_err();
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    let err = pg.create_database("Bad-Name; DROP").unwrap_err();
    assert!(format!("{err:#}").contains("invalid database name"), "{err:#}");

    let dir = pg.dir().to_path_buf();
    assert!(dir.join("data/PG_VERSION").is_file());
    drop(pg);
    assert!(!dir.exists(), "cluster directory {} left behind", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "server still listening after drop");
}

#[test]
fn two_clusters_side_by_side() {
    let a = PgCluster::start().unwrap();
    let b = PgCluster::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert_eq!(psql(&a.url(), "SELECT 1"), "1");
    assert_eq!(psql(&b.url(), "SELECT 2"), "2");
}
