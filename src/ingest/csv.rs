//! CSV with a header row. Errors name the file line (the header is line 1, and a quoted field
//! spanning lines counts every line) and the column.
//!
//! A new table's column types are inferred from every row (see [`infer`]); an empty field is
//! null, and a column empty in every row is Utf8 (never Null, which could hold no later
//! value). Fields are decoded exactly into the schema (`cell::leaf_array`).

use std::io::Read;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::cell::{self, Cell};
use super::{column_names, BATCH_ROWS};
use crate::error::{Error, Result};

fn error_at(name: &str, line: u64, message: impl std::fmt::Display) -> Error {
    Error::InvalidInput {
        reason: format!("{name} line {line}: {message}"),
    }
}

fn csv_error(name: &str, error: csv::Error) -> Error {
    match error.position() {
        Some(position) => error_at(name, position.line(), csv_reason(&error)),
        None => Error::InvalidInput {
            reason: format!("{name}: {error}"),
        },
    }
}

fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        _ => error.to_string(),
    }
}

fn reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input)
}

fn header(reader: &mut csv::Reader<impl Read>, name: &str) -> Result<Vec<String>> {
    let header = reader.headers().map_err(|e| csv_error(name, e))?;
    if header.is_empty() {
        return Err(error_at(name, 1, "no header row"));
    }
    Ok(header.iter().map(str::to_string).collect())
}

/// What the rows say about one column.
#[derive(Debug, Default)]
struct Seen {
    boolean: bool,
    int: bool,
    negative: bool,
    above_i64: bool,
    /// An integer that Float64 does not hold exactly.
    int_not_f64: bool,
    float: bool,
    date: bool,
    timestamp: bool,
    nanoseconds: bool,
    text: bool,
}

/// Whether `text` starts like an ISO date (`YYYY-MM-DD`).
fn looks_like_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
        && bytes[8..10].iter().all(u8::is_ascii_digit)
}

impl Seen {
    fn observe(&mut self, field: &str) {
        if field.is_empty() {
            return;
        }
        let trimmed = field.trim();
        if trimmed.eq_ignore_ascii_case("true") || trimmed.eq_ignore_ascii_case("false") {
            self.boolean = true;
            return;
        }
        match cell::parse_number(field) {
            Ok(Cell::Int(v)) => {
                self.int = true;
                self.negative |= v < 0;
                self.above_i64 |= v > i128::from(i64::MAX);
                self.int_not_f64 |= crate::table::convert::int_to_f64(v).is_none();
                return;
            }
            Ok(_) => {
                // Floats, and texts such as "NaN" or "inf" only when they are numbers.
                self.float = true;
                return;
            }
            Err(_) => {}
        }
        if looks_like_date(trimmed) {
            let as_timestamp = DataType::Timestamp(TimeUnit::Nanosecond, None);
            if cell::leaf_array(&[Cell::Str(trimmed)], &as_timestamp).is_ok() {
                if trimmed.len() == 10 {
                    self.date = true;
                } else {
                    self.timestamp = true;
                    let micros = DataType::Timestamp(TimeUnit::Microsecond, None);
                    self.nanoseconds |= cell::leaf_array(&[Cell::Str(trimmed)], &micros).is_err();
                }
                return;
            }
        }
        self.text = true;
    }

    /// The narrowest type that holds every field seen exactly; text when kinds mix.
    fn data_type(&self) -> DataType {
        let numbers = self.int || self.float;
        let times = self.date || self.timestamp;
        let kinds = [self.boolean, numbers, times, self.text]
            .iter()
            .filter(|&&k| k)
            .count();
        if kinds != 1 || self.text {
            return DataType::Utf8;
        }
        if self.boolean {
            return DataType::Boolean;
        }
        if self.float {
            return if self.int_not_f64 {
                DataType::Utf8
            } else {
                DataType::Float64
            };
        }
        if self.int {
            return match (self.above_i64, self.negative) {
                (false, _) => DataType::Int64,
                (true, false) => DataType::UInt64,
                (true, true) => DataType::Utf8,
            };
        }
        if self.timestamp {
            let unit = if self.nanoseconds {
                TimeUnit::Nanosecond
            } else {
                TimeUnit::Microsecond
            };
            return DataType::Timestamp(unit, None);
        }
        DataType::Date32
    }
}

