//! JSON lines: one object per line, blank lines skipped; every error names its line.
//!
//! A new table's schema is inferred from every line of the input (see [`infer`]), so a key
//! that holds `2` on line 1 and `1.5` on line 20,000 is a Float64 column. Values are decoded
//! exactly into the schema (`cell::leaf_array`): a number that does not fit its column is an
//! error, never a truncated value.

use std::io::{BufRead, Read};
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, LargeListArray, ListArray, RecordBatch, StructArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{Map, Value};

use super::cell::{self, Cell};
use super::{column_names, BATCH_ROWS};
use crate::error::{Error, Result};
use crate::table::convert::Inexact;

/// Longest JSON line accepted: a row of a few million floats. Keeps one bad line (a file
/// without newlines) from taking all memory.
pub const LINE_BYTES_MAX: usize = 256 << 20;

/// Non-blank lines of a reader with their 1-based numbers.
pub(crate) struct Lines<R> {
    reader: R,
    name: String,
    line_number: usize,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R, name: &str) -> Lines<R> {
        Lines {
            reader,
            name: name.to_string(),
            line_number: 0,
            done: false,
        }
    }

    fn error_at(&self, line: usize, message: impl std::fmt::Display) -> Error {
        error_at(&self.name, line, message)
    }

    /// The next up to `count` non-blank lines, each parsed as a JSON object.
    fn next_objects(&mut self, count: usize) -> Result<Vec<(usize, Map<String, Value>)>> {
        let mut rows = Vec::new();
        let mut buf = Vec::new();
        while rows.len() < count && !self.done {
            buf.clear();
            let read = (&mut self.reader)
                .take(LINE_BYTES_MAX as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|source| Error::Io {
                    op: "read JSON lines",
                    path: self.name.clone().into(),
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
            let line = std::str::from_utf8(&buf)
                .map_err(|_| self.error_at(self.line_number, "not UTF-8"))?;
            if line.trim().is_empty() {
                continue;
            }
            let value: Value =
                serde_json::from_str(line).map_err(|e| self.error_at(self.line_number, e))?;
            let Value::Object(object) = value else {
                return Err(self.error_at(self.line_number, "expected a JSON object"));
            };
            rows.push((self.line_number, object));
        }
        Ok(rows)
    }
}

pub(crate) fn error_at(name: &str, line: usize, message: impl std::fmt::Display) -> Error {
    Error::InvalidInput {
        reason: format!("{name} line {line}: {message}"),
    }
}

/// The JSON kinds a column can hold; a column holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Number,
    Str,
    List,
    Object,
}

impl Kind {
    fn of(value: &Value) -> Option<Kind> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(Kind::Bool),
            Value::Number(_) => Some(Kind::Number),
            Value::String(_) => Some(Kind::Str),
            Value::Array(_) => Some(Kind::List),
            Value::Object(_) => Some(Kind::Object),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::Str => "a string",
            Kind::List => "a list",
            Kind::Object => "an object",
        }
    }
}

/// What the lines say about one column (or a list's items, or an object's field).
#[derive(Debug, Default)]
struct Seen {
    /// The kind and the line that first showed it.
    kind: Option<(Kind, usize)>,
    negative: bool,
    above_i64: bool,
    float: bool,
    /// A finite number beyond f32's range.
    beyond_f32: bool,
    /// Lists: what their items are.
    items: Option<Box<Seen>>,
    /// Lists: the one length every list had, if they all had one.
    list_len: Option<usize>,
    ragged: bool,
    /// Lists: some item was not a number (or was null).
    non_number_item: bool,
    /// Objects: fields in order of first appearance.
    fields: Vec<(String, Seen)>,
}

