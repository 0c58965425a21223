//! `runstore append`: rows from JSON lines (stdin or a file), Parquet, Arrow IPC or CSV into a
//! metrics table of a run, all in one commit. The reading, inference and exact conversion are
//! the library's (`runstore::ingest`); this module picks the format and opens the input.
//!
//! `--table T` names the table `<run url>/T`: created (and attached to the run) on first use,
//! appended to afterwards. A new table's schema is inferred from the whole input (JSON lines,
//! CSV) or taken from the file (Parquet, Arrow); an existing table's schema is kept, and a value
//! that does not fit its column exactly is an error naming its line (or row) and column, with
//! nothing appended.

use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use runstore::ingest::{self, Format, Source};
use runstore::{AppendReport, Store};

use super::open::open_for_writing;

/// Append rows to a metrics table of a run, all in one commit (nothing on error).
///
/// The table is `<run url>/<TABLE>`: created and attached to the run on first use (its
/// schema inferred from the input), appended to afterwards (the input is read with the
/// table's schema; a row that does not fit is an error naming its line). Input: JSON lines
/// on stdin (one object per line; a list of numbers of one fixed length, not all integers,
/// becomes FixedSizeList<Float32>), or --from a .jsonl, .parquet, .arrow (IPC file or
/// stream) or .csv file. Prints the rows appended on stderr.
///
/// Example: runstore append exp.runs mnist/runs/baseline --table val_metrics < rows.jsonl
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
    /// The table's name under the run (or its whole url).
    #[arg(long)]
    table: String,
    /// Read rows from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// The input format (default: from the file's extension; JSON lines on stdin).
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    /// Write alongside other processes that opened the store shared (a sweep's trials:
    /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
    #[arg(long)]
    shared: bool,
}

/// Runs `append`.
pub fn run(args: Args, wait: Duration) -> Result<ExitCode> {
    let Args {
        path,
        run_url,
        table,
        from,
        format,
        shared,
    } = args;
    let store = open_for_writing(&path, shared, wait)?;
    let report = append(&store, &run_url, &table, from.as_deref(), format)?;
    eprintln!(
        "appended {} rows to {}{}",
        report.rows_appended,
        report.table.url,
        if report.created { " (created)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

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
    fn format(self) -> Format {
        match self {
            InputFormat::Jsonl => Format::JsonLines,
            InputFormat::Parquet => Format::Parquet,
            InputFormat::Arrow => Format::Arrow,
            InputFormat::Csv => Format::Csv,
        }
    }
}

/// The format a file's extension names.
fn format_of_path(path: &Path) -> Result<Format> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .and_then(Format::of_extension)
    {
        Some(format) => Ok(format),
        None => bail!(
            "cannot tell the format of {} from its extension; pass --format",
            path.display()
        ),
    }
}

/// Copies stdin into an unnamed temporary file (created, then unlinked at once), so a new
/// table's schema can be inferred from the whole input without holding it in memory.
fn spool_stdin() -> Result<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!(
            ".runstore-append-{}-{}-{attempt}",
            std::process::id(),
            runstore::names::random_seed()
        ));
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("creating {}", path.display()))
            }
        };
        let _ = std::fs::remove_file(&path);
        std::io::copy(&mut std::io::stdin().lock(), &mut file).context("reading stdin")?;
        file.flush().context("spooling stdin")?;
        file.rewind().context("spooling stdin")?;
        return Ok(file);
    }
    bail!("cannot create a temporary file in {}", dir.display())
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
    let format = match (format, from) {
        (Some(format), _) => format.format(),
        (None, Some(path)) => format_of_path(path)?,
        (None, None) => Format::JsonLines,
    };
    let (source, name) = match from {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            (Source::File(file), path.display().to_string())
        }
        None => {
            let name = "<stdin>".to_string();
            match format {
                Format::Parquet | Format::Csv => {
                    bail!("--format parquet and csv read a file: pass --from FILE")
                }
                // A new table reads JSON lines twice (infer, then decode).
                Format::JsonLines if ingest::table_schema(&run, table)?.is_none() => {
                    (Source::File(spool_stdin()?), name)
                }
                _ => (Source::Stream(Box::new(std::io::stdin())), name),
            }
        }
    };
    Ok(ingest::append(&run, table, format, source, &name)?)
}
