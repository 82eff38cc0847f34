//! Shared request state.

use cloud_store::Store;

/// What every handler can reach. Cheap to clone (the store is a pool handle).
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
}

impl AppState {
    pub fn new(store: Store) -> AppState {
        AppState { store }
    }
}
