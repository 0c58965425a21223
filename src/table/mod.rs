//! Tables: the metrics tables of runs and the input tables of projects, stored as Arrow
//! columns in column segments of the store's file and read back zero-copy.
//!
//! A table is a schema, sealed chunks (each column's buffers in immutable segments, found
//! through `ChunkRecord`s) and a tail (recent small appends kept as entries in redb). Large
//! batches are written straight to segments; small ones go to the tail, which is sealed into a
//! chunk when it reaches [`SEAL_ROWS`] rows or [`SEAL_BYTES`] bytes, on `flush`, and on close.
//! A scan reads the table record, its chunks and its tail from one read transaction, so it
//! sees exactly one commit: a consistent prefix of the appends, never a torn row.
//!
//! This module owns table records, tail entries, sealing and scans; it leaves the bytes to
//! `file` (append, mapping) and the array layout to `layout`.
//!
//! Invariants:
//! - `record.sealed_rows` is the sum of the chunks' rows and `record.tail_rows` the sum of the
//!   tail entries' rows; rows are ordered chunks first, then tail entries by sequence.
//! - Every segment a committed chunk names lies in a column extent below `col_hwm` and is
//!   never rewritten; its CRC is checked before its bytes are used (once per process).

pub(crate) mod convert;
pub(crate) mod layout;
pub(crate) mod metrics;
mod writer;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use redb::WriteTransaction;

use crate::catalog::records::{self, ChunkRecord, SegmentRef, TableRecord, TailRecord};
use crate::catalog::{self, tables, Reader};
use crate::error::{Error, Location, Result};
use crate::store::Store;

pub use writer::{MetricsWriter, WriteDurability, WriterOptions};

/// Field-metadata key that marks a column's role.
pub const ROLE_KEY: &str = "runstore.role";
/// Name of the example id column that joins a metrics table to its input table.
pub const EXAMPLE_ID_COLUMN: &str = "example_id";
/// Name of the constant column that names a metrics table's input table.
pub const FOREIGN_TABLE_COLUMN: &str = "input_table_id";
/// The stream a metrics table belongs to when none is named (3LC's default).
pub const STREAM_DEFAULT: &str = "default_stream";
/// The tail is sealed into a chunk at this many rows: large enough that chunks are worth
/// mapping (64 Ki rows of 4 f64 is 2 MiB), small enough that a scan decodes little tail.
pub const SEAL_ROWS: u64 = 64 * 1024;
/// ... or at this many bytes of tail entries, so wide rows (embeddings) seal sooner.
pub const SEAL_BYTES: u64 = 8 << 20;
/// Most columns a table may have; keeps records and schemas bounded.
pub const COLUMN_COUNT_MAX: usize = 4096;

/// What a column holds, for later steps such as embedding reduction (stored in the field's
/// metadata under [`ROLE_KEY`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnRole {
    /// A per-example embedding (`FixedSizeList<f32>` or `<f64>`).
    Embedding,
    /// A ground-truth label.
    Label,
    /// A predicted label.
    Prediction,
    /// The row index into the input table.
    ExampleId,
    /// The input table's url (the constant column).
    ForeignTable,
    /// A per-example weight.
    Weight,
}

impl ColumnRole {
    /// The role's metadata value.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnRole::Embedding => "embedding",
            ColumnRole::Label => "label",
            ColumnRole::Prediction => "prediction",
            ColumnRole::ExampleId => "example_id",
            ColumnRole::ForeignTable => "foreign_table",
            ColumnRole::Weight => "weight",
        }
    }

    /// The role a field is marked with, if any.
    pub fn of(field: &Field) -> Option<ColumnRole> {
        let value = field.metadata().get(ROLE_KEY)?;
        [
            ColumnRole::Embedding,
            ColumnRole::Label,
            ColumnRole::Prediction,
            ColumnRole::ExampleId,
            ColumnRole::ForeignTable,
            ColumnRole::Weight,
        ]
        .into_iter()
        .find(|role| role.as_str() == value)
    }
}

/// `field` marked with `role`.
pub fn with_role(field: Field, role: ColumnRole) -> Field {
    let mut metadata = field.metadata().clone();
    metadata.insert(ROLE_KEY.to_string(), role.as_str().to_string());
    field.with_metadata(metadata)
}

