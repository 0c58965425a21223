//! `Run`: the 3LC-shaped API over one run of the catalog.
//!
//! A `Run` is a handle (store, run id, project, name); it caches nothing that can change, so
//! every getter reads the latest commit and every setter is one write transaction that either
//! lands whole or not at all. Project and name are fixed for a run id: copying a run makes a
//! new id.
//!
//! Semantics follow 3LC's `tlc.Run` (see `shared/seeds`): `set_parameters` merges like
//! `dict.update`, `add_input_value` skips an identical value, `add_output_value` appends, the
//! seven statuses keep 3LC's codes, `copy` takes `if_exists` raise/rename/overwrite with the
//! first free `<name>_NNNN` for rename.
//!
//! The `Store` calls that create and find runs (`init`, `run`, `runs`, `active_run`,
//! `stale_runs`, `delete_run`) live here too, above `store`, which knows nothing of `Run`.

use std::io::{self, Read};

use redb::WriteTransaction;

use crate::catalog::{self, records, Reader};
use crate::error::{Error, Location, Result};
use crate::status::RunStatus;
use crate::store::{Store, BLOB_CHUNK_BYTES};
use crate::value::Value;
use crate::{names, time};

/// What [`Store::init_with`] does when a run of the requested name exists (3LC's `if_exists`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitIfExists {
    /// Fail with [`Error::AlreadyExists`].
    Raise,
    /// Create the run under the first free `<name>_NNNN` (3LC's default).
    #[default]
    Rename,
    /// Delete the existing run first.
    Overwrite,
    /// Return the existing run, its status set to RUNNING.
    Reuse,
}

/// Options of [`Store::init_with`].
#[derive(Clone, Debug, Default)]
pub struct InitOptions {
    /// The run's description.
    pub description: Option<String>,
    /// Initial parameters (a map).
    pub parameters: Option<Value>,
    /// What to do when the name is taken.
    pub if_exists: InitIfExists,
}

/// What [`Run::copy`] does when the destination exists (3LC's `if_exists`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopyIfExists {
    /// Fail with [`Error::AlreadyExists`] (3LC's default).
    #[default]
    Raise,
    /// Copy to the first free `<name>_NNNN`.
    Rename,
    /// Delete the existing destination run first.
    Overwrite,
}

/// Where [`Run::copy`] puts the copy. With nothing set, the copy goes next to the source under
/// the first free `<name>_NNNN`.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// Destination run name (default: the source's name, renamed to be free when neither this
    /// nor `destination_url` is set).
    pub run_name: Option<String>,
    /// Destination project (default: the source's project).
    pub project_name: Option<String>,
    /// Full destination url; may not be combined with the names.
    pub destination_url: Option<String>,
    /// What to do if the destination exists.
    pub if_exists: CopyIfExists,
}

/// Everything about a run except its outputs and blobs, read in one snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// `<project>/runs/<name>`.
    pub url: String,
    /// The project.
    pub project: String,
    /// The run's name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
    /// Time of the last change, microseconds since the Unix epoch, UTC.
    pub last_modified_us: i64,
    /// The status.
    pub status: RunStatus,
    /// The parameters (a map).
    pub parameters: Value,
    /// Input tables: store urls or external references.
    pub input_tables: Vec<String>,
    /// Input values, in the order added.
    pub input_values: Vec<Value>,
    /// Number of output values.
    pub output_count: u64,
    /// Metrics tables.
    pub metrics: Vec<MetricTableInfo>,
}

/// 3LC's `MetricTableInfo`: a metrics table attached to a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricTableInfo {
    /// The table's url.
    pub url: String,
    /// The stream it belongs to.
    pub stream_name: String,
    /// Rows in the table.
    pub row_count: u64,
    /// Bytes it occupies.
    pub file_size: u64,
}

/// A named blob under a run's bulk data url.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkInfo {
    /// The blob's name.
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
    /// When it was written, microseconds since the Unix epoch, UTC.
    pub created_us: i64,
}

pub use crate::names::run_url;

/// Splits a run url `<project>/runs/<run>` into project and run name.
pub fn parse_run_url(url: &str) -> Result<(String, String)> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let mut parts = url.split('/');
    let (Some(project), Some(runs), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("expected <project>/runs/<run>"));
    };
    if runs != "runs" {
        return Err(invalid("expected <project>/runs/<run>"));
    }
    if names::validate_name(project).is_err() {
        return Err(invalid("the project name is invalid"));
    }
    if names::validate_name(name).is_err() {
        return Err(invalid("the run name is invalid"));
    }
    Ok((project.to_string(), name.to_string()))
}

