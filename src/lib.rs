//! runstore: an embedded, single-file, transactional store for the records of ML experiment
//! runs. Think of it as SQLite for experiment runs: no server, no network, no account.
//!
//! A store is one file (conventionally `*.runs`). It holds projects; a project holds runs
//! (3LC's `Run`: name, description, created and modified times, status, parameters, input
//! tables and values, output values, metrics tables, bulk blobs). Every change is one
//! two-phase redb commit: a crash at any moment leaves the last acknowledged commit.
//!
//! ```no_run
//! use runstore::{Store, Value};
//!
//! # fn main() -> runstore::Result<()> {
//! let store = Store::open_or_create("experiments.runs")?;
//! let run = store.init("mnist", Some("baseline"))?;
//! run.set_parameters(&Value::from_json_str(r#"{"lr": 0.01, "epochs": 2}"#).unwrap())?;
//! run.set_status_running()?;
//! for epoch in 0..2 {
//!     run.add_output_value(&Value::map([("epoch", Value::from(epoch)), ("loss", 0.1.into())]))?;
//! }
//! run.set_status_completed()?;
//! # Ok(())
//! # }
//! ```
//!
//! See `docs/ARCHITECTURE.md` for the map of the code and `docs/FORMAT.md` for the bytes on
//! disk and the commit protocol.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(unsafe_code)]

mod batch;
mod catalog;
mod check;
mod error;
#[cfg(feature = "fault")]
pub mod fault;
mod file;
#[doc(hidden)]
pub mod fuzz;
mod history;
#[cfg(feature = "import")]
pub mod import;
pub mod ingest;
mod liveness;
mod merge;
pub mod names;
pub mod query;
pub mod reduce;
mod run;
mod status;
mod store;
pub mod table;
pub mod time;
mod transfer;
mod vacuum;
pub mod value;

// The command line (feature `cli`) is part of the library so that the Python package runs
// the same code as the binary (`runstore._native.cli_main`, the `runstore` script a pip
// install puts on the PATH); it is reachable only through `cli_main`. Its modules name this
// crate `runstore::`, as code outside the library does.
#[cfg(feature = "cli")]
extern crate self as runstore;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
pub use cli::main as cli_main;

pub use batch::Batch;
pub use catalog::CatalogTableStats;
pub use check::{check, check_with, CheckOptions, CheckReport};
pub use error::{DatabaseError, Error, Holder, Location, Result};
pub use liveness::{act_for_process, Liveness, WriterRecord};
pub use merge::{MergeIfExists, MergeOptions, MergeProgress, MergeProgressFn, MergeReport};
pub use query::{Agg, AggFunc, RunQuery, TableQuery, DOWNSAMPLE_BUCKETS_MAX};
pub use reduce::{
    Method, Progress, ReduceOptions, ReduceReport, ReducerSummary, Stage, StoredReducer,
};
pub use run::{
    parse_run_url, run_url, BulkInfo, BulkReader, CopyIfExists, CopyOptions, InitIfExists,
    InitOptions, MetricTableInfo, Run, RunInfo,
};
pub use status::RunStatus;
pub use store::{ProjectInfo, Store, StoreInfo, VacuumReport, BLOB_CHUNK_BYTES, CACHE_BYTES};
pub use table::metrics::{batch_from_columns, AppendReport, MetricsOptions};
pub use table::{
    with_role, ColumnRole, MetricsWriter, ScanOptions, Table, TableInfo, WriteDurability,
    WriterOptions,
};
pub use value::Value;
