//! The crate's one public error type.
//!
//! Every failure is an [`Error`] variant that names what happened and carries its context as
//! fields; an underlying error goes in `#[source]`, not the message. Messages are lowercase
//! with no final period. Bytes read from disk that fail a check become [`Error::Corrupted`],
//! never a panic.

use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in runstore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file exists but was not written by runstore.
    #[error("{path} is not a runstore store")]
    NotAStore {
        /// The file.
        path: PathBuf,
    },
    /// The file is a store of a format version this build cannot read.
    #[error("{path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found on disk.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The store's catalog layout is newer than this build knows (written by a newer runstore).
    #[error(
        "{path} has catalog version {found}, written by a newer runstore; this build reads \
         catalog versions up to {supported}"
    )]
    UnsupportedCatalogVersion {
        /// The file.
        path: PathBuf,
        /// The catalog version found.
        found: u64,
        /// The newest catalog version this build reads and writes.
        supported: u64,
    },
    /// Bytes on disk failed a check (checksum, bounds, structure).
    #[error("store is corrupted {at}: {reason}")]
    Corrupted {
        /// Where the bad bytes are: a file offset, a catalog record, or the catalog as a whole.
        at: Location,
        /// What check failed.
        reason: String,
    },
    /// An operating-system I/O call failed.
    #[error("{op} failed on {path}")]
    Io {
        /// The operation, e.g. "write column segment".
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The catalog database reported an error.
    #[error("database {op} failed")]
    Database {
        /// What the store was doing.
        op: &'static str,
        /// The database's error.
        #[source]
        source: DatabaseError,
    },
    /// A writer crashed and left the file needing recovery, and it is still so where a clean
    /// file was required ([`crate::Store::repair`] checks its own work). Read-only opens do not
    /// return this: they read the last durable commit, recovered in memory.
    #[error(
        "{path} needs recovery after a writer stopped without closing it; open it once for \
         writing (e.g. `runstore repair {path}`)"
    )]
    NeedsRepair {
        /// The file.
        path: PathBuf,
    },
    /// The store was written by an older runstore whose catalog layout must be upgraded, which
    /// only a writable open does (once, in one commit).
    #[error(
        "{path} has catalog version {found}, written by an older runstore: open it once for \
         writing (e.g. `runstore upgrade {path}`) to upgrade it, then it opens read-only too"
    )]
    NeedsUpgrade {
        /// The file.
        path: PathBuf,
        /// The catalog version found.
        found: u64,
    },
    /// Another handle or process holds the store open in a way that excludes this open (a
    /// writer, or shared writers for a single writer's open and the other way round).
    #[error("{path} is already open for writing by {holder}")]
    AlreadyOpen {
        /// The file.
        path: PathBuf,
        /// Who holds it, as far as the operating system tells.
        holder: Holder,
    },
    /// A write was attempted on a store opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
    /// A project, run, table or blob name breaks the naming rules.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A url could not be parsed as `<project>/runs/<run>` (or the form the call wants).
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The url given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The named object does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, e.g. "run p/runs/r".
        what: String,
    },
    /// The target already exists and the call was asked not to replace it.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What exists, e.g. "run p/runs/r".
        what: String,
    },
    /// A status code outside 3LC's seven.
    #[error("invalid run status code {code}; valid codes are 1 to 7")]
    InvalidStatus {
        /// The code given.
        code: f64,
    },
    /// No active run is set on this store handle.
    #[error("no active run: call init() or set_active_run() first")]
    NoActiveRun,
    /// An argument is out of range or malformed.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// Metrics data does not have one row per row of its input table.
    #[error("the metrics data has {found} rows but the input table has {expected}")]
    RowCountMismatch {
        /// Rows of the input table.
        expected: u64,
        /// Rows of the metrics data.
        found: u64,
    },
    /// A batch does not fit a table's schema.
    #[error("batch does not fit table {table}{}: {reason}", if column.is_empty() { String::new() } else { format!(", column {column}") })]
    SchemaMismatch {
        /// The table's url.
        table: String,
        /// The column at fault (empty when the whole batch is).
        column: String,
        /// What does not fit.
        reason: String,
    },
    /// A filter, sort key or query does not parse.
    #[error("query error at column {column}: {message}")]
    InvalidQuery {
        /// 1-based column (in characters) of the offending token.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A run query (filter, sort key or value column) names a parameter or output key that no
    /// run of the store holds: most likely a typo, so it is an error rather than an empty or
    /// all-null answer. A key only some runs hold is not one.
    #[error("no run has {kind} '{key}'{}", suggestion.as_ref().map_or_else(String::new, |s| format!(" (did you mean '{s}'?)")))]
    UnknownKey {
        /// `"parameter"` or `"output"`.
        kind: &'static str,
        /// The key path as written after `params.` or `outputs.`, its keys joined by `.`.
        key: String,
        /// The key of the same kind it most likely mistypes, if one is close.
        suggestion: Option<String>,
    },
    /// A value read from or written to the catalog could not be encoded or decoded.
    #[error("invalid value: {reason}")]
    InvalidValue {
        /// What is wrong.
        reason: String,
    },
}

/// Where in a store bytes failed a check: the place [`Error::Corrupted`] names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A physical byte offset in the store file: a superblock slot, a column segment, an
    /// extent.
    Offset(u64),
    /// A record of the catalog: the catalog table and the record's key (as the check that
    /// failed shows it, e.g. hex of its bytes).
    Record {
        /// The catalog table, e.g. `runs`.
        table: String,
        /// The record's key.
        key: String,
    },
    /// Somewhere in the catalog, position unknown (a page of the catalog database failed its
    /// own check, or a decoded record was not told its key).
    Catalog,
}

