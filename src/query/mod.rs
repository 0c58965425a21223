//! Queries over a store: which runs (the filter language, `filter`) and what is in a table
//! (`Table::query`: projection, row range, column filters, aggregates, downsampling).
//!
//! This module owns the text a person types to ask a question of the store and the meaning of
//! that text. It leaves reading runs to the catalog: an expression is evaluated against anything
//! that implements [`filter::Subject`], so the store decides what to load (see
//! [`filter::Expr::referenced_params`] and [`filter::Expr::referenced_outputs`]).

pub(crate) mod filter;
mod runs;
mod scan;
mod values;

pub use runs::RunQuery;
pub use scan::{Agg, AggFunc, TableQuery, DOWNSAMPLE_BUCKETS_MAX};
pub use values::VALUE_COLUMNS_MAX;
