//! The 3LC metrics API on `Run` (`add_metrics_data`, `metrics_tables`, `update_metrics`,
//! `add_metrics_table`, a streaming writer) and tables on `Store` (input tables, lookup).
//!
//! Each call is one write transaction: a metrics table and the run's reference to it land
//! together or not at all.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use redb::WriteTransaction;

use super::{
    append_batch, create_table, put_table_record, table_id, table_info, table_record, with_role,
    write_chunk, ColumnRole, MetricsWriter, Table, TableInfo, WriterOptions, EXAMPLE_ID_COLUMN,
    STREAM_DEFAULT,
};
use crate::catalog::records::{MetricTableRecord, RunRecord, TableRecord};
use crate::catalog::{self, Reader};
use crate::error::{Error, Location, Result};
use crate::names;
use crate::run::{MetricTableInfo, Run};
use crate::store::Store;

/// Options of [`Run::add_metrics_data`], after 3LC's parameters of the same names.
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// Per-column field overrides: the column is cast to the field's type and takes its
    /// nullability and metadata (e.g. a role).
    pub override_column_schemas: HashMap<String, Field>,
    /// The input table the rows belong to, one row per example: the row counts must match
    /// (unless the data has an `example_id` column), an `example_id` column is added when
    /// absent, and the url is kept once as the table's foreign table.
    pub input_table_url: Option<String>,
    /// Base name of the written table: `<run url>/<base>_NNNN` (first free NNNN).
    pub table_writer_base_name: String,
    /// The stream the table belongs to.
    pub stream_name: String,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            override_column_schemas: HashMap::new(),
            input_table_url: None,
            table_writer_base_name: "metrics".into(),
            stream_name: STREAM_DEFAULT.into(),
        }
    }
}

fn metric_info(record: &TableRecord) -> MetricTableInfo {
    MetricTableInfo {
        url: record.url.clone(),
        stream_name: record.stream_name.clone(),
        row_count: record.sealed_rows + record.tail_rows,
        file_size: super::table_bytes(record),
    }
}

/// The first free `<run url>/<base>_NNNN`.
fn free_table_url(txn: &impl Reader, run_url: &str, base: &str) -> Result<String> {
    names::validate_name(base).map_err(|reason| Error::InvalidName {
        name: base.to_string(),
        reason,
    })?;
    for n in 0..10_000 {
        let url = format!("{run_url}/{}", names::rename_candidate(base, n));
        if table_id(txn, &url)?.is_none() {
            return Ok(url);
        }
    }
    Err(Error::AlreadyExists {
        what: format!("every table {run_url}/{base}_NNNN"),
    })
}

/// Whether `url` names a table inside a store (as opposed to an external reference).
fn is_store_table_url(url: &str) -> bool {
    let parts: Vec<&str> = url.split('/').collect();
    matches!(parts.as_slice(), [_, "tables", _] | [_, "runs", _, _])
}

impl Run {
    /// Writes `batch` as a new metrics table of this run and attaches it (3LC's
    /// `add_metrics_data`). Returns the written table's info. See [`MetricsOptions`] for the
    /// input table join; an empty batch, a bad override or a row count that does not match the
    /// input table is an error and nothing is written.
    pub fn add_metrics_data(
        &self,
        batch: &RecordBatch,
        options: &MetricsOptions,
    ) -> Result<Vec<MetricTableInfo>> {
        if batch.num_rows() == 0 || batch.num_columns() == 0 {
            return Err(Error::InvalidInput {
                reason: "metrics data has no rows or no columns".into(),
            });
        }
        check_stream_name(&options.stream_name)?;
        let batch = super::apply_overrides(batch, &options.override_column_schemas)?;
        let store = self.store();
        let info = store.write("add metrics data", |txn| {
            let mut run_record = catalog::run_record(txn, self.id())?;
            let (batch, foreign) = match &options.input_table_url {
                None => (batch.clone(), String::new()),
                Some(url) => {
                    let input_id = table_id(txn, url)?
                        .ok_or_else(|| Error::not_found(format!("input table {url}")))?;
                    let input = table_record(txn, input_id, url)?;
                    let expected = input.sealed_rows + input.tail_rows;
                    (with_example_id(&batch, expected, url)?, url.clone())
                }
            };
            let url = free_table_url(txn, &self.url(), &options.table_writer_base_name)?;
            let (id, mut record) = create_table(
                txn,
                &url,
                self.id(),
                &batch.schema(),
                &foreign,
                &options.stream_name,
            )?;
            write_chunk(store, txn, &mut record, &batch)?;
            put_table_record(txn, id, &record)?;
            let info = metric_info(&record);
            attach(txn, self.id(), &mut run_record, &info)?;
            Ok(info)
        })?;
        Ok(vec![info])
    }