impl std::fmt::Display for Location {
    /// The words after "store is corrupted": "at byte 4096", "in catalog table runs, key 01",
    /// "in the catalog".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Offset(offset) => write!(f, "at byte {offset}"),
            Location::Record { table, key } => write!(f, "in catalog table {table}, key {key}"),
            Location::Catalog => write!(f, "in the catalog"),
        }
    }
}

/// Who holds a store open for writing, in [`Error::AlreadyOpen`]: found from the store's
/// locks where the operating system lists them by process (Linux's `/proc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holder {
    /// Another handle of this process (a store opened twice, a notebook cell run again).
    ThisProcess,
    /// The process with this id.
    Process {
        /// Its process id.
        pid: u32,
    },
    /// Another process that cannot be told (no `/proc`, or another user's process).
    Unknown,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::ThisProcess => f.write_str("this process (another handle of it)"),
            Holder::Process { pid } => write!(f, "process {pid}"),
            Holder::Unknown => f.write_str("another process"),
        }
    }
}

impl Error {
    /// The file offset of a [`Error::Corrupted`] error that has one.
    pub fn corrupted_offset(&self) -> Option<u64> {
        match self {
            Error::Corrupted {
                at: Location::Offset(offset),
                ..
            } => Some(*offset),
            _ => None,
        }
    }

    /// The error for a failed redb call made while doing `op`: redb's corruption and I/O errors
    /// become [`Error::Corrupted`] and [`Error::Io`], anything else [`Error::Database`].
    pub(crate) fn db(op: &'static str, source: impl Into<redb::Error>) -> Error {
        Error::db_at(op, Path::new(""), source)
    }

    /// [`Error::db`] for a call on the store file at `path`: an I/O error names it.
    pub(crate) fn db_at(op: &'static str, path: &Path, source: impl Into<redb::Error>) -> Error {
        let source = source.into();
        match source {
            redb::Error::Corrupted(reason) => Error::Corrupted {
                at: Location::Catalog,
                reason: format!("{op}: {reason}"),
            },
            // A failed read, write or sync underneath redb is an I/O error of the store's file
            // (ENOSPC, EIO): say so, so callers can tell a full disk from a broken database.
            // Callers that know the file pass it (`db_at`); the others run inside the store's
            // `read`/`write`, which fill it in (`Error::at_path`).
            redb::Error::Io(source) => Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            },
            source => Error::Database {
                op,
                source: DatabaseError(source),
            },
        }
    }

    /// Names `path` in an I/O error that does not name its file yet.
    pub(crate) fn at_path(self, path: &Path) -> Error {
        match self {
            Error::Io {
                op,
                path: empty,
                source,
            } if empty.as_os_str().is_empty() => Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            },
            other => other,
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Error {
        Error::NotFound { what: what.into() }
    }
}

/// An error of the embedded catalog database (redb), kept opaque so that the database can
/// change under the public API. Its message is the database's; [`source`] is the database
/// error's own source, if any.
///
/// [`source`]: std::error::Error::source
pub struct DatabaseError(redb::Error);

impl DatabaseError {
    /// Wraps redb's error.
    pub(crate) fn new(source: impl Into<redb::Error>) -> DatabaseError {
        DatabaseError(source.into())
    }

    /// redb's error, for the few places that branch on it (a table that does not exist yet).
    pub(crate) fn redb(&self) -> &redb::Error {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Turns a redb result into this crate's, naming what the store was doing: the one way a
/// redb error becomes an [`Error`] at a call site (`txn.open_table(RUNS).db("open runs")?`).
pub(crate) trait DbResultExt<T> {
    /// Maps the error with [`Error::db`], `op` naming the operation.
    fn db(self, op: &'static str) -> Result<T>;

    /// Maps the error with [`Error::db_at`]: an I/O error names `path`, the store file.
    fn db_at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T, E: Into<redb::Error>> DbResultExt<T> for std::result::Result<T, E> {
    fn db(self, op: &'static str) -> Result<T> {
        self.map_err(|e| Error::db(op, e))
    }

    fn db_at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::db_at(op, path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(at: Location, expected: &str) {
        let error = Error::Corrupted {
            at,
            reason: "value does not match its checksum".into(),
        };
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn corrupted_names_where() {
        check(
            Location::Offset(4096),
            "store is corrupted at byte 4096: value does not match its checksum",
        );
        check(
            Location::Record {
                table: "runs".into(),
                key: "0100000000000000".into(),
            },
            "store is corrupted in catalog table runs, key 0100000000000000: value does not \
             match its checksum",
        );
        check(
            Location::Catalog,
            "store is corrupted in the catalog: value does not match its checksum",
        );
    }

    #[test]
    fn corrupted_offset_only_for_offsets() {
        let at = |at| Error::Corrupted {
            at,
            reason: String::new(),
        };
        assert_eq!(at(Location::Offset(7)).corrupted_offset(), Some(7));
        assert_eq!(at(Location::Catalog).corrupted_offset(), None);
        assert_eq!(Error::ReadOnly.corrupted_offset(), None);
    }

    #[test]
    fn database_error_shows_redb_message() {
        let error = Error::db(
            "open runs table",
            redb::Error::TableDoesNotExist("runs".into()),
        );
        let Error::Database { op, source } = &error else {
            panic!("expected Database, got {error:?}");
        };
        assert_eq!(*op, "open runs table");
        assert_eq!(
            source.to_string(),
            redb::Error::TableDoesNotExist("runs".into()).to_string()
        );
        assert!(std::error::Error::source(source).is_none());
    }
}
