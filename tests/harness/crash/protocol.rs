//! The crash protocol: the commits a child announces and acknowledges (`CrashOp`, the words of
//! its `begin` and `ack` lines), the acknowledged state they build (`State`, `apply`), and the
//! content of every crash-test metrics row (`row_content`) that the parent checks a scan against.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use runstore::{ColumnRole, RunStatus, Value};

use super::{Rng, EMB_WIDTH, TAGS};

// ---------------------------------------------------------------------------------------------
// The protocol: one commit, as the child announces and acknowledges it

/// One commit of the child, in the words of its `begin` and `ack` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrashOp {
    /// A new run (EMPTY, no parameters, outputs or blobs).
    Init { url: String },
    /// The output `{"step": outputs - 1, ...}` was appended; the run now has `outputs`.
    Output { url: String, outputs: u64 },
    /// Parameter `key` is now `value`.
    Params {
        url: String,
        key: String,
        value: i64,
    },
    /// Blob `blob` now holds `len` bytes with CRC32 `crc`.
    Put {
        url: String,
        blob: String,
        len: u64,
        crc: u32,
    },
    /// `to` is a new copy of `from`.
    Copy { from: String, to: String },
    /// The run is gone.
    Delete { url: String },
    /// The run's status is now `status`.
    Status { url: String, status: RunStatus },
    /// The store was vacuumed (closed, rewritten into a new file renamed over it, reopened);
    /// it holds `runs` runs, unchanged.
    Vacuum { runs: u64 },
    /// `add_metrics_data` wrote the new table `<url>/<table>` of `rows` rows.
    Table {
        url: String,
        table: String,
        rows: u64,
    },
    /// `metrics_writer` created the new, empty table `<url>/<table>` with a writer of group
    /// commit (`group`) or per-call durability.
    Writer {
        url: String,
        table: String,
        group: bool,
    },
    /// `add` rows were appended to the table at `url`, which now has `rows` as the appender
    /// counts them (durable unless `kind` is a group writer's).
    Append {
        kind: AppendKind,
        url: String,
        add: u64,
        rows: u64,
    },
    /// A writer's flush: the table's `rows` rows are committed and its tail sealed.
    Flush { url: String, rows: u64 },
    /// A writer's close: as a flush, and the writer is gone.
    Close { url: String, rows: u64 },
}

/// How rows were appended to a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendKind {
    /// `Store::append_to_table`, one commit.
    Store,
    /// `MetricsWriter::append_row` with `WriteDurability::Immediate`.
    Row,
    /// `MetricsWriter::append` with `WriteDurability::Immediate`.
    Batch,
    /// `MetricsWriter::append_row` with group commit: not durable when acknowledged.
    GroupRow,
    /// `MetricsWriter::append` with group commit: not durable when acknowledged.
    GroupBatch,
}

impl AppendKind {
    const ALL: [AppendKind; 5] = [
        AppendKind::Store,
        AppendKind::Row,
        AppendKind::Batch,
        AppendKind::GroupRow,
        AppendKind::GroupBatch,
    ];

    pub fn word(self) -> &'static str {
        match self {
            AppendKind::Store => "append",
            AppendKind::Row => "wrow",
            AppendKind::Batch => "wbatch",
            AppendKind::GroupRow => "grow",
            AppendKind::GroupBatch => "gbatch",
        }
    }

    pub fn parse(word: &str) -> Option<AppendKind> {
        AppendKind::ALL.into_iter().find(|kind| kind.word() == word)
    }

    /// Whether a group writer appended (so the rows are not durable yet).
    pub fn group(self) -> bool {
        matches!(self, AppendKind::GroupRow | AppendKind::GroupBatch)
    }

    /// Whether one row was appended with `append_row`.
    pub fn single_row(self) -> bool {
        matches!(self, AppendKind::Row | AppendKind::GroupRow)
    }
}