    /// [`Run::add_metrics_data`] from named columns (3LC's dict of columns). Columns of
    /// unequal length are an error.
    pub fn add_metrics_columns(
        &self,
        columns: Vec<(String, ArrayRef)>,
        options: &MetricsOptions,
    ) -> Result<Vec<MetricTableInfo>> {
        let batch = batch_from_columns(columns)?;
        self.add_metrics_data(&batch, options)
    }

    /// Creates an empty metrics table with `schema`, attaches it, and returns a streaming
    /// writer for it. `base_name` gives `<run url>/<base>_NNNN`.
    pub fn metrics_writer(
        &self,
        schema: SchemaRef,
        base_name: &str,
        stream_name: &str,
        options: &WriterOptions,
    ) -> Result<MetricsWriter> {
        let placement = MetricsOptions {
            table_writer_base_name: base_name.to_string(),
            stream_name: stream_name.to_string(),
            ..MetricsOptions::default()
        };
        self.open_metrics_writer(schema, &placement, options)
    }

    /// [`Run::metrics_writer`] with the placement of [`Run::add_metrics_data`]: the table is
    /// `<run url>/<options.table_writer_base_name>_NNNN` in `options.stream_name`, and with
    /// `options.input_table_url` it is joined to that input table. A streamed table cannot be
    /// numbered by position (its length is unknown until it ends), so a joined one needs an
    /// integer `example_id` column; the writer does not check the ids (whoever feeds it does:
    /// the Python `MetricsTableWriter` checks each batch's ids against the input table).
    /// `options.override_column_schemas` is not applied (cast the batches before appending).
    pub fn open_metrics_writer(
        &self,
        schema: SchemaRef,
        options: &MetricsOptions,
        writer: &WriterOptions,
    ) -> Result<MetricsWriter> {
        check_stream_name(&options.stream_name)?;
        if schema.fields().is_empty() {
            return Err(Error::InvalidInput {
                reason: "a metrics table needs at least one column".into(),
            });
        }
        let foreign = options.input_table_url.clone().unwrap_or_default();
        if !foreign.is_empty() {
            match schema.field_with_name(EXAMPLE_ID_COLUMN) {
                Ok(field) if field.data_type().is_integer() => {}
                Ok(field) => {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "column {EXAMPLE_ID_COLUMN} is {}; example ids are integers (rows of \
                             {foreign})",
                            field.data_type()
                        ),
                    })
                }
                Err(_) => {
                    return Err(Error::InvalidInput {
                        reason: format!(
                            "a streamed metrics table joined to {foreign} needs an integer \
                             {EXAMPLE_ID_COLUMN} column: the input row of each metrics row"
                        ),
                    })
                }
            }
        }
        let store = self.store();
        let (id, url) = store.write("create metrics table", |txn| {
            let mut run_record = catalog::run_record(txn, self.id())?;
            if !foreign.is_empty() && table_id(txn, &foreign)?.is_none() {
                return Err(Error::not_found(format!("input table {foreign}")));
            }
            let url = free_table_url(txn, &self.url(), &options.table_writer_base_name)?;
            let (id, record) = create_table(
                txn,
                &url,
                self.id(),
                &schema,
                &foreign,
                &options.stream_name,
            )?;
            attach(txn, self.id(), &mut run_record, &metric_info(&record))?;
            Ok((id, url))
        })?;
        Ok(MetricsWriter::start(
            store.clone(),
            id,
            url,
            schema,
            writer.durability,
        ))
    }

    /// Adds metric table infos to the run (3LC's `update_metrics`); infos already present
    /// (same url) are not added again. A url of the store's form must name a stored table.
    pub fn update_metrics(&self, infos: &[MetricTableInfo]) -> Result<()> {
        for info in infos {
            check_stream_name(&info.stream_name)?;
        }
        self.store().write("update metrics", |txn| {
            let mut run_record = catalog::run_record(txn, self.id())?;
            for info in infos {
                if is_store_table_url(&info.url) && table_id(txn, &info.url)?.is_none() {
                    return Err(Error::not_found(format!("table {}", info.url)));
                }
                attach(txn, self.id(), &mut run_record, info)?;
            }
            Ok(())
        })
    }

    /// Adds the stored table at `url` to the run's metrics (3LC's `add_metrics_table`).
    pub fn add_metrics_table(&self, url: &str) -> Result<()> {
        self.store().write("add metrics table", |txn| {
            let mut run_record = catalog::run_record(txn, self.id())?;
            let id = table_id(txn, url)?.ok_or_else(|| Error::not_found(format!("table {url}")))?;
            let record = table_record(txn, id, url)?;
            attach(txn, self.id(), &mut run_record, &metric_info(&record))
        })
    }

    /// The metrics tables stored in this store as [`Table`] handles, for scanning (entries
    /// naming external or since-deleted tables are skipped).
    pub fn metrics_table_handles(&self) -> Result<Vec<Table>> {
        let infos = self.metrics_tables()?;
        let store = self.store();
        let mut tables = Vec::new();
        let own_prefix = format!("{}/", self.url());
        for info in infos.iter().filter(|info| is_store_table_url(&info.url)) {
            match store.table(&info.url) {
                Ok(table) => tables.push(table),
                // The run's own tables go only with the run (or are repointed first, as a
                // reduction does): one listed but missing is damage, not a deletion.
                Err(Error::NotFound { .. }) if info.url.starts_with(&own_prefix) => {
                    return Err(Error::Corrupted {
                        at: Location::Catalog,
                        reason: format!(
                            "run {} lists its table {}, which the table index does not hold",
                            self.url(),
                            info.url
                        ),
                    })
                }
                // A table attached from another run that has since been deleted.
                Err(Error::NotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(tables)
    }
}

fn check_stream_name(stream_name: &str) -> Result<()> {
    if stream_name.is_empty() {
        return Err(Error::InvalidInput {
            reason: "a metrics table's stream name may not be empty".into(),
        });
    }
    Ok(())
}

/// Adds `info` to the run record if its url is not there yet, and writes the record.
fn attach(
    txn: &WriteTransaction,
    run_id: u64,
    run_record: &mut RunRecord,
    info: &MetricTableInfo,
) -> Result<()> {
    if !run_record.metrics.iter().any(|m| m.url == info.url) {
        run_record.metrics.push(MetricTableRecord {
            url: info.url.clone(),
            stream_name: info.stream_name.clone(),
            row_count: info.row_count,
            file_size: info.file_size,
        });
    }
    run_record.last_modified_us = crate::time::now_us().max(run_record.last_modified_us);
    catalog::put_run_record(txn, run_id, run_record)
}

/// Adds an `example_id` column (0..n, Int32, role example id) when absent, after checking that
/// the row count matches the input table's. A given `example_id` column must name rows of the
/// input table: integers, not null, each in `0..input_rows` and none twice (an example id is
/// the row of the input table a row of metrics joins to).
fn with_example_id(batch: &RecordBatch, input_rows: u64, url: &str) -> Result<RecordBatch> {
    if let Some(ids) = batch.column_by_name(EXAMPLE_ID_COLUMN) {
        check_example_ids(ids, input_rows, url)?;
        return Ok(batch.clone());
    }
    if batch.num_rows() as u64 != input_rows {
        return Err(Error::RowCountMismatch {
            expected: input_rows,
            found: batch.num_rows() as u64,
        });
    }
    let rows = i32::try_from(batch.num_rows()).map_err(|_| Error::InvalidInput {
        reason: "more rows than an Int32 example id can number".into(),
    })?;
    let mut fields: Vec<Field> = vec![with_role(
        Field::new(EXAMPLE_ID_COLUMN, DataType::Int32, false),
        ColumnRole::ExampleId,
    )];
    fields.extend(batch.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int32Array::from_iter_values(0..rows))];
    columns.extend(batch.columns().iter().cloned());
    let schema = Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| Error::InvalidInput {
        reason: e.to_string(),
    })
}

