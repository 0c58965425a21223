//! Embedding reduction: 3LC's `reduce_embeddings_per_dataset` and
//! `reduce_embeddings_by_foreign_table_url` on [`Run`], with PCA (`pca`) or UMAP (`umap`).
//!
//! A reduction groups the run's metrics tables by foreign (input) table, fits one reducer per
//! group and embedding column on the group's newest table (or reuses the one stored for that
//! group by an earlier reduction with the same parameters), applies it to the other tables,
//! and writes one new table per source: the reduced column `<col>_pca` / `<col>_umap`
//! (`FixedSizeList<f32>`) in place of the embedding column (or after it, when retained), the
//! other columns kept by sharing the source's segments (no bytes copied; only rows still in the
//! source's tail are written anew). Fitted reducers are kept as blobs of the run (bytes in
//! `model`), so a later table is reduced with the same projection.
//!
//! Invariant: the new tables, the stored reducers, the repointed metrics, the deleted sources
//! and the status COMPLETED land in one write transaction; before it the run is
//! POST_PROCESSING, and any error restores the status it had, so a failed reduction leaves
//! the store as it was (except for that status flip, which it undoes). A reduction with
//! nothing to reduce writes nothing at all: no status flip, no COMPLETED.
//!
//! This module owns fitting, applying and the output tables; it leaves segments to
//! `table` and `file`, and the run record to `catalog`.

pub mod model;
pub mod pca;
mod threads;
pub mod umap;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema};
use redb::WriteTransaction;

use crate::catalog::records::{self, ChunkRecord, TableRecord};
use crate::catalog::{self, Reader};
use crate::error::{DbResultExt, Error, Location, Result};
use crate::run::Run;
use crate::status::RunStatus;
use crate::store::Store;
use crate::table::{self, layout, ColumnRole, ScanOptions};

pub use model::{Model, StoredReducer, COMPONENTS_MAX, EMBEDDING_WIDTH_MAX, NEIGHBORS_MAX};

/// Field-metadata key of a reduced column: the embedding column it was reduced from.
pub const REDUCED_FROM_KEY: &str = "runstore.reduced_from";
/// Field-metadata key of a reduced column: the blob name of the reducer that made it.
pub const REDUCER_KEY: &str = "runstore.reducer";
/// Field-metadata key of a reduced column: the url of the table it was reduced from, so a
/// later reduction knows that table's column is done (the source stays listed in the run's
/// metrics unless deleted).
pub const REDUCED_FROM_TABLE_KEY: &str = "runstore.reduced_from_table";
/// Blob names of stored reducers start with this (kept in `names`, the leaf module of name
/// rules, so that `run` can refuse it in user blob names without depending on `reduce`).
pub use crate::names::REDUCER_BLOB_PREFIX;

/// The reduction method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// Exact PCA: fast, linear, deterministic.
    Pca,
    /// UMAP (3LC's default).
    #[default]
    Umap,
}

impl Method {
    /// The suffix of reduced columns (`<col>_pca`, `<col>_umap`).
    pub fn suffix(self) -> &'static str {
        match self {
            Method::Pca => "pca",
            Method::Umap => "umap",
        }
    }
}

/// What a long reduction is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading embedding columns (`done` of `total` columns).
    Read,
    /// Building UMAP's neighbour graph (`done` of `total` rounds, an upper bound).
    Neighbors,
    /// Fitting (`done` of `total` epochs or steps).
    Fit,
    /// Applying a fitted reducer to a table (epochs, or tables for PCA).
    Apply,
    /// Writing the new tables in one commit.
    Write,
}

impl Stage {
    /// A lowercase word for displays.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Neighbors => "neighbours",
            Stage::Fit => "fit",
            Stage::Apply => "apply",
            Stage::Write => "write",
        }
    }
}

/// A progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done.
    pub stage: Stage,
    /// Steps done in this stage.
    pub done: u64,
    /// Steps in this stage.
    pub total: u64,
}

/// A progress callback.
pub type ProgressFn = dyn Fn(&Progress) + Send + Sync;

/// Options of a reduction, after 3LC's keyword arguments.
#[derive(Clone)]
pub struct ReduceOptions {
    /// PCA or UMAP.
    pub method: Method,
    /// Output dimensions (1 to [`COMPONENTS_MAX`], at most the embedding width).
    pub n_components: usize,
    /// UMAP's neighbours per row, the row included (2 to [`NEIGHBORS_MAX`]).
    pub n_neighbors: usize,
    /// UMAP's smallest distance between embedded points (0 to 1).
    pub min_dist: f64,
    /// Seed of every random choice: the same seed and data give the same output.
    pub seed: u64,
    /// Delete the source tables (those owned by this run) in the same commit; the new table
    /// takes a deleted source's place in the run's metrics. 3LC's default is true; runstore
    /// keeps them unless asked, and a kept source stays listed, the new table right after it.
    pub delete_source_tables: bool,
    /// Keep the source embedding column in the new tables, next to the reduced one.
    pub retain_source_embedding_column: bool,
    /// Reduce these columns (default: every column whose role is `embedding`).
    pub columns: Option<Vec<String>>,
    /// Called as work proceeds.
    pub progress: Option<Arc<ProgressFn>>,
}

