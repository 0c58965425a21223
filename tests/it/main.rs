//! The one integration test binary (`autotests = false`): every file under `tests/it/` is a
//! module of it, so the crate links once.

mod api;
mod cli;
mod cli_shell;
mod crash;
mod model;
mod query;
mod tables;
mod transfer;
mod util;
