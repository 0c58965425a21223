//! Moving runs between stores: [`Run::copy_to`] copies one run, with everything it owns, into
//! another store in one write transaction of the destination.
//!
//! Catalog rows (record, parameters, input and output values) are copied as bytes; column
//! segments (blob chunks, table chunks) are re-appended to the destination, each CRC checked on
//! the way, and tail entries are copied after their buffers' CRCs are checked. Input tables of
//! the source store that the run references (as an input table, a metrics entry or a metrics
//! table's foreign table) are copied too, or matched with an equal table already in the
//! destination, and every reference is rewritten to the destination url.
//!
//! This module owns [`Transfer`], the state of one destination transaction (the segments moved
//! so far, the input tables already placed), so that a merge of a whole store can copy many
//! runs through one `Transfer`. It leaves the byte moves to `vacuum::SegmentMover` and the
//! record layouts to `catalog` and `table`.
//!
//! Invariant: a failed copy aborts the destination transaction, so the destination's catalog
//! is unchanged (column bytes appended past its high-water mark are unreferenced and are
//! overwritten by the next append).

use std::collections::HashMap;

use redb::{ReadTransaction, WriteTransaction};

use crate::catalog;
use crate::catalog::records::{self, RunRecord, SegmentRef, TableRecord, TailRecord};
use crate::error::{Error, Location, Result};
use crate::run::first_free_name;
use crate::run::{parse_run_url, run_url, CopyIfExists, CopyOptions, Run};
use crate::store::Store;
use crate::table;
use crate::vacuum::SegmentMover;
use crate::{names, time};

/// Copies runs from one store into another inside one write transaction of the destination.
pub(crate) struct Transfer<'a> {
    mover: SegmentMover<'a>,
    source: &'a Store,
    target: &'a Store,
    /// Source input-table url to its url in the destination, for tables placed already.
    input_tables: HashMap<String, String>,
    /// Whether an input table whose url holds a different table in the destination goes to
    /// the first free `<name>_NNNN` (true) or fails the transfer (false).
    rename_input_tables: bool,
    /// The destination's column high-water mark when the transfer began.
    col_hwm_start: u64,
    /// What has been copied so far.
    counts: TransferCounts,
    /// Whether a copy failed on bytes of the source that fail their CRC (a segment or a tail
    /// entry), so that the error is the source's, not the destination's.
    source_damaged: bool,
}

/// What one [`Transfer`] has copied so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TransferCounts {
    /// Tables copied (input and metrics tables).
    pub(crate) tables: u64,
    /// Input tables of the source matched with an equal table already in the destination.
    pub(crate) tables_reused: u64,
    /// Rows of the copied tables (sealed and tail).
    pub(crate) rows: u64,
    /// Blobs copied.
    pub(crate) blobs: u64,
    /// Bytes of the copied tables' tail entries (catalog rows, not column segments).
    pub(crate) tail_bytes: u64,
}

