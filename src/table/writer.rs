//! `MetricsWriter`: streaming appends to one table, one row or one batch at a time, with a
//! stated durability.
//!
//! Rows are acknowledged into memory (Arrow builders for single rows, batches as given) and
//! committed to the table as one tail entry or, when large, as a sealed chunk:
//! - `WriteDurability::Immediate`: every `append`/`append_row` commits (and fsyncs) before it
//!   returns.
//! - `WriteDurability::Group { window }`: a background thread commits whatever is pending
//!   every `window`; `flush`, `close` and a pending size of `SEAL_ROWS` rows commit at once. A
//!   crash loses at most the rows acknowledged in the last `window` (plus one commit's time),
//!   never a committed row and never consistency.
//!
//! Invariant: commits happen in acknowledgement order. Taking the pending rows and committing
//! them happen under one lock (`commit_lock`), so the flusher and the caller cannot reorder.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::builder::{
    make_builder, ArrayBuilder, BooleanBuilder, FixedSizeListBuilder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, LargeStringBuilder,
    StringBuilder, StringDictionaryBuilder, TimestampMicrosecondBuilder,
    TimestampMillisecondBuilder, TimestampNanosecondBuilder, TimestampSecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef, TimeUnit};

use super::{
    append_batch, check_batch, convert, seal, table_info, table_record, TableInfo, SEAL_ROWS,
};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::value::Value;

/// When appended rows become durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteDurability {
    /// Each append commits and syncs before returning.
    Immediate,
    /// Appends return at once; rows are committed and synced within `window`.
    Group {
        /// The most time an acknowledged row waits to become durable.
        window: Duration,
    },
}

impl Default for WriteDurability {
    /// Group commit with a 100 ms window: a training loop logging every step pays one fsync
    /// per 100 ms instead of one per step, and a crash loses at most 100 ms of steps.
    fn default() -> Self {
        WriteDurability::Group {
            window: Duration::from_millis(100),
        }
    }
}

/// Options of a [`MetricsWriter`].
#[derive(Clone, Debug, Default)]
pub struct WriterOptions {
    /// When appended rows become durable.
    pub durability: WriteDurability,
}

struct Pending {
    builders: Vec<Box<dyn ArrayBuilder>>,
    builder_rows: usize,
    batches: Vec<RecordBatch>,
    rows: u64,
    closed: bool,
    /// An error from the background flusher, reported by the next call.
    failure: Option<String>,
}

struct Shared {
    /// Set when this writer committed rows since its last seal (so dropping it seals them).
    unsealed: std::sync::atomic::AtomicBool,
    store: Store,
    id: u64,
    url: String,
    schema: SchemaRef,
    durability: WriteDurability,
    pending: Mutex<Pending>,
    commit_lock: Mutex<()>,
    wake: Condvar,
}