/// Checks an `example_id` column against an input table of `input_rows` rows (see
/// [`with_example_id`]); the error names the row (counting from 1) and the id.
fn check_example_ids(ids: &ArrayRef, input_rows: u64, url: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidInput { reason };
    if !ids.data_type().is_integer() {
        return Err(invalid(format!(
            "column {EXAMPLE_ID_COLUMN} is {}; example ids are integers (rows of {url})",
            ids.data_type()
        )));
    }
    let ids = arrow_cast::cast(ids, &DataType::Int64).map_err(|e| {
        invalid(format!(
            "column {EXAMPLE_ID_COLUMN} does not read as integers: {e}"
        ))
    })?;
    let ids = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(&ids);
    // First row of each id seen so far.
    let mut first_rows: HashMap<i64, usize> = HashMap::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        let row = index + 1;
        let Some(id) = id else {
            return Err(invalid(format!(
                "{EXAMPLE_ID_COLUMN} is null on row {row}; every row needs the input row it \
                 belongs to"
            )));
        };
        let in_range = u64::try_from(id).is_ok_and(|id| id < input_rows);
        if !in_range {
            return Err(invalid(format!(
                "{EXAMPLE_ID_COLUMN} {id} on row {row} is not a row of the input table {url} \
                 ({input_rows} rows: ids 0 to {})",
                input_rows.saturating_sub(1)
            )));
        }
        let first = first_rows.insert(id, row);
        if let Some(first) = first {
            return Err(invalid(format!(
                "{EXAMPLE_ID_COLUMN} {id} appears on rows {first} and {row}; each input row \
                 takes one row of metrics"
            )));
        }
    }
    Ok(())
}

