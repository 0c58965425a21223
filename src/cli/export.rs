//! `runstore export`: the whole store (or one project) as Parquet files laid out Hive-style,
//! so DuckDB, Polars and Spark read it with a glob:
//!
//! ```text
//! DIR/runs.parquet                                  one row per run
//! DIR/project=<project>/run=<run>/<table>.parquet   a run's metrics table
//! DIR/project=<project>/tables/<table>.parquet      a project's input table
//! ```
//!
//! Every name is escaped ([`escape_name`]) before it becomes a path component, so no project,
//! run or table name can write outside DIR, and no folder inside DIR is followed when it is a
//! symbolic link (the export stops with an error naming it). Each file is written under a new
//! temporary name in its directory (created exclusively, never through an existing link) and
//! renamed into place once complete; temporary files of killed exports are removed. No file
//! written is ever the store being exported, by any name (`super::files`). Files of earlier
//! exports that this one does not write are left alone, unless `--prune` asks for the files of
//! runs and tables the store no longer has to go (only files of this layout, never through a
//! link, never the store). Each file is one consistent snapshot of its table; a writer appending
//! during the export may land between two files.
//!
//! `--since TIME` refreshes an earlier export: `runs.parquet` is always written whole, and a
//! table only when it may have changed. The store keeps a modification time for runs, not for
//! tables, and rows a streaming writer appends (`run.log`) leave the run's time alone, so a
//! table is also written when its file is missing or holds another number of rows than the
//! table (tables only grow, except through a run change, which the time catches).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{
    ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use runstore::{RunInfo, Store, TableInfo, Value};

use super::open::open_read;
use super::text::human_bytes;

/// Export every table and a runs table as Parquet files, laid out Hive-style.
///
/// Layout: DIR/runs.parquet (one row per run: url, project, name, status, status_code,
/// created, last_modified, description, params and outputs as JSON text, output_count,
/// input_tables, and a params.<key> column per scalar parameter, nested keys joined with
/// dots); DIR/project=<p>/run=<r>/<table>.parquet (metrics tables);
/// DIR/project=<p>/tables/<table>.parquet (input tables). Names are escaped: bytes other
/// than ASCII letters, digits, '-', '_' and inner '.' become %XX, so no name can write
/// outside DIR. Each file appears complete (temporary name, then rename). Read one table
/// of every run with e.g. DuckDB: SELECT * FROM
/// read_parquet('DIR/project=*/run=*/metrics_0000.parquet', hive_partitioning=true).
///
/// A nightly refresh of a shared folder: --since 24h (or a time: 2026-12-01,
/// 2026-12-01T00:00:00Z, Unix seconds) writes runs.parquet whole (every run, so readers see the
/// whole catalog) and only the tables that may have changed: the metrics tables of runs
/// modified at or after TIME, and input tables created since or used by such a run (the store
/// keeps no modification time for a table). A table whose file is missing or holds another
/// number of rows than the table is written too (rows a streaming writer such as Python's
/// run.log appends do not change the run's last_modified). The files of a run deleted from the
/// store stay in DIR (runs.parquet no longer lists it) unless --prune removes them. With
/// --project, runs.parquet lists that project's runs only: give each project its own DIR.
///
/// Example: runstore export demo.runs out/ --format parquet --project cifar10-sweep
///
/// Nightly: runstore export team.runs /shared/runs-parquet --since 24h --prune
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// The directory to write into (created if missing).
    dir: PathBuf,
    /// The file format.
    #[arg(long, value_enum, default_value = "parquet")]
    format: ExportFormat,
    /// Only this project's runs and tables.
    #[arg(long)]
    project: Option<String>,
    /// Write only the tables that may have changed at or after TIME (runs.parquet is always
    /// written whole): an RFC 3339 time or date (2026-12-01T00:00:00Z, 2026-12-01), Unix
    /// seconds (1796083200), or a time ago: a whole number and s, m, h, d or w (24h, 7d).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    since: Option<i64>,
    /// Remove the files in DIR of runs and tables the store (the project, with --project) no
    /// longer has: only `<table>.parquet` files under project=*/run=*/ and project=*/tables/,
    /// never through a symbolic link; folders left empty go too.
    #[arg(long)]
    prune: bool,
}