/// Appends rows to one table. Dropping it flushes and seals (errors are then lost: call
/// [`MetricsWriter::close`] to see them).
pub struct MetricsWriter {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsWriter")
            .field("url", &self.shared.url)
            .field("durability", &self.shared.durability)
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MetricsWriter {
    /// A writer appending to the existing table at `url`.
    pub fn open(store: &Store, url: &str, options: &WriterOptions) -> Result<MetricsWriter> {
        let (id, schema) = store.read(|txn| {
            let id = super::table_id(txn, url)?
                .ok_or_else(|| Error::not_found(format!("table {url}")))?;
            let record = table_record(txn, id, url)?;
            Ok((id, Arc::new(super::decode_schema(&record)?)))
        })?;
        if store.is_read_only() {
            return Err(Error::ReadOnly);
        }
        Ok(MetricsWriter::start(
            store.clone(),
            id,
            url.to_string(),
            schema,
            options.durability,
        ))
    }

    pub(crate) fn start(
        store: Store,
        id: u64,
        url: String,
        schema: SchemaRef,
        durability: WriteDurability,
    ) -> MetricsWriter {
        let builders = schema
            .fields()
            .iter()
            .map(|field| make_builder(field.data_type(), 1024))
            .collect();
        let shared = Arc::new(Shared {
            unsealed: std::sync::atomic::AtomicBool::new(false),
            store,
            id,
            url,
            schema,
            durability,
            pending: Mutex::new(Pending {
                builders,
                builder_rows: 0,
                batches: Vec::new(),
                rows: 0,
                closed: false,
                failure: None,
            }),
            commit_lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let flusher = match durability {
            WriteDurability::Immediate => None,
            WriteDurability::Group { window } => {
                let shared = shared.clone();
                Some(std::thread::spawn(move || flusher_loop(&shared, window)))
            }
        };
        MetricsWriter { shared, flusher }
    }

    /// The table's url.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The table's stored schema (what rows must match).
    pub fn schema(&self) -> &SchemaRef {
        &self.shared.schema
    }

    /// Appends a batch. Its columns must match the table's schema.
    pub fn append(&mut self, batch: &RecordBatch) -> Result<()> {
        check_batch(&self.shared.schema, batch, &self.shared.url)?;
        let commit_now = {
            let mut pending = lock(&self.shared.pending);
            take_failure(&mut pending)?;
            finish_builders(&self.shared.schema, &mut pending)?;
            pending.rows += batch.num_rows() as u64;
            pending.batches.push(batch.clone());
            self.shared.durability == WriteDurability::Immediate || pending.rows >= SEAL_ROWS
        };
        if commit_now {
            commit_pending(&self.shared)?;
        }
        Ok(())
    }

    /// Appends one row of values, one per column in schema order. Supported column types:
    /// booleans, integers, floats, strings (plain and dictionary-encoded), timestamps (from
    /// integers in the column's unit) and fixed-size lists of floats (from a list of numbers);
    /// `Value::Null` appends a null. Use [`MetricsWriter::append`] for other types.
    pub fn append_row(&mut self, row: &[Value]) -> Result<()> {
        let schema = self.shared.schema.clone();
        if row.len() != schema.fields().len() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "a row of {} values for a table of {} columns",
                    row.len(),
                    schema.fields().len()
                ),
            });
        }
        let commit_now = {
            let mut pending = lock(&self.shared.pending);
            take_failure(&mut pending)?;
            // Check every value before appending any, so a bad row changes nothing.
            for (field, value) in schema.fields().iter().zip(row) {
                if matches!(value, Value::Null) && !field.is_nullable() {
                    return Err(Error::SchemaMismatch {
                        table: self.shared.url.clone(),
                        column: field.name().clone(),
                        reason: "null in a non-nullable column".into(),
                    });
                }
                check_value(field.data_type(), value).map_err(|reason| Error::SchemaMismatch {
                    table: self.shared.url.clone(),
                    column: field.name().clone(),
                    reason,
                })?;
            }
            for ((builder, field), value) in
                pending.builders.iter_mut().zip(schema.fields()).zip(row)
            {
                append_value(builder.as_mut(), field.data_type(), value);
            }
            pending.builder_rows += 1;
            pending.rows += 1;
            self.shared.durability == WriteDurability::Immediate || pending.rows >= SEAL_ROWS
        };
        if commit_now {
            commit_pending(&self.shared)?;
        }
        Ok(())
    }

    /// Commits everything appended so far, durably, and seals the tail into a chunk.
    pub fn flush(&mut self) -> Result<()> {
        // The pending rows and the seal go in one commit (one two-phase commit, not two).
        commit_pending_and(&self.shared, true)?;
        self.shared
            .unsealed
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Flushes, seals, stops the background flusher and returns the table's final facts.
    pub fn close(mut self) -> Result<TableInfo> {
        self.stop_flusher();
        self.flush()?;
        let shared = &self.shared;
        shared
            .store
            .read(|txn| table_info(&table_record(txn, shared.id, &shared.url)?))
    }

    fn stop_flusher(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.flusher.take() {
            // The flusher only returns; a panic in it has already been reported by the
            // runtime, and the rows it held are still pending here.
            let _ = handle.join();
        }
    }
}

impl Drop for MetricsWriter {
    fn drop(&mut self) {
        self.stop_flusher();
        // Only a writer with work of its own flushes on drop: one that appended nothing (or
        // was closed) leaves the table, and other writers' tail rows, alone.
        let pending = lock(&self.shared.pending).rows > 0;
        let unsealed = self
            .shared
            .unsealed
            .load(std::sync::atomic::Ordering::Acquire);
        if (pending || unsealed) && !self.shared.store.is_read_only() {
            // Best effort: `close` is the way to see errors.
            let _ = self.flush();
        }
    }
}

fn take_failure(pending: &mut Pending) -> Result<()> {
    match pending.failure.take() {
        Some(reason) => Err(Error::InvalidInput {
            reason: format!("a background commit failed (the rows are still pending): {reason}"),
        }),
        None => Ok(()),
    }
}

fn flusher_loop(shared: &Shared, window: Duration) {
    loop {
        {
            let pending = lock(&shared.pending);
            // `close` sets `closed` under this lock before it wakes us: looking first means a
            // wake-up that came while we were committing is not missed (the wait would
            // otherwise last the whole window).
            if pending.closed {
                return;
            }
            let (pending, _) = shared
                .wake
                .wait_timeout(pending, window)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if pending.closed {
                return;
            }
            if pending.rows == 0 {
                continue;
            }
        }
        if let Err(error) = commit_pending(shared) {
            lock(&shared.pending).failure = Some(error.to_string());
        }
    }
}

