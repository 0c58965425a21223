//! `runstore append`: rows from JSON lines (stdin or a file), Parquet, Arrow IPC or CSV into a
//! metrics table of a run, all in one commit (`Run::append_metrics`).
//!
//! `--table T` names the table `<run url>/T`: created (and attached to the run) on first use,
//! appended to afterwards. A new table's schema is inferred from the input (JSON lines: from
//! the first batch of lines); an existing table's schema is kept, so later input is read with
//! its types and a row that does not fit is an error naming its line, not a new type.
//!
//! JSON lines: one object per line, blank lines skipped. Numbers are Int64 or Float64, strings
//! Utf8, booleans Boolean, objects Struct, lists List; a key whose values in the first batch
//! are all lists of the same length with at least one non-integer number becomes
//! `FixedSizeList<Float32>` (an embedding); lists of integers stay `List<Int64>`, so ids
//! keep their exact values. A key that is null in every line of the first batch becomes Utf8.
//! A key not in the table's schema is an error (nothing is dropped silently).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use runstore::table::FOREIGN_TABLE_COLUMN;
use runstore::{AppendReport, Error, Store};

/// Rows per batch read from the input.
const BATCH_ROWS: usize = 8192;
/// Longest JSON line accepted: a row of a few million floats. Keeps one bad line (a file
/// without newlines) from taking all memory.
const LINE_BYTES_MAX: usize = 256 << 20;
/// CSV rows read to infer a new table's column types.
const CSV_INFER_ROWS: usize = 1000;

/// Input formats of `append`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// One JSON object per line.
    Jsonl,
    /// A Parquet file.
    Parquet,
    /// An Arrow IPC file or stream.
    Arrow,
    /// Comma-separated values with a header row.
    Csv,
}

impl InputFormat {
    /// The format a file's extension names.
    fn of_path(path: &Path) -> Result<InputFormat> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        Ok(match extension.as_deref() {
            Some("jsonl" | "ndjson" | "json") => InputFormat::Jsonl,
            Some("parquet" | "pq") => InputFormat::Parquet,
            Some("arrow" | "arrows" | "ipc" | "feather") => InputFormat::Arrow,
            Some("csv") => InputFormat::Csv,
            _ => bail!(
                "cannot tell the format of {} from its extension; pass --format",
                path.display()
            ),
        })
    }
}