impl fmt::Display for CrashOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashOp::Init { url } => write!(f, "init {url}"),
            CrashOp::Output { url, outputs } => write!(f, "output {url} outputs={outputs}"),
            CrashOp::Params { url, key, value } => write!(f, "params {url} {key}={value}"),
            CrashOp::Put {
                url,
                blob,
                len,
                crc,
            } => write!(f, "put {url} {blob} len={len} crc={crc:08x}"),
            CrashOp::Copy { from, to } => write!(f, "copy {from} {to}"),
            CrashOp::Delete { url } => write!(f, "delete {url}"),
            CrashOp::Status { url, status } => write!(f, "status {url} {status}"),
            CrashOp::Vacuum { runs } => write!(f, "vacuum runs={runs}"),
            CrashOp::Table { url, table, rows } => write!(f, "table {url} {table} rows={rows}"),
            CrashOp::Writer { url, table, group } => {
                let durability = if *group { "group" } else { "immediate" };
                write!(f, "writer {url} {table} {durability}")
            }
            CrashOp::Append {
                kind,
                url,
                add,
                rows,
            } => write!(f, "{} {url} add={add} rows={rows}", kind.word()),
            CrashOp::Flush { url, rows } => write!(f, "flush {url} rows={rows}"),
            CrashOp::Close { url, rows } => write!(f, "close {url} rows={rows}"),
        }
    }
}

impl CrashOp {
    /// The first word of the op as `Display` writes it.
    pub fn word(&self) -> &'static str {
        match self {
            CrashOp::Init { .. } => "init",
            CrashOp::Output { .. } => "output",
            CrashOp::Params { .. } => "params",
            CrashOp::Put { .. } => "put",
            CrashOp::Copy { .. } => "copy",
            CrashOp::Delete { .. } => "delete",
            CrashOp::Status { .. } => "status",
            CrashOp::Vacuum { .. } => "vacuum",
            CrashOp::Table { .. } => "table",
            CrashOp::Writer { .. } => "writer",
            CrashOp::Append { kind, .. } => kind.word(),
            CrashOp::Flush { .. } => "flush",
            CrashOp::Close { .. } => "close",
        }
    }

    /// Parses what `Display` wrote.
    pub fn parse(words: &[&str]) -> Option<CrashOp> {
        fn field<'a>(word: &'a str, name: &str) -> Option<&'a str> {
            word.strip_prefix(name)?.strip_prefix('=')
        }
        Some(match *words {
            ["init", url] => CrashOp::Init { url: url.into() },
            ["output", url, outputs] => CrashOp::Output {
                url: url.into(),
                outputs: field(outputs, "outputs")?.parse().ok()?,
            },
            ["params", url, assignment] => {
                let (key, value) = assignment.split_once('=')?;
                CrashOp::Params {
                    url: url.into(),
                    key: key.into(),
                    value: value.parse().ok()?,
                }
            }
            ["put", url, blob, len, crc] => CrashOp::Put {
                url: url.into(),
                blob: blob.into(),
                len: field(len, "len")?.parse().ok()?,
                crc: u32::from_str_radix(field(crc, "crc")?, 16).ok()?,
            },
            ["copy", from, to] => CrashOp::Copy {
                from: from.into(),
                to: to.into(),
            },
            ["delete", url] => CrashOp::Delete { url: url.into() },
            ["status", url, status] => CrashOp::Status {
                url: url.into(),
                status: RunStatus::parse(status).ok()?,
            },
            ["vacuum", runs] => CrashOp::Vacuum {
                runs: field(runs, "runs")?.parse().ok()?,
            },
            ["table", url, table, rows] => CrashOp::Table {
                url: url.into(),
                table: table.into(),
                rows: field(rows, "rows")?.parse().ok()?,
            },
            ["writer", url, table, durability] => CrashOp::Writer {
                url: url.into(),
                table: table.into(),
                group: match durability {
                    "group" => true,
                    "immediate" => false,
                    _ => return None,
                },
            },
            [kind, url, add, rows] if AppendKind::parse(kind).is_some() => CrashOp::Append {
                kind: AppendKind::parse(kind)?,
                url: url.into(),
                add: field(add, "add")?.parse().ok()?,
                rows: field(rows, "rows")?.parse().ok()?,
            },
            ["flush", url, rows] => CrashOp::Flush {
                url: url.into(),
                rows: field(rows, "rows")?.parse().ok()?,
            },
            ["close", url, rows] => CrashOp::Close {
                url: url.into(),
                rows: field(rows, "rows")?.parse().ok()?,
            },
            _ => return None,
        })
    }
}

