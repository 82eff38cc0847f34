//! Migrations and time partitions.

use chrono::{Days, Utc};
use cloud_store::{Store, StoreError};

use crate::common::{fresh_database_url, fresh_store};

async fn partitions(store: &Store) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn daily(day: chrono::NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

#[tokio::test]
async fn migrations_apply_and_create_partitions_around_today() {
    let store = fresh_store().await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, 5);

    let parts = partitions(&store).await;
    let today = Utc::now().date_naive();
    assert!(parts.contains(&"events_default".to_owned()), "{parts:?}");
    for offset in 0..=7 {
        assert!(parts.contains(&daily(today + Days::new(offset))), "{parts:?}");
        assert!(parts.contains(&daily(today - Days::new(offset))), "{parts:?}");
    }
    assert_eq!(parts.len(), 15 + 1);

    // Re-running is a no-op, both the migrations and the partition maintenance.
    store.migrate().await.unwrap();
    assert_eq!(store.ensure_partitions(Utc::now()).await.unwrap(), 0);
    assert_eq!(partitions(&store).await.len(), 16);

    // A later "now" extends the window.
    let later = Utc::now() + Days::new(10);
    assert_eq!(store.ensure_partitions(later).await.unwrap(), 10);
    assert!(partitions(&store).await.contains(&daily(later.date_naive() + Days::new(7))));
}

#[tokio::test]
async fn concurrent_migrations_are_safe() {
    let url = fresh_database_url();
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    a.ping().await.unwrap();
}

#[tokio::test]
async fn unreachable_database_is_unavailable_and_bad_url_is_invalid() {
    let port = test_support::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let err = Store::connect(&url).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    let lazy = Store::connect_lazy(&url).unwrap();
    let err = lazy.ping().await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    for bad in ["mysql://nope", "not a url", "postgres://host:notaport/db"] {
        let err = Store::connect_lazy(bad).unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl { .. }), "{bad}: {err:?}");
    }
    let err = Store::connect_lazy("mysql://nope").unwrap_err();
    assert!(!err.to_string().contains("nope"), "the url must not leak into messages");
}
