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
use std::path::Path;

use anyhow::{bail, Context, Result};
use runstore::ingest::{self, Format, Source};
use runstore::{AppendReport, Store};

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