/// Infers column types from every row: booleans (`true`/`false`), Int64 (UInt64 when values
/// are above `i64::MAX` and none negative), Float64 (any number with a fraction or exponent,
/// as long as every integer of the column is exact in Float64), Date32 (`YYYY-MM-DD`),
/// Timestamp (ISO date-times, microseconds or nanoseconds as the values need), else Utf8:
/// a column whose fields mix kinds keeps them as text.
pub(crate) fn infer(input: impl Read, name: &str) -> Result<SchemaRef> {
    let mut reader = reader(input);
    let header = header(&mut reader, name)?;
    let mut seen: Vec<Seen> = header.iter().map(|_| Seen::default()).collect();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| csv_error(name, e))?
    {
        for (column, field) in seen.iter_mut().zip(record.iter()) {
            column.observe(field);
        }
    }
    let fields: Vec<Field> = header
        .iter()
        .zip(&seen)
        .map(|(column, seen)| Field::new(column, seen.data_type(), true))
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Batches of up to `BATCH_ROWS` rows read with `schema`: every column of `schema` must be in
/// the header, and every header name in `schema`.
pub(crate) struct CsvBatches<R: Read> {
    reader: csv::Reader<R>,
    name: String,
    schema: SchemaRef,
    /// For each column of `schema`, its position in the header.
    positions: Vec<usize>,
    done: bool,
}

impl<R: Read> CsvBatches<R> {
    pub(crate) fn new(input: R, name: &str, schema: SchemaRef) -> Result<CsvBatches<R>> {
        let mut reader = reader(input);
        let header = header(&mut reader, name)?;
        for column in &header {
            if schema.field_with_name(column).is_err() {
                return Err(error_at(
                    name,
                    1,
                    format!(
                        "column {column} is not in the table (its columns: {})",
                        column_names(&schema)
                    ),
                ));
            }
        }
        let mut positions = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let mut at = header
                .iter()
                .enumerate()
                .filter(|(_, h)| *h == field.name());
            let Some((position, _)) = at.next() else {
                return Err(error_at(
                    name,
                    1,
                    format!("the input has no column {}", field.name()),
                ));
            };
            if at.next().is_some() {
                return Err(error_at(
                    name,
                    1,
                    format!("column {} appears twice", field.name()),
                ));
            }
            positions.push(position);
        }
        Ok(CsvBatches {
            reader,
            name: name.to_string(),
            schema,
            positions,
            done: false,
        })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut records = Vec::new();
        let mut lines = Vec::new();
        while records.len() < BATCH_ROWS {
            let mut record = csv::StringRecord::new();
            if !self
                .reader
                .read_record(&mut record)
                .map_err(|e| csv_error(&self.name, e))?
            {
                self.done = true;
                break;
            }
            lines.push(record.position().map_or(0, csv::Position::line));
            records.push(record);
        }
        if records.is_empty() {
            return Ok(None);
        }
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for (field, &position) in self.schema.fields().iter().zip(&self.positions) {
            let cells: Vec<Cell> = records
                .iter()
                .map(|record| match record.get(position) {
                    None | Some("") => Cell::Null,
                    Some(text) => Cell::Str(text),
                })
                .collect();
            let column = cell::leaf_array(&cells, field.data_type()).map_err(|inexact| {
                error_at(
                    &self.name,
                    lines[inexact.index],
                    format!("column {}: {}", field.name(), inexact.reason),
                )
            })?;
            if !field.is_nullable() && column.null_count() > 0 {
                let index = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
                return Err(error_at(
                    &self.name,
                    lines[index],
                    format!(
                        "column {}: empty in a column that may not hold nulls",
                        field.name()
                    ),
                ));
            }
            columns.push(column);
        }
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(records.len()));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map(Some)
            .map_err(|e| Error::InvalidInput {
                reason: format!("{}: rows do not form a batch: {e}", self.name),
            })
    }
}

impl<R: Read> Iterator for CsvBatches<R> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<RecordBatch>> {
        let schema = infer(text.as_bytes(), "in.csv")?;
        CsvBatches::new(text.as_bytes(), "in.csv", schema)?.collect()
    }

    #[test]
    fn csv_infers_from_every_row_and_keeps_text_when_kinds_mix() {
        let batches = read("a,b,c,d,e,f\n1,,x,2024-01-02,true,1\n2,0.5,1,2024-01-02T03:04:05Z,false,18446744073709551615\n").unwrap();
        let schema = batches[0].schema();
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Int64,
                &DataType::Float64,
                &DataType::Utf8,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
                &DataType::Boolean,
                &DataType::UInt64
            ]
        );
    }

    #[test]
    fn csv_errors_name_file_lines() {
        let error = read("a,b\n1,2\n3\n").unwrap_err().to_string();
        assert!(
            error.contains("in.csv line 3: 1 fields where the header has 2"),
            "{error}"
        );
    }
}