/// Runs `export`.
pub fn run(args: Args) -> Result<ExitCode> {
    let Args {
        path,
        dir,
        format: ExportFormat::Parquet,
        project,
        since,
        prune,
    } = args;
    let store = open_read(&path)?;
    let options = ExportOptions {
        project: project.as_deref(),
        since_us: since,
        prune,
    };
    let report = export(&store, &dir, &options)?;
    let mut summary = format!(
        "exported {} runs and {} tables ({}) to {}",
        report.runs_written,
        report.tables,
        human_bytes(report.bytes),
        dir.display()
    );
    if let Some(since_us) = since {
        summary.push_str(&format!(
            "; skipped {} runs and {} tables unchanged since {}; runs.parquet lists all {} runs",
            report.runs - report.runs_written,
            report.tables_skipped,
            runstore::time::format_us(since_us),
            report.runs
        ));
    }
    if prune {
        summary.push_str(&format!("; pruned {} files", report.pruned));
    }
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `--since`: [`runstore::time::parse_instant_us`] against the current time; clap reports the
/// error (exit code 2).
fn parse_since(text: &str) -> std::result::Result<i64, String> {
    runstore::time::parse_instant_us(text, runstore::time::now_us()).ok_or_else(|| {
        "expected an RFC 3339 time or date (2026-12-01T00:00:00Z, 2026-12-01), Unix seconds \
         (1796083200), or a time ago: a whole number and s, m, h, d or w (24h, 7d)"
            .to_string()
    })
}

/// Output formats of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Apache Parquet (zstd-compressed).
    Parquet,
}

/// Longest escaped name used as a path component. Most file systems allow 255 bytes; the
/// margin leaves room for the `.parquet` suffix and the temporary-file prefix.
const COMPONENT_BYTES_MAX: usize = 200;
/// Most flattened `params.<key>` columns in `runs.parquet`; past this, params stay only in the
/// `params` JSON column (a store whose runs each have their own keys would otherwise make a
/// table of mostly nulls that some readers refuse).
const PARAM_COLUMNS_MAX: usize = 1000;

/// What to export.
#[derive(Debug, Default)]
pub struct ExportOptions<'a> {
    /// Only this project's runs and tables.
    pub project: Option<&'a str>,
    /// Only tables that may have changed at or after this time (microseconds since the Unix
    /// epoch); `runs.parquet` is written whole either way.
    pub since_us: Option<i64>,
    /// Remove the files of runs and tables the store no longer has.
    pub prune: bool,
}

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// Runs in `runs.parquet`.
    pub runs: u64,
    /// Runs whose tables were written: every run, or with `--since` those modified since (or
    /// with a table file missing or behind).
    pub runs_written: u64,
    /// Table files written.
    pub tables: u64,
    /// Tables not written: unchanged since `--since`.
    pub tables_skipped: u64,
    /// Bytes of all files written.
    pub bytes: u64,
    /// Files removed by `--prune`.
    pub pruned: u64,
}