impl<'a> Transfer<'a> {
    /// A transfer into the destination transaction `to`.
    pub(crate) fn new(
        source: &'a Store,
        target: &'a Store,
        to: &WriteTransaction,
    ) -> Result<Transfer<'a>> {
        let col_hwm = catalog::meta_get(to, catalog::META_COL_HWM)?;
        Ok(Transfer {
            mover: SegmentMover::new(source.file(), target.file(), col_hwm),
            source,
            target,
            input_tables: HashMap::new(),
            rename_input_tables: true,
            col_hwm_start: col_hwm,
            counts: TransferCounts::default(),
            source_damaged: false,
        })
    }

    /// Makes an input table whose url holds a different table in the destination fail the
    /// transfer with [`Error::AlreadyExists`] instead of going to `<name>_NNNN`.
    pub(crate) fn refuse_different_input_tables(&mut self) {
        self.rename_input_tables = false;
    }

    /// Whether an error so far came from column bytes of the source failing their CRC (not
    /// from the destination).
    pub(crate) fn source_damaged(&self) -> bool {
        self.source_damaged
    }

    /// Moves `segment` (see `SegmentMover::relocate`), noting when a failure is the source's.
    fn relocate(&mut self, segment: &mut SegmentRef, what: &str) -> Result<()> {
        let original = *segment;
        let result = self.mover.relocate(segment, what);
        if matches!(result, Err(Error::Corrupted { .. })) && !self.source_segment_intact(&original)
        {
            self.source_damaged = true;
        }
        result
    }

    /// Whether the source's bytes of `segment` can be read and match its CRC (asked only after
    /// a move failed, to tell whose the failure is).
    fn source_segment_intact(&self, segment: &SegmentRef) -> bool {
        let Ok(len) = usize::try_from(segment.len) else {
            return false;
        };
        let mut bytes = vec![0; len];
        self.source
            .file()
            .read_column(segment.offset, &mut bytes)
            .is_ok()
            && crc32fast::hash(&bytes) == segment.crc32
    }

    /// What has been copied so far.
    pub(crate) fn counts(&self) -> TransferCounts {
        self.counts
    }

    /// Bytes copied so far: column bytes appended to the destination (segments and their
    /// alignment) and tail entries.
    pub(crate) fn bytes(&self) -> u64 {
        self.mover.col_hwm().saturating_sub(self.col_hwm_start) + self.counts.tail_bytes
    }

    /// Commits the moved segments' high-water mark; call once, after the last copy.
    pub(crate) fn finish(self, to: &WriteTransaction) -> Result<()> {
        catalog::meta_set(to, catalog::META_COL_HWM, self.mover.col_hwm())
    }

    /// Copies run `source_id` of the source snapshot `from` to `project`/`name` of `to`,
    /// following `if_exists` when that name is taken. Returns the new run's id and name.
    pub(crate) fn copy_run(
        &mut self,
        from: &ReadTransaction,
        to: &WriteTransaction,
        source_id: u64,
        project: &str,
        name: &str,
        if_exists: CopyIfExists,
    ) -> Result<(u64, String)> {
        let op = "copy run to store";
        let source = catalog::run_record(from, source_id)?;
        let name = match catalog::run_id(to, project, name)? {
            None => name.to_string(),
            Some(existing) => match if_exists {
                CopyIfExists::Raise => {
                    return Err(Error::AlreadyExists {
                        what: format!("run {}", run_url(project, name)),
                    })
                }
                CopyIfExists::Rename => first_free_name(to, project, name)?,
                CopyIfExists::Overwrite => {
                    let record = catalog::run_record(to, existing)?;
                    catalog::delete_run_rows(to, existing, &record)?;
                    name.to_string()
                }
            },
        };
        let id = catalog::meta_get(to, catalog::META_NEXT_RUN_ID)?;
        catalog::meta_set(to, catalog::META_NEXT_RUN_ID, id + 1)?;
        let project_created = match catalog::runs::project_created(from, &source.project)? {
            Some(created) => created as i64,
            None => time::now_us(),
        };
        catalog::ensure_project(to, project, project_created)?;

        let mut record: RunRecord = source.clone();
        record.project = project.to_string();
        record.name = name.clone();
        for input in &mut record.input_tables {
            if let Some(url) = self.place_input_table(from, to, input)? {
                *input = url;
            }
        }
        let old_prefix = format!("{}/", run_url(&source.project, &source.name));
        let new_prefix = format!("{}/", run_url(project, &name));
        let mut moved_tables = HashMap::new();
        for (table_id, table_record) in catalog::tables::run_tables(from, source_id)? {
            let suffix =
                table_record
                    .url
                    .strip_prefix(&old_prefix)
                    .ok_or_else(|| Error::Corrupted {
                        at: Location::Catalog,
                        reason: format!(
                            "table {} is owned by run {} but not named under it",
                            table_record.url,
                            run_url(&source.project, &source.name)
                        ),
                    })?;
            let new_url = format!("{new_prefix}{suffix}");
            let foreign = match table_record.foreign_table_url.as_str() {
                "" => String::new(),
                url => self
                    .place_input_table(from, to, url)?
                    .unwrap_or_else(|| url.to_string()),
            };
            self.copy_table(from, to, table_id, &table_record, &new_url, id, &foreign)?;
            moved_tables.insert(table_record.url.clone(), new_url);
        }
        for metric in &mut record.metrics {
            if let Some(url) = moved_tables.get(&metric.url) {
                metric.url = url.clone();
            } else if let Some(url) = self.place_input_table(from, to, &metric.url)? {
                metric.url = url;
            }
            // Anything else (an external reference, another run's table) is kept as given.
        }
        catalog::put_run_record(to, id, &record)?;
        catalog::runs::put_run_name(to, project, &name, id, op)?;
        catalog::runs::copy_rows_across(from, to, source_id, id, op)?;
        catalog::index::add_run(to, id)?;
        self.copy_blobs(from, to, source_id, id, &run_url(project, &name))?;
        Ok((id, name))
    }

    /// The run's blobs: records rewritten to the moved chunks.
    fn copy_blobs(
        &mut self,
        from: &ReadTransaction,
        to: &WriteTransaction,
        from_id: u64,
        to_id: u64,
        url: &str,
    ) -> Result<()> {
        let op = "copy run to store";
        let blobs = catalog::blobs::run_blobs(from, from_id)?;
        for (name, bytes) in blobs {
            let mut record: records::BlobRecord = records::decode(&bytes, "blob record")?;
            let what = format!("blob {url}/bulk_data/{name}");
            for chunk in &mut record.chunks {
                self.relocate(chunk, &what)?;
            }
            let bytes = records::encode(&record);
            catalog::blobs::put_raw(to, to_id, &name, bytes.as_slice(), op)?;
            self.counts.blobs += 1;
        }
        Ok(())
    }

    /// Copies table `id` (`record`) of the source to `new_url` of the destination, owned by
    /// `new_run_id` (0 for an input table) and joined to `foreign`. Returns the new table id.
    #[allow(clippy::too_many_arguments)]
    fn copy_table(
        &mut self,
        from: &ReadTransaction,
        to: &WriteTransaction,
        id: u64,
        record: &TableRecord,
        new_url: &str,
        new_run_id: u64,
        foreign: &str,
    ) -> Result<u64> {
        let op = "copy table to store";
        if table::table_id(to, new_url)?.is_some() {
            return Err(Error::AlreadyExists {
                what: format!("table {new_url}"),
            });
        }
        // A table no reader can rebuild (a schema or layout the reader refuses, a tail entry
        // that does not decode) is refused before any of it is copied.
        if let Err(error) = table::check_structure(from, id, record) {
            self.source_damaged = true;
            return Err(error);
        }
        let mut copy = record.clone();
        copy.url = new_url.to_string();
        copy.run_id = new_run_id;
        copy.foreign_table_url = foreign.to_string();
        let what = format!("table {}", record.url);
        for chunk in &mut copy.chunks {
            for node in &mut chunk.nodes {
                for segment in node.validity.iter_mut().chain(&mut node.buffers) {
                    self.relocate(segment, &what)?;
                }
            }
        }
        let new_id = catalog::tables::next_table_id(to)?;
        table::put_table_record(to, new_id, &copy)?;
        catalog::tables::put_url(to, new_url, new_id, op)?;
        let mut tail_rows = 0u64;
        catalog::tables::copy_tail_across(from, to, id, new_id, |payload| {
            let decoded: TailRecord = records::decode(payload, "tail entry")?;
            if let Err(error) = check_tail_entry(&decoded, &record.url) {
                self.source_damaged = true;
                return Err(error);
            }
            tail_rows += decoded.rows;
            self.counts.tail_bytes += payload.len() as u64;
            Ok(())
        })?;
        if tail_rows != record.tail_rows {
            return Err(Error::Corrupted {
                at: Location::Catalog,
                reason: format!(
                    "table {}: tail holds {tail_rows} rows, record says {}",
                    record.url, record.tail_rows
                ),
            });
        }
        self.counts.tables += 1;
        self.counts.rows += record.sealed_rows + tail_rows;
        Ok(new_id)
    }

    /// When `url` names an input table of the source store (`<project>/tables/<name>`),
    /// places it in the destination and returns its url there: the same url when that is free
    /// or holds an equal table, else the first free or equal `<name>_NNNN`. Returns `None` for
    /// anything else (external references, run tables), which callers keep as given.
    pub(crate) fn place_input_table(
        &mut self,
        from: &ReadTransaction,
        to: &WriteTransaction,
        url: &str,
    ) -> Result<Option<String>> {
        if let Some(placed) = self.input_tables.get(url) {
            return Ok(Some(placed.clone()));
        }
        let parts: Vec<&str> = url.split('/').collect();
        let [project, "tables", name] = parts.as_slice() else {
            return Ok(None);
        };
        let Some(source_id) = table::table_id(from, url)? else {
            return Ok(None);
        };
        let record = table::table_record(from, source_id, url)?;
        for n in 0..=10_000u32 {
            let candidate = match n {
                0 => url.to_string(),
                n => format!("{project}/tables/{}", names::rename_candidate(name, n - 1)),
            };
            let placed = match table::table_id(to, &candidate)? {
                None => {
                    catalog::ensure_project(to, project, time::now_us())?;
                    self.copy_table(from, to, source_id, &record, &candidate, 0, "")?;
                    true
                }
                Some(existing) => {
                    let other = table::table_record(to, existing, &candidate)?;
                    let equal =
                        self.tables_equal(from, source_id, &record, to, existing, &other)?;
                    if equal {
                        self.counts.tables_reused += 1;
                    } else if !self.rename_input_tables {
                        return Err(Error::AlreadyExists {
                            what: format!("input table {candidate} with other content"),
                        });
                    }
                    equal
                }
            };
            if placed {
                self.input_tables.insert(url.to_string(), candidate.clone());
                return Ok(Some(candidate));
            }
        }
        Err(Error::AlreadyExists {
            what: format!("every table {url}_NNNN"),
        })
    }

    /// Whether two tables hold the same schema and rows (compared by value, so chunking does
    /// not matter).
    fn tables_equal(
        &self,
        from: &ReadTransaction,
        id: u64,
        record: &TableRecord,
        to: &WriteTransaction,
        other_id: u64,
        other: &TableRecord,
    ) -> Result<bool> {
        if record.schema_json != other.schema_json
            || record.foreign_table_url != other.foreign_table_url
            || record.sealed_rows + record.tail_rows != other.sealed_rows + other.tail_rows
        {
            return Ok(false);
        }
        let options = table::ScanOptions::default();
        let ours = table::scan_record(self.source, from, id, record, &options)?;
        let theirs = table::scan_record(self.target, to, other_id, other, &options)?;
        let schema = match (ours.first(), theirs.first()) {
            (Some(batch), Some(_)) => batch.schema(),
            _ => return Ok(true),
        };
        let concat = |batches: &[arrow_array::RecordBatch]| {
            arrow_select::concat::concat_batches(&schema, batches).map_err(|e| Error::Corrupted {
                at: Location::Catalog,
                reason: format!("table {}: batches do not concatenate: {e}", record.url),
            })
        };
        Ok(concat(&ours)? == concat(&theirs)?)
    }
}