/// Turns the row builders into a batch at the end of the pending list.
fn finish_builders(schema: &SchemaRef, pending: &mut Pending) -> Result<()> {
    if pending.builder_rows == 0 {
        return Ok(());
    }
    let columns = pending.builders.iter_mut().map(|b| b.finish()).collect();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::InvalidInput {
        reason: format!("appended rows do not form a batch: {e}"),
    })?;
    pending.builder_rows = 0;
    pending.batches.push(batch);
    Ok(())
}

/// Commits every pending row as one append, in order. On failure the rows go back to the
/// front of the pending list.
fn commit_pending(shared: &Shared) -> Result<()> {
    commit_pending_and(shared, false)
}

/// Commits the pending rows and, with `seal_tail`, seals the table's tail in the same
/// transaction (a seal commits even when no rows are pending).
fn commit_pending_and(shared: &Shared, seal_tail: bool) -> Result<()> {
    let _order = lock(&shared.commit_lock);
    let (batches, rows) = {
        let mut pending = lock(&shared.pending);
        finish_builders(&shared.schema, &mut pending)?;
        let rows = pending.rows;
        pending.rows = 0;
        (std::mem::take(&mut pending.batches), rows)
    };
    if batches.is_empty() && !seal_tail {
        return Ok(());
    }
    let batch = match batches.len() {
        0 => None,
        1 => Some(batches[0].clone()),
        _ => Some(
            arrow_select::concat::concat_batches(&shared.schema, &batches).map_err(|e| {
                Error::InvalidInput {
                    reason: format!("pending batches do not concatenate: {e}"),
                }
            })?,
        ),
    };
    let result = shared.store.write("append rows", |txn| {
        let mut record = table_record(txn, shared.id, &shared.url)?;
        if let Some(batch) = &batch {
            append_batch(&shared.store, txn, shared.id, &mut record, batch)?;
        }
        if seal_tail {
            seal(&shared.store, txn, shared.id, &mut record)?;
        }
        super::put_table_record(txn, shared.id, &record)
    });
    if result.is_ok() && !seal_tail {
        shared
            .unsealed
            .store(true, std::sync::atomic::Ordering::Release);
    }
    if result.is_err() {
        let mut pending = lock(&shared.pending);
        let mut restored = batches;
        restored.append(&mut pending.batches);
        pending.batches = restored;
        pending.rows += rows;
    }
    result
}

/// Whether `value` can be appended to a column of `data_type` (the reason if not).
fn check_value(data_type: &DataType, value: &Value) -> std::result::Result<(), String> {
    if !row_supported(data_type) {
        return Err(format!(
            "append_row does not support columns of type {data_type}; append a batch instead"
        ));
    }
    let ok = match (data_type, value) {
        (_, Value::Null) => true,
        (DataType::Boolean, Value::Bool(_)) => true,
        (
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64,
            Value::Int(v),
        ) => int_fits(data_type, *v),
        (DataType::Timestamp(_, _), Value::Int(_)) => true,
        (DataType::Float32 | DataType::Float64, Value::Int(_) | Value::Float(_)) => {
            return float_fits(data_type, value)
        }
        (DataType::Utf8 | DataType::LargeUtf8, Value::Str(_)) => true,
        (DataType::Dictionary(key, values), Value::Str(_)) => {
            **key == DataType::Int32 && **values == DataType::Utf8
        }
        (DataType::FixedSizeList(field, size), Value::List(items)) => {
            if !(matches!(field.data_type(), DataType::Float32 | DataType::Float64)
                && items.len() == *size as usize
                && items.iter().all(|item| item.as_f64().is_some()))
            {
                false
            } else {
                for (index, item) in items.iter().enumerate() {
                    float_fits(field.data_type(), item)
                        .map_err(|reason| format!("item {index}: {reason}"))?;
                }
                true
            }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {} value does not fit a column of type {data_type}",
            value.type_name()
        ))
    }
}

/// Whether a number fits a float column by `table::convert`'s rule: an integer exactly, a
/// float without overflowing (rounded to the nearest f32 in a Float32 column).
fn float_fits(data_type: &DataType, value: &Value) -> std::result::Result<(), String> {
    let fits = match (data_type, value) {
        (DataType::Float64, Value::Int(v)) => convert::int_to_f64(i128::from(*v)).is_some(),
        (DataType::Float32, Value::Int(v)) => convert::int_to_f32(i128::from(*v)).is_some(),
        (DataType::Float32, Value::Float(v)) => convert::f64_to_f32(*v).is_some(),
        (DataType::Float64, Value::Float(_)) => true,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(format!(
            "{} does not fit a column of type {data_type} exactly",
            value
        ))
    }
}

