//! One module per resource; each exports `router()`, merged here.

use axum::Router;

use crate::state::AppState;

pub mod auth;
pub mod cameras;
pub mod detections;
pub mod devices;
pub mod edge;
pub mod enrolment;
pub mod events;
pub mod health;
pub mod ingest;
pub mod media;
pub mod people;
pub mod rules;
pub mod site_config;
pub mod sites;
pub mod streams;

/// Every route of the API but the media part upload, which [`crate::app`] adds with its own
/// timeout (without the cross-cutting layers).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(ingest::router())
        .merge(events::router())
        .merge(cameras::router())
        .merge(devices::router())
        .merge(edge::router())
        .merge(enrolment::router())
        .merge(sites::router())
        .merge(detections::router())
        .merge(streams::router())
        .merge(people::router())
        .merge(rules::router())
        .merge(site_config::router())
        .merge(media::router())
        .merge(crate::openapi::router())
}