/// A run's metrics entry with the row count and size of the stored table as of this snapshot
/// (a streaming writer keeps appending after the entry was made).
fn live_metric_info(
    txn: &impl Reader,
    entry: records::MetricTableRecord,
) -> Result<MetricTableInfo> {
    let live = match catalog::tables::table_id(txn, &entry.url)? {
        Some(id) => Some(catalog::tables::table_record(txn, id, &entry.url)?),
        None => None,
    };
    Ok(MetricTableInfo {
        row_count: live
            .as_ref()
            .map_or(entry.row_count, |t| t.sealed_rows + t.tail_rows),
        file_size: live
            .as_ref()
            .map_or(entry.file_size, catalog::tables::table_bytes),
        url: entry.url,
        stream_name: entry.stream_name,
    })
}

pub(crate) fn require_map(value: &Value, what: &'static str) -> Result<()> {
    match value {
        Value::Map(_) => {}
        other => {
            return Err(Error::InvalidValue {
                reason: format!("{what} must be a map, not {}", other.type_name()),
            })
        }
    }
    if value.depth() > crate::value::VALUE_DEPTH_MAX {
        return Err(Error::InvalidValue {
            reason: format!(
                "{what} nest deeper than {} levels",
                crate::value::VALUE_DEPTH_MAX
            ),
        });
    }
    let encoded_len = value.encode().len();
    if encoded_len > crate::value::VALUE_ENCODED_BYTES_MAX {
        return Err(Error::InvalidValue {
            reason: format!(
                "{what} encode to {encoded_len} bytes, more than the {} allowed",
                crate::value::VALUE_ENCODED_BYTES_MAX
            ),
        });
    }
    Ok(())
}

fn decode_value(bytes: &[u8], what: &str) -> Result<Value> {
    Value::decode(bytes).map_err(|error| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{what}: {error}"),
    })
}

/// One run of a store (3LC's `Run`).
#[derive(Clone)]
pub struct Run {
    store: Store,
    id: u64,
    project: String,
    name: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("url", &self.url()).finish()
    }
}

impl PartialEq for Run {
    fn eq(&self, other: &Run) -> bool {
        self.id == other.id && self.store.path() == other.store.path()
    }
}

impl Run {
    pub(crate) fn new(store: Store, id: u64, project: String, name: String) -> Run {
        Run {
            store,
            id,
            project,
            name,
        }
    }

    /// The run at `url` in `store` (3LC's `Run.from_url`). Does not change the active run.
    pub fn from_url(store: &Store, url: &str) -> Result<Run> {
        store.run(url)
    }

    /// The run `run_name` of `project_name` (3LC's `Run.from_names`).
    pub fn from_names(store: &Store, run_name: &str, project_name: &str) -> Result<Run> {
        store.run_by_names(run_name, project_name)
    }

    /// The store the run lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The run's internal id (stable for the life of the run, not across copies).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The run's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The run's project.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// `<project>/runs/<name>`.
    pub fn url(&self) -> String {
        run_url(&self.project, &self.name)
    }

    /// The url blobs of this run live under: `<project>/runs/<name>/bulk_data`.
    pub fn bulk_data_url(&self) -> String {
        format!("{}/bulk_data", self.url())
    }

    fn record(&self) -> Result<records::RunRecord> {
        self.store.read(|txn| self.record_in(txn))
    }

    fn record_in(&self, txn: &impl Reader) -> Result<records::RunRecord> {
        catalog::run_record(txn, self.id).map_err(|error| match error {
            Error::NotFound { .. } => Error::not_found(format!("run {}", self.url())),
            other => other,
        })
    }

    /// Everything about the run (but outputs and blobs) from one snapshot.
    pub fn info(&self) -> Result<RunInfo> {
        self.store.read(|txn| {
            let record = self.record_in(txn)?;
            let parameters = self.parameters_in(txn)?;
            let input_values = self.input_values_in(txn)?;
            Ok(RunInfo {
                url: self.url(),
                project: record.project,
                name: record.name,
                description: record.description,
                created_us: record.created_us,
                last_modified_us: record.last_modified_us,
                status: RunStatus::from_code(f64::from(record.status)).map_err(|_| {
                    Error::Corrupted {
                        at: Location::Catalog,
                        reason: format!("run {} has status code {}", self.url(), record.status),
                    }
                })?,
                parameters,
                input_tables: record.input_tables,
                input_values,
                output_count: record.output_count,
                metrics: record
                    .metrics
                    .into_iter()
                    .map(|m| live_metric_info(txn, m))
                    .collect::<Result<_>>()?,
            })
        })
    }

    /// The description.
    pub fn description(&self) -> Result<String> {
        Ok(self.record()?.description)
    }

    /// Creation time, microseconds since the Unix epoch, UTC.
    pub fn created(&self) -> Result<i64> {
        Ok(self.record()?.created_us)
    }

