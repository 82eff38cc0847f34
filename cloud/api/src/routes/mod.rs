//! One module per resource; each exports `router()`, merged here.

use axum::Router;

use crate::state::AppState;

pub mod events;
pub mod health;
pub mod ingest;

/// Every route of the API (without the cross-cutting layers; see [`crate::app`]).
pub fn router() -> Router<AppState> {
    Router::new().merge(health::router()).merge(ingest::router()).merge(events::router())
}