/// What the parent knows about one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunState {
    pub outputs: u64,
    pub parameters: BTreeMap<String, i64>,
    pub status: RunStatus,
    /// Blob name to length and CRC32.
    pub blobs: BTreeMap<String, (u64, u32)>,
    /// Metrics table name (the last part of its url) to its row count.
    pub tables: BTreeMap<String, Rows>,
}

impl RunState {
    pub fn new() -> RunState {
        RunState {
            outputs: 0,
            parameters: BTreeMap::new(),
            status: RunStatus::Empty,
            blobs: BTreeMap::new(),
            tables: BTreeMap::new(),
        }
    }

    /// Whether `found`, read from the store, is what this acknowledged state allows: the same
    /// everything, and each table's row count inside its acknowledged range.
    pub fn admits(&self, found: &RunState) -> bool {
        self.outputs == found.outputs
            && self.parameters == found.parameters
            && self.status == found.status
            && self.blobs == found.blobs
            && self.tables.len() == found.tables.len()
            && self.tables.iter().all(|(name, rows)| {
                found
                    .tables
                    .get(name)
                    .is_some_and(|found| rows.min <= found.min && found.max <= rows.max)
            })
    }
}

/// The row count of a table: exactly known (`min == max`, always so for a table read from the
/// store), or, while a group writer has rows that are acknowledged but not durable, anything
/// from the rows made durable (`min`) to the rows appended (`max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rows {
    pub min: u64,
    pub max: u64,
}

impl Rows {
    pub fn exact(rows: u64) -> Rows {
        Rows {
            min: rows,
            max: rows,
        }
    }
}

/// Whether the store's state `found` is what the acknowledged state `expected` allows.
pub fn admits(expected: &State, found: &State) -> bool {
    expected.len() == found.len()
        && expected
            .iter()
            .all(|(url, run)| found.get(url).is_some_and(|found| run.admits(found)))
}

/// A table url's run url and table name.
pub fn split_table_url(url: &str) -> Option<(&str, &str)> {
    url.rsplit_once('/')
}

/// Run url to state: the whole project, as acknowledged.
pub type State = BTreeMap<String, RunState>;

/// Applies an acknowledged commit. An `Err` means the child's view of the store disagreed with
/// the parent's (for example it appended output 5 to a run the parent thinks has 3), which is
/// itself a lost or invented commit.
pub fn apply(state: &mut State, op: &CrashOp) -> Result<(), String> {
    fn run<'a>(state: &'a mut State, url: &str, op: &CrashOp) -> Result<&'a mut RunState, String> {
        state
            .get_mut(url)
            .ok_or_else(|| format!("{op}: run {url} is not in the acknowledged state"))
    }
    match op {
        CrashOp::Init { url } => {
            if state.insert(url.clone(), RunState::new()).is_some() {
                return Err(format!("{op}: the run already existed"));
            }
        }
        CrashOp::Output { url, outputs } => {
            let run = run(state, url, op)?;
            if run.outputs + 1 != *outputs {
                return Err(format!("{op}: the run had {} outputs", run.outputs));
            }
            run.outputs = *outputs;
        }
        CrashOp::Params { url, key, value } => {
            run(state, url, op)?.parameters.insert(key.clone(), *value);
        }
        CrashOp::Put {
            url,
            blob,
            len,
            crc,
        } => {
            run(state, url, op)?
                .blobs
                .insert(blob.clone(), (*len, *crc));
        }
        CrashOp::Copy { from, to } => {
            let copy = run(state, from, op)?.clone();
            if state.insert(to.clone(), copy).is_some() {
                return Err(format!("{op}: the destination already existed"));
            }
        }
        CrashOp::Delete { url } => {
            if state.remove(url).is_none() {
                return Err(format!("{op}: the run did not exist"));
            }
        }
        CrashOp::Status { url, status } => run(state, url, op)?.status = *status,
        CrashOp::Vacuum { runs } => {
            if state.len() as u64 != *runs {
                return Err(format!(
                    "{op}: the acknowledged state has {} runs",
                    state.len()
                ));
            }
        }
        CrashOp::Table { url, table, rows } => {
            let tables = &mut run(state, url, op)?.tables;
            if tables.insert(table.clone(), Rows::exact(*rows)).is_some() {
                return Err(format!("{op}: the table already existed"));
            }
        }
        CrashOp::Writer { url, table, .. } => {
            let tables = &mut run(state, url, op)?.tables;
            if tables.insert(table.clone(), Rows::exact(0)).is_some() {
                return Err(format!("{op}: the table already existed"));
            }
        }
        CrashOp::Append {
            kind,
            url,
            add,
            rows,
        } => {
            let table = table(state, url, op)?;
            // The appender counted `rows - add` rows before: a count the acknowledged state
            // allows (a group writer's own appends make it exactly `max`).
            let before = rows
                .checked_sub(*add)
                .ok_or_else(|| format!("{op}: add > rows"))?;
            if before < table.min || before > table.max {
                return Err(format!("{op}: the table had {table:?} rows"));
            }
            if kind.group() {
                table.max = *rows;
            } else {
                *table = Rows::exact(*rows);
            }
        }
        CrashOp::Flush { url, rows } | CrashOp::Close { url, rows } => {
            let table = table(state, url, op)?;
            if *rows < table.min || *rows > table.max {
                return Err(format!("{op}: the table had {table:?} rows"));
            }
            *table = Rows::exact(*rows);
        }
    }
    Ok(())
}