    /// Time of the last change, microseconds since the Unix epoch, UTC.
    pub fn last_modified(&self) -> Result<i64> {
        Ok(self.record()?.last_modified_us)
    }

    /// The status.
    pub fn status(&self) -> Result<RunStatus> {
        Ok(self.info()?.status)
    }

    /// The parameters, a map.
    pub fn parameters(&self) -> Result<Value> {
        self.store.read(|txn| self.parameters_in(txn))
    }

    fn parameters_in(&self, txn: &impl Reader) -> Result<Value> {
        catalog::params(txn, self.id)
    }

    /// Input tables, in the order added.
    pub fn input_tables(&self) -> Result<Vec<String>> {
        Ok(self.record()?.input_tables)
    }

    /// Input values, in the order added.
    pub fn input_values(&self) -> Result<Vec<Value>> {
        self.store.read(|txn| self.input_values_in(txn))
    }

    fn input_values_in(&self, txn: &impl Reader) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut expected = 0;
        catalog::runs::for_each_input(txn, self.id, |seq, payload| {
            check_sequence(seq, expected, "input value", &self.url())?;
            expected += 1;
            out.push(decode_value(payload, "input value")?);
            Ok(())
        })?;
        let count = self.record_in(txn)?.input_count;
        check_count(out.len() as u64, count, "input values", &self.url())?;
        Ok(out)
    }

    /// Every output value, in the order added.
    pub fn output_values(&self) -> Result<Vec<Value>> {
        self.output_values_range(0, u64::MAX)
    }

    /// Output values with sequence numbers in `[start, end)`.
    pub fn output_values_range(&self, start: u64, end: u64) -> Result<Vec<Value>> {
        self.store.read(|txn| {
            let record = self.record_in(txn)?;
            let mut out = Vec::new();
            let end = end.min(record.output_count);
            if start >= end {
                return Ok(out);
            }
            let mut expected = start;
            catalog::runs::for_each_output(txn, self.id, start, end, |seq, payload| {
                check_sequence(seq, expected, "output value", &self.url())?;
                expected += 1;
                out.push(decode_value(payload, "output value")?);
                Ok(())
            })?;
            // Every numbered value must be there: a missing one is damage, not absence.
            check_count(start + out.len() as u64, end, "output values", &self.url())?;
            Ok(out)
        })
    }

    /// Number of output values.
    pub fn output_count(&self) -> Result<u64> {
        Ok(self.record()?.output_count)
    }

    /// The latest output value, if any.
    pub fn last_output(&self) -> Result<Option<Value>> {
        let count = self.output_count()?;
        if count == 0 {
            return Ok(None);
        }
        Ok(self.output_values_range(count - 1, count)?.pop())
    }

    /// Metrics tables attached to the run.
    pub fn metrics_tables(&self) -> Result<Vec<MetricTableInfo>> {
        Ok(self.info()?.metrics)
    }

    /// Runs `f` on the run's record in one write transaction, bumps `last_modified`, and
    /// writes the record back.
    fn update(
        &self,
        op: &'static str,
        f: impl FnOnce(&WriteTransaction, &mut records::RunRecord) -> Result<()>,
    ) -> Result<()> {
        self.store.write(op, |txn| self.update_in(txn, f))
    }

    /// [`Run::update`] inside a caller's transaction (a [`crate::Batch`]).
    fn update_in(
        &self,
        txn: &WriteTransaction,
        f: impl FnOnce(&WriteTransaction, &mut records::RunRecord) -> Result<()>,
    ) -> Result<()> {
        let mut record = self.record_in(txn)?;
        f(txn, &mut record)?;
        record.last_modified_us = time::now_us().max(record.last_modified_us);
        catalog::put_run_record(txn, self.id, &record)
    }

    /// Merges `parameters` (a map) into the run's parameters, key by key (3LC's
    /// `dict.update`). Nested values of any size up to the value limit are fine.
    pub fn set_parameters(&self, parameters: &Value) -> Result<()> {
        self.store.write("set parameters", |txn| {
            self.set_parameters_in(txn, parameters)
        })
    }

    pub(crate) fn set_parameters_in(
        &self,
        txn: &WriteTransaction,
        parameters: &Value,
    ) -> Result<()> {
        require_map(parameters, "parameters")?;
        self.update_in(txn, |txn, _| {
            let mut current = catalog::params(txn, self.id)?;
            current.merge_from(parameters);
            let encoded_len = current.encode().len();
            if encoded_len > crate::value::VALUE_ENCODED_BYTES_MAX {
                return Err(Error::InvalidValue {
                    reason: format!("merged parameters encode to {encoded_len} bytes"),
                });
            }
            catalog::put_params(txn, self.id, &current)
        })
    }

    /// Sets the description.
    pub fn set_description(&self, description: &str) -> Result<()> {
        self.store.write("set description", |txn| {
            self.set_description_in(txn, description)
        })
    }

    pub(crate) fn set_description_in(
        &self,
        txn: &WriteTransaction,
        description: &str,
    ) -> Result<()> {
        self.update_in(txn, |_, record| {
            record.description = description.to_string();
            Ok(())
        })
    }

    /// Adds an input table: a store url (`<project>/tables/<t>`) or any external reference
    /// string, kept as given. Adding the same table twice keeps one entry.
    pub fn add_input_table(&self, table: &str) -> Result<()> {
        if table.is_empty() || table.chars().any(char::is_control) {
            return Err(Error::InvalidUrl {
                url: table.to_string(),
                reason: "an input table reference must be non-empty text without control \
                         characters",
            });
        }
        self.update("add input table", |_, record| {
            if !record.input_tables.iter().any(|t| t == table) {
                record.input_tables.push(table.to_string());
            }
            Ok(())
        })
    }

    /// Adds an input value (a map); a value identical to one already there is not added again.
    pub fn add_input_value(&self, value: &Value) -> Result<()> {
        require_map(value, "an input value")?;
        let encoded = value.encode();
        self.update("add input value", |txn, record| {
            catalog::runs::add_input(txn, self.id, record, encoded.as_slice()).map(|_| ())
        })
    }

    /// Appends an output value (a map, e.g. `{"epoch": 2, "loss": 0.09}`). One insert: the
    /// cost does not grow with the number of earlier outputs.
    pub fn add_output_value(&self, value: &Value) -> Result<()> {
        self.add_output_values(std::slice::from_ref(value))
    }

    /// Appends several output values in one commit.
    pub fn add_output_values(&self, values: &[Value]) -> Result<()> {
        self.store.write("add output value", |txn| {
            self.add_output_values_in(txn, values)
        })
    }

    pub(crate) fn add_output_values_in(
        &self,
        txn: &WriteTransaction,
        values: &[Value],
    ) -> Result<()> {
        for value in values {
            require_map(value, "an output value")?;
        }
        self.update_in(txn, |txn, record| {
            catalog::append_outputs(txn, self.id, record, values)
        })
    }

    /// Sets the status.
    pub fn set_status(&self, status: RunStatus) -> Result<()> {
        self.store
            .write("set status", |txn| self.set_status_in(txn, status))
    }

    pub(crate) fn set_status_in(&self, txn: &WriteTransaction, status: RunStatus) -> Result<()> {
        self.update_in(txn, |txn, record| {
            record.status = status.code();
            if crate::liveness::is_active(status) {
                crate::liveness::record_writer(txn, self.id)?;
            }
            Ok(())
        })
    }

    /// Whether the run is stale: in an active status (RUNNING, COLLECTING, POST_PROCESSING)
    /// while the process that put it there is gone. See [`crate::Liveness`].
    pub fn liveness(&self) -> Result<crate::liveness::Liveness> {
        self.store.read(|txn| {
            let record = self.record_in(txn)?;
            let status =
                RunStatus::from_code(f64::from(record.status)).map_err(|_| Error::Corrupted {
                    at: Location::Catalog,
                    reason: format!("run {} has status code {}", self.url(), record.status),
                })?;
            let writer = crate::liveness::writer_of(txn, self.id)?;
            Ok(crate::liveness::liveness(status, writer.as_ref()))
        })
    }

    /// Sets the status to RUNNING.
    pub fn set_status_running(&self) -> Result<()> {
        self.set_status(RunStatus::Running)
    }

    /// Sets the status to COLLECTING.
    pub fn set_status_collecting(&self) -> Result<()> {
        self.set_status(RunStatus::Collecting)
    }

    /// Sets the status to POST_PROCESSING.
    pub fn set_status_post_processing(&self) -> Result<()> {
        self.set_status(RunStatus::PostProcessing)
    }

    /// Sets the status to COMPLETED.
    pub fn set_status_completed(&self) -> Result<()> {
        self.set_status(RunStatus::Completed)
    }

    /// Sets the status to EMPTY.
    pub fn set_status_empty(&self) -> Result<()> {
        self.set_status(RunStatus::Empty)
    }

    /// Sets the status to PAUSED.
    pub fn set_status_paused(&self) -> Result<()> {
        self.set_status(RunStatus::Paused)
    }

    /// Sets the status to CANCELLED.
    pub fn set_status_cancelled(&self) -> Result<()> {
        self.set_status(RunStatus::Cancelled)
    }

    /// Stores `bytes` as the blob `name` under [`Run::bulk_data_url`], replacing any blob of
    /// that name.
    pub fn put_bulk(&self, name: &str, bytes: &[u8]) -> Result<u64> {
        self.put_bulk_from(name, &mut &bytes[..])
    }

    /// Streams `reader` into the blob `name` (a checkpoint, an image) in 4 MiB column
    /// segments, each with its CRC; the whole blob lands in one commit, or none of it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when `name` breaks [`names::validate_blob_name`]'s rules (`/`
    /// separates folders, `ckpt/epoch-3/model.pt`; no empty, `.` or `..` segment, no leading
    /// or trailing `/`) or starts with [`crate::names::REDUCER_BLOB_PREFIX`], kept for the
    /// run's stored reducers ([`Run::reducers`]); [`Error::Io`] when `reader` fails.
    pub fn put_bulk_from(&self, name: &str, reader: &mut dyn Read) -> Result<u64> {
        names::validate_blob_name(name).map_err(|reason| Error::InvalidName {
            name: name.to_string(),
            reason,
        })?;
        if name.starts_with(crate::names::REDUCER_BLOB_PREFIX) {
            return Err(Error::InvalidName {
                name: name.to_string(),
                reason: "names starting with 'reducer-' are kept for the run's stored reducers",
            });
        }
        let store = self.store.clone();
        let mut total = 0u64;
        self.update("put bulk data", |txn, _| {
            let mut col_hwm = catalog::meta_get(txn, catalog::META_COL_HWM)?;
            let mut chunks = Vec::new();
            let mut buf = vec![0u8; BLOB_CHUNK_BYTES];
            loop {
                let filled = read_full(reader, &mut buf).map_err(|source| Error::Io {
                    op: "read bulk data source",
                    path: store.path().to_path_buf(),
                    source,
                })?;
                if filled == 0 {
                    break;
                }
                let bytes = &buf[..filled];
                let offset = store.file().append_column(col_hwm, bytes)?;
                col_hwm = offset + filled as u64;
                chunks.push(records::SegmentRef {
                    offset,
                    len: filled as u64,
                    crc32: crc32fast::hash(bytes),
                });
                total += filled as u64;
                if filled < buf.len() {
                    break;
                }
            }
            catalog::meta_set(txn, catalog::META_COL_HWM, col_hwm)?;
            let record = records::BlobRecord {
                len: total,
                chunks,
                created_us: time::now_us(),
            };
            catalog::blobs::put_blob(txn, self.id, name, &record)
        })?;
        Ok(total)
    }

    /// A reader over the blob `name`; each 4 MiB chunk's CRC is checked before its bytes are
    /// handed out.
    pub fn bulk(&self, name: &str) -> Result<BulkReader> {
        let record = self
            .store
            .read(|txn| {
                self.record_in(txn)?;
                catalog::blob_record(txn, self.id, name)
            })?
            .ok_or_else(|| Error::not_found(format!("blob {}/{name}", self.bulk_data_url())))?;
        let chunk_total: u64 = record.chunks.iter().map(|c| c.len).sum();
        if chunk_total != record.len {
            return Err(Error::Corrupted {
                at: Location::Catalog,
                reason: format!(
                    "blob {name}: chunks hold {chunk_total} bytes but the record says {}",
                    record.len
                ),
            });
        }
        Ok(BulkReader {
            store: self.store.clone(),
            chunks: record.chunks.into_iter(),
            current: Vec::new(),
            position: 0,
        })
    }

    /// The whole blob `name` in memory.
    pub fn bulk_bytes(&self, name: &str) -> Result<Vec<u8>> {
        let mut reader = self.bulk(name)?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|source| {
            match source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<BulkError>())
            {
                Some(BulkError(reason)) => Error::Corrupted {
                    at: Location::Catalog,
                    reason: reason.clone(),
                },
                None => Error::Io {
                    op: "read bulk data",
                    path: self.store.path().to_path_buf(),
                    source,
                },
            }
        })?;
        Ok(out)
    }

    /// The run's blobs, by name: the user's and the stored reducers' (named `reducer-*`;
    /// [`Run::user_bulk_list`] leaves them out, [`Run::reducers`] decodes them).
    pub fn bulk_list(&self) -> Result<Vec<BulkInfo>> {
        self.store.read(|txn| {
            self.record_in(txn)?;
            let mut out = Vec::new();
            for (name, bytes) in catalog::blobs::run_blobs(txn, self.id)? {
                let record: records::BlobRecord = records::decode(&bytes, "blob record")?;
                out.push(BulkInfo {
                    name,
                    len: record.len,
                    created_us: record.created_us,
                });
            }
            Ok(out)
        })
    }

    /// The blobs the user stored ([`Run::put_bulk`]), by name: [`Run::bulk_list`] without the
    /// stored reducers.
    pub fn user_bulk_list(&self) -> Result<Vec<BulkInfo>> {
        let mut list = self.bulk_list()?;
        list.retain(|info| !info.name.starts_with(crate::names::REDUCER_BLOB_PREFIX));
        Ok(list)
    }

    /// Removes the blob `name`.
    pub fn delete_bulk(&self, name: &str) -> Result<()> {
        self.update("delete bulk data", |txn, _| {
            if catalog::blobs::remove_blob(txn, self.id, name)? {
                Ok(())
            } else {
                Err(Error::not_found(format!(
                    "blob {}/{name}",
                    self.bulk_data_url()
                )))
            }
        })
    }

    /// Deletes the run, its parameters, inputs, outputs and blobs in one commit. Column bytes
    /// are reclaimed by `Store::vacuum`.
    pub fn delete(&self) -> Result<()> {
        self.store.write("delete run", |txn| {
            let record = self.record_in(txn)?;
            catalog::delete_run_rows(txn, self.id, &record)
        })
    }

    /// Copies the run (3LC's `Run.copy`): parameters, inputs, outputs, metrics tables and blobs.
    /// Column segments are shared, not duplicated, so copying a run with a gigabyte of blobs is
    /// a metadata-sized commit. Returns the copy.
    pub fn copy(&self, options: &CopyOptions) -> Result<Run> {
        if options.destination_url.is_some()
            && (options.run_name.is_some() || options.project_name.is_some())
        {
            return Err(Error::InvalidInput {
                reason: "give a destination url or names, not both".into(),
            });
        }
        let (project, name, explicit) = match &options.destination_url {
            Some(url) => {
                let (project, name) = parse_run_url(url)?;
                (project, name, true)
            }
            None => (
                options
                    .project_name
                    .clone()
                    .unwrap_or_else(|| self.project.clone()),
                options
                    .run_name
                    .clone()
                    .unwrap_or_else(|| self.name.clone()),
                options.run_name.is_some() || options.project_name.is_some(),
            ),
        };
        for part in [&project, &name] {
            names::validate_name(part).map_err(|reason| Error::InvalidName {
                name: part.clone(),
                reason,
            })?;
        }
        let now = time::now_us();
        let (id, name) = self.store.write("copy run", |txn| {
            let source = self.record_in(txn)?;
            let existing = catalog::run_id(txn, &project, &name)?;
            let name = match existing {
                None => name.clone(),
                Some(_) if !explicit => first_free_name(txn, &project, &name)?,
                Some(existing) => match options.if_exists {
                    CopyIfExists::Raise => {
                        return Err(Error::AlreadyExists {
                            what: format!("run {}", run_url(&project, &name)),
                        })
                    }
                    CopyIfExists::Rename => first_free_name(txn, &project, &name)?,
                    CopyIfExists::Overwrite => {
                        if existing == self.id {
                            return Err(Error::InvalidInput {
                                reason: "cannot overwrite a run with a copy of itself".into(),
                            });
                        }
                        let record = catalog::run_record(txn, existing)?;
                        catalog::delete_run_rows(txn, existing, &record)?;
                        name.clone()
                    }
                },
            };
            let id = catalog::meta_get(txn, catalog::META_NEXT_RUN_ID)?;
            catalog::meta_set(txn, catalog::META_NEXT_RUN_ID, id + 1)?;
            catalog::ensure_project(txn, &project, now)?;
            let mut record = source;
            record.project = project.clone();
            record.name = name.clone();
            let old_prefix = format!("{}/", self.url());
            let new_prefix = format!("{}/", run_url(&project, &name));
            for (table_id, table) in catalog::tables::run_tables(txn, self.id)? {
                let suffix = table.url.strip_prefix(&old_prefix).unwrap_or(&table.url);
                let new_url = format!("{new_prefix}{suffix}");
                catalog::tables::copy_table(txn, table_id, &table, &new_url, id)?;
                for metric in &mut record.metrics {
                    if metric.url == table.url {
                        metric.url = new_url.clone();
                    }
                }
            }
            catalog::put_run_record(txn, id, &record)?;
            catalog::runs::put_run_name(txn, &project, &name, id, "copy run")?;
            catalog::runs::copy_rows(txn, self.id, id)?;
            catalog::index::add_run(txn, id)?;
            Ok((id, name))
        })?;
        Ok(Run::new(self.store.clone(), id, project, name))
    }
}