impl Default for ReduceOptions {
    fn default() -> Self {
        ReduceOptions {
            method: Method::Umap,
            n_components: 2,
            n_neighbors: 15,
            min_dist: 0.1,
            seed: 0,
            delete_source_tables: false,
            retain_source_embedding_column: false,
            columns: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for ReduceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReduceOptions")
            .field("method", &self.method)
            .field("n_components", &self.n_components)
            .field("n_neighbors", &self.n_neighbors)
            .field("min_dist", &self.min_dist)
            .field("seed", &self.seed)
            .field("delete_source_tables", &self.delete_source_tables)
            .field(
                "retain_source_embedding_column",
                &self.retain_source_embedding_column,
            )
            .field("columns", &self.columns)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl ReduceOptions {
    fn check(&self) -> Result<()> {
        let invalid = |reason: String| Err(Error::InvalidInput { reason });
        if self.n_components == 0 || self.n_components > COMPONENTS_MAX {
            return invalid(format!(
                "{} components; between 1 and {COMPONENTS_MAX}",
                self.n_components
            ));
        }
        if self.method == Method::Umap {
            if !(2..=NEIGHBORS_MAX).contains(&self.n_neighbors) {
                return invalid(format!(
                    "{} neighbours; between 2 and {NEIGHBORS_MAX}",
                    self.n_neighbors
                ));
            }
            if !(0.0..=1.0).contains(&self.min_dist) {
                return invalid(format!("min_dist {}; between 0 and 1", self.min_dist));
            }
        }
        Ok(())
    }

    fn report(&self, stage: Stage, done: u64, total: u64) {
        if let Some(progress) = &self.progress {
            progress(&Progress { stage, done, total });
        }
    }

    /// Whether a stored reducer was fitted with these options.
    fn matches(&self, stored: &StoredReducer) -> bool {
        if stored.model.method() != self.method || stored.model.n_components() != self.n_components
        {
            return false;
        }
        match &stored.model {
            Model::Pca(_) => true,
            Model::Umap(model) => {
                model.params.n_neighbors == self.n_neighbors
                    && model.params.min_dist == self.min_dist
                    && model.params.seed == self.seed
            }
        }
    }
}

/// One reducer a reduction used.
#[derive(Clone, Debug, PartialEq)]
pub struct ReducerSummary {
    /// Its blob name under the run's bulk data url.
    pub name: String,
    /// The method.
    pub method: Method,
    /// The embedding column.
    pub column: String,
    /// The foreign table of its group (empty if none).
    pub foreign_table_url: String,
    /// The table it was fitted on.
    pub fitted_on: String,
    /// Whether it was fitted by this reduction (false: an earlier one's, reused).
    pub fitted_now: bool,
    /// PCA: the variance each component explains, as a fraction of the total.
    pub explained_variance_ratio: Option<Vec<f64>>,
}

/// What a reduction did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReduceReport {
    /// Source table url to new table url (3LC's return value), in the run's metrics order.
    pub tables: Vec<(String, String)>,
    /// The reducers used.
    pub reducers: Vec<ReducerSummary>,
    /// Source tables deleted.
    pub deleted: Vec<String>,
}

impl Run {
    /// Reduces the embedding columns of every metrics table of the run, one reducer per foreign
    /// (input) table and column, fitted on the group's newest table and applied to the others
    /// (3LC's `reduce_embeddings_per_dataset`). Tables already reduced (holding `<col>_<method>`,
    /// or listed beside their reduction with this method) and tables without embedding columns
    /// are left alone, and so are columns that are themselves reductions (`x_pca`) unless
    /// [`ReduceOptions::columns`] names them; with nothing to reduce, the report is empty and
    /// nothing changes, the status included. PCA's explained variance is in the report's
    /// [`ReducerSummary::explained_variance_ratio`]. See [`ReduceOptions`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the run's columns when [`ReduceOptions::columns`] names
    /// one no metrics table of the run has; [`Error::SchemaMismatch`] when a named column is
    /// not an embedding (a `FixedSizeList` of floats).
    pub fn reduce_embeddings_per_dataset(&self, options: &ReduceOptions) -> Result<ReduceReport> {
        self.reduce(options, Scope::PerDataset)
    }

    /// Reduces the embedding columns of every metrics table of the run with the reducer fitted
    /// on the newest table whose foreign table is `foreign_table_url` (3LC's
    /// `reduce_embeddings_by_foreign_table_url`).
    pub fn reduce_embeddings_by_foreign_table_url(
        &self,
        foreign_table_url: &str,
        options: &ReduceOptions,
    ) -> Result<ReduceReport> {
        self.reduce(
            options,
            Scope::ByForeignTable(foreign_table_url.to_string()),
        )
    }

    /// Applies the stored reducer `name` to the table at `table_url` (any table of the store
    /// with the reducer's column): the new table is attached to this run in the source's place
    /// (or added, if the source was not one of its metrics). Method and components come from
    /// the reducer; `options` gives the rest (deletion, retention, progress).
    pub fn apply_reducer(
        &self,
        name: &str,
        table_url: &str,
        options: &ReduceOptions,
    ) -> Result<ReduceReport> {
        self.reduce(
            options,
            Scope::Apply {
                reducer: name.to_string(),
                table_url: table_url.to_string(),
            },
        )
    }

    /// The reducers stored for this run (blobs named `reducer-*`).
    pub fn reducers(&self) -> Result<Vec<StoredReducer>> {
        let mut out = Vec::new();
        for info in self.bulk_list()? {
            if info.name.starts_with(REDUCER_BLOB_PREFIX) {
                out.push(self.reducer(&info.name)?);
            }
        }
        Ok(out)
    }

    /// The stored reducer `name`.
    pub fn reducer(&self, name: &str) -> Result<StoredReducer> {
        StoredReducer::decode(name, &self.bulk_bytes(name)?)
    }

    fn reduce(&self, options: &ReduceOptions, scope: Scope) -> Result<ReduceReport> {
        options.check()?;
        let store = self.store();
        let previous = self.status()?;
        // Plan before the status changes: a bad option or column fails with nothing touched.
        let plan = self.plan(options, &scope)?;
        if plan.sources.is_empty() {
            // Nothing to reduce: nothing is written, and the status stays what it was (a
            // reduction that did nothing has not completed the run).
            return Ok(ReduceReport::default());
        }
        self.set_status(RunStatus::PostProcessing)?;
        let result = self.execute(store, options, plan);
        match result {
            Ok(report) => Ok(report),
            Err(error) => {
                // The error being returned matters more than one from restoring the status.
                let _ = self.set_status(previous);
                Err(error)
            }
        }
    }

    /// Which tables and columns to reduce, and with which reducer.
    fn plan(&self, options: &ReduceOptions, scope: &Scope) -> Result<Plan> {
        let store = self.store();
        store.read(|txn| {
            let run_record = catalog::run_record(txn, self.id())?;
            let mut sources: Vec<Source> = Vec::new();
            let urls: Vec<String> = match scope {
                Scope::Apply { table_url, .. } => vec![table_url.clone()],
                _ => run_record.metrics.iter().map(|m| m.url.clone()).collect(),
            };
            for (position, url) in urls.iter().enumerate() {
                let Some(id) = table::table_id(txn, url)? else {
                    if matches!(scope, Scope::Apply { .. }) {
                        return Err(Error::not_found(format!("table {url}")));
                    }
                    // An external reference or a since-deleted table: nothing to reduce.
                    continue;
                };
                let record = table::table_record(txn, id, url)?;
                let schema = table::decode_schema(&record)?;
                sources.push(Source {
                    position,
                    id,
                    record,
                    schema,
                    columns: Vec::new(),
                });
            }
            let mut slots: Vec<Slot> = Vec::new();
            let mut slot_of: HashMap<(String, String), usize> = HashMap::new();
            match scope {
                Scope::Apply { reducer, .. } => {
                    let bytes = blob_bytes(store, txn, self.id(), reducer)?.ok_or_else(|| {
                        Error::not_found(format!("reducer {}/{reducer}", self.bulk_data_url()))
                    })?;
                    let stored = StoredReducer::decode(reducer, &bytes)?;
                    let source = &mut sources[0];
                    let index = source.schema.index_of(&stored.column).map_err(|_| {
                        Error::not_found(format!(
                            "column {} of table {}",
                            stored.column, source.record.url
                        ))
                    })?;
                    check_embedding_field(source.schema.field(index), &source.record.url)?;
                    let suffix = stored.model.method().suffix();
                    source.columns.push((stored.column.clone(), 0));
                    slots.push(Slot {
                        name: reducer.clone(),
                        column: stored.column.clone(),
                        group: stored.foreign_table_url.clone(),
                        method: stored.model.method(),
                        stored: Some(stored),
                        fit_on: None,
                    });
                    if source
                        .schema
                        .index_of(&reduced_name(&slots[0].column, suffix))
                        .is_ok()
                    {
                        return Err(Error::AlreadyExists {
                            what: format!(
                                "column {} of table {}",
                                reduced_name(&slots[0].column, suffix),
                                source.record.url
                            ),
                        });
                    }
                }
                Scope::PerDataset | Scope::ByForeignTable(_) => {
                    check_named_columns(&sources, options, &self.url())?;
                    let done = reduced_already(&sources);
                    for source in &mut sources {
                        for column in embedding_columns(&source.schema, options, &source.record)? {
                            let key = (
                                source.record.url.clone(),
                                column.clone(),
                                options.method.suffix(),
                            );
                            if done
                                .get(&key)
                                .is_some_and(|&reduced| reduced >= source.record.created_us)
                            {
                                // Reduced by an earlier reduction into a table still listed.
                                continue;
                            }
                            let group = match scope {
                                Scope::ByForeignTable(url) => url.clone(),
                                _ => source.record.foreign_table_url.clone(),
                            };
                            let key = (group.clone(), column.clone());
                            let slot = match slot_of.get(&key) {
                                Some(slot) => *slot,
                                None => {
                                    let name = blob_name(options.method, &group, &column);
                                    let stored = match blob_bytes(store, txn, self.id(), &name)? {
                                        Some(bytes) => {
                                            let stored = StoredReducer::decode(&name, &bytes)?;
                                            options.matches(&stored).then_some(stored)
                                        }
                                        None => None,
                                    };
                                    slots.push(Slot {
                                        name,
                                        column: column.clone(),
                                        group,
                                        method: options.method,
                                        stored,
                                        fit_on: None,
                                    });
                                    slot_of.insert(key, slots.len() - 1);
                                    slots.len() - 1
                                }
                            };
                            source.columns.push((column, slot));
                        }
                    }
                    sources.retain(|s| !s.columns.is_empty());
                    // The newest table of each group fits the group's reducer, unless one is
                    // stored.
                    for (index, slot) in slots.iter_mut().enumerate() {
                        if slot.stored.is_some() {
                            continue;
                        }
                        let newest = sources
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| s.record.foreign_table_url == slot.group)
                            .filter(|(_, s)| s.columns.iter().any(|(_, k)| *k == index))
                            .max_by_key(|(_, s)| (s.record.created_us, s.id));
                        match newest {
                            Some((at, _)) => slot.fit_on = Some(at),
                            None => {
                                return Err(Error::NotFound {
                                    what: format!(
                                        "a metrics table of run {} with foreign table {} and \
                                         column {}",
                                        self.url(),
                                        slot.group,
                                        slot.column
                                    ),
                                })
                            }
                        }
                    }
                }
            }
            if let Scope::ByForeignTable(url) = scope {
                if slots.is_empty() {
                    return Err(Error::NotFound {
                        what: format!(
                            "an embedding column in the metrics tables of run {} for foreign \
                             table {url}",
                            self.url()
                        ),
                    });
                }
            }
            Ok(Plan { sources, slots })
        })
    }

    fn execute(
        &self,
        store: &Store,
        options: &ReduceOptions,
        mut plan: Plan,
    ) -> Result<ReduceReport> {
        // Read every embedding column the plan names.
        let total_columns: usize = plan.sources.iter().map(|s| s.columns.len()).sum();
        let mut embeddings: HashMap<(usize, String), Embeddings> = HashMap::new();
        let mut read = 0u64;
        for (at, source) in plan.sources.iter().enumerate() {
            for (column, _) in &source.columns {
                let batches = store.read(|txn| {
                    table::scan_record(
                        store,
                        txn,
                        source.id,
                        &source.record,
                        &ScanOptions {
                            columns: Some(vec![column.clone()]),
                            rows: None,
                        },
                    )
                })?;
                embeddings.insert(
                    (at, column.clone()),
                    Embeddings::from_batches(&batches, &source.record.url, column)?,
                );
                read += 1;
                options.report(Stage::Read, read, total_columns as u64);
            }
        }
        // Fit what has no stored reducer.
        let mut fitted_layouts: HashMap<(usize, String), Vec<f32>> = HashMap::new();
        let mut summaries = Vec::new();
        for slot in &mut plan.slots {
            let fitted_now = slot.stored.is_none();
            if let Some(at) = slot.fit_on.filter(|_| fitted_now) {
                let source = &plan.sources[at];
                let embedding = &embeddings[&(at, slot.column.clone())];
                let (model, layout) = fit(options, embedding, &source.record.url, &slot.column)?;
                if let Some(layout) = layout {
                    fitted_layouts.insert((at, slot.column.clone()), layout);
                }
                slot.stored = Some(StoredReducer {
                    name: slot.name.clone(),
                    column: slot.column.clone(),
                    foreign_table_url: slot.group.clone(),
                    fitted_on: source.record.url.clone(),
                    seed: options.seed,
                    model,
                });
            }
            let stored = slot
                .stored
                .as_ref()
                .ok_or_else(|| Error::not_found(format!("reducer {}", slot.name)))?;
            summaries.push(ReducerSummary {
                name: slot.name.clone(),
                method: slot.method,
                column: slot.column.clone(),
                foreign_table_url: slot.group.clone(),
                fitted_on: stored.fitted_on.clone(),
                fitted_now,
                explained_variance_ratio: match &stored.model {
                    Model::Pca(model) => Some(model.explained_variance_ratio.clone()),
                    Model::Umap(_) => None,
                },
            });
        }
        // Apply.
        let mut reduced: HashMap<(usize, String), Reduced> = HashMap::new();
        let mut applied = 0u64;
        for (at, source) in plan.sources.iter().enumerate() {
            for (column, slot) in &source.columns {
                let slot = &plan.slots[*slot];
                let stored = slot
                    .stored
                    .as_ref()
                    .ok_or_else(|| Error::not_found(format!("reducer {}", slot.name)))?;
                let embedding = &embeddings[&(at, column.clone())];
                let values = match fitted_layouts.remove(&(at, column.clone())) {
                    Some(layout) => layout,
                    None => apply(
                        &stored.model,
                        embedding,
                        &source.record.url,
                        column,
                        options,
                    )?,
                };
                reduced.insert(
                    (at, column.clone()),
                    Reduced {
                        values,
                        valid: embedding.valid.clone(),
                        n_components: stored.model.n_components(),
                        reducer: slot.name.clone(),
                        suffix: stored.model.method().suffix(),
                        table: source.record.url.clone(),
                    },
                );
                applied += 1;
                options.report(Stage::Apply, applied, total_columns as u64);
            }
        }
        drop(embeddings);
        options.report(Stage::Write, 0, 1);
        let report = store.write("reduce embeddings", |txn| {
            let mut run_record = catalog::run_record(txn, self.id())?;
            let mut report = Positioned {
                tables: Vec::new(),
                reducers: summaries.clone(),
                deleted: Vec::new(),
            };
            for slot in &plan.slots {
                let stored = slot
                    .stored
                    .as_ref()
                    .ok_or_else(|| Error::not_found(format!("reducer {}", slot.name)))?;
                if report
                    .reducers
                    .iter()
                    .any(|r| r.name == slot.name && r.fitted_now)
                {
                    put_blob(store, txn, self.id(), &slot.name, &stored.encode())?;
                }
            }
            for (at, source) in plan.sources.iter().enumerate() {
                let current = table::table_record(txn, source.id, &source.record.url)?;
                if current != source.record {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "table {} changed while it was being reduced; run the reduction again",
                            source.record.url
                        ),
                    });
                }
                let columns: Vec<(String, &Reduced)> = source
                    .columns
                    .iter()
                    .map(|(column, _)| (column.clone(), &reduced[&(at, column.clone())]))
                    .collect();
                let (new_url, new_record) =
                    write_reduced(store, txn, self, source, &columns, options)?;
                let info = records::MetricTableRecord {
                    url: new_url.clone(),
                    stream_name: new_record.stream_name.clone(),
                    row_count: new_record.sealed_rows + new_record.tail_rows,
                    file_size: table::table_bytes(&new_record),
                };
                let deleted = options.delete_source_tables && source.record.run_id == self.id();
                // A deleted source's entry becomes the new table's; a kept source stays listed,
                // the new table right after it.
                match run_record
                    .metrics
                    .iter()
                    .position(|m| m.url == source.record.url)
                {
                    Some(at) if deleted => run_record.metrics[at] = info,
                    Some(at) => run_record.metrics.insert(at + 1, info),
                    None => run_record.metrics.push(info),
                }
                if deleted {
                    table::delete_table(txn, source.id, &source.record)?;
                    report.deleted.push(source.record.url.clone());
                }
                report
                    .tables
                    .push((source.position, source.record.url.clone(), new_url));
            }
            report.tables.sort();
            run_record.status = RunStatus::Completed.code();
            run_record.last_modified_us = crate::time::now_us().max(run_record.last_modified_us);
            catalog::put_run_record(txn, self.id(), &run_record)?;
            Ok(report)
        })?;
        options.report(Stage::Write, 1, 1);
        Ok(report.into())
    }
}