/// A batch from named columns; unequal lengths and duplicate names are errors.
pub fn batch_from_columns(columns: Vec<(String, ArrayRef)>) -> Result<RecordBatch> {
    if columns.is_empty() {
        return Err(Error::InvalidInput {
            reason: "no columns".into(),
        });
    }
    let rows = columns[0].1.len();
    for (name, column) in &columns {
        if column.len() != rows {
            return Err(Error::InvalidInput {
                reason: format!(
                    "column {name} has {} rows, column {} has {rows}",
                    column.len(),
                    columns[0].0
                ),
            });
        }
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, column)| {
            Field::new(
                name,
                column.data_type().clone(),
                column.null_count() > 0 || column.is_nullable(),
            )
        })
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, c)| c).collect(),
    )
    .map_err(|e| Error::InvalidInput {
        reason: e.to_string(),
    })
}

impl Store {
    /// Stores `batches` as the input table `<project>/tables/<name>` (created on first use of
    /// the project), so runs can reference it with `add_input_table` and metrics tables can
    /// join to it with `input_table_url`.
    pub fn create_table(
        &self,
        project: &str,
        name: &str,
        batches: &[RecordBatch],
    ) -> Result<Table> {
        for part in [project, name] {
            names::validate_name(part).map_err(|reason| Error::InvalidName {
                name: part.to_string(),
                reason,
            })?;
        }
        let first = batches.first().ok_or_else(|| Error::InvalidInput {
            reason: "an input table needs at least one batch".into(),
        })?;
        let schema = first.schema();
        let url = format!("{project}/tables/{name}");
        let id = self.write("create table", |txn| {
            catalog::ensure_project(txn, project, crate::time::now_us())?;
            let (id, mut record) = create_table(txn, &url, 0, &schema, "", STREAM_DEFAULT)?;
            for batch in batches {
                super::check_batch(&schema, batch, &url)?;
                write_chunk(self, txn, &mut record, batch)?;
            }
            put_table_record(txn, id, &record)?;
            Ok(id)
        })?;
        Ok(Table::new(self.clone(), id, url))
    }

    /// Appends `batch` to the table at `url` in one commit (to the tail, or straight to a
    /// segment when large).
    pub fn append_to_table(&self, url: &str, batch: &RecordBatch) -> Result<()> {
        self.write("append rows", |txn| {
            let id = table_id(txn, url)?.ok_or_else(|| Error::not_found(format!("table {url}")))?;
            let mut record = table_record(txn, id, url)?;
            append_batch(self, txn, id, &mut record, batch)?;
            put_table_record(txn, id, &record)
        })
    }

    /// The table at `url`: an input table `<project>/tables/<name>` or a metrics table
    /// `<project>/runs/<run>/<name>`.
    pub fn table(&self, url: &str) -> Result<Table> {
        let id = self
            .read(|txn| table_id(txn, url))?
            .ok_or_else(|| Error::not_found(format!("table {url}")))?;
        Ok(Table::new(self.clone(), id, url.to_string()))
    }