/// Values numbered `0..count` are stored under consecutive keys: `found` must be `expected`.
fn check_sequence(found: u64, expected: u64, what: &str, url: &str) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{url}: {what} {expected} is missing (found {found})"),
    })
}

/// The values stored end at `found`; the run record says `expected`.
fn check_count(found: u64, expected: u64, what: &str, url: &str) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{url}: {what} end at {found}, the run record says {expected}"),
    })
}

impl Store {
    /// Creates a run in `project` (created on first use) and makes it this handle's active
    /// run. With no `run_name`, a unique `adjective-noun` name is generated. A taken name is
    /// renamed to the first free `<name>_NNNN` (3LC's default `if_exists="rename"`).
    pub fn init(&self, project: &str, run_name: Option<&str>) -> Result<Run> {
        self.init_with(project, run_name, &InitOptions::default())
    }

    /// [`Store::init`] with a description, initial parameters and an `if_exists` policy.
    pub fn init_with(
        &self,
        project: &str,
        run_name: Option<&str>,
        options: &InitOptions,
    ) -> Result<Run> {
        validate_init(project, run_name, options)?;
        let now = time::now_us();
        let (id, name) = self.write("init run", |txn| {
            init_in(txn, project, run_name, options, now)
        })?;
        let run = Run::new(self.clone(), id, project.to_string(), name);
        *self.lock_active() = Some(id);
        Ok(run)
    }

