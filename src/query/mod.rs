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

/// The name in `candidates` that `word` most likely mistypes, as the query errors' "did you
/// mean" picks it: the same letters in another case (names are case-sensitive), a name one or
/// two edits away (words of three characters or more), or the shortest name `word` begins.
/// `None` when no name is that close. The command line uses it to name the project or run a
/// user meant.
pub fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str> + Clone,
) -> Option<&'c str> {
    filter::suggest_key(word, candidates)
}
