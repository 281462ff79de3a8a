//! The store's integration tests, on SQLite and (when `STONEPOT_TEST_POSTGRES_URL` is
//! set) PostgreSQL. One test binary, not one per file: each binary links the whole
//! store, so a new test file goes here as a module.

#[macro_use]
mod common;

mod closes;
mod commerce;
mod menu;
mod payments;
mod store;