/// Facts about a table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableInfo {
    /// The table's url.
    pub url: String,
    /// The stream it belongs to.
    pub stream_name: String,
    /// Rows, sealed and tail.
    pub row_count: u64,
    /// Bytes of its segments and tail entries.
    pub file_size: u64,
    /// The input table its rows join to, if any.
    pub foreign_table_url: Option<String>,
    /// The schema a scan presents (stored columns plus the constant foreign-table column).
    pub schema: SchemaRef,
    /// Rows in sealed chunks.
    pub sealed_rows: u64,
    /// Rows in the tail.
    pub tail_rows: u64,
    /// Number of sealed chunks.
    pub chunk_count: usize,
    /// Creation time, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
}

/// What a scan reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Only these columns, in this order (default: all). Columns not named are not touched.
    pub columns: Option<Vec<String>>,
    /// Only these rows (default: all).
    pub rows: Option<Range<u64>>,
}

/// A table of a store.
#[derive(Clone)]
pub struct Table {
    store: Store,
    id: u64,
    url: String,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("url", &self.url).finish()
    }
}

impl Table {
    pub(crate) fn new(store: Store, id: u64, url: String) -> Table {
        Table { store, id, url }
    }

    /// The table's url.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store it lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Facts about the table, from the latest commit.
    pub fn info(&self) -> Result<TableInfo> {
        self.store.read(|txn| {
            let record = table_record(txn, self.id, &self.url)?;
            table_info(&record)
        })
    }

    /// The schema a scan presents.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(self.info()?.schema)
    }

    /// Rows in the table.
    pub fn row_count(&self) -> Result<u64> {
        Ok(self.info()?.row_count)
    }

    /// Every row and column, as record batches (one per chunk and tail entry). Fixed-width
    /// buffers of sealed chunks point into the file's mapping.
    pub fn scan(&self) -> Result<Vec<RecordBatch>> {
        self.scan_with(&ScanOptions::default())
    }

    /// A scan with a projection and a row range, from one consistent snapshot.
    pub fn scan_with(&self, options: &ScanOptions) -> Result<Vec<RecordBatch>> {
        self.store.read(|txn| {
            let record = table_record(txn, self.id, &self.url)?;
            scan_record(&self.store, txn, self.id, &record, options)
        })
    }
}

/// Decodes a stored schema.
pub(crate) fn decode_schema(record: &TableRecord) -> Result<Schema> {
    let schema: Schema =
        serde_json::from_str(&record.schema_json).map_err(|e| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {}: schema does not decode: {e}", record.url),
        })?;
    if schema.fields().len() > COLUMN_COUNT_MAX {
        return Err(Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {}: {} columns", record.url, schema.fields().len()),
        });
    }
    for field in schema.fields() {
        layout::check_type(field.data_type()).map_err(|reason| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {}, column {}: {reason}", record.url, field.name()),
        })?;
    }
    Ok(schema)
}

fn encode_schema(schema: &Schema) -> Result<String> {
    serde_json::to_string(schema).map_err(|e| Error::InvalidInput {
        reason: format!("schema cannot be stored: {e}"),
    })
}

/// The schema a scan presents: the stored one plus the constant foreign-table column.
fn presented_schema(record: &TableRecord, stored: &Schema) -> SchemaRef {
    if record.foreign_table_url.is_empty() {
        return Arc::new(stored.clone());
    }
    let mut fields: Vec<Field> = stored.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(foreign_table_field());
    Arc::new(Schema::new_with_metadata(fields, stored.metadata().clone()))
}