/// Which tables a reduction covers.
enum Scope {
    PerDataset,
    ByForeignTable(String),
    Apply { reducer: String, table_url: String },
}

/// A table to reduce: its record as planned and the columns with their reducer slots.
struct Source {
    /// Index in the run's metrics list (report order).
    position: usize,
    id: u64,
    record: TableRecord,
    schema: Schema,
    columns: Vec<(String, usize)>,
}

/// A reducer to fit or reuse.
struct Slot {
    name: String,
    column: String,
    group: String,
    method: Method,
    stored: Option<StoredReducer>,
    /// Index of the source to fit on, when nothing is stored.
    fit_on: Option<usize>,
}

struct Plan {
    sources: Vec<Source>,
    slots: Vec<Slot>,
}

/// The report as built inside the commit, with metrics positions for ordering.
struct Positioned {
    tables: Vec<(usize, String, String)>,
    reducers: Vec<ReducerSummary>,
    deleted: Vec<String>,
}

impl From<Positioned> for ReduceReport {
    fn from(report: Positioned) -> ReduceReport {
        ReduceReport {
            tables: report
                .tables
                .into_iter()
                .map(|(_, from, to)| (from, to))
                .collect(),
            reducers: report.reducers,
            deleted: report.deleted,
        }
    }
}