/// Escapes `name` into one safe path component: ASCII letters, digits, `-` and `_` stay; `.`
/// stays except first and last; every other byte (of the UTF-8 form) becomes `%XX`, as Hive
/// escapes partition values. A Windows device name (`CON`, `nul.txt`, ...) gets its first
/// letter escaped; a result longer than [`COMPONENT_BYTES_MAX`] is cut and ends in `~` and a
/// 64-bit FNV-1a hash of the whole name (`~` never appears otherwise, so escaped names stay
/// distinct). The result is never empty, `.` or `..`, and never contains a separator.
pub fn escape_name(name: &str) -> String {
    if name.is_empty() {
        return "~".into();
    }
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    for (i, &byte) in bytes.iter().enumerate() {
        let keep = byte.is_ascii_alphanumeric()
            || byte == b'-'
            || byte == b'_'
            || (byte == b'.' && i != 0 && i + 1 != bytes.len());
        if keep {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    let stem = out.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        out = format!("%{:02X}{}", out.as_bytes()[0], &out[1..]);
    }
    if out.len() > COMPONENT_BYTES_MAX {
        let mut cut = COMPONENT_BYTES_MAX - 17;
        // Never split a `%XX`: back up to the start of an escape that the cut would break.
        if let Some(percent) = out[..cut].rfind('%') {
            if percent + 3 > cut {
                cut = percent;
            }
        }
        out.truncate(cut);
        out.push_str(&format!("~{:016x}", fnv1a(bytes)));
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Where a table's file goes, relative to the export directory.
fn table_path(url: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = url.split('/').collect();
    let path = match parts.as_slice() {
        [project, "runs", run, table] => PathBuf::from(format!("project={}", escape_name(project)))
            .join(format!("run={}", escape_name(run)))
            .join(format!("{}.parquet", escape_name(table))),
        [project, "tables", table] => PathBuf::from(format!("project={}", escape_name(project)))
            .join("tables")
            .join(format!("{}.parquet", escape_name(table))),
        _ => bail!("table url {url:?} has neither form <project>/runs/<run>/<table> nor <project>/tables/<table>"),
    };
    Ok(path)
}

/// Exports the store (only `options.project`, if given) into `dir`.
pub fn export(store: &Store, dir: &Path, options: &ExportOptions) -> Result<ExportReport> {
    super::files::create_dirs_inside(dir, Path::new(""))?;
    let tables = store.tables(options.project)?;
    // Every file this export writes, checked before any is written: none may be the store.
    super::files::refuse_store(store.path(), &dir.join("runs.parquet"), "export file")?;
    for info in &tables {
        let path = dir.join(table_path(&info.url)?);
        super::files::refuse_store(store.path(), &path, "export file")?;
    }
    let (runs_batch, run_infos) = runs_batch(store, options.project)?;
    let mut wanted = Vec::with_capacity(tables.len());
    let mut runs_written: BTreeSet<&str> = BTreeSet::new();
    match options.since_us {
        None => {
            wanted.extend(&tables);
            runs_written.extend(run_infos.iter().map(|info| info.url.as_str()));
        }
        Some(since_us) => {
            let changed = changed_since(&run_infos, &tables, since_us);
            for info in &tables {
                if changed.contains(info.url.as_str())
                    || !file_matches(dir, &table_path(&info.url)?, info.row_count)
                {
                    wanted.push(info);
                }
            }
            // Only runs `runs.parquet` lists: a run deleted since the tables were listed
            // is not counted.
            let listed: BTreeSet<&str> = run_infos.iter().map(|info| info.url.as_str()).collect();
            runs_written.extend(
                wanted
                    .iter()
                    .filter_map(|table| run_of(&table.url))
                    .filter(|run| listed.contains(run)),
            );
            runs_written.extend(
                run_infos
                    .iter()
                    .filter(|info| info.last_modified_us >= since_us)
                    .map(|info| info.url.as_str()),
            );
        }
    }
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(
            Some(wanted.len() as u64 + 1),
            ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} files, {msg} [{elapsed}]")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut report = ExportReport {
        runs: run_infos.len() as u64,
        runs_written: runs_written.len() as u64,
        tables_skipped: (tables.len() - wanted.len()) as u64,
        ..ExportReport::default()
    };
    report.bytes += write_parquet(
        store,
        dir,
        Path::new("runs.parquet"),
        runs_batch.schema(),
        std::slice::from_ref(&runs_batch),
    )?;
    progress.inc(1);
    progress.set_message(super::text::human_bytes(report.bytes));
    for info in wanted {
        let path = table_path(&info.url)?;
        let table = store.table(&info.url)?;
        let batches = table.scan()?;
        let written = write_parquet(store, dir, &path, info.schema.clone(), &batches)
            .with_context(|| format!("exporting table {}", info.url))?;
        report.tables += 1;
        report.bytes += written;
        progress.inc(1);
        progress.set_message(super::text::human_bytes(report.bytes));
    }
    progress.finish_and_clear();
    if options.prune {
        let keep: BTreeSet<PathBuf> = tables
            .iter()
            .map(|info| table_path(&info.url))
            .collect::<Result<_>>()?;
        report.pruned = prune(store, dir, options.project, &keep)?;
    }
    Ok(report)
}

/// The urls of the tables that may have changed at or after `since_us`: the metrics tables of
/// runs modified since, input tables created since, and the input tables those runs use (as
/// inputs or joined to their metrics tables), which the store gives no modification time.
fn changed_since<'a>(
    runs: &'a [RunInfo],
    tables: &'a [TableInfo],
    since_us: i64,
) -> BTreeSet<&'a str> {
    let mut changed = BTreeSet::new();
    let changed_runs: BTreeSet<&str> = runs
        .iter()
        .filter(|info| info.last_modified_us >= since_us)
        .map(|info| info.url.as_str())
        .collect();
    for info in runs
        .iter()
        .filter(|info| changed_runs.contains(info.url.as_str()))
    {
        changed.extend(info.input_tables.iter().map(String::as_str));
    }
    for info in tables {
        let run_changed = run_of(&info.url).is_some_and(|run| changed_runs.contains(run));
        if run_changed || info.created_us >= since_us {
            changed.insert(info.url.as_str());
            if run_changed {
                changed.extend(info.foreign_table_url.as_deref());
            }
        }
    }
    changed
}