    /// Every table of the store (of `project`, if given), by url.
    pub fn tables(&self, project: Option<&str>) -> Result<Vec<TableInfo>> {
        self.read(|txn| {
            let mut out = Vec::new();
            for (url, id) in catalog::tables::urls(txn)? {
                let url = url.as_str();
                if project.is_some_and(|p| url.split('/').next() != Some(p)) {
                    continue;
                }
                out.push(table_info(&table_record(txn, id, url)?)?);
            }
            Ok(out)
        })
    }
}

/// What [`Run::append_metrics`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendReport {
    /// The table after the append (url, stream, row count, size); when nothing was appended
    /// to a table that does not exist, its url with zero rows.
    pub table: MetricTableInfo,
    /// Rows this call appended.
    pub rows_appended: u64,
    /// Whether this call created the table.
    pub created: bool,
}

/// Pending rows are written once they reach [`super::SEAL_ROWS`] rows or this many bytes of
/// Arrow memory, so an append of any size holds a bounded amount in memory.
const APPEND_PENDING_BYTES_MAX: usize = 64 << 20;

impl Run {
    /// Appends `batches` to the metrics table `<run url>/<table_name>` in one commit, creating
    /// the table (with the first batch's schema) and attaching it to the run on first use.
    ///
    /// Batches are pulled from the iterator inside the write transaction and written as they
    /// come (full batches straight to column segments), so an input of any size is streamed;
    /// the first error, from the iterator or from a batch that does not fit the table's schema,
    /// aborts the transaction and nothing is appended. An iterator that yields no rows changes
    /// nothing (and creates no table).
    pub fn append_metrics(
        &self,
        table_name: &str,
        batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
    ) -> Result<AppendReport> {
        names::validate_name(table_name).map_err(|reason| Error::InvalidName {
            name: table_name.to_string(),
            reason,
        })?;
        let url = format!("{}/{table_name}", self.url());
        let store = self.store();
        store.write("append metrics rows", |txn| {
            let mut run_record = catalog::run_record(txn, self.id())?;
            let mut table: Option<(u64, TableRecord, bool)> = match table_id(txn, &url)? {
                Some(id) => Some((id, table_record(txn, id, &url)?, false)),
                None => None,
            };
            let mut pending: Vec<RecordBatch> = Vec::new();
            let mut pending_rows = 0usize;
            let mut pending_bytes = 0usize;
            let mut appended = 0u64;
            let write_pending =
                |pending: &mut Vec<RecordBatch>, table: &mut (u64, TableRecord, bool)| {
                    if pending.is_empty() {
                        return Ok(());
                    }
                    let schema = pending[0].schema();
                    let batch = arrow_select::concat::concat_batches(&schema, pending.iter())
                        .map_err(|e| Error::InvalidInput {
                            reason: format!("rows for table {url} do not concatenate: {e}"),
                        })?;
                    pending.clear();
                    append_batch(store, txn, table.0, &mut table.1, &batch)
                };
            for batch in batches {
                let batch = batch?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let current = match &mut table {
                    Some(current) => current,
                    None => {
                        let (id, record) = create_table(
                            txn,
                            &url,
                            self.id(),
                            &batch.schema(),
                            "",
                            STREAM_DEFAULT,
                        )?;
                        table.insert((id, record, true))
                    }
                };
                // Check each batch as it comes, so the error names the batch that does not
                // fit rather than a concatenation of several.
                super::check_batch(&super::decode_schema(&current.1)?, &batch, &url)?;
                pending_rows += batch.num_rows();
                pending_bytes += super::batch_bytes(&batch) as usize;
                appended += batch.num_rows() as u64;
                pending.push(batch);
                if pending_rows as u64 >= super::SEAL_ROWS
                    || pending_bytes >= APPEND_PENDING_BYTES_MAX
                {
                    write_pending(&mut pending, current)?;
                    pending_rows = 0;
                    pending_bytes = 0;
                }
            }
            let Some(mut current) = table else {
                return Ok(AppendReport {
                    table: MetricTableInfo {
                        url: url.clone(),
                        stream_name: STREAM_DEFAULT.into(),
                        row_count: 0,
                        file_size: 0,
                    },
                    rows_appended: 0,
                    created: false,
                });
            };
            write_pending(&mut pending, &mut current)?;
            let (id, record, created) = current;
            let info = metric_info(&record);
            if appended > 0 {
                put_table_record(txn, id, &record)?;
                attach(txn, self.id(), &mut run_record, &info)?;
            }
            Ok(AppendReport {
                table: info,
                rows_appended: appended,
                created,
            })
        })
    }
}
