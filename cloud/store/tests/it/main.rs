//! Integration tests of the store against a real PostgreSQL 15 (one throwaway cluster for this
//! test binary, a fresh database per test).

mod common;
mod ingest;
mod listing;
mod retention;
mod rls;
mod schema;
mod tenancy;
