//! Row-level security: the database itself keeps tenants apart, even for a query that forgets its
//! `WHERE tenant_id = ..`, and even when the service connects as the tables' (non-superuser) owner.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use cloud_store::{NewCamera, NewUser, Role, Store, TenantId};
use uuid::Uuid;
use vigil_proto::EventKind;

use crate::common::{event, fresh_database_url, fresh_store, identity, provision};

/// Two tenants, each with an event, a camera and a user.
async fn two_tenants(store: &Store) -> (TenantId, TenantId) {
    let mut tenants = Vec::new();
    for name in ["acme", "globex"] {
        let p = provision(store, name).await;
        let edge = identity(store, &p).await;
        store.insert_events(&edge, &[event(&p, EventKind::DetectionPerson, Utc::now())]).await.unwrap();
        let camera = NewCamera { site_id: p.site_id, zone_id: None, name: "door", stream_url: "rtsp://cam/1" };
        store.create_camera(p.tenant_id, &camera).await.unwrap();
        let email = format!("admin@{name}.test");
        let user = NewUser {
            email: &email,
            username: "admin",
            password_hash: "$argon2id$x",
            full_name: None,
            role: Role::Admin,
            site_ids: None,
        };
        store.create_user(p.tenant_id, &user).await.unwrap();
        let media = cloud_store::NewMedia {
            key: "clips/door/1.mp4",
            content_type: "video/mp4",
            bytes: 10,
            sha256: &"a".repeat(64),
            part_size: 8,
            event_id: None,
        };
        let upload = store.announce_media(&edge, &media).await.unwrap().upload;
        assert!(store.record_media_part(&edge, upload.id, 0, 8, "etag").await.unwrap());
        tenants.push(p.tenant_id);
    }
    (tenants[0], tenants[1])
}

/// `SELECT tenant_id FROM <table>` with no filter, inside `tenant`'s transaction.
async fn unfiltered_tenants(store: &Store, tenant: TenantId, table: &str) -> Vec<Uuid> {
    let mut tx = store.tenant_tx(tenant).await.unwrap();
    let sql = format!("SELECT tenant_id FROM {table}");
    let rows: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    rows
}

/// Every table (not partition) with a `tenant_id` column has row-level security enabled and
/// forced, with the tenant policy: a migration that adds a tenant table and forgets it fails here.
#[tokio::test]
async fn every_table_with_a_tenant_column_has_forced_row_level_security() {
    let store = fresh_store().await;
    let rows: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
                EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
           AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' \
                       AND NOT a.attisdropped) \
         ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(rows.len() >= 20, "{rows:?}");
    assert!(rows.iter().any(|r| r.0 == "site_configs"), "{rows:?}");
    let unprotected: Vec<&String> = rows.iter().filter(|r| !(r.1 && r.2 && r.3)).map(|r| &r.0).collect();
    assert!(unprotected.is_empty(), "tenant tables without forced RLS and a tenant policy: {unprotected:?}");
}