/// The run url `<project>/runs/<run>` of a metrics table's url; `None` for an input table.
fn run_of(table_url: &str) -> Option<&str> {
    let (run, _table) = table_url.rsplit_once('/')?;
    let mut parts = run.split('/');
    let is_run = matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(_), Some("runs"), Some(_), None)
    );
    is_run.then_some(run)
}

/// Whether `dir/relative` is a regular Parquet file (reached through no symbolic link) of
/// `rows` rows; anything else (missing, a link, unreadable, another count) is written again.
fn file_matches(dir: &Path, relative: &Path, rows: u64) -> bool {
    let mut path = dir.to_path_buf();
    for component in relative.components() {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if !metadata.file_type().is_symlink() => {}
            _ => return false,
        }
    }
    let Ok(file) = std::fs::File::open(&path) else {
        return false;
    };
    let Ok(reader) = SerializedFileReader::new(file) else {
        return false;
    };
    u64::try_from(reader.metadata().file_metadata().num_rows()) == Ok(rows)
}

/// Removes the table files under `dir` (under `project`'s folder only, if given) that `keep`
/// does not list: regular `*.parquet` files in `project=*/run=*/` and `project=*/tables/`,
/// never through a symbolic link and never the store; then the folders this left empty.
/// Returns how many files went.
fn prune(
    store: &Store,
    dir: &Path,
    project: Option<&str>,
    keep: &BTreeSet<PathBuf>,
) -> Result<u64> {
    let only = project.map(|p| format!("project={}", escape_name(p)));
    let mut removed = 0;
    for project_dir in real_dirs(dir)? {
        let Some(project_name) = project_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let in_scope = match &only {
            Some(only) => project_name == only,
            None => project_name.starts_with("project="),
        };
        if !in_scope {
            continue;
        }
        for table_dir in real_dirs(&project_dir)? {
            let Some(table_dir_name) = table_dir.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if table_dir_name != "tables" && !table_dir_name.starts_with("run=") {
                continue;
            }
            let entries = std::fs::read_dir(&table_dir)
                .with_context(|| format!("reading {}", table_dir.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", table_dir.display()))?;
                let path = entry.path();
                let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
                let is_table = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.ends_with(".parquet") && !name.starts_with('.'));
                let relative = PathBuf::from(project_name)
                    .join(table_dir_name)
                    .join(entry.file_name());
                if !is_file
                    || !is_table
                    || keep.contains(&relative)
                    || super::files::same_file(store.path(), &path)
                {
                    continue;
                }
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
                removed += 1;
            }
            // Fails, as it should, when anything is left in the folder.
            let _ = std::fs::remove_dir(&table_dir);
        }
        let _ = std::fs::remove_dir(&project_dir);
    }
    Ok(removed)
}

