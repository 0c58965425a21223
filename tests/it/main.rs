//! The one integration test binary (`autotests = false`): every file under `tests/it/` is a
//! module of it, so the crate links once.

mod api;
mod batch;
mod cli;
mod crash;
mod model;
mod query;
mod tables;
mod util;