#[tokio::test]
async fn a_query_without_a_tenant_filter_still_sees_one_tenant() {
    let store = fresh_store().await;
    let (a, b) = two_tenants(&store).await;

    // As the superuser outside any tenant transaction, both tenants exist.
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM cameras").fetch_one(store.pool()).await.unwrap();
    assert_eq!(all, 2);

    for table in [
        "events",
        "cameras",
        "users",
        "sites",
        "edges",
        "api_keys",
        "refresh_tokens",
        "devices",
        "rules",
        "webhooks",
        "people",
        "credentials",
        "media_objects",
        "media_parts",
    ] {
        for tenant in [a, b] {
            let seen = unfiltered_tenants(&store, tenant, table).await;
            assert!(seen.iter().all(|t| *t == tenant.as_uuid()), "{table}: {seen:?}");
            if !["refresh_tokens", "devices", "rules", "webhooks", "people", "credentials"].contains(&table) {
                assert!(!seen.is_empty(), "{table}");
            }
        }
    }

    // A buggy UPDATE / DELETE without WHERE touches only the current tenant's rows.
    let mut tx = store.tenant_tx(b).await.unwrap();
    let renamed = sqlx::query("UPDATE cameras SET name = 'pwned'").execute(&mut *tx).await.unwrap();
    assert_eq!(renamed.rows_affected(), 1);
    let deleted = sqlx::query("DELETE FROM events").execute(&mut *tx).await.unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    tx.commit().await.unwrap();
    let names: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT tenant_id, name FROM cameras ORDER BY name").fetch_all(store.pool()).await.unwrap();
    assert_eq!(names, vec![(a.as_uuid(), "door".to_owned()), (b.as_uuid(), "pwned".to_owned())]);
    let events: Vec<Uuid> = sqlx::query_scalar("SELECT tenant_id FROM events").fetch_all(store.pool()).await.unwrap();
    assert_eq!(events, vec![a.as_uuid()]);

    // Writing a row for another tenant is refused by the policy's WITH CHECK.
    let mut tx = store.tenant_tx(b).await.unwrap();
    let site_a: Uuid = sqlx::query_scalar("SELECT id FROM sites WHERE tenant_id = $1")
        .bind(a.as_uuid())
        .fetch_one(store.pool())
        .await
        .unwrap();
    let error = sqlx::query(
        "INSERT INTO cameras (id, tenant_id, site_id, name, stream_url) VALUES ($1, $2, $3, 'x', 'rtsp://x')",
    )
    .bind(Uuid::now_v7())
    .bind(a.as_uuid())
    .bind(site_a)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(error.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"), "{error}");
    tx.rollback().await.unwrap();

    // As vigil_app with no tenant set, nothing is visible at all; and the tenant does not leak
    // into the next transaction on the same connection.
    let mut conn = store.pool().acquire().await.unwrap();
    for _ in 0..2 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "BEGIN; SET LOCAL ROLE vigil_app; SELECT set_config('vigil.tenant_id', '{}', true); COMMIT",
            a.as_uuid()
        )))
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::raw_sql("BEGIN; SET LOCAL ROLE vigil_app").execute(&mut *conn).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cameras").fetch_one(&mut *conn).await.unwrap();
        sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
        assert_eq!(n, 0);
    }
    // vigil_app cannot switch the system escape on for itself.
    sqlx::raw_sql("BEGIN; SET LOCAL ROLE vigil_app; SELECT set_config('vigil.system', 'on', true)")
        .execute(&mut *conn)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cameras").fetch_one(&mut *conn).await.unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
    assert_eq!(n, 0);
    // Nor read a partition directly, around the parent's policies.
    sqlx::raw_sql("BEGIN; SET LOCAL ROLE vigil_app").execute(&mut *conn).await.unwrap();
    let error = sqlx::query("SELECT count(*) FROM events_default").fetch_one(&mut *conn).await.unwrap_err();
    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.unwrap();
    assert_eq!(error.as_database_error().and_then(|e| e.code()).as_deref(), Some("42501"), "{error}");
}

/// Production connects as an ordinary role that owns the tables (no superuser, no BYPASSRLS):
/// everything works, and a stray query outside the store's scoped transactions sees nothing.
#[tokio::test]
async fn the_service_works_as_a_non_superuser_owner() {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let admin_url = fresh_database_url();
    let admin = Store::connect(&admin_url).await.unwrap();
    let owner = format!("vigil_owner_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let db = admin_url.rsplit('/').next().unwrap().to_owned();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {owner} LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS; ALTER DATABASE {db} OWNER TO {owner}"
    )))
    .execute(admin.pool())
    .await
    .unwrap();
    let url = admin_url.replacen("postgres://postgres@", &format!("postgres://{owner}@"), 1);
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();

    let (a, _) = two_tenants(&store).await;
    let p = store.provision_edge("acme", "hq", "edge-1", None).await.unwrap();
    assert_eq!(p.tenant_id, a);
    assert_eq!(store.api_key_tenant(&p.api_key).await.unwrap(), Some(a));
    assert!(store.user_for_login("admin@acme.test").await.unwrap().is_some());
    assert_eq!(store.list_cameras(a, None).await.unwrap().len(), 1);
    let page = store.list_events(a, &cloud_store::EventQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);

    // The owner, outside a tenant or system transaction: RLS is forced on it too.
    for table in ["events", "cameras", "users", "tenants", "edges"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    store.close().await;
}