fn foreign_table_field() -> Field {
    with_role(
        Field::new(
            FOREIGN_TABLE_COLUMN,
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
        ColumnRole::ForeignTable,
    )
}

fn table_info(record: &TableRecord) -> Result<TableInfo> {
    let stored = decode_schema(record)?;
    Ok(TableInfo {
        url: record.url.clone(),
        stream_name: record.stream_name.clone(),
        row_count: record.sealed_rows + record.tail_rows,
        file_size: table_bytes(record),
        foreign_table_url: (!record.foreign_table_url.is_empty())
            .then(|| record.foreign_table_url.clone()),
        schema: presented_schema(record, &stored),
        sealed_rows: record.sealed_rows,
        tail_rows: record.tail_rows,
        chunk_count: record.chunks.len(),
        created_us: record.created_us,
    })
}

pub(crate) use crate::catalog::tables::{
    delete_table, put_table_record, table_bytes, table_id, table_record,
};

/// Creates an empty table record under `url`; fails if the url is taken.
pub(crate) fn create_table(
    txn: &WriteTransaction,
    url: &str,
    run_id: u64,
    schema: &Schema,
    foreign_table_url: &str,
    stream_name: &str,
) -> Result<(u64, TableRecord)> {
    if table_id(txn, url)?.is_some() {
        return Err(Error::AlreadyExists {
            what: format!("table {url}"),
        });
    }
    check_schema(schema)?;
    let id = tables::next_table_id(txn)?;
    let record = TableRecord {
        url: url.to_string(),
        run_id,
        schema_json: encode_schema(schema)?,
        foreign_table_url: foreign_table_url.to_string(),
        stream_name: stream_name.to_string(),
        chunks: Vec::new(),
        sealed_rows: 0,
        tail_rows: 0,
        tail_bytes: 0,
        tail_next: 0,
        created_us: crate::time::now_us(),
    };
    put_table_record(txn, id, &record)?;
    tables::put_url(txn, url, id, "create table")?;
    Ok((id, record))
}

/// Checks that a table of `schema` can be created and read back: at least one and at most
/// [`COLUMN_COUNT_MAX`] columns; column names (and the names of struct fields inside them)
/// that follow `names::validate_column_name`, unique, not the reserved
/// [`FOREIGN_TABLE_COLUMN`]; types that `layout::check_type` accepts (the reader's own
/// check); and a stored form that decodes to the same schema.
pub(crate) fn check_schema(schema: &Schema) -> Result<()> {
    if schema.fields().is_empty() {
        return Err(Error::InvalidInput {
            reason: "a table needs at least one column".into(),
        });
    }
    if schema.fields().len() > COLUMN_COUNT_MAX {
        return Err(Error::InvalidInput {
            reason: format!(
                "{} columns; at most {COLUMN_COUNT_MAX}",
                schema.fields().len()
            ),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for field in schema.fields() {
        if field.name().is_empty() {
            return Err(Error::InvalidInput {
                reason: "a column name is empty".into(),
            });
        }
        if !seen.insert(field.name()) {
            return Err(Error::InvalidInput {
                reason: format!("column {} appears twice", field.name()),
            });
        }
        if field.name() == FOREIGN_TABLE_COLUMN {
            return Err(Error::InvalidInput {
                reason: format!("column name {FOREIGN_TABLE_COLUMN} is reserved"),
            });
        }
        check_field_names(field.name(), field.data_type())?;
        layout::check_type(field.data_type()).map_err(|reason| Error::InvalidInput {
            reason: format!("column {}: {reason}", field.name()),
        })?;
    }
    // What `decode_schema` will read must be this schema.
    let stored = encode_schema(schema)?;
    let unreadable = |why: String| Error::InvalidInput {
        reason: format!("the schema cannot be stored and read back: {why}"),
    };
    let decoded: Schema = serde_json::from_str(&stored).map_err(|e| unreadable(e.to_string()))?;
    if &decoded != schema {
        return Err(unreadable("it reads back as a different schema".into()));
    }
    Ok(())
}

/// Checks a column's name, and the names of the struct fields inside its type, against the
/// column name rules.
fn check_field_names(column: &str, data_type: &DataType) -> Result<()> {
    crate::names::validate_column_name(column).map_err(|reason| Error::InvalidName {
        name: column.to_string(),
        reason,
    })?;
    check_nested_names(data_type)
}

fn check_nested_names(data_type: &DataType) -> Result<()> {
    match data_type {
        DataType::Struct(fields) => fields
            .iter()
            .try_for_each(|field| check_field_names(field.name(), field.data_type())),
        other => layout::child_types(other)
            .iter()
            .try_for_each(check_nested_names),
    }
}

/// Checks that `batch` fits `schema`: same column names in the same order, same types, no
/// nulls in non-nullable columns, at least one row.
pub(crate) fn check_batch(schema: &Schema, batch: &RecordBatch, url: &str) -> Result<()> {
    if batch.num_rows() == 0 {
        return Err(Error::InvalidInput {
            reason: format!("an empty batch for table {url}"),
        });
    }
    let fields = batch.schema();
    if fields.fields().len() != schema.fields().len() {
        return Err(Error::SchemaMismatch {
            table: url.to_string(),
            column: String::new(),
            reason: format!(
                "the batch has {} columns, the table {}",
                fields.fields().len(),
                schema.fields().len()
            ),
        });
    }
    for ((expected, found), column) in schema
        .fields()
        .iter()
        .zip(fields.fields())
        .zip(batch.columns())
    {
        if expected.name() != found.name() {
            return Err(Error::SchemaMismatch {
                table: url.to_string(),
                column: found.name().clone(),
                reason: format!("expected column {} here", expected.name()),
            });
        }
        if expected.data_type() != column.data_type() {
            return Err(Error::SchemaMismatch {
                table: url.to_string(),
                column: found.name().clone(),
                reason: format!(
                    "type {} does not match the table's {}",
                    column.data_type(),
                    expected.data_type()
                ),
            });
        }
        if !expected.is_nullable() && column.null_count() > 0 {
            return Err(Error::SchemaMismatch {
                table: url.to_string(),
                column: found.name().clone(),
                reason: "nulls in a non-nullable column".into(),
            });
        }
    }
    Ok(())
}

/// Writes `batch` as one sealed chunk of `record` (straight to segments).
pub(crate) fn write_chunk(
    store: &Store,
    txn: &WriteTransaction,
    record: &mut TableRecord,
    batch: &RecordBatch,
) -> Result<()> {
    let mut col_hwm = catalog::meta_get(txn, catalog::META_COL_HWM)?;
    let file = store.file();
    let mut nodes = Vec::new();
    for column in batch.columns() {
        let column = layout::unsliced(column)?;
        layout::flatten(
            &column.to_data(),
            &mut |bytes| append_segment(file, &mut col_hwm, bytes),
            &mut nodes,
        )?;
    }
    catalog::meta_set(txn, catalog::META_COL_HWM, col_hwm)?;
    let rows = batch.num_rows() as u64;
    record.chunks.push(ChunkRecord { rows, nodes });
    record.sealed_rows += rows;
    Ok(())
}

/// Appends `batch` as one tail entry of table `id`.
pub(crate) fn append_tail(
    txn: &WriteTransaction,
    id: u64,
    record: &mut TableRecord,
    batch: &RecordBatch,
) -> Result<()> {
    let mut data = Vec::new();
    let mut nodes = Vec::new();
    for column in batch.columns() {
        let column = layout::unsliced(column)?;
        layout::flatten(
            &column.to_data(),
            &mut |bytes| Ok(layout::append_aligned(&mut data, bytes)),
            &mut nodes,
        )?;
    }
    let rows = batch.num_rows() as u64;
    let entry = records::encode(&TailRecord { rows, nodes, data });
    tables::put_tail_entry(txn, id, record.tail_next, entry.as_slice())?;
    record.tail_next += 1;
    record.tail_rows += rows;
    record.tail_bytes += entry.len() as u64;
    Ok(())
}

/// The bytes `batch`'s rows hold: what its columns' buffers hold for the rows in view. A batch
/// sliced out of a larger one shares the larger one's buffers, which
/// `RecordBatch::get_array_memory_size` counts whole: a 1,000-row slice of a 10,000,000-row
/// batch looked like 80 MB and was sealed into a chunk of its own at every append (a table
/// of ten thousand chunks, each append rewriting the list of all of them).
pub(crate) fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|column| {
            let data = column.to_data();
            // An error means offsets past the buffers, which validation refuses before here;
            // the whole-buffer figure is a safe overestimate.
            data.get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size()) as u64
        })
        .sum()
}

/// Appends `batch` to table `id`: straight to a segment chunk when it is large in rows or in
/// bytes (sealing the tail first so rows stay in order), to the tail otherwise; seals a full
/// tail. A large batch never passes through the tail: redb stores a value in a power-of-two
/// run of pages and grows its file by twice that, so one 200 MB row in the tail left 512 MB
/// of redb space behind it after sealing (a 712 MB file).
pub(crate) fn append_batch(
    store: &Store,
    txn: &WriteTransaction,
    id: u64,
    record: &mut TableRecord,
    batch: &RecordBatch,
) -> Result<()> {
    let schema = decode_schema(record)?;
    check_batch(&schema, batch, &record.url)?;
    if batch.num_rows() as u64 >= SEAL_ROWS || batch_bytes(batch) >= SEAL_BYTES {
        seal(store, txn, id, record)?;
        write_chunk(store, txn, record, batch)?;
        return Ok(());
    }
    append_tail(txn, id, record, batch)?;
    if record.tail_rows >= SEAL_ROWS || record.tail_bytes >= SEAL_BYTES {
        seal(store, txn, id, record)?;
    }
    Ok(())
}

/// Moves the tail of table `id` into one sealed chunk.
pub(crate) fn seal(
    store: &Store,
    txn: &WriteTransaction,
    id: u64,
    record: &mut TableRecord,
) -> Result<()> {
    if record.tail_rows == 0 {
        return Ok(());
    }
    let schema = Arc::new(decode_schema(record)?);
    let batches = tail_batches(txn, id, record, &schema)?;
    let batch =
        arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {}: tail entries do not concatenate: {e}", record.url),
        })?;
    write_chunk(store, txn, record, &batch)?;
    tables::clear_tail(txn, id)?;
    record.tail_rows = 0;
    record.tail_bytes = 0;
    Ok(())
}

