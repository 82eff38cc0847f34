//! Provisioning and credential lookups.

use cloud_store::StoreError;

use crate::common::{fresh_store, identity};

#[tokio::test]
async fn provisioning_creates_then_reuses_tenant_and_site() {
    let store = fresh_store().await;
    let first = store.provision_edge("acme", "hq", "edge-1", Some("Europe/Paris")).await.unwrap();
    assert_eq!(first.edge_token.len(), 64);
    assert_eq!(first.api_key.len(), 64);
    assert_ne!(first.edge_token, first.api_key);
    assert!(!format!("{first:?}").contains(&first.edge_token), "Debug must redact secrets");

    let second = store.provision_edge("acme", "hq", "edge-2", None).await.unwrap();
    assert_eq!(second.tenant_id, first.tenant_id);
    assert_eq!(second.site_id, first.site_id);
    assert_ne!(second.edge_id, first.edge_id);
    assert_ne!(second.api_key, first.api_key);

    let other_site = store.provision_edge("acme", "warehouse", "edge-1", None).await.unwrap();
    assert_eq!(other_site.tenant_id, first.tenant_id);
    assert_ne!(other_site.site_id, first.site_id);

    let tz: Vec<(String, String)> =
        sqlx::query_as("SELECT name, timezone FROM sites ORDER BY name").fetch_all(store.pool()).await.unwrap();
    // The site kept its zone when re-provisioned without one; the new site defaults to UTC.
    assert_eq!(tz, [("hq".to_owned(), "Europe/Paris".to_owned()), ("warehouse".to_owned(), "UTC".to_owned())]);

    // Only hashes are stored.
    let hashes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM edges").fetch_all(store.pool()).await.unwrap();
    assert!(hashes.iter().all(|h| h.len() == 32 && *h != first.edge_token.as_bytes()));
}

#[tokio::test]
async fn reprovisioning_an_edge_rotates_its_token() {
    let store = fresh_store().await;
    let old = store.provision_edge("acme", "hq", "edge-1", None).await.unwrap();
    let new = store.provision_edge("acme", "hq", "edge-1", None).await.unwrap();
    assert_eq!(new.edge_id, old.edge_id);
    assert_ne!(new.edge_token, old.edge_token);
    assert!(store.edge_by_token(&old.edge_token).await.unwrap().is_none());
    assert_eq!(identity(&store, &new).await.edge_id, new.edge_id);
    // API keys accumulate: both remain valid read credentials.
    assert_eq!(store.api_key_tenant(&old.api_key).await.unwrap(), Some(old.tenant_id));
    assert_eq!(store.api_key_tenant(&new.api_key).await.unwrap(), Some(old.tenant_id));
}

#[tokio::test]
async fn token_and_key_lookups() {
    let store = fresh_store().await;
    let p = store.provision_edge("acme", "hq", "edge-1", None).await.unwrap();

    let id = identity(&store, &p).await;
    assert_eq!((id.edge_id, id.tenant_id, id.site_id), (p.edge_id, p.tenant_id, p.site_id));
    let seen: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_seen_at FROM edges").fetch_one(store.pool()).await.unwrap();
    assert!(seen.is_some());

    assert!(store.edge_by_token("unknown").await.unwrap().is_none());
    assert!(store.edge_by_token("").await.unwrap().is_none());
    assert!(store.edge_by_token(&p.api_key).await.unwrap().is_none(), "an api key is not an edge token");
    assert!(store.api_key_tenant(&p.edge_token).await.unwrap().is_none(), "an edge token is not an api key");
    assert!(store.api_key_tenant("unknown").await.unwrap().is_none());

    // Revocation is tenant-scoped and immediate.
    let other = store.provision_edge("globex", "hq", "edge-1", None).await.unwrap();
    assert!(!store.revoke_edge(other.tenant_id, p.edge_id).await.unwrap());
    assert!(store.edge_by_token(&p.edge_token).await.unwrap().is_some());
    assert!(store.revoke_edge(p.tenant_id, p.edge_id).await.unwrap());
    assert!(store.edge_by_token(&p.edge_token).await.unwrap().is_none());
}

#[tokio::test]
async fn provisioning_validates_input() {
    let store = fresh_store().await;
    let err = store.provision_edge("acme", "hq", "edge-1", Some("Mars/Olympus")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "timezone", .. }), "{err:?}");
    let err = store.provision_edge("  ", "hq", "edge-1", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "tenant name", .. }), "{err:?}");
    let err = store.provision_edge("acme", "hq\n", "edge\u{7}", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { field: "edge name", .. }), "{err:?}");
    // Nothing was half-created.
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants").fetch_one(store.pool()).await.unwrap();
    assert_eq!(tenants, 0);
}