/// The folders in `dir` that are folders themselves, not symbolic links to one.
fn real_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `batches` as one Parquet file at `dir/relative` (its folders created inside `dir`,
/// never through a symbolic link), through a new temporary file renamed into place. Returns the
/// file's size.
fn write_parquet(
    store: &Store,
    dir: &Path,
    relative: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<u64> {
    let folder = super::files::create_dirs_inside(dir, relative.parent().unwrap_or(Path::new("")))?;
    let file_name = relative
        .file_name()
        .with_context(|| format!("{} names no file", relative.display()))?;
    let path = folder.join(file_name);
    super::files::write_file_replacing(store.path(), &path, "export file", |file| {
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let mut writer = ArrowWriter::try_new(&mut *file, schema, Some(properties))?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.close()?;
        Ok(file
            .metadata()
            .with_context(|| format!("reading the size of {}", path.display()))?
            .len())
    })
}

/// One row per run: attributes, params and outputs as JSON text, and `params.<key>` columns
/// for every scalar leaf of the params (nested keys joined with dots). Also returns the runs.
fn runs_batch(store: &Store, project: Option<&str>) -> Result<(RecordBatch, Vec<RunInfo>)> {
    let runs = store.runs(project)?;
    let mut url = StringBuilder::new();
    let mut projects = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut status_code = Vec::new();
    let mut created = Vec::new();
    let mut last_modified = Vec::new();
    let mut description = StringBuilder::new();
    let mut params_json = StringBuilder::new();
    let mut outputs_json = StringBuilder::new();
    let mut output_count = Vec::new();
    let mut input_tables = StringBuilder::new();
    let mut flat: Vec<BTreeMap<String, Value>> = Vec::with_capacity(runs.len());
    let mut infos = Vec::with_capacity(runs.len());
    for run in &runs {
        let info = run.info()?;
        let outputs: Vec<serde_json::Value> =
            run.output_values()?.iter().map(Value::to_json).collect();
        url.append_value(&info.url);
        projects.append_value(&info.project);
        name.append_value(&info.name);
        status.append_value(info.status.name());
        status_code.push(info.status.code());
        created.push(info.created_us);
        last_modified.push(info.last_modified_us);
        description.append_value(&info.description);
        params_json.append_value(info.parameters.to_json().to_string());
        outputs_json.append_value(serde_json::Value::Array(outputs).to_string());
        output_count.push(info.output_count);
        input_tables.append_value(serde_json::json!(info.input_tables).to_string());
        let mut leaves = BTreeMap::new();
        flatten("", &info.parameters, &mut leaves);
        flat.push(leaves);
        infos.push(info);
    }
    let utc = Some(Arc::<str>::from("UTC"));
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, utc.clone());
    let mut fields = vec![
        Field::new("url", DataType::Utf8, false),
        Field::new("project", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("status_code", DataType::UInt8, false),
        Field::new("created", timestamp.clone(), false),
        Field::new("last_modified", timestamp, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("params", DataType::Utf8, false),
        Field::new("outputs", DataType::Utf8, false),
        Field::new("output_count", DataType::UInt64, false),
        Field::new("input_tables", DataType::Utf8, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(url.finish()),
        Arc::new(projects.finish()),
        Arc::new(name.finish()),
        Arc::new(status.finish()),
        Arc::new(UInt8Array::from(status_code)),
        Arc::new(TimestampMicrosecondArray::from(created).with_timezone_opt(utc.clone())),
        Arc::new(TimestampMicrosecondArray::from(last_modified).with_timezone_opt(utc)),
        Arc::new(description.finish()),
        Arc::new(params_json.finish()),
        Arc::new(outputs_json.finish()),
        Arc::new(UInt64Array::from(output_count)),
        Arc::new(input_tables.finish()),
    ];
    let keys: std::collections::BTreeSet<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    if keys.len() <= PARAM_COLUMNS_MAX {
        for key in keys {
            let values: Vec<Option<&Value>> = flat.iter().map(|m| m.get(key)).collect();
            let column = param_column(&values);
            fields.push(Field::new(
                format!("params.{key}"),
                column.data_type().clone(),
                true,
            ));
            columns.push(column);
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    Ok((batch, infos))
}

/// Collects the non-map leaves of `value` under dotted keys.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Map(map) => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        leaf if !prefix.is_empty() => {
            out.insert(prefix.to_string(), leaf.clone());
        }
        _ => {}
    }
}

/// One `params.<key>` column: Boolean, Int64 or Float64 when every present value is of that
/// kind (integers and floats together make Float64), else Utf8 (strings as themselves, other
/// values as JSON text).
fn param_column(values: &[Option<&Value>]) -> ArrayRef {
    let present = || values.iter().flatten();
    if present().all(|v| matches!(v, Value::Bool(_))) {
        let mut builder = BooleanBuilder::new();
        for value in values {
            builder.append_option(value.and_then(|v| v.as_bool()));
        }
        return Arc::new(builder.finish());
    }
    if present().all(|v| matches!(v, Value::Int(_))) {
        let mut builder = Int64Builder::new();
        for value in values {
            builder.append_option(value.and_then(|v| v.as_i64()));
        }
        return Arc::new(builder.finish());
    }
    if present().all(|v| matches!(v, Value::Int(_) | Value::Float(_))) {
        let mut builder = Float64Builder::new();
        for value in values {
            builder.append_option(value.and_then(|v| v.as_f64()));
        }
        return Arc::new(builder.finish());
    }
    let texts: Vec<Option<String>> = values
        .iter()
        .map(|value| {
            value.map(|v| match v {
                Value::Str(text) => text.clone(),
                other => other.to_json().to_string(),
            })
        })
        .collect();
    Arc::new(StringArray::from(texts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    #[test]
    fn escaped_names_are_one_safe_component() {
        let long = "x".repeat(300);
        let long_escapes = "/".repeat(256);
        let hostile = [
            "",
            ".",
            "..",
            "...",
            "../etc",
            "..\\x",
            "a/b",
            "a\\b",
            "/abs",
            "C:\\x",
            "a=b",
            "%2F",
            "100%",
            "\0",
            "a\nb",
            "\u{7f}",
            " ",
            "trail.",
            "trail ",
            ".hidden",
            "CON",
            "con.txt",
            "Nul",
            "com1",
            "LPT9.log",
            "naïve",
            "日本",
            "a:b",
            "a*b?",
            "<>|\"",
            "~",
            &long,
            &long_escapes,
            "=..",
        ];
        let mut seen = std::collections::HashSet::new();
        for name in hostile {
            let escaped = escape_name(name);
            assert!(!escaped.is_empty(), "{name:?}");
            assert!(escaped.len() <= COMPONENT_BYTES_MAX, "{name:?}: {escaped}");
            assert!(
                escaped
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.%~".contains(&b)),
                "{name:?}: {escaped}"
            );
            assert!(
                !escaped.starts_with('.') && !escaped.ends_with('.'),
                "{name:?}"
            );
            let components: Vec<Component> = Path::new(&escaped).components().collect();
            assert!(
                matches!(components.as_slice(), [Component::Normal(_)]),
                "{name:?}: {escaped}"
            );
            assert!(seen.insert(escaped.clone()), "{name:?} collides: {escaped}");
        }
        assert_eq!(escape_name("resnet18-lr0.01"), "resnet18-lr0.01");
        assert_eq!(escape_name(".."), "%2E%2E");
        assert_eq!(escape_name("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape_name("CON"), "%43ON");
        assert_eq!(escape_name(&long), escape_name(&long));
        assert_ne!(escape_name(&long), escape_name(&"x".repeat(299)));
    }

    #[test]
    fn table_paths_stay_under_their_partition() {
        let path = table_path("../runs/../..").unwrap();
        assert_eq!(
            path,
            PathBuf::from("project=%2E%2E/run=%2E%2E/%2E%2E.parquet")
        );
        assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
        assert_eq!(
            table_path("p/tables/t").unwrap(),
            PathBuf::from("project=p/tables/t.parquet")
        );
        assert!(table_path("p/other/t").is_err());
    }

    #[test]
    fn run_of_names_the_run_of_metrics_tables_only() {
        assert_eq!(run_of("p/runs/r/metrics_0000"), Some("p/runs/r"));
        assert_eq!(run_of("p/tables/inputs"), None);
        assert_eq!(run_of("p/runs/r"), None);
        assert_eq!(run_of("p/x/r/t"), None);
        assert_eq!(run_of("p/runs/r/extra/t"), None);
    }

    #[test]
    fn param_columns_pick_the_narrowest_type() {
        let int = Value::from(1i64);
        let float = Value::from(0.5);
        let text = Value::from("adam");
        let column = param_column(&[Some(&int), None, Some(&float)]);
        assert_eq!(column.data_type(), &DataType::Float64);
        let column = param_column(&[Some(&int), None]);
        assert_eq!(column.data_type(), &DataType::Int64);
        let column = param_column(&[Some(&int), Some(&text)]);
        assert_eq!(column.data_type(), &DataType::Utf8);
    }
}