/// The tail entries of table `id`, decoded, in order.
fn tail_batches(
    txn: &impl Reader,
    id: u64,
    record: &TableRecord,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut rows = 0u64;
    tables::for_each_tail_entry(txn, id, "read tail", |_, payload| {
        let entry: TailRecord = records::decode(payload, "tail entry")?;
        let batch = rebuild_batch(
            schema,
            &entry.nodes,
            entry.rows,
            &record.url,
            &mut |segment| tail_buffer(&entry.data, segment, &record.url),
        )?;
        rows += entry.rows;
        batches.push(batch);
        Ok(())
    })?;
    if rows != record.tail_rows {
        return Err(Error::Corrupted {
            at: Location::Catalog,
            reason: format!(
                "table {}: tail holds {rows} rows, record says {}",
                record.url, record.tail_rows
            ),
        });
    }
    Ok(batches)
}

fn tail_buffer(data: &[u8], segment: &SegmentRef, url: &str) -> Result<Buffer> {
    let bytes = usize::try_from(segment.offset)
        .ok()
        .zip(usize::try_from(segment.len).ok())
        .and_then(|(start, len)| data.get(start..start.checked_add(len)?))
        .ok_or_else(|| Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {url}: tail buffer out of bounds"),
        })?;
    if crc32fast::hash(bytes) != segment.crc32 {
        return Err(Error::Corrupted {
            at: Location::Catalog,
            reason: format!("table {url}: tail buffer fails its checksum"),
        });
    }
    Ok(Buffer::from_slice_ref(bytes))
}

