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
//! exports that this one does not write are left alone. Each file is one consistent snapshot of
//! its table; a writer appending during the export may land between two files.

use std::collections::BTreeMap;
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
use runstore::{Store, Value};

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
/// Example: runstore export demo.runs out/ --format parquet --project cifar10-sweep
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
}

/// Runs `export`.
pub fn run(args: Args) -> Result<ExitCode> {
    let Args {
        path,
        dir,
        format: ExportFormat::Parquet,
        project,
    } = args;
    let store = open_read(&path)?;
    let report = export(&store, &dir, project.as_deref())?;
    eprintln!(
        "exported {} runs and {} tables ({}) to {}",
        report.runs,
        report.tables,
        human_bytes(report.bytes),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
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

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// Runs in `runs.parquet`.
    pub runs: u64,
    /// Table files written.
    pub tables: u64,
    /// Bytes of all files written.
    pub bytes: u64,
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

/// Exports the store (only `project`, if given) into `dir`.
pub fn export(store: &Store, dir: &Path, project: Option<&str>) -> Result<ExportReport> {
    super::files::create_dirs_inside(dir, Path::new(""))?;
    let tables = store.tables(project)?;
    // Every file this export writes, checked before any is written: none may be the store.
    super::files::refuse_store(store.path(), &dir.join("runs.parquet"), "export file")?;
    for info in &tables {
        let path = dir.join(table_path(&info.url)?);
        super::files::refuse_store(store.path(), &path, "export file")?;
    }
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(
            Some(tables.len() as u64 + 1),
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
    let mut report = ExportReport::default();
    let (runs_batch, runs) = runs_batch(store, project)?;
    report.runs = runs;
    report.bytes += write_parquet(
        store,
        dir,
        Path::new("runs.parquet"),
        runs_batch.schema(),
        std::slice::from_ref(&runs_batch),
    )?;
    progress.inc(1);
    progress.set_message(super::text::human_bytes(report.bytes));
    for info in &tables {
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
    Ok(report)
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
/// for every scalar leaf of the params (nested keys joined with dots).
fn runs_batch(store: &Store, project: Option<&str>) -> Result<(RecordBatch, u64)> {
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
    Ok((batch, runs.len() as u64))
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