    /// This handle's active run: the last one created by [`Store::init`] or set with
    /// [`Store::set_active_run`].
    pub fn active_run(&self) -> Result<Run> {
        let id = (*self.lock_active()).ok_or(Error::NoActiveRun)?;
        match self.run_by_id(id) {
            Err(Error::NotFound { .. }) => {
                *self.lock_active() = None;
                Err(Error::NoActiveRun)
            }
            other => other,
        }
    }

    /// Makes `run` this handle's active run.
    pub fn set_active_run(&self, run: &Run) -> Result<()> {
        if !self.same_store(run.store()) && run.store().path() != self.path() {
            return Err(Error::InvalidInput {
                reason: "the run belongs to another store".into(),
            });
        }
        let current = self.run_by_id(run.id())?;
        *self.lock_active() = Some(current.id());
        Ok(())
    }

    /// Makes the run at `url` this handle's active run.
    pub fn set_active_run_url(&self, url: &str) -> Result<()> {
        let run = self.run(url)?;
        *self.lock_active() = Some(run.id());
        Ok(())
    }

    /// The run at `url` (`<project>/runs/<run>`).
    pub fn run(&self, url: &str) -> Result<Run> {
        let (project, name) = crate::run::parse_run_url(url)?;
        self.run_by_names(&name, &project)
    }