/// The acknowledged row count of the table at `url`.
pub fn table<'a>(state: &'a mut State, url: &str, op: &CrashOp) -> Result<&'a mut Rows, String> {
    let (run_url, name) =
        split_table_url(url).ok_or_else(|| format!("{op}: {url} is not a table url"))?;
    state
        .get_mut(run_url)
        .and_then(|run| run.tables.get_mut(name))
        .ok_or_else(|| format!("{op}: table {url} is not in the acknowledged state"))
}

/// The output value number `step` of every crash-test run, so its contents can be checked.
pub fn output_value(step: u64) -> Value {
    Value::map([
        ("step", Value::from(step as i64)),
        ("loss", Value::from(1.0 / (step as f64 + 1.0))),
    ])
}

// ---------------------------------------------------------------------------------------------
// Tables: one schema, a content fixed by the table's name and the row index

/// The schema of every crash-test metrics table.
pub fn table_schema() -> SchemaRef {
    let emb = Field::new(
        "emb",
        DataType::FixedSizeList(
            Arc::new(Field::new_list_field(DataType::Float32, true)),
            EMB_WIDTH as i32,
        ),
        false,
    );
    Arc::new(Schema::new(vec![
        Field::new("row", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("tag", DataType::Utf8, true),
        runstore::with_role(emb, ColumnRole::Embedding),
    ]))
}

/// The seed of a table's content: a hash (FNV-1a) of its name inside its run, which a copy of
/// the run keeps, so a copied table has the content of the original.
pub fn table_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What row `row` of a table with seed `seed` holds (its `row` column holds `row`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowContent {
    pub value: Option<f64>,
    pub tag: Option<&'static str>,
    pub emb: [f32; EMB_WIDTH],
}

/// The content of row `row` of a table with seed `seed`. Every number is exact in its type,
/// so the comparison is by bits.
pub fn row_content(seed: u64, row: u64) -> RowContent {
    let mut h = seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    let mut emb = [0f32; EMB_WIDTH];
    for (k, item) in emb.iter_mut().enumerate() {
        *item = ((h >> (8 * k)) & 0xff) as f32 / 16.0 - 8.0;
    }
    let tag = (!h.is_multiple_of(5)).then(|| TAGS[((h >> 3) % TAGS.len() as u64) as usize]);
    RowContent {
        // 53 random bits scaled by a power of two: exact.
        value: (!h.is_multiple_of(7)).then(|| (h >> 11) as f64 / (1u64 << 53) as f64),
        tag,
        emb,
    }
}

/// Rows `start..start + rows` of a table with seed `seed`, as one batch.
pub fn table_batch(seed: u64, start: u64, rows: u64) -> RecordBatch {
    let schema = table_schema();
    let capacity = rows as usize;
    let mut values = Vec::with_capacity(capacity);
    let mut tags = StringBuilder::with_capacity(capacity, capacity * 8);
    let mut embs = FixedSizeListBuilder::with_capacity(
        Float32Builder::with_capacity(capacity * EMB_WIDTH),
        EMB_WIDTH as i32,
        capacity,
    )
    .with_field(Arc::new(Field::new_list_field(DataType::Float32, true)));
    for row in start..start + rows {
        let content = row_content(seed, row);
        values.push(content.value);
        tags.append_option(content.tag);
        embs.values().append_slice(&content.emb);
        embs.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            start as i64..(start + rows) as i64,
        )),
        Arc::new(Float64Array::from(values)),
        Arc::new(tags.finish()),
        Arc::new(embs.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("crash table batch")
}

/// Row `row` of a table with seed `seed`, as `MetricsWriter::append_row` takes it.
pub fn row_values(seed: u64, row: u64) -> Vec<Value> {
    let content = row_content(seed, row);
    vec![
        Value::from(row as i64),
        content.value.map_or(Value::Null, Value::from),
        content.tag.map_or(Value::Null, Value::from),
        Value::List(content.emb.iter().map(|&x| Value::from(x)).collect()),
    ]
}

/// Checks a full scan of the table named `name` (inside its run) row by row against
/// [`row_content`]; returns the number of rows, or the first difference.
pub fn check_table_rows(name: &str, batches: &[RecordBatch]) -> Result<u64, String> {
    let seed = table_seed(name);
    let expected = table_schema();
    let mut row = 0u64;
    for batch in batches {
        let schema = batch.schema();
        let same_columns = schema.fields().len() == expected.fields().len()
            && schema
                .fields()
                .iter()
                .zip(expected.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same_columns {
            return Err(format!("row {row}: a batch of schema {schema:?}"));
        }
        let rows = batch.column(0).as_primitive::<Int64Type>();
        let values = batch.column(1).as_primitive::<Float64Type>();
        let tags = batch.column(2).as_string::<i32>();
        let embs = batch.column(3).as_fixed_size_list();
        let emb_values = embs.values().as_primitive::<Float32Type>();
        for i in 0..batch.num_rows() {
            let want = row_content(seed, row);
            if rows.is_null(i) || rows.value(i) != row as i64 {
                return Err(format!(
                    "row {row}: the row column holds {:?}",
                    rows.is_valid(i).then(|| rows.value(i))
                ));
            }
            let value = values.is_valid(i).then(|| values.value(i));
            if value.map(f64::to_bits) != want.value.map(f64::to_bits) {
                return Err(format!(
                    "row {row}: value {value:?}, expected {:?}",
                    want.value
                ));
            }
            let tag = tags.is_valid(i).then(|| tags.value(i));
            if tag != want.tag {
                return Err(format!("row {row}: tag {tag:?}, expected {:?}", want.tag));
            }
            let offset = embs.value_offset_at(i);
            let emb_ok = embs.is_valid(i)
                && embs.value_length() as usize == EMB_WIDTH
                && (0..EMB_WIDTH).all(|k| {
                    emb_values.is_valid(offset + k)
                        && emb_values.value(offset + k).to_bits() == want.emb[k].to_bits()
                });
            if !emb_ok {
                return Err(format!(
                    "row {row}: emb {:?}, expected {:?}",
                    (0..EMB_WIDTH)
                        .map(|k| emb_values.value(offset + k))
                        .collect::<Vec<_>>(),
                    want.emb
                ));
            }
            row += 1;
        }
    }
    Ok(row)
}

/// A row count from 1 to `max`, spread evenly over the powers of two (so most are small).
pub fn spread_rows(rng: &mut Rng, max: u64) -> u64 {
    let bits = u64::from(64 - max.leading_zeros());
    let low = 1u64 << rng.below(bits);
    rng.range(low.min(max), (2 * low - 1).min(max))
}