/// One embedding column in memory: valid rows' values, row-major, and which rows are valid.
struct Embeddings {
    dim: usize,
    values: Vec<f32>,
    valid: Vec<bool>,
}

impl Embeddings {
    fn from_batches(batches: &[RecordBatch], url: &str, column: &str) -> Result<Embeddings> {
        let mut dim = 0usize;
        let mut values = Vec::new();
        let mut valid = Vec::new();
        for batch in batches {
            let array = batch.column(0);
            let list = array
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .ok_or_else(|| not_embedding(url, column, array.data_type()))?;
            dim = list.value_length() as usize;
            let child = list.values();
            if child.null_count() > 0 {
                // Nulls inside a valid row cannot be reduced; inside a null row they are moot.
                for row in 0..list.len() {
                    if list.is_valid(row) && list.value(row).null_count() > 0 {
                        return Err(Error::InvalidInput {
                            reason: format!(
                                "column {column} of table {url}: row {} has a null element",
                                valid.len() + row
                            ),
                        });
                    }
                }
            }
            let floats: Vec<f32> = match child.data_type() {
                DataType::Float32 => child
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(|| not_embedding(url, column, array.data_type()))?
                    .values()
                    .to_vec(),
                DataType::Float64 => child
                    .as_any()
                    .downcast_ref::<arrow_array::Float64Array>()
                    .ok_or_else(|| not_embedding(url, column, array.data_type()))?
                    .values()
                    .iter()
                    .map(|x| *x as f32)
                    .collect(),
                _ => return Err(not_embedding(url, column, array.data_type())),
            };
            // The child of a sliced list starts at the list's offset.
            let start = list.offset() * dim;
            for row in 0..list.len() {
                let ok = list.is_valid(row);
                valid.push(ok);
                if !ok {
                    continue;
                }
                let at = start + row * dim;
                let slice = floats.get(at..at + dim).ok_or_else(|| Error::Corrupted {
                    at: Location::Catalog,
                    reason: format!("column {column} of table {url}: list values too short"),
                })?;
                if let Some(bad) = slice.iter().position(|x| !x.is_finite()) {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "column {column} of table {url}: row {} element {bad} is not finite \
                             (after conversion to f32)",
                            valid.len() - 1
                        ),
                    });
                }
                values.extend_from_slice(slice);
            }
        }
        Ok(Embeddings { dim, values, valid })
    }

    fn rows(&self) -> usize {
        self.values.len() / self.dim.max(1)
    }
}