    /// The run named `run_name` in `project_name` (3LC's `Run.from_names`).
    pub fn run_by_names(&self, run_name: &str, project_name: &str) -> Result<Run> {
        let id = self
            .read(|txn| catalog::run_id(txn, project_name, run_name))?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "run {}",
                    crate::run::run_url(project_name, run_name)
                ))
            })?;
        Ok(Run::new(
            self.clone(),
            id,
            project_name.to_string(),
            run_name.to_string(),
        ))
    }

    pub(crate) fn run_by_id(&self, id: u64) -> Result<Run> {
        let record = self.read(|txn| catalog::run_record(txn, id))?;
        Ok(Run::new(self.clone(), id, record.project, record.name))
    }

    /// The runs of `project` (or of every project), ordered by project then name.
    pub fn runs(&self, project: Option<&str>) -> Result<Vec<Run>> {
        let ids = self.read(|txn| catalog::runs::run_names(txn, project))?;
        Ok(ids
            .into_iter()
            .map(|(project, name, id)| Run::new(self.clone(), id, project, name))
            .collect())
    }

    /// Runs (of `project`, or all) that are stale: in an active status while the process that
    /// put them there is gone ([`crate::Liveness`]). Close them with `set_status`.
    pub fn stale_runs(&self, project: Option<&str>) -> Result<Vec<Run>> {
        let mut stale = Vec::new();
        for run in self.runs(project)? {
            if run.liveness()?.is_stale() {
                stale.push(run);
            }
        }
        Ok(stale)
    }

    /// Deletes the run at `url` with its parameters, inputs, outputs and blobs, in one commit.
    /// Its column bytes stay in the file until [`Store::vacuum`].
    pub fn delete_run(&self, url: &str) -> Result<()> {
        self.run(url)?.delete()
    }
}

