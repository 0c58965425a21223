//! Ingest: rows from JSON lines, CSV, Parquet or Arrow IPC bytes into a metrics table, as
//! `runstore append` does (the CLI only opens the input and prints the report).
//!
//! [`read`] turns an input into record batches: with the existing table's schema when there
//! is one (every value converted exactly, see `table::convert`), or with a schema inferred from
//! the whole input (JSON lines and CSV read the input twice: once to infer, once to decode; so
//! a later row that needs a wider type widens the column instead of being truncated).
//! [`append`] appends them to `<run url>/<table>` in one commit through
//! [`Run::append_metrics`], which validates a new table's schema against what the reader
//! accepts before anything is committed.
//!
//! Every error is `Error::InvalidInput` naming the input, its line (JSON lines, CSV: the file
//! line, header is line 1) or row (Parquet, Arrow: counting data rows from 1) and the column;
//! on any error nothing is appended.

mod cell;
mod csv;
mod json;

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::run::Run;
use crate::table::convert;
use crate::table::metrics::AppendReport;
use crate::table::FOREIGN_TABLE_COLUMN;

pub use json::LINE_BYTES_MAX;

/// Rows per batch read from the input.
pub const BATCH_ROWS: usize = 8192;

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    JsonLines,
    /// Comma-separated values with a header row.
    Csv,
    /// A Parquet file.
    Parquet,
    /// An Arrow IPC file or stream.
    Arrow,
}

impl Format {
    /// The format a file extension names (`jsonl`, `ndjson`, `json`, `csv`, `parquet`, `pq`,
    /// `arrow`, `arrows`, `ipc`, `feather`; any case).
    pub fn of_extension(extension: &str) -> Option<Format> {
        Some(match extension.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" | "json" => Format::JsonLines,
            "parquet" | "pq" => Format::Parquet,
            "arrow" | "arrows" | "ipc" | "feather" => Format::Arrow,
            "csv" => Format::Csv,
            _ => return None,
        })
    }
}

/// Where the input comes from.
pub enum Source {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// A file, read from its start (read twice when a schema is inferred).
    File(File),
    /// A stream read once (stdin). JSON lines or CSV into a new table are inferred from the
    /// whole input, so the stream is then read into memory first; pass a file to stream a
    /// large input into a new table.
    Stream(Box<dyn Read + Send>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Bytes(bytes) => write!(f, "Source::Bytes({} bytes)", bytes.len()),
            Source::File(file) => write!(f, "Source::File({file:?})"),
            Source::Stream(_) => write!(f, "Source::Stream"),
        }
    }
}

impl From<Vec<u8>> for Source {
    fn from(bytes: Vec<u8>) -> Source {
        Source::Bytes(bytes)
    }
}

impl From<File> for Source {
    fn from(file: File) -> Source {
        Source::File(file)
    }
}

/// Batches of an input, each a `Result` (the first error ends the input).
pub type Batches = Box<dyn Iterator<Item = Result<RecordBatch>>>;

/// Bytes shared by the passes over an in-memory input.
#[derive(Clone)]
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// An input that can be read from its start again.
enum Rereadable {
    Bytes(SharedBytes),
    File(File, String),
}

impl Rereadable {
    fn open(&self) -> Result<Box<dyn std::io::BufRead>> {
        match self {
            Rereadable::Bytes(bytes) => Ok(Box::new(Cursor::new(bytes.clone()))),
            Rereadable::File(file, name) => Ok(Box::new(BufReader::new(rewound(file, name)?))),
        }
    }
}

/// A second handle on `file`, positioned at its start.
fn rewound(file: &File, name: &str) -> Result<File> {
    let mut file = file.try_clone().map_err(|source| Error::Io {
        op: "reopen input",
        path: name.into(),
        source,
    })?;
    file.rewind().map_err(|source| Error::Io {
        op: "rewind input",
        path: name.into(),
        source,
    })?;
    Ok(file)
}

fn rereadable(source: Source, name: &str) -> Result<Rereadable> {
    Ok(match source {
        Source::Bytes(bytes) => Rereadable::Bytes(SharedBytes(Arc::new(bytes))),
        Source::File(file) => Rereadable::File(file, name.to_string()),
        Source::Stream(mut stream) => {
            let mut bytes = Vec::new();
            stream.read_to_end(&mut bytes).map_err(|source| Error::Io {
                op: "read input",
                path: name.into(),
                source,
            })?;
            Rereadable::Bytes(SharedBytes(Arc::new(bytes)))
        }
    })
}