/// Rebuilds every column of one chunk or tail entry into a batch.
fn rebuild_batch(
    schema: &SchemaRef,
    nodes: &[records::NodeRecord],
    rows: u64,
    url: &str,
    buffer_of: &mut dyn FnMut(&SegmentRef) -> Result<Buffer>,
) -> Result<RecordBatch> {
    let mut cursor = 0;
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let what = format!("table {url}, column {}", field.name());
        columns.push(layout::rebuild(
            field.data_type(),
            nodes,
            &mut cursor,
            buffer_of,
            &what,
        )?);
    }
    finish_batch(schema.clone(), columns, rows, url)
}

fn finish_batch(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    rows: u64,
    url: &str,
) -> Result<RecordBatch> {
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows as usize));
    RecordBatch::try_new_with_options(schema, columns, &options).map_err(|e| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("table {url}: columns do not form a batch: {e}"),
    })
}

/// Number of pre-order nodes an array of `data_type` has.
fn node_count(data_type: &DataType) -> usize {
    1 + layout::child_types(data_type)
        .iter()
        .map(node_count)
        .sum::<usize>()
}

/// Checks what a reader needs of table `id` (`record`) without reading its column segments:
/// the schema decodes, every sealed chunk's node list fits the schema ([`layout::check_nodes`]:
/// depth, children, buffer counts and sizes), and every tail entry rebuilds into the schema
/// (tail entries live in the catalog, so this reads no column data either). A table that passes
/// can still hold a segment that fails its CRC; a copy checks those as it copies them.
pub(crate) fn check_structure(txn: &impl Reader, id: u64, record: &TableRecord) -> Result<()> {
    let stored = Arc::new(decode_schema(record)?);
    let needed: usize = stored
        .fields()
        .iter()
        .map(|field| node_count(field.data_type()))
        .sum();
    for (index, chunk) in record.chunks.iter().enumerate() {
        if chunk.nodes.len() != needed {
            return Err(Error::Corrupted {
                at: Location::Catalog,
                reason: format!(
                    "table {}: chunk {index} has {} nodes, schema needs {needed}",
                    record.url,
                    chunk.nodes.len()
                ),
            });
        }
        let mut cursor = 0;
        for field in stored.fields() {
            let what = format!(
                "table {}, chunk {index}, column {}",
                record.url,
                field.name()
            );
            layout::check_nodes(field.data_type(), &chunk.nodes, &mut cursor, &what, 0)?;
        }
    }
    if record.tail_rows > 0 {
        tail_batches(txn, id, record, &stored)?;
    }
    Ok(())
}