/// A reduced column: valid rows' outputs, row-major, and which rows are valid.
struct Reduced {
    values: Vec<f32>,
    valid: Vec<bool>,
    n_components: usize,
    reducer: String,
    suffix: &'static str,
    /// The url of the table the column was reduced from.
    table: String,
}

impl Reduced {
    /// The column for rows `range`, as `FixedSizeList<f32>`.
    fn array(&self, range: std::ops::Range<usize>, nullable: bool) -> Result<ArrayRef> {
        let c = self.n_components;
        // Index of the first valid row at or after range.start among the valid rows.
        let before = self.valid[..range.start].iter().filter(|v| **v).count();
        let mut values = Vec::with_capacity(range.len() * c);
        let mut next = before;
        for row in range.clone() {
            if self.valid[row] {
                values.extend_from_slice(&self.values[next * c..(next + 1) * c]);
                next += 1;
            } else {
                values.extend(std::iter::repeat_n(0f32, c));
            }
        }
        let nulls = nullable.then(|| NullBuffer::from(self.valid[range].to_vec()));
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        FixedSizeListArray::try_new(field, c as i32, Arc::new(Float32Array::from(values)), nulls)
            .map(|a| Arc::new(a) as ArrayRef)
            .map_err(|e| Error::InvalidInput {
                reason: format!("reduced column does not build: {e}"),
            })
    }