/// Reads `source` in `format` as record batches. `name` names the input in errors (a path, or
/// `<stdin>`). With `existing` (the table's schema, see [`table_schema`]) every row is read
/// into it, converted exactly; without, the schema is inferred from the whole input (JSON
/// lines, CSV) or taken from the file (Parquet, Arrow).
pub fn read(
    format: Format,
    source: impl Into<Source>,
    name: &str,
    existing: Option<SchemaRef>,
) -> Result<Batches> {
    let source = source.into();
    // Opening reads a Parquet footer or an IPC schema; a reader that panics on malformed
    // bytes is reported as bad input (see `conformed` for the batches).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        open(format, source, name, existing)
    }))
    .unwrap_or_else(|_| {
        Err(Error::InvalidInput {
            reason: format!("{name}: the reader failed on malformed data"),
        })
    })
}

fn open(
    format: Format,
    source: Source,
    name: &str,
    existing: Option<SchemaRef>,
) -> Result<Batches> {
    match format {
        Format::JsonLines => {
            let (schema, input): (SchemaRef, Box<dyn std::io::BufRead>) = match (existing, source) {
                (Some(schema), Source::Stream(stream)) => {
                    (schema, Box::new(BufReader::new(stream)))
                }
                (existing, source) => {
                    let input = rereadable(source, name)?;
                    let schema = match existing {
                        Some(schema) => schema,
                        None => json::infer(input.open()?, name)?,
                    };
                    (schema, input.open()?)
                }
            };
            Ok(Box::new(json::JsonBatches::new(input, name, schema)))
        }
        Format::Csv => {
            let (schema, input): (SchemaRef, Box<dyn Read>) = match (existing, source) {
                (Some(schema), Source::Stream(stream)) => (schema, Box::new(stream)),
                (existing, source) => {
                    let input = rereadable(source, name)?;
                    let schema = match existing {
                        Some(schema) => schema,
                        None => csv::infer(input.open()?, name)?,
                    };
                    (schema, Box::new(input.open()?))
                }
            };
            Ok(Box::new(csv::CsvBatches::new(input, name, schema)?))
        }
        Format::Parquet => {
            let builder = match source {
                Source::File(file) => parquet_reader(
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file),
                    name,
                )?,
                Source::Bytes(bytes) => parquet_reader(
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        bytes::Bytes::from(bytes),
                    ),
                    name,
                )?,
                Source::Stream(mut stream) => {
                    let mut bytes = Vec::new();
                    stream.read_to_end(&mut bytes).map_err(|source| Error::Io {
                        op: "read input",
                        path: name.into(),
                        source,
                    })?;
                    parquet_reader(
                        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                            bytes::Bytes::from(bytes),
                        ),
                        name,
                    )?
                }
            };
            Ok(conformed(builder, existing, name))
        }
        Format::Arrow => {
            let open_stream = |input: Box<dyn Read>| {
                arrow_ipc::reader::StreamReader::try_new_buffered(input, None).map_err(|e| {
                    Error::InvalidInput {
                        reason: format!("{name}: not Arrow IPC: {e}"),
                    }
                })
            };
            match source {
                Source::Stream(stream) => {
                    Ok(conformed(open_stream(Box::new(stream))?, existing, name))
                }
                source => {
                    let input = rereadable(source, name)?;
                    let file = arrow_ipc::reader::FileReader::try_new_buffered(
                        ReadSeek(input.open_seek()?),
                        None,
                    );
                    match file {
                        Ok(reader) => Ok(conformed(reader, existing, name)),
                        // Not an IPC file (no footer): read it as an IPC stream.
                        Err(_) => Ok(conformed(
                            open_stream(Box::new(input.open()?))?,
                            existing,
                            name,
                        )),
                    }
                }
            }
        }
    }
}

/// A `Read + Seek` input for the Arrow IPC file reader.
struct ReadSeek(Box<dyn ReadSeekInput>);

trait ReadSeekInput: Read + Seek {}
impl<T: Read + Seek> ReadSeekInput for T {}