/// Appends the rows of `from` (or of stdin, JSON lines or an Arrow IPC stream) to the table
/// `table` of the run at `run_url`.
pub fn append(
    store: &Store,
    run_url: &str,
    table: &str,
    from: Option<&Path>,
    format: Option<InputFormat>,
) -> Result<AppendReport> {
    let run = store.run(run_url)?;
    let prefix = format!("{}/", run.url());
    let table = table.strip_prefix(&prefix).unwrap_or(table);
    let url = format!("{prefix}{table}");
    let existing = match store.table(&url) {
        Ok(table) => {
            let info = table.info()?;
            let fields: Vec<Field> = info
                .schema
                .fields()
                .iter()
                .filter(|f| info.foreign_table_url.is_none() || f.name() != FOREIGN_TABLE_COLUMN)
                .map(|f| f.as_ref().clone())
                .collect();
            Some(Arc::new(Schema::new_with_metadata(
                fields,
                info.schema.metadata().clone(),
            )))
        }
        Err(Error::NotFound { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let format = match (format, from) {
        (Some(format), _) => format,
        (None, Some(path)) => InputFormat::of_path(path)?,
        (None, None) => InputFormat::Jsonl,
    };
    let open =
        |path: &Path| File::open(path).with_context(|| format!("opening {}", path.display()));
    let mut batches: Box<dyn Iterator<Item = runstore::Result<RecordBatch>>> = match (format, from)
    {
        (InputFormat::Jsonl, None) => Box::new(JsonLines::new(
            std::io::stdin().lock(),
            PathBuf::from("<stdin>"),
            existing,
        )),
        (InputFormat::Jsonl, Some(path)) => Box::new(JsonLines::new(
            BufReader::new(open(path)?),
            path.to_path_buf(),
            existing,
        )),
        (InputFormat::Parquet, Some(path)) => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open(path)?)
                    .with_context(|| format!("reading {} as Parquet", path.display()))?
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .with_context(|| format!("reading {} as Parquet", path.display()))?;
            conformed(reader, existing, path)
        }
        (InputFormat::Arrow, Some(path)) => {
            let file = open(path)?;
            match arrow_ipc::reader::FileReader::try_new_buffered(file, None) {
                Ok(reader) => conformed(reader, existing, path),
                Err(_) => {
                    // Not an IPC file (no footer): read it as an IPC stream.
                    let reader =
                        arrow_ipc::reader::StreamReader::try_new_buffered(open(path)?, None)
                            .with_context(|| format!("reading {} as Arrow IPC", path.display()))?;
                    conformed(reader, existing, path)
                }
            }
        }
        (InputFormat::Arrow, None) => {
            let reader =
                arrow_ipc::reader::StreamReader::try_new_buffered(std::io::stdin().lock(), None)
                    .context("reading stdin as an Arrow IPC stream")?;
            conformed(reader, existing, Path::new("<stdin>"))
        }
        (InputFormat::Csv, Some(path)) => csv_batches(open(path)?, path, existing)?,
        (InputFormat::Parquet | InputFormat::Csv, None) => {
            bail!("--format parquet and csv read a file: pass --from FILE")
        }
    };
    Ok(run.append_metrics(table, &mut batches)?)
}

/// Batches of a reader, cast to the existing table's schema when there is one.
fn conformed<I>(
    reader: I,
    schema: Option<SchemaRef>,
    path: &Path,
) -> Box<dyn Iterator<Item = runstore::Result<RecordBatch>>>
where
    I: Iterator<Item = Result<RecordBatch, ArrowError>> + 'static,
{
    let path = path.display().to_string();
    Box::new(reader.map(move |batch| {
        let batch = batch.map_err(|e| Error::InvalidInput {
            reason: format!("{path}: {e}"),
        })?;
        match &schema {
            Some(schema) => conform(&batch, schema),
            None => Ok(batch),
        }
    }))
}

/// `batch` with its columns matched by name to `schema` and cast to its types. A missing or
/// an extra column, or a value that does not convert, is an error.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> runstore::Result<RecordBatch> {
    let invalid = |reason: String| Error::InvalidInput { reason };
    for field in batch.schema().fields() {
        if schema.field_with_name(field.name()).is_err() {
            return Err(invalid(format!(
                "column {} is not in the table (its columns: {})",
                field.name(),
                column_names(schema)
            )));
        }
    }
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = batch
            .column_by_name(field.name())
            .ok_or_else(|| invalid(format!("the input has no column {}", field.name())))?;
        let column = if column.data_type() == field.data_type() {
            column.clone()
        } else {
            arrow_cast::cast_with_options(column, field.data_type(), &options).map_err(|e| {
                invalid(format!(
                    "column {}: {} does not convert to the table's {}: {e}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                ))
            })?
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| invalid(e.to_string()))
}

fn column_names(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

/// A CSV file's batches: a new table's types are inferred from the first rows; an existing
/// table's types are used for the columns the header names.
fn csv_batches(
    mut file: File,
    path: &Path,
    existing: Option<SchemaRef>,
) -> Result<Box<dyn Iterator<Item = runstore::Result<RecordBatch>>>> {
    let format = arrow_csv::reader::Format::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(&mut file, Some(CSV_INFER_ROWS))
        .with_context(|| format!("reading {} as CSV", path.display()))?;
    file.rewind()
        .with_context(|| format!("rewinding {}", path.display()))?;
    let read_schema = match &existing {
        None => Arc::new(inferred),
        Some(table) => {
            let mut fields = Vec::with_capacity(inferred.fields().len());
            for field in inferred.fields() {
                let Ok(wanted) = table.field_with_name(field.name()) else {
                    bail!(
                        "{}: column {} is not in the table (its columns: {})",
                        path.display(),
                        field.name(),
                        column_names(table)
                    );
                };
                fields.push(wanted.clone().with_nullable(true));
            }
            Arc::new(Schema::new(fields))
        }
    };
    let reader = arrow_csv::ReaderBuilder::new(read_schema)
        .with_header(true)
        .with_batch_size(BATCH_ROWS)
        .build(file)
        .with_context(|| format!("reading {} as CSV", path.display()))?;
    Ok(conformed(reader, existing, path))
}

/// JSON lines as batches of up to [`BATCH_ROWS`] rows. Every error names its line.
struct JsonLines<R> {
    reader: R,
    path: PathBuf,
    /// The schema rows are read with: the table's, or inferred from the first batch.
    schema: Option<SchemaRef>,
    /// 1-based number of the last line read.
    line_number: usize,
    done: bool,
}

impl<R: BufRead> JsonLines<R> {
    fn new(reader: R, path: PathBuf, schema: Option<SchemaRef>) -> JsonLines<R> {
        JsonLines {
            reader,
            path,
            schema,
            line_number: 0,
            done: false,
        }
    }

    fn error_at(&self, line: usize, message: impl std::fmt::Display) -> Error {
        Error::InvalidInput {
            reason: format!("{} line {line}: {message}", self.path.display()),
        }
    }

    /// The next up to [`BATCH_ROWS`] non-blank lines with their numbers.
    fn read_lines(&mut self) -> runstore::Result<Vec<(usize, String)>> {
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        while lines.len() < BATCH_ROWS {
            buf.clear();
            let read = (&mut self.reader)
                .take(LINE_BYTES_MAX as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| Error::Io {
                    op: "read JSON lines",
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                self.done = true;
                break;
            }
            self.line_number += 1;
            if buf.len() > LINE_BYTES_MAX {
                return Err(self.error_at(
                    self.line_number,
                    format!("longer than {LINE_BYTES_MAX} bytes"),
                ));
            }
            let line = String::from_utf8(std::mem::take(&mut buf))
                .map_err(|_| self.error_at(self.line_number, "not UTF-8"))?;
            if !line.trim().is_empty() {
                lines.push((self.line_number, line));
            }
        }
        Ok(lines)
    }

    /// Infers a schema from the first batch of lines (see the module docs).
    fn infer(&self, lines: &[(usize, String)]) -> runstore::Result<SchemaRef> {
        let mut values = Vec::with_capacity(lines.len());
        let mut order: Vec<String> = Vec::new();
        for (number, line) in lines {
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| self.error_at(*number, e))?;
            let Some(object) = value.as_object() else {
                return Err(self.error_at(*number, "expected a JSON object"));
            };
            for key in object.keys() {
                if !order.contains(key) {
                    order.push(key.clone());
                }
            }
            values.push(value);
        }
        let inferred = arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
            .map_err(|e| Error::InvalidInput {
            reason: format!("{}: {e}", self.path.display()),
        })?;
        let mut fields = Vec::with_capacity(order.len());
        for key in &order {
            let field = inferred
                .field_with_name(key)
                .map_err(|e| Error::InvalidInput {
                    reason: e.to_string(),
                })?;
            let data_type = match embedding_width(&values, key, field.data_type()) {
                Some(width) => DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, true)),
                    width,
                ),
                None => without_null_type(field.data_type()),
            };
            fields.push(Field::new(key, data_type, true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Decodes `lines` with `schema`; a failure is located by decoding line by line.
    fn decode(
        &self,
        schema: &SchemaRef,
        lines: &[(usize, String)],
    ) -> runstore::Result<RecordBatch> {
        let builder = arrow_json::ReaderBuilder::new(schema.clone())
            .with_strict_mode(true)
            .with_batch_size(BATCH_ROWS);
        let new_decoder = || {
            builder
                .clone()
                .build_decoder()
                .map_err(|e| Error::InvalidInput {
                    reason: format!("{}: {e}", self.path.display()),
                })
        };
        let mut decoder = new_decoder()?;
        for (number, line) in lines {
            let before = decoder.len();
            decoder
                .decode(line.as_bytes())
                .map_err(|e| self.error_at(*number, e))?;
            if decoder.has_partial_record() {
                return Err(self.error_at(*number, "the JSON value does not end on this line"));
            }
            if decoder.len() != before + 1 {
                return Err(self.error_at(*number, "expected one JSON object"));
            }
        }
        match decoder.flush() {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => Err(Error::InvalidInput {
                reason: format!("{}: no rows decoded", self.path.display()),
            }),
            Err(error) => {
                for (number, line) in lines {
                    let mut single = new_decoder()?;
                    let result = single.decode(line.as_bytes()).and_then(|_| single.flush());
                    if let Err(error) = result {
                        return Err(self.error_at(*number, error));
                    }
                }
                Err(Error::InvalidInput {
                    reason: format!("{}: {error}", self.path.display()),
                })
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = runstore::Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = (|| {
            let lines = self.read_lines()?;
            if lines.is_empty() {
                return Ok(None);
            }
            let schema = match &self.schema {
                Some(schema) => schema.clone(),
                None => {
                    let schema = self.infer(&lines)?;
                    self.schema = Some(schema.clone());
                    schema
                }
            };
            self.decode(&schema, &lines).map(Some)
        })();
        match result {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

/// The width of key `key` when it is an embedding in `values`: inferred as a list of floats,
/// and every non-null value a list of the same, non-zero length.
fn embedding_width(values: &[serde_json::Value], key: &str, inferred: &DataType) -> Option<i32> {
    let DataType::List(item) = inferred else {
        return None;
    };
    if item.data_type() != &DataType::Float64 {
        return None;
    }
    let mut width = None;
    for value in values {
        match value.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(items)) => {
                if items.is_empty() || items.iter().any(|item| !item.is_number()) {
                    return None;
                }
                match width {
                    None => width = Some(items.len()),
                    Some(width) if width == items.len() => {}
                    Some(_) => return None,
                }
            }
            Some(_) => return None,
        }
    }
    width.and_then(|width| i32::try_from(width).ok())
}

/// `data_type` with every `Null` (a key that was only ever null) replaced by `Utf8`.
fn without_null_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(without_null_type(item.data_type())),
        )),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| {
                    f.as_ref()
                        .clone()
                        .with_data_type(without_null_type(f.data_type()))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn read(text: &str, schema: Option<SchemaRef>) -> runstore::Result<Vec<RecordBatch>> {
        JsonLines::new(text.as_bytes(), PathBuf::from("input"), schema).collect()
    }

    fn error_of(text: &str, schema: Option<SchemaRef>) -> String {
        match read(text, schema) {
            Err(error) => error.to_string(),
            Ok(batches) => panic!("expected an error, got {batches:?}"),
        }
    }

    #[test]
    fn json_lines_infer_types_in_first_appearance_order() {
        let batches = read(
            "{\"step\":1,\"loss\":0.5,\"tag\":\"a\",\"emb\":[0.5,1,2]}\n\n\
             {\"step\":2,\"loss\":0.25,\"tag\":null,\"emb\":[1.5,2,3],\"ok\":true}\n",
            None,
        )
        .unwrap();
        assert_eq!(batches.len(), 1);
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["step", "loss", "tag", "emb", "ok"]);
        assert_eq!(schema.field(0).data_type(), &DataType::Int64);
        assert_eq!(schema.field(1).data_type(), &DataType::Float64);
        assert_eq!(schema.field(2).data_type(), &DataType::Utf8);
        assert!(matches!(
            schema.field(3).data_type(),
            DataType::FixedSizeList(item, 3) if item.data_type() == &DataType::Float32
        ));
        assert_eq!(schema.field(4).data_type(), &DataType::Boolean);
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].column(4).null_count(), 1);
    }

    #[test]
    fn json_lines_keep_ragged_and_integer_lists_as_lists() {
        let batches = read(
            "{\"a\":[1,2],\"b\":[0.5]}\n{\"a\":[3,4],\"b\":[1.5,2.5]}\n",
            None,
        )
        .unwrap();
        let schema = batches[0].schema();
        assert!(
            matches!(schema.field(0).data_type(), DataType::List(item) if item.data_type() == &DataType::Int64)
        );
        assert!(
            matches!(schema.field(1).data_type(), DataType::List(item) if item.data_type() == &DataType::Float64)
        );
    }

    #[test]
    fn json_lines_errors_name_the_line() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("step", DataType::Int64, true),
            Field::new(
                "emb",
                DataType::FixedSizeList(
                    Arc::new(Field::new_list_field(DataType::Float32, true)),
                    2,
                ),
                true,
            ),
        ]));
        for (text, line, what) in [
            ("{\"step\":1}\n{\"step\":\"x\"}\n", 2, "Int64"),
            ("{\"step\":1}\n\n{\"step\":2,\"other\":1}\n", 3, "other"),
            ("{\"step\":1}\n{\"step\":2\n", 2, "does not end"),
            ("{\"step\":1} {\"step\":2}\n", 1, "one JSON object"),
            (
                "{\"step\":1,\"emb\":[1,2]}\n{\"emb\":[1,2,3]}\n",
                2,
                "FixedSizeList",
            ),
            ("{\"step\":1}\n[1]\n", 2, ""),
            ("{\"step\":1}\nnot json\n", 2, ""),
        ] {
            let error = error_of(text, Some(schema.clone()));
            assert!(
                error.contains(&format!("input line {line}:")) && error.contains(what),
                "{text:?}: {error}"
            );
        }
        let error = error_of("{\"a\":1}\n[1,2]\n", None);
        assert!(
            error.contains("input line 2: expected a JSON object"),
            "{error}"
        );
    }

    #[test]
    fn conform_matches_columns_by_name_and_casts() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Float64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_from_iter([
            (
                "b",
                Arc::new(arrow_array::StringArray::from(vec!["x"])) as arrow_array::ArrayRef,
            ),
            ("a", Arc::new(arrow_array::Int32Array::from(vec![7])) as _),
        ])
        .unwrap();
        let conformed = conform(&batch, &schema).unwrap();
        assert_eq!(conformed.schema(), schema);
        let extra = RecordBatch::try_from_iter([(
            "c",
            Arc::new(arrow_array::Int32Array::from(vec![7])) as arrow_array::ArrayRef,
        )])
        .unwrap();
        assert!(conform(&extra, &schema)
            .unwrap_err()
            .to_string()
            .contains("column c is not in the table"));
    }
}