impl Seen {
    fn observe(
        &mut self,
        value: &Value,
        line: usize,
        path: &str,
    ) -> std::result::Result<(), String> {
        let Some(kind) = Kind::of(value) else {
            return Ok(());
        };
        match self.kind {
            None => self.kind = Some((kind, line)),
            Some((first, first_line)) if first != kind => {
                return Err(format!(
                    "column {path}: {} where line {first_line} has {}; a column holds one kind \
                     of value",
                    kind.name(),
                    first.name()
                ))
            }
            Some(_) => {}
        }
        match value {
            Value::Number(number) => {
                if let Some(v) = number.as_i64() {
                    self.negative |= v < 0;
                } else if number.as_u64().is_some() {
                    self.above_i64 = true;
                } else {
                    self.float = true;
                    let v = number.as_f64().unwrap_or(0.0);
                    self.beyond_f32 |=
                        v.is_finite() && crate::table::convert::f64_to_f32(v).is_none();
                }
            }
            Value::Array(items) => {
                match self.list_len {
                    _ if items.is_empty() => self.ragged = true,
                    None => self.list_len = Some(items.len()),
                    Some(len) if len != items.len() => self.ragged = true,
                    Some(_) => {}
                }
                let seen = self.items.get_or_insert_with(Box::default);
                let item_path = format!("{path}[]");
                for item in items {
                    self.non_number_item |= !item.is_number();
                    seen.observe(item, line, &item_path)?;
                }
            }
            Value::Object(object) => {
                for (key, value) in object {
                    let at = match self.fields.iter().position(|(name, _)| name == key) {
                        Some(at) => at,
                        None => {
                            self.fields.push((key.clone(), Seen::default()));
                            self.fields.len() - 1
                        }
                    };
                    self.fields[at]
                        .1
                        .observe(value, line, &format!("{path}.{key}"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn data_type(&self) -> DataType {
        match self.kind.map(|(kind, _)| kind) {
            None | Some(Kind::Str) => DataType::Utf8,
            Some(Kind::Bool) => DataType::Boolean,
            Some(Kind::Number) if self.float => DataType::Float64,
            Some(Kind::Number) if self.above_i64 && !self.negative => DataType::UInt64,
            // Negative and above i64::MAX in one column: Int64, and the decode names the
            // line whose value does not fit.
            Some(Kind::Number) => DataType::Int64,
            Some(Kind::List) => {
                let items = self.items.as_deref();
                let embedding = !self.ragged
                    && !self.non_number_item
                    && self.list_len.is_some_and(|len| len > 0)
                    && items.is_some_and(|items| items.float);
                match (embedding, items) {
                    (true, Some(items)) => {
                        let item_type = if items.beyond_f32 {
                            DataType::Float64
                        } else {
                            DataType::Float32
                        };
                        let width = self.list_len.and_then(|len| i32::try_from(len).ok());
                        match width {
                            Some(width) => DataType::FixedSizeList(
                                Arc::new(Field::new_list_field(item_type, true)),
                                width,
                            ),
                            None => list_of(items.data_type()),
                        }
                    }
                    (_, Some(items)) => list_of(items.data_type()),
                    (_, None) => list_of(DataType::Utf8),
                }
            }
            Some(Kind::Object) => DataType::Struct(
                self.fields
                    .iter()
                    .map(|(name, seen)| Field::new(name, seen.data_type(), true))
                    .collect(),
            ),
        }
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

/// Infers a schema from every line of `reader`: keys in order of first appearance; numbers
/// Int64, or UInt64 when some are above `i64::MAX` and none negative, or Float64 when any has
/// a fraction or exponent; strings Utf8; booleans Boolean; objects Struct; lists List, except
/// that a key whose values are all lists of one length of numbers, not all integers, is an
/// embedding (`FixedSizeList<Float32>`, or `<Float64>` when a value is beyond f32's range).
/// A key that is only ever null is Utf8. One key holding two kinds (a number and a string) is
/// an error naming the line.
pub(crate) fn infer(reader: impl BufRead, name: &str) -> Result<SchemaRef> {
    let mut lines = Lines::new(reader, name);
    let mut row = Seen::default();
    loop {
        let objects = lines.next_objects(BATCH_ROWS)?;
        if objects.is_empty() {
            break;
        }
        for (line, object) in objects {
            for (key, value) in &object {
                let at = match row.fields.iter().position(|(name, _)| name == key) {
                    Some(at) => at,
                    None => {
                        row.fields.push((key.clone(), Seen::default()));
                        row.fields.len() - 1
                    }
                };
                row.fields[at]
                    .1
                    .observe(value, line, key)
                    .map_err(|message| error_at(name, line, message))?;
            }
        }
    }
    let fields: Vec<Field> = row
        .fields
        .iter()
        .map(|(key, seen)| Field::new(key, seen.data_type(), true))
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// Batches of up to `BATCH_ROWS` rows of JSON lines read with `schema`.
pub(crate) struct JsonBatches<R> {
    lines: Lines<R>,
    schema: SchemaRef,
    failed: bool,
}

impl<R: BufRead> JsonBatches<R> {
    pub(crate) fn new(reader: R, name: &str, schema: SchemaRef) -> JsonBatches<R> {
        JsonBatches {
            lines: Lines::new(reader, name),
            schema,
            failed: false,
        }
    }

    fn decode(&self, rows: &[(usize, Map<String, Value>)]) -> Result<RecordBatch> {
        let name = &self.lines.name;
        for (line, object) in rows {
            if let Some(key) = object
                .keys()
                .find(|key| self.schema.field_with_name(key).is_err())
            {
                return Err(error_at(
                    name,
                    *line,
                    format!(
                        "column {key} is not in the table (its columns: {})",
                        column_names(&self.schema)
                    ),
                ));
            }
        }
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let values: Vec<Option<&Value>> = rows
                .iter()
                .map(|(_, object)| object.get(field.name()))
                .collect();
            let column = build(&values, field.data_type()).map_err(|inexact| {
                error_at(
                    name,
                    rows[inexact.index].0,
                    format!("column {}: {}", field.name(), inexact.reason),
                )
            })?;
            if !field.is_nullable() && column.null_count() > 0 {
                let index = (0..column.len()).find(|&i| column.is_null(i)).unwrap_or(0);
                return Err(error_at(
                    name,
                    rows[index].0,
                    format!(
                        "column {}: null in a column that may not hold nulls",
                        field.name()
                    ),
                ));
            }
            columns.push(column);
        }
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options).map_err(|e| {
            Error::InvalidInput {
                reason: format!("{name}: rows do not form a batch: {e}"),
            }
        })
    }
}

impl<R: BufRead> Iterator for JsonBatches<R> {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = self
            .lines
            .next_objects(BATCH_ROWS)
            .and_then(|rows| match rows.is_empty() {
                true => Ok(None),
                false => self.decode(&rows).map(Some),
            });
        match result {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => None,
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

fn to_cell(value: Option<&Value>) -> Cell<'_> {
    match value {
        None | Some(Value::Null) => Cell::Null,
        Some(Value::Bool(b)) => Cell::Bool(*b),
        Some(Value::Number(number)) => {
            if let Some(v) = number.as_i64() {
                Cell::Int(i128::from(v))
            } else if let Some(v) = number.as_u64() {
                Cell::Int(i128::from(v))
            } else {
                Cell::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Some(Value::String(s)) => Cell::Str(s),
        Some(Value::Array(_)) => Cell::Nested("a list"),
        Some(Value::Object(_)) => Cell::Nested("an object"),
    }
}

fn kind_error(index: usize, value: &Value, wanted: &str) -> Inexact {
    Inexact {
        index,
        reason: format!(
            "{} where the column holds {wanted}",
            to_cell(Some(value)).describe()
        ),
    }
}

/// The items of a column of lists: every item, the row each came from, each row's length and
/// whether each row is a list (not null).
struct ListItems<'a> {
    items: Vec<Option<&'a Value>>,
    item_rows: Vec<usize>,
    lengths: Vec<usize>,
    valid: Vec<bool>,
}

/// Items of list values, with the row each came from; `None` rows are nulls.
fn list_items<'a>(
    values: &[Option<&'a Value>],
    width: Option<usize>,
) -> std::result::Result<ListItems<'a>, Inexact> {
    let mut items = Vec::new();
    let mut item_rows = Vec::new();
    let mut lengths = Vec::with_capacity(values.len());
    let mut valid = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        match value {
            None | Some(Value::Null) => {
                let len = width.unwrap_or(0);
                items.extend(std::iter::repeat_n(None, len));
                item_rows.extend(std::iter::repeat_n(index, len));
                lengths.push(len);
                valid.push(false);
            }
            Some(Value::Array(array)) => {
                if let Some(width) = width {
                    if array.len() != width {
                        return Err(Inexact {
                            index,
                            reason: format!(
                                "a list of {} values where the column holds lists of {width}",
                                array.len()
                            ),
                        });
                    }
                }
                items.extend(array.iter().map(Some));
                item_rows.extend(std::iter::repeat_n(index, array.len()));
                lengths.push(array.len());
                valid.push(true);
            }
            Some(other) => return Err(kind_error(index, other, "lists")),
        }
    }
    Ok(ListItems {
        items,
        item_rows,
        lengths,
        valid,
    })
}

fn nulls_of(valid: Vec<bool>) -> Option<NullBuffer> {
    let nulls = NullBuffer::from(valid);
    (nulls.null_count() > 0).then_some(nulls)
}

/// The column of `values` (one per row; `None` is an absent key) as an array of `data_type`.
pub(crate) fn build(
    values: &[Option<&Value>],
    data_type: &DataType,
) -> std::result::Result<ArrayRef, Inexact> {
    let invalid = |reason: String| Inexact { index: 0, reason };
    match data_type {
        DataType::Struct(fields) => build_struct(values, fields),
        DataType::List(field) | DataType::LargeList(field) => {
            let ListItems {
                items,
                item_rows,
                lengths,
                valid,
            } = list_items(values, None)?;
            let child = build(&items, field.data_type()).map_err(|inner| Inexact {
                index: item_rows.get(inner.index).copied().unwrap_or(0),
                reason: inner.reason,
            })?;
            let nulls = nulls_of(valid);
            let array: ArrayRef = if matches!(data_type, DataType::List(_)) {
                let total: usize = lengths.iter().sum();
                if i32::try_from(total).is_err() {
                    return Err(invalid(format!(
                        "more than {} list items in one batch",
                        i32::MAX
                    )));
                }
                Arc::new(
                    ListArray::try_new(
                        field.clone(),
                        OffsetBuffer::from_lengths(lengths),
                        child,
                        nulls,
                    )
                    .map_err(|e| invalid(e.to_string()))?,
                )
            } else {
                Arc::new(
                    LargeListArray::try_new(
                        field.clone(),
                        OffsetBuffer::from_lengths(lengths),
                        child,
                        nulls,
                    )
                    .map_err(|e| invalid(e.to_string()))?,
                )
            };
            Ok(array)
        }
        DataType::FixedSizeList(field, width) => {
            let ListItems {
                items,
                item_rows,
                valid,
                ..
            } = list_items(values, Some(*width as usize))?;
            let child = build(&items, field.data_type()).map_err(|inner| Inexact {
                index: item_rows.get(inner.index).copied().unwrap_or(0),
                reason: inner.reason,
            })?;
            let array = FixedSizeListArray::try_new(field.clone(), *width, child, nulls_of(valid))
                .map_err(|e| invalid(e.to_string()))?;
            Ok(Arc::new(array))
        }
        DataType::Map(_, _) | DataType::Union(_, _) | DataType::Dictionary(_, _)
            if !is_string_dictionary(data_type) =>
        {
            Err(invalid(format!(
            "JSON lines cannot fill a column of type {data_type}; append Parquet or Arrow instead"
        )))
        }
        _ => {
            let cells: Vec<Cell> = values.iter().map(|value| to_cell(*value)).collect();
            cell::leaf_array(&cells, data_type)
        }
    }
}

fn is_string_dictionary(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Dictionary(_, values) if matches!(values.as_ref(), DataType::Utf8 | DataType::LargeUtf8))
}

fn build_struct(
    values: &[Option<&Value>],
    fields: &Fields,
) -> std::result::Result<ArrayRef, Inexact> {
    let mut valid = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        match value {
            None | Some(Value::Null) => valid.push(false),
            Some(Value::Object(object)) => {
                if let Some(key) = object.keys().find(|key| fields.find(key).is_none()) {
                    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
                    return Err(Inexact {
                        index,
                        reason: format!(
                            "key {key} is not a field of the column (its fields: {})",
                            names.join(", ")
                        ),
                    });
                }
                valid.push(true);
            }
            Some(other) => return Err(kind_error(index, other, "objects")),
        }
    }
    let mut children = Vec::with_capacity(fields.len());
    for field in fields {
        let child_values: Vec<Option<&Value>> = values
            .iter()
            .map(|value| {
                value
                    .and_then(Value::as_object)
                    .and_then(|o| o.get(field.name()))
            })
            .collect();
        let child = build(&child_values, field.data_type()).map_err(|inner| Inexact {
            index: inner.index,
            reason: format!("field {}: {}", field.name(), inner.reason),
        })?;
        children.push(child);
    }
    let array =
        StructArray::try_new_with_length(fields.clone(), children, nulls_of(valid), values.len())
            .map_err(|e| Inexact {
            index: 0,
            reason: e.to_string(),
        })?;
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, schema: Option<SchemaRef>) -> Result<Vec<RecordBatch>> {
        let schema = match schema {
            Some(schema) => schema,
            None => infer(text.as_bytes(), "input")?,
        };
        JsonBatches::new(text.as_bytes(), "input", schema).collect()
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
            ("{\"step\":1}\n{\"step\":\"x\"}\n", 2, "column step"),
            ("{\"step\":1}\n\n{\"step\":2,\"other\":1}\n", 3, "other"),
            ("{\"step\":1}\n{\"step\":2\n", 2, "EOF"),
            ("{\"step\":1} {\"step\":2}\n", 1, "trailing"),
            (
                "{\"step\":1,\"emb\":[1,2]}\n{\"emb\":[1,2,3]}\n",
                2,
                "lists of 2",
            ),
            ("{\"step\":1}\n[1]\n", 2, ""),
            ("{\"step\":1}\nnot json\n", 2, ""),
            ("{\"step\":1}\n{\"step\":2.5}\n", 2, "does not fit Int64"),
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
        let error = error_of("{\"a\":1}\n{\"a\":\"x\"}\n", None);
        assert!(
            error.contains("input line 2: column a: a string where line 1 has a number"),
            "{error}"
        );
    }

    #[test]
    fn json_lines_nested_values_round_trip_and_unknown_fields_are_errors() {
        let text = "{\"s\":{\"x\":1,\"l\":[1,2]}}\n{\"s\":null}\n{\"s\":{\"x\":3}}\n";
        let batches = read(text, None).unwrap();
        let column = batches[0].column(0);
        assert_eq!(column.null_count(), 1);
        let schema = batches[0].schema();
        let error = error_of("{\"s\":{\"y\":1}}\n", Some(schema));
        assert!(
            error.contains("line 1: column s: key y is not a field"),
            "{error}"
        );
    }
}