/// The checks [`Store::init_with`] makes before it opens a transaction.
pub(crate) fn validate_init(
    project: &str,
    run_name: Option<&str>,
    options: &InitOptions,
) -> Result<()> {
    validate_name(project)?;
    if let Some(name) = run_name {
        validate_name(name)?;
    }
    if let Some(parameters) = &options.parameters {
        crate::run::require_map(parameters, "parameters")?;
    }
    Ok(())
}

/// Creates a run inside `txn` (the body of [`Store::init_with`], shared with [`Batch`]);
/// returns its id and name. The arguments were checked by [`validate_init`].
pub(crate) fn init_in(
    txn: &WriteTransaction,
    project: &str,
    run_name: Option<&str>,
    options: &InitOptions,
    now: i64,
) -> Result<(u64, String)> {
    let name = match run_name {
        Some(name) => match catalog::run_id(txn, project, name)? {
            None => name.to_string(),
            Some(existing) => match options.if_exists {
                InitIfExists::Raise => {
                    return Err(Error::AlreadyExists {
                        what: format!("run {}", crate::run::run_url(project, name)),
                    })
                }
                InitIfExists::Rename => first_free_name(txn, project, name)?,
                InitIfExists::Overwrite => {
                    let record = catalog::run_record(txn, existing)?;
                    catalog::delete_run_rows(txn, existing, &record)?;
                    name.to_string()
                }
                InitIfExists::Reuse => {
                    let mut record = catalog::run_record(txn, existing)?;
                    record.status = crate::status::RunStatus::Running.code();
                    record.last_modified_us = now;
                    catalog::put_run_record(txn, existing, &record)?;
                    crate::liveness::record_writer(txn, existing)?;
                    return Ok((existing, name.to_string()));
                }
            },
        },
        None => generated_name(txn, project)?,
    };
    let id = catalog::meta_get(txn, catalog::META_NEXT_RUN_ID)?;
    catalog::meta_set(txn, catalog::META_NEXT_RUN_ID, id + 1)?;
    catalog::ensure_project(txn, project, now)?;
    let record = records::RunRecord {
        project: project.to_string(),
        name: name.clone(),
        description: options.description.clone().unwrap_or_default(),
        created_us: now,
        last_modified_us: now,
        status: crate::status::RunStatus::Empty.code(),
        input_tables: Vec::new(),
        input_count: 0,
        output_count: 0,
        metrics: Vec::new(),
    };
    catalog::put_run_record(txn, id, &record)?;
    catalog::runs::put_run_name(txn, project, &name, id, "init run")?;
    let parameters = options
        .parameters
        .clone()
        .unwrap_or_else(|| Value::Map(Default::default()));
    catalog::put_params(txn, id, &parameters)?;
    Ok((id, name))
}

