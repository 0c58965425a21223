//! The one integration test binary (`autotests = false`): every file under `tests/it/` is a
//! module of it, so the crate links once.

#[path = "../harness/mod.rs"]
mod harness;

mod api;
mod backup;
mod bad_input;
mod batch;
mod bulk_names;
mod cli;
mod cli_scan;
mod cli_shell;
mod corruption;
mod crash;
mod edges_files;
mod edges_ingest;
mod edges_recovery;
mod edges_values;
mod history;
#[cfg(feature = "import")]
mod import;
mod key_index;
mod key_typos;
mod merge;
mod model;
mod power_loss;
mod query;
mod query_model;
mod reduce;
mod scan_query;
mod stale;
mod sweep;
mod tables;
mod transfer;
#[cfg(feature = "ui")]
mod ui;
mod util;
mod values;