    fn field(&self, column: &str) -> Field {
        let nullable = self.valid.iter().any(|v| !v);
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let mut metadata = HashMap::new();
        metadata.insert(REDUCED_FROM_KEY.to_string(), column.to_string());
        metadata.insert(REDUCER_KEY.to_string(), self.reducer.clone());
        metadata.insert(REDUCED_FROM_TABLE_KEY.to_string(), self.table.clone());
        Field::new(
            reduced_name(column, self.suffix),
            DataType::FixedSizeList(item, self.n_components as i32),
            nullable,
        )
        .with_metadata(metadata)
    }
}

fn reduced_name(column: &str, suffix: &str) -> String {
    format!("{column}_{suffix}")
}

fn not_embedding(url: &str, column: &str, data_type: &DataType) -> Error {
    Error::SchemaMismatch {
        table: url.to_string(),
        column: column.to_string(),
        reason: format!("an embedding must be a FixedSizeList of f32 or f64, not {data_type}"),
    }
}

fn check_embedding_field(field: &Field, url: &str) -> Result<()> {
    match field.data_type() {
        DataType::FixedSizeList(item, width)
            if matches!(item.data_type(), DataType::Float32 | DataType::Float64) =>
        {
            let width = *width as usize;
            if width == 0 || width > EMBEDDING_WIDTH_MAX {
                return Err(Error::SchemaMismatch {
                    table: url.to_string(),
                    column: field.name().clone(),
                    reason: format!(
                        "an embedding {width} wide; between 1 and {EMBEDDING_WIDTH_MAX}"
                    ),
                });
            }
            Ok(())
        }
        other => Err(not_embedding(url, field.name(), other)),
    }
}

/// The columns of a table to reduce: the named ones present in it, or those with the
/// embedding role that are not themselves reductions (`x_pca` is reduced again, to
/// `x_pca_umap`, only when named); either way not those already reduced with this method.
fn embedding_columns(
    schema: &Schema,
    options: &ReduceOptions,
    record: &TableRecord,
) -> Result<Vec<String>> {
    let suffix = options.method.suffix();
    let mut out = Vec::new();
    for field in schema.fields() {
        let wanted = match &options.columns {
            Some(names) => names.iter().any(|n| n == field.name()),
            None => {
                ColumnRole::of(field) == Some(ColumnRole::Embedding)
                    && !field.metadata().contains_key(REDUCED_FROM_KEY)
            }
        };
        if !wanted || schema.index_of(&reduced_name(field.name(), suffix)).is_ok() {
            continue;
        }
        check_embedding_field(field, &record.url)?;
        out.push(field.name().clone());
    }
    Ok(out)
}

/// Refuses a reduction whose `columns` names a column no table of the run has (a typo would
/// otherwise reduce nothing and say nothing), naming the columns there are.
fn check_named_columns(sources: &[Source], options: &ReduceOptions, run_url: &str) -> Result<()> {
    let Some(names) = &options.columns else {
        return Ok(());
    };
    for name in names {
        if sources.iter().any(|s| s.schema.index_of(name).is_ok()) {
            continue;
        }
        let mut known: Vec<&str> = Vec::new();
        let mut embeddings: Vec<&str> = Vec::new();
        for source in sources {
            for field in source.schema.fields() {
                if !known.contains(&field.name().as_str()) {
                    known.push(field.name());
                }
                if ColumnRole::of(field) == Some(ColumnRole::Embedding)
                    && !embeddings.contains(&field.name().as_str())
                {
                    embeddings.push(field.name());
                }
            }
        }
        let listed = if known.is_empty() {
            "it has no metrics tables".to_string()
        } else {
            format!(
                "its columns: {}; embeddings: {}",
                known.join(", "),
                if embeddings.is_empty() {
                    "none".to_string()
                } else {
                    embeddings.join(", ")
                }
            )
        };
        return Err(Error::InvalidInput {
            reason: format!(
                "columns: no metrics table of run {run_url} has a column '{name}' ({listed})"
            ),
        });
    }
    Ok(())
}

/// The (source table url, column, method suffix) of every reduction whose output is among
/// `sources` (read from its fields' metadata), with the newest such output's creation time,
/// so a source still listed beside its reduction is not reduced twice. A source counts as
/// reduced only if it is not newer than that output: a table deleted by an earlier reduction
/// frees its url, and a later table of the same url is a new source.
fn reduced_already(
    sources: &[Source],
) -> std::collections::HashMap<(String, String, &'static str), i64> {
    let mut done = std::collections::HashMap::new();
    for source in sources {
        for field in source.schema.fields() {
            let metadata = field.metadata();
            let (Some(table), Some(column), Some(reducer)) = (
                metadata.get(REDUCED_FROM_TABLE_KEY),
                metadata.get(REDUCED_FROM_KEY),
                metadata.get(REDUCER_KEY),
            ) else {
                continue;
            };
            for method in [Method::Pca, Method::Umap] {
                let prefix = format!("{REDUCER_BLOB_PREFIX}{}-", method.suffix());
                if reducer.starts_with(&prefix) {
                    let created = done
                        .entry((table.clone(), column.clone(), method.suffix()))
                        .or_insert(i64::MIN);
                    *created = (*created).max(source.record.created_us);
                }
            }
        }
    }
    done
}