fn validate_name(name: &str) -> Result<()> {
    names::validate_name(name).map_err(|reason| Error::InvalidName {
        name: name.to_string(),
        reason,
    })
}

pub(crate) fn first_free_name(txn: &impl Reader, project: &str, base: &str) -> Result<String> {
    for n in 0..10_000 {
        let candidate = names::rename_candidate(base, n);
        if candidate.len() > names::NAME_BYTES_MAX {
            return Err(Error::InvalidName {
                name: candidate,
                reason: "renaming it would exceed 256 bytes",
            });
        }
        if catalog::run_id(txn, project, &candidate)?.is_none() {
            return Ok(candidate);
        }
    }
    Err(Error::AlreadyExists {
        what: format!("every rename of run {base} up to _9999"),
    })
}

fn generated_name(txn: &impl Reader, project: &str) -> Result<String> {
    // 64 x 64 adjective-noun pairs; after a few collisions fall back to the _NNNN rule, which
    // always finds a free name.
    let mut seed = names::random_seed();
    for _ in 0..16 {
        let name = names::generate_run_name(seed);
        if catalog::run_id(txn, project, &name)?.is_none() {
            return Ok(name);
        }
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    first_free_name(txn, project, &names::generate_run_name(seed))
}

fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A checksum failure inside a [`BulkReader`], carried through `io::Error`.
#[derive(Debug)]
struct BulkError(String);

impl std::fmt::Display for BulkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BulkError {}

/// Streams a blob out, checking each chunk's CRC before handing out its bytes.
pub struct BulkReader {
    store: Store,
    chunks: std::vec::IntoIter<records::SegmentRef>,
    current: Vec<u8>,
    position: usize,
}

impl std::fmt::Debug for BulkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkReader")
            .field("remaining_chunks", &self.chunks.len())
            .finish()
    }
}

impl Read for BulkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            let Some(chunk) = self.chunks.next() else {
                return Ok(0);
            };
            let len = usize::try_from(chunk.len)
                .ok()
                .filter(|len| *len <= BLOB_CHUNK_BYTES)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        BulkError(format!("blob chunk of {} bytes is too large", chunk.len)),
                    )
                })?;
            self.current.resize(len, 0);
            self.store
                .file()
                .read_column(chunk.offset, &mut self.current)
                .map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, BulkError(e.to_string()))
                })?;
            let crc = crc32fast::hash(&self.current);
            if crc != chunk.crc32 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    BulkError(format!(
                        "blob chunk at byte {} fails its checksum (stored {:#010x}, computed \
                         {crc:#010x})",
                        chunk.offset, chunk.crc32
                    )),
                ));
            }
            self.position = 0;
        }
        let n = out.len().min(self.current.len() - self.position);
        out[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}