/// Scans a table record from one read transaction.
pub(crate) fn scan_record(
    store: &Store,
    txn: &impl Reader,
    id: u64,
    record: &TableRecord,
    options: &ScanOptions,
) -> Result<Vec<RecordBatch>> {
    let stored = Arc::new(decode_schema(record)?);
    let presented = presented_schema(record, &stored);
    // Resolve the projection against the presented schema.
    let wanted: Vec<usize> = match &options.columns {
        None => (0..presented.fields().len()).collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                presented.index_of(name).map_err(|_| Error::NotFound {
                    what: format!("column {name} of table {}", record.url),
                })
            })
            .collect::<Result<_>>()?,
    };
    let projected = Arc::new(
        presented
            .project(&wanted)
            .map_err(|e| Error::InvalidInput {
                reason: e.to_string(),
            })?,
    );
    let total = record.sealed_rows + record.tail_rows;
    let rows = options.rows.clone().unwrap_or(0..total);
    let rows = rows.start.min(total)..rows.end.min(total);

    // Node offset of each stored column inside a chunk's node list.
    let mut node_starts = Vec::with_capacity(stored.fields().len());
    let mut at = 0;
    for field in stored.fields() {
        node_starts.push(at);
        at += node_count(field.data_type());
    }

    let mut out = Vec::new();
    let mut first_row = 0u64;
    for chunk in &record.chunks {
        let chunk_rows = first_row..first_row + chunk.rows;
        first_row += chunk.rows;
        let Some(local) = intersect(&chunk_rows, &rows) else {
            continue;
        };
        if chunk.nodes.len() != at {
            return Err(Error::Corrupted {
                at: Location::Catalog,
                reason: format!(
                    "table {}: chunk has {} nodes, schema needs {at}",
                    record.url,
                    chunk.nodes.len()
                ),
            });
        }
        let mut columns = Vec::with_capacity(wanted.len());
        for &index in &wanted {
            if index >= stored.fields().len() {
                columns.push(foreign_column(&record.foreign_table_url, chunk.rows));
                continue;
            }
            let field = stored.field(index);
            let mut cursor = node_starts[index];
            let what = format!("table {}, column {}", record.url, field.name());
            let array = layout::rebuild(
                field.data_type(),
                &chunk.nodes,
                &mut cursor,
                &mut |segment| store.mapped_segment(segment, &what),
                &what,
            )?;
            columns.push(array);
        }
        let batch = finish_batch(projected.clone(), columns, chunk.rows, &record.url)?;
        out.push(slice_batch(batch, local));
    }
    if record.tail_rows > 0 && rows.end > record.sealed_rows {
        for batch in tail_batches(txn, id, record, &stored)? {
            let batch_rows = first_row..first_row + batch.num_rows() as u64;
            first_row += batch.num_rows() as u64;
            let Some(local) = intersect(&batch_rows, &rows) else {
                continue;
            };
            let mut columns = Vec::with_capacity(wanted.len());
            for &index in &wanted {
                if index >= stored.fields().len() {
                    columns.push(foreign_column(
                        &record.foreign_table_url,
                        batch.num_rows() as u64,
                    ));
                } else {
                    columns.push(batch.column(index).clone());
                }
            }
            let batch = finish_batch(
                projected.clone(),
                columns,
                batch.num_rows() as u64,
                &record.url,
            )?;
            out.push(slice_batch(batch, local));
        }
    }
    Ok(out)
}