/// Checks every buffer of a tail entry against the entry's bytes: bounds and CRC.
fn check_tail_entry(entry: &TailRecord, url: &str) -> Result<()> {
    for node in &entry.nodes {
        for segment in node.validity.iter().chain(&node.buffers) {
            let bytes = usize::try_from(segment.offset)
                .ok()
                .zip(usize::try_from(segment.len).ok())
                .and_then(|(start, len)| entry.data.get(start..start.checked_add(len)?));
            let fits = bytes.is_some_and(|bytes| crc32fast::hash(bytes) == segment.crc32);
            if !fits {
                return Err(Error::Corrupted {
                    at: Location::Catalog,
                    reason: format!("table {url}: a tail buffer is out of bounds or fails its CRC"),
                });
            }
        }
    }
    Ok(())
}

impl Run {
    /// Copies the run into `dest` with its parameters, description, status, times, input
    /// tables and values, output values, blobs and metrics tables, in one commit of `dest`.
    /// Column bytes are copied with their CRCs checked on the way. Input tables of this run's
    /// store that the run references are copied too (or matched with an equal table already in
    /// `dest`, or placed under `<name>_NNNN` when a different table holds the name), and the
    /// references are rewritten. Metrics entries naming other runs' tables and external
    /// references are kept as given.
    ///
    /// The copy is named by `options` (default: the same project and name); a taken name
    /// follows `options.if_exists` (default raise). When `dest` is this run's own store
    /// handle, this is [`Run::copy`]. On error `dest` is unchanged.
    pub fn copy_to(&self, dest: &Store, options: &CopyOptions) -> Result<Run> {
        if self.store().same_store(dest) {
            return self.copy(options);
        }
        if options.destination_url.is_some()
            && (options.run_name.is_some() || options.project_name.is_some())
        {
            return Err(Error::InvalidInput {
                reason: "give a destination url or names, not both".into(),
            });
        }
        let (project, name) = match &options.destination_url {
            Some(url) => parse_run_url(url)?,
            None => (
                options
                    .project_name
                    .clone()
                    .unwrap_or_else(|| self.project().to_string()),
                options
                    .run_name
                    .clone()
                    .unwrap_or_else(|| self.name().to_string()),
            ),
        };
        for part in [&project, &name] {
            names::validate_name(part).map_err(|reason| Error::InvalidName {
                name: part.clone(),
                reason,
            })?;
        }
        let source = self.store();
        // A damaged source is reported as itself, carried past `write`: returned through it,
        // it would mark `dest` as having found its own catalog damaged (as in `merge_from`).
        let mut source_error = None;
        let result = source.read(|from| {
            dest.write("copy run to store", |to| {
                let mut transfer = Transfer::new(source, dest, to)?;
                let copied = match transfer.copy_run(
                    from,
                    to,
                    self.id(),
                    &project,
                    &name,
                    options.if_exists,
                ) {
                    Ok(copied) => copied,
                    Err(error @ Error::Corrupted { .. }) if transfer.source_damaged() => {
                        source_error = Some(error);
                        return Err(Error::InvalidInput {
                            reason: "the source is damaged".into(),
                        });
                    }
                    Err(error) => return Err(error),
                };
                transfer.finish(to)?;
                Ok(copied)
            })
        });
        let (id, name) = match (result, source_error) {
            (Err(_), Some(error)) => return Err(error.at_path(source.path())),
            (result, _) => result?,
        };
        Ok(Run::new(dest.clone(), id, project, name))
    }
}