/// The column types [`append_value`] can append a row value to.
fn row_supported(data_type: &DataType) -> bool {
    match data_type {
        DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Timestamp(_, _)
        | DataType::Utf8
        | DataType::LargeUtf8 => true,
        DataType::Dictionary(key, values) => **key == DataType::Int32 && **values == DataType::Utf8,
        DataType::FixedSizeList(field, _) => {
            matches!(field.data_type(), DataType::Float32 | DataType::Float64)
        }
        _ => false,
    }
}

fn int_fits(data_type: &DataType, v: i64) -> bool {
    match data_type {
        DataType::Int8 => i8::try_from(v).is_ok(),
        DataType::Int16 => i16::try_from(v).is_ok(),
        DataType::Int32 => i32::try_from(v).is_ok(),
        DataType::Int64 => true,
        DataType::UInt8 => u8::try_from(v).is_ok(),
        DataType::UInt16 => u16::try_from(v).is_ok(),
        DataType::UInt32 => u32::try_from(v).is_ok(),
        DataType::UInt64 => v >= 0,
        _ => false,
    }
}

fn downcast<T: 'static>(builder: &mut dyn ArrayBuilder) -> &mut T {
    builder
        .as_any_mut()
        .downcast_mut::<T>()
        .expect("make_builder returns the builder of the column's type")
}

/// Appends a value that [`check_value`] accepted.
fn append_value(builder: &mut dyn ArrayBuilder, data_type: &DataType, value: &Value) {
    macro_rules! primitive {
        ($builder:ty, $convert:expr) => {{
            let b = downcast::<$builder>(builder);
            match value {
                Value::Null => b.append_null(),
                other => b.append_value($convert(other)),
            }
        }};
    }
    let int = |v: &Value| v.as_i64().unwrap_or_default();
    match data_type {
        DataType::Boolean => {
            primitive!(BooleanBuilder, |v: &Value| v.as_bool().unwrap_or_default())
        }
        DataType::Int8 => primitive!(Int8Builder, |v| int(v) as i8),
        DataType::Int16 => primitive!(Int16Builder, |v| int(v) as i16),
        DataType::Int32 => primitive!(Int32Builder, |v| int(v) as i32),
        DataType::Int64 => primitive!(Int64Builder, int),
        DataType::UInt8 => primitive!(UInt8Builder, |v| int(v) as u8),
        DataType::UInt16 => primitive!(UInt16Builder, |v| int(v) as u16),
        DataType::UInt32 => primitive!(UInt32Builder, |v| int(v) as u32),
        DataType::UInt64 => primitive!(UInt64Builder, |v| int(v) as u64),
        DataType::Float32 => primitive!(Float32Builder, |v: &Value| v.as_f64().unwrap_or_default()
            as f32),
        DataType::Float64 => primitive!(Float64Builder, |v: &Value| v.as_f64().unwrap_or_default()),
        DataType::Timestamp(TimeUnit::Second, _) => primitive!(TimestampSecondBuilder, int),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            primitive!(TimestampMillisecondBuilder, int)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            primitive!(TimestampMicrosecondBuilder, int)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => primitive!(TimestampNanosecondBuilder, int),
        DataType::Utf8 => {
            let b = downcast::<StringBuilder>(builder);
            match value {
                Value::Str(s) => b.append_value(s),
                _ => b.append_null(),
            }
        }
        DataType::LargeUtf8 => {
            let b = downcast::<LargeStringBuilder>(builder);
            match value {
                Value::Str(s) => b.append_value(s),
                _ => b.append_null(),
            }
        }
        DataType::Dictionary(_, _) => {
            let b = downcast::<StringDictionaryBuilder<Int32Type>>(builder);
            match value {
                Value::Str(s) => {
                    b.append_value(s);
                }
                _ => b.append_null(),
            }
        }
        DataType::FixedSizeList(field, size) => {
            let items = value.as_list().unwrap_or(&[]);
            match field.data_type() {
                DataType::Float32 => {
                    let b = downcast::<FixedSizeListBuilder<Box<dyn ArrayBuilder>>>(builder);
                    let values = downcast::<Float32Builder>(b.values().as_mut());
                    if items.is_empty() {
                        values.append_nulls(*size as usize);
                    } else {
                        for item in items {
                            values.append_value(item.as_f64().unwrap_or_default() as f32);
                        }
                    }
                    b.append(!items.is_empty());
                }
                _ => {
                    let b = downcast::<FixedSizeListBuilder<Box<dyn ArrayBuilder>>>(builder);
                    let values = downcast::<Float64Builder>(b.values().as_mut());
                    if items.is_empty() {
                        values.append_nulls(*size as usize);
                    } else {
                        for item in items {
                            values.append_value(item.as_f64().unwrap_or_default());
                        }
                    }
                    b.append(!items.is_empty());
                }
            }
        }
        other => unreachable!("check_value rejects {other}"),
    }
}