/// `reducer-<method>-<16 hex digits>`: the hash names the group's foreign table and column,
/// which may hold characters a blob name may not.
fn blob_name(method: Method, group: &str, column: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in group.bytes().chain([0]).chain(column.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{REDUCER_BLOB_PREFIX}{}-{hash:016x}", method.suffix())
}

fn fit(
    options: &ReduceOptions,
    embedding: &Embeddings,
    url: &str,
    column: &str,
) -> Result<(Model, Option<Vec<f32>>)> {
    let rows = embedding.rows();
    let dim = embedding.dim;
    if options.n_components > dim {
        return Err(Error::InvalidInput {
            reason: format!(
                "{} components from column {column} of table {url}, which is {dim} wide",
                options.n_components
            ),
        });
    }
    let progress = options.progress.as_deref();
    match options.method {
        Method::Pca => {
            if rows == 0 {
                return Err(no_rows(url, column, 1));
            }
            Ok((
                Model::Pca(pca::fit(
                    &embedding.values,
                    dim,
                    options.n_components,
                    progress,
                )),
                None,
            ))
        }
        Method::Umap => {
            if rows < 2 {
                return Err(no_rows(url, column, 2));
            }
            if rows >= u32::MAX as usize {
                return Err(Error::InvalidInput {
                    reason: format!("{rows} rows in table {url}; UMAP takes fewer than 2^32"),
                });
            }
            let model = umap::fit(
                &embedding.values,
                dim,
                umap::UmapParams {
                    n_components: options.n_components,
                    n_neighbors: options.n_neighbors,
                    min_dist: options.min_dist,
                    seed: options.seed,
                },
                progress,
            );
            let layout = model.embedding.clone();
            Ok((Model::Umap(model), Some(layout)))
        }
    }
}

fn no_rows(url: &str, column: &str, needed: usize) -> Error {
    Error::InvalidInput {
        reason: format!(
            "column {column} of table {url} has fewer than {needed} non-null rows to fit on"
        ),
    }
}

/// Applies a fitted model to one column.
fn apply(
    model: &Model,
    embedding: &Embeddings,
    url: &str,
    column: &str,
    options: &ReduceOptions,
) -> Result<Vec<f32>> {
    if embedding.rows() > 0 && embedding.dim != model.dim() {
        return Err(Error::SchemaMismatch {
            table: url.to_string(),
            column: column.to_string(),
            reason: format!(
                "the reducer takes {} values a row, the column has {}",
                model.dim(),
                embedding.dim
            ),
        });
    }
    Ok(match model {
        Model::Pca(model) => model.transform(&embedding.values),
        Model::Umap(model) => model.transform(&embedding.values, options.progress.as_deref()),
    })
}

/// Number of pre-order nodes an array of `data_type` has.
fn node_count(data_type: &DataType) -> usize {
    1 + layout::child_types(data_type)
        .iter()
        .map(node_count)
        .sum::<usize>()
}

/// Where a column of the new table comes from.
enum Origin {
    /// Column `index` of the source, its segments shared.
    Kept(usize),
    /// A reduced column (index into the reduced list).
    Reduced(usize),
}

/// Writes the reduced table for `source` and returns its url and record.
fn write_reduced(
    store: &Store,
    txn: &WriteTransaction,
    run: &Run,
    source: &Source,
    columns: &[(String, &Reduced)],
    options: &ReduceOptions,
) -> Result<(String, TableRecord)> {
    let stored = &source.schema;
    let mut fields = Vec::new();
    let mut origins = Vec::new();
    for (index, field) in stored.fields().iter().enumerate() {
        match columns.iter().position(|(name, _)| name == field.name()) {
            Some(at) => {
                if options.retain_source_embedding_column {
                    fields.push(field.as_ref().clone());
                    origins.push(Origin::Kept(index));
                }
                fields.push(columns[at].1.field(field.name()));
                origins.push(Origin::Reduced(at));
            }
            None => {
                fields.push(field.as_ref().clone());
                origins.push(Origin::Kept(index));
            }
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, stored.metadata().clone()));
    let mut node_starts = Vec::with_capacity(stored.fields().len());
    let mut at = 0;
    for field in stored.fields() {
        node_starts.push(at);
        at += node_count(field.data_type());
    }
    let url = free_url(txn, run, &source.record.url, columns[0].1.suffix)?;
    let (id, mut record) = table::create_table(
        txn,
        &url,
        run.id(),
        &schema,
        &source.record.foreign_table_url,
        &source.record.stream_name,
    )?;
    let mut col_hwm = catalog::meta_get(txn, catalog::META_COL_HWM)?;
    let file = store.file();
    let mut first_row = 0usize;
    for chunk in &source.record.chunks {
        if chunk.nodes.len() != at {
            return Err(Error::Corrupted {
                at: Location::Catalog,
                reason: format!(
                    "table {}: chunk has {} nodes, schema needs {at}",
                    source.record.url,
                    chunk.nodes.len()
                ),
            });
        }
        let rows = usize::try_from(chunk.rows).map_err(|_| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {}: chunk row count overflows", source.record.url),
        })?;
        let mut nodes = Vec::new();
        for (origin, field) in origins.iter().zip(schema.fields()) {
            match origin {
                Origin::Kept(index) => {
                    let start = node_starts[*index];
                    let count = node_count(stored.field(*index).data_type());
                    nodes.extend_from_slice(&chunk.nodes[start..start + count]);
                }
                Origin::Reduced(at) => {
                    let array = columns[*at]
                        .1
                        .array(first_row..first_row + rows, field.is_nullable())?;
                    layout::flatten(
                        &array.to_data(),
                        &mut |bytes| table::append_segment(file, &mut col_hwm, bytes),
                        &mut nodes,
                    )?;
                }
            }
        }
        record.chunks.push(ChunkRecord {
            rows: chunk.rows,
            nodes,
        });
        record.sealed_rows += chunk.rows;
        first_row += rows;
    }
    catalog::meta_set(txn, catalog::META_COL_HWM, col_hwm)?;
    if source.record.tail_rows > 0 {
        // Tail rows live in redb entries, not segments: they are written as one new chunk.
        let names: Vec<String> = stored.fields().iter().map(|f| f.name().clone()).collect();
        let total = source.record.sealed_rows + source.record.tail_rows;
        let batches = table::scan_record(
            store,
            txn,
            source.id,
            &source.record,
            &ScanOptions {
                columns: Some(names),
                rows: Some(source.record.sealed_rows..total),
            },
        )?;
        let batch = arrow_select::concat::concat_batches(&Arc::new(stored.clone()), &batches)
            .map_err(|e| Error::Corrupted {
                at: Location::Catalog,
                reason: format!(
                    "table {}: tail does not concatenate: {e}",
                    source.record.url
                ),
            })?;
        let rows = batch.num_rows();
        let mut arrays = Vec::with_capacity(origins.len());
        for (origin, field) in origins.iter().zip(schema.fields()) {
            arrays.push(match origin {
                Origin::Kept(index) => batch.column(*index).clone(),
                Origin::Reduced(at) => columns[*at]
                    .1
                    .array(first_row..first_row + rows, field.is_nullable())?,
            });
        }
        let tail =
            RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::InvalidInput {
                reason: format!("reduced tail does not form a batch: {e}"),
            })?;
        table::write_chunk(store, txn, &mut record, &tail)?;
    }
    table::put_table_record(txn, id, &record)?;
    Ok((url, record))
}