fn intersect(chunk: &Range<u64>, wanted: &Range<u64>) -> Option<Range<u64>> {
    let start = chunk.start.max(wanted.start);
    let end = chunk.end.min(wanted.end);
    (start < end).then(|| start - chunk.start..end - chunk.start)
}

fn slice_batch(batch: RecordBatch, local: Range<u64>) -> RecordBatch {
    if local.start == 0 && local.end == batch.num_rows() as u64 {
        return batch;
    }
    batch.slice(local.start as usize, (local.end - local.start) as usize)
}

/// The constant foreign-table column: a dictionary of one value, every key 0.
fn foreign_column(url: &str, rows: u64) -> ArrayRef {
    let keys = arrow_array::Int32Array::from(vec![0; rows as usize]);
    let values: ArrayRef = Arc::new(StringArray::from(vec![url]));
    Arc::new(
        DictionaryArray::<Int32Type>::try_new(keys, values)
            .expect("keys are all 0 and the dictionary has one value"),
    )
}

/// Appends `bytes` as a column segment past `col_hwm`, which it advances; returns the
/// segment's reference (offset, length, CRC).
pub(crate) fn append_segment(
    file: &crate::file::PhysicalFile,
    col_hwm: &mut u64,
    bytes: &[u8],
) -> Result<SegmentRef> {
    let offset = file.append_column(*col_hwm, bytes)?;
    *col_hwm = offset + bytes.len() as u64;
    Ok(SegmentRef {
        offset,
        len: bytes.len() as u64,
        crc32: crc32fast::hash(bytes),
    })
}

/// Every segment a table record names.
pub(crate) fn segments(record: &TableRecord) -> impl Iterator<Item = &SegmentRef> {
    record
        .chunks
        .iter()
        .flat_map(|chunk| &chunk.nodes)
        .flat_map(|node| node.validity.iter().chain(&node.buffers))
}

/// Applies 3LC's `override_column_schemas`: casts each named column to the override field's
/// type and takes the field's nullability and metadata.
pub(crate) fn apply_overrides(
    batch: &RecordBatch,
    overrides: &HashMap<String, Field>,
) -> Result<RecordBatch> {
    if overrides.is_empty() {
        return Ok(batch.clone());
    }
    for name in overrides.keys() {
        if batch.schema().index_of(name).is_err() {
            return Err(Error::InvalidInput {
                reason: format!("override for column {name}, which the data does not have"),
            });
        }
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match overrides.get(field.name()) {
            Some(wanted) => {
                let cast = convert::cast_exact(column, wanted.data_type()).map_err(|inexact| {
                    Error::InvalidInput {
                        reason: format!(
                            "column {} cannot be converted to {}: row {}: {}",
                            field.name(),
                            wanted.data_type(),
                            inexact.index + 1,
                            inexact.reason
                        ),
                    }
                })?;
                fields.push(wanted.clone().with_name(field.name()));
                columns.push(cast);
            }
            None => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    let schema = Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| Error::InvalidInput {
        reason: format!("overridden columns do not form a batch: {e}"),
    })
}