impl Read for ReadSeek {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for ReadSeek {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl Rereadable {
    fn open_seek(&self) -> Result<Box<dyn ReadSeekInput>> {
        match self {
            Rereadable::Bytes(bytes) => Ok(Box::new(Cursor::new(bytes.clone()))),
            Rereadable::File(file, name) => Ok(Box::new(BufReader::new(rewound(file, name)?))),
        }
    }
}

fn parquet_reader<T: parquet::file::reader::ChunkReader + 'static>(
    builder: std::result::Result<
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder<T>,
        parquet::errors::ParquetError,
    >,
    name: &str,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    let invalid = |e: parquet::errors::ParquetError| Error::InvalidInput {
        reason: format!("{name}: not Parquet: {e}"),
    };
    builder
        .map_err(invalid)?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(invalid)
}

/// Batches of a reader, converted exactly to the existing table's schema when there is one.
fn conformed<I>(reader: I, schema: Option<SchemaRef>, name: &str) -> Batches
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + 'static,
{
    let name = name.to_string();
    let mut first_row = 0usize;
    let mut reader = reader;
    let mut failed = false;
    // arrow-ipc (and parquet) can panic on a hostile file (a buffer sliced past its end, seen
    // by the mutation test): that is bad input, so it becomes an error here rather than a
    // panic inside the store's write transaction.
    let batches = std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()));
        match next {
            Ok(next) => next,
            Err(_) => {
                failed = true;
                Some(Err(ArrowError::InvalidArgumentError(
                    "the reader failed on malformed data".into(),
                )))
            }
        }
    });
    Box::new(batches.map(move |batch| {
        let batch = batch.map_err(|e| Error::InvalidInput {
            reason: format!("{name}: {e}"),
        })?;
        let rows = batch.num_rows();
        let result = match &schema {
            Some(schema) => conform(&batch, schema, &name, first_row),
            None => Ok(batch),
        };
        first_row += rows;
        result
    }))
}

/// `batch` with its columns matched by name to `schema` and converted exactly to its types.
/// A missing or an extra column, or a value that does not fit, is an error naming the row
/// (`first_row` is the batch's first row's index in the input).
pub fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    name: &str,
    first_row: usize,
) -> Result<RecordBatch> {
    let invalid = |reason: String| Error::InvalidInput {
        reason: format!("{name}: {reason}"),
    };
    for field in batch.schema().fields() {
        if schema.field_with_name(field.name()).is_err() {
            return Err(invalid(format!(
                "column {} is not in the table (its columns: {})",
                field.name(),
                column_names(schema)
            )));
        }
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch
            .column_by_name(field.name())
            .ok_or_else(|| invalid(format!("the input has no column {}", field.name())))?;
        let column = convert::cast_exact(column, field.data_type()).map_err(|inexact| {
            Error::InvalidInput {
                reason: format!(
                    "{name} row {}, column {}: {}",
                    first_row + inexact.index + 1,
                    field.name(),
                    inexact.reason
                ),
            }
        })?;
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| invalid(e.to_string()))
}

pub(crate) fn column_names(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

/// The schema rows appended to `<run url>/<table_name>` must have: the table's stored columns
/// (without the constant input-table column a scan adds), or `None` when there is no table.
pub fn table_schema(run: &Run, table_name: &str) -> Result<Option<SchemaRef>> {
    let url = format!("{}/{table_name}", run.url());
    let table = match run.store().table(&url) {
        Ok(table) => table,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    let info = table.info()?;
    let fields: Vec<Field> = info
        .schema
        .fields()
        .iter()
        .filter(|f| info.foreign_table_url.is_none() || f.name() != FOREIGN_TABLE_COLUMN)
        .map(|f| f.as_ref().clone())
        .collect();
    Ok(Some(Arc::new(Schema::new_with_metadata(
        fields,
        info.schema.metadata().clone(),
    ))))
}

/// Appends the rows of `source` (in `format`, named `name` in errors) to the metrics table
/// `<run url>/<table_name>` in one commit: created on first use with the inferred (or the
/// file's) schema, appended to with its own schema afterwards. On any error nothing is
/// appended.
pub fn append(
    run: &Run,
    table_name: &str,
    format: Format,
    source: impl Into<Source>,
    name: &str,
) -> Result<AppendReport> {
    crate::names::validate_name(table_name).map_err(|reason| Error::InvalidName {
        name: table_name.to_string(),
        reason,
    })?;
    let existing = table_schema(run, table_name)?;
    let mut batches = read(format, source, name, existing)?;
    run.append_metrics(table_name, &mut batches)
}
