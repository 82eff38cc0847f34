//! Router tests against a real PostgreSQL 15: `app(state).oneshot(request)`, one throwaway cluster
//! per test binary and a fresh database per test.

mod auth;
mod common;
mod edge_commands;
mod enrolment;
mod events;
mod health;
mod ingest;
mod isolation;
mod media;
mod openapi;
mod resources;
mod rules;
mod site_config;