/// `<run url>/<source name>_<suffix>`, or its first free `_NNNN` rename.
fn free_url(txn: &impl Reader, run: &Run, source_url: &str, suffix: &str) -> Result<String> {
    let name = source_url.rsplit('/').next().unwrap_or(source_url);
    let base = format!("{name}_{suffix}");
    let first = format!("{}/{base}", run.url());
    if table::table_id(txn, &first)?.is_none() {
        return Ok(first);
    }
    for n in 0..10_000 {
        let url = format!("{}/{}", run.url(), crate::names::rename_candidate(&base, n));
        if table::table_id(txn, &url)?.is_none() {
            return Ok(url);
        }
    }
    Err(Error::AlreadyExists {
        what: format!("every table {}/{base}_NNNN", run.url()),
    })
}

/// The bytes of blob `name` of run `run_id`, if it exists, CRCs checked.
fn blob_bytes(
    store: &Store,
    txn: &impl Reader,
    run_id: u64,
    name: &str,
) -> Result<Option<Vec<u8>>> {
    let Some(record) = catalog::blob_record(txn, run_id, name)? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for chunk in &record.chunks {
        let len = usize::try_from(chunk.len).map_err(|_| Error::Corrupted {
            at: Location::Offset(chunk.offset),
            reason: format!("blob {name}: chunk length overflows"),
        })?;
        let mut buf = vec![0u8; len];
        store.file().read_column(chunk.offset, &mut buf)?;
        if crc32fast::hash(&buf) != chunk.crc32 {
            return Err(Error::Corrupted {
                at: Location::Offset(chunk.offset),
                reason: format!("blob {name}: chunk fails its checksum"),
            });
        }
        out.extend_from_slice(&buf);
    }
    if out.len() as u64 != record.len {
        return Err(Error::Corrupted {
            at: Location::Catalog,
            reason: format!(
                "blob {name}: chunks hold {} bytes, record says {}",
                out.len(),
                record.len
            ),
        });
    }
    Ok(Some(out))
}

/// Stores `bytes` as blob `name` of run `run_id` inside `txn` (as `Run::put_bulk` does in a
/// commit of its own), replacing any blob of that name.
fn put_blob(
    store: &Store,
    txn: &WriteTransaction,
    run_id: u64,
    name: &str,
    bytes: &[u8],
) -> Result<()> {
    let mut col_hwm = catalog::meta_get(txn, catalog::META_COL_HWM)?;
    let mut chunks = Vec::new();
    for piece in bytes.chunks(crate::store::BLOB_CHUNK_BYTES) {
        chunks.push(table::append_segment(store.file(), &mut col_hwm, piece)?);
    }
    catalog::meta_set(txn, catalog::META_COL_HWM, col_hwm)?;
    let record = records::BlobRecord {
        len: bytes.len() as u64,
        chunks,
        created_us: crate::time::now_us(),
    };
    let mut blobs = txn.open_table(catalog::BLOBS).db("store reducer")?;
    catalog::seal::put(
        &mut blobs,
        (run_id, name),
        records::encode(&record).as_slice(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_are_valid_and_distinct() {
        let a = blob_name(Method::Umap, "p/tables/t", "emb");
        let b = blob_name(Method::Umap, "p/tables/t", "emb2");
        let c = blob_name(Method::Pca, "p/tables/t", "emb");
        assert!(crate::names::validate_name(&a).is_ok());
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("reducer-umap-"));
    }

    #[test]
    fn reduced_arrays_put_nulls_where_rows_were_null() {
        let reduced = Reduced {
            values: vec![1.0, 2.0, 3.0, 4.0],
            valid: vec![true, false, true],
            n_components: 2,
            reducer: "r".into(),
            suffix: "pca",
            table: "p/runs/r/t".into(),
        };
        let array = reduced.array(1..3, true).unwrap();
        let list = array.as_any().downcast_ref::<FixedSizeListArray>().unwrap();
        assert!(list.is_null(0));
        let second = list.value(1);
        let floats = second.as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(floats.values().to_vec(), vec![3.0, 4.0]);
    }
}
