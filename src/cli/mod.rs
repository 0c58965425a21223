//! Commands of the `runstore` binary. Each command is a function from checked arguments to
//! output on stdout; errors go back to `main` as `anyhow::Error` with context.

mod append;
mod copy;
mod demo;
mod export;
mod files;
mod merge;
mod reduce;
mod scan;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use runstore::value::JsonError;
use runstore::{time, Run, RunInfo, Store, Value};

/// runstore: one transactional file for the runs of your ML experiments.
#[derive(Debug, Parser)]
#[command(
    name = "runstore",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 error, 2 bad usage, 3 `check` found problems.\nEvery command takes the store file first; `runstore <command> --help` shows an example."
)]
pub struct Args {
    /// When another process has the store open for writing, wait up to this many seconds for
    /// it to close instead of failing at once (every command that opens a store for writing:
    /// init, log, append, set-status, delete, copy, merge, reduce, vacuum, repair, upgrade,
    /// close-stale, demo, and check, which needs the writer gone for redb's integrity check).
    /// Commands that only read, and backup (which copies a snapshot beside a writer), never
    /// wait: a writer does not stop them.
    #[arg(long, global = true, value_name = "SECONDS")]
    wait: Option<f64>,
    #[command(subcommand)]
    command: Command,
}

/// `--wait`, set once at the start of [`run`].
static WAIT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Opens with `open`, retrying while another process holds the store for writing, for up to
/// `--wait` seconds (once without it).
fn retry_open(open: impl Fn() -> runstore::Result<Store>) -> runstore::Result<Store> {
    retry_while_open(open)
}

/// Calls `f` (which opens a store for writing first, and fails with
/// [`runstore::Error::AlreadyOpen`] before changing anything while another process has it
/// open), retrying for up to `--wait` seconds while it fails so (once without `--wait`).
fn retry_while_open<T>(open: impl Fn() -> runstore::Result<T>) -> runstore::Result<T> {
    let wait = WAIT.get().copied().unwrap_or_default();
    let deadline = std::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match open() {
            Err(runstore::Error::AlreadyOpen { .. }) if std::time::Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                std::thread::sleep(pause.min(left));
                pause = (pause * 2).min(std::time::Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a realistic demo store (default demo.runs) and print what is in it.
    ///
    /// Example: runstore demo /tmp/demo.runs
    Demo {
        /// Where to write it; an existing file there is replaced only when it is a store
        /// holding nothing but an earlier demo (its project cifar10-sweep), and no other
        /// process has it open for writing.
        path: Option<PathBuf>,
    },
    /// List projects with their run counts.
    ///
    /// Example: runstore projects demo.runs --json
    Projects {
        /// The store file.
        path: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List runs, optionally with columns of chosen values per run.
    ///
    /// Example: runstore runs demo.runs --filter "params.lr <= 0.05" --order-by "outputs.val_accuracy DESC" --columns params.lr,outputs.val_accuracy
    Runs {
        /// The store file.
        path: PathBuf,
        /// Only runs of this project.
        #[arg(long)]
        project: Option<String>,
        /// Only runs this filter selects: MLflow's search syntax plus OR, NOT and parentheses,
        /// e.g. "params.lr < 0.01 AND outputs.acc > 0.5".
        #[arg(long)]
        filter: Option<String>,
        /// Sort keys, e.g. "outputs.acc DESC, name"; nulls last.
        #[arg(long)]
        order_by: Option<String>,
        /// At most this many runs.
        #[arg(long)]
        limit: Option<u64>,
        /// Skip this many runs first.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Add a column per key, comma-separated: any identifier of the filter language, e.g.
        /// "params.lr,outputs.acc,outputs.loss.min,status"; quote a key holding a comma with
        /// backticks or double quotes (params.`a,b`). Empty where a run has no value.
        #[arg(long, value_name = "KEYS")]
        columns: Option<String>,
        /// One JSON object per run per line (url, project, name, status, status_code, stale, created,
        /// last_modified, description, params, outputs; with --columns also "columns", an
        /// object from each key as written to its value, null when absent). NaN and infinities,
        /// which JSON lacks, print as the strings "NaN", "Infinity" and "-Infinity".
        #[arg(long)]
        json: bool,
        /// CSV (RFC 4180): a header row, then a row per run (url, project, name, status,
        /// status_code, stale, created, last_modified, description, output_count, then the
        /// --columns keys; maps and lists as JSON text).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
    /// Show one run: attributes, parameters, inputs, outputs, metrics tables and blobs.
    ///
    /// Example: runstore show demo.runs cifar10-sweep/runs/resnet18-lr0.01 --json
    Show {
        /// The store file.
        path: PathBuf,
        /// `<project>/runs/<run>`.
        run_url: String,
        /// As one JSON object (NaN and infinities as the strings "NaN", "Infinity" and
        /// "-Infinity").
        #[arg(long)]
        json: bool,
    },
    /// List tables: a run's metrics tables, a project's tables, or every table.
    ///
    /// Example: runstore tables demo.runs cifar10-sweep/runs/resnet18-lr0.01
    Tables {
        /// The store file.
        path: PathBuf,
        /// A run url (`<project>/runs/<run>`) or a project name.
        scope: Option<String>,
        /// One JSON object per table.
        #[arg(long)]
        json: bool,
    },
    /// Print a table's rows, aggregates or a downsampled column.
    ///
    /// Examples:
    ///   runstore scan demo.runs cifar10-sweep/runs/resnet18-lr0.01/metrics_0000 \
    ///     --columns example_id,loss --where "loss > 2 AND predicted != 3" --limit 5 --format csv
    ///
    ///   runstore scan demo.runs cifar10-sweep/runs/resnet18-lr0.01/steps_0000 \
    ///     --group-by epoch --agg mean:loss,min:loss,count
    ///
    ///   runstore scan demo.runs cifar10-sweep/runs/resnet18-lr0.01/steps_0000 \
    ///     --downsample 100 --column loss --x step --format parquet --output loss.parquet
    #[command(verbatim_doc_comment)]
    Scan {
        /// The store file.
        path: PathBuf,
        /// The table's url.
        table_url: String,
        /// Only these columns, comma-separated.
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// Only rows this filter selects: the run filter language over column names, e.g.
        /// "loss < 0.5 AND split = 'val'"; a bare name on the right is a column.
        #[arg(long = "where", value_name = "EXPR")]
        where_: Option<String>,
        /// At most this many rows (after --where and --offset).
        #[arg(long)]
        limit: Option<u64>,
        /// Skip this many rows that pass --where first.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Only table rows at positions A..B (before --where).
        #[arg(long, value_name = "A..B", value_parser = scan::parse_rows)]
        rows: Option<std::ops::Range<u64>>,
        /// Group aggregates by this column (one output row per value).
        #[arg(long, requires = "agg")]
        group_by: Option<String>,
        /// Aggregates, comma-separated: count, count:COL, sum:COL, mean:COL, min:COL, max:COL.
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["downsample", "columns"])]
        agg: Option<Vec<String>>,
        /// Downsample --column into this many buckets (rows, count, min, max, last per bucket).
        #[arg(
            long,
            value_name = "BUCKETS",
            requires = "column",
            conflicts_with = "columns"
        )]
        downsample: Option<usize>,
        /// The numeric column to downsample.
        #[arg(long, requires = "downsample")]
        column: Option<String>,
        /// An x column (e.g. step) whose first and last value per bucket to add.
        #[arg(long, requires = "downsample")]
        x: Option<String>,
        /// Output format: table (aligned, for people), csv, json (lines; NaN and infinities as
        /// the strings "NaN", "Infinity", "-Infinity", a null as null or absent), arrow (Arrow
        /// IPC file), parquet.
        #[arg(long, value_enum, default_value = "table")]
        format: scan::Format,
        /// Write to this file (complete or not at all) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Format version, file size and counts.
    ///
    /// Example: runstore info demo.runs --json
    Info {
        /// The store file.
        path: PathBuf,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Create a run (and the store, if the file does not exist); prints the run's url.
    ///
    /// Example: runstore init exp.runs --project mnist --name baseline --param lr=0.01
    /// --param opt=adam
    Init {
        /// The store file.
        path: PathBuf,
        /// The project (created on first use).
        #[arg(long)]
        project: String,
        /// The run's name (default: a generated adjective-noun name; a taken name gets the
        /// first free `_NNNN` suffix).
        #[arg(long)]
        name: Option<String>,
        /// A parameter `key=value`; the value is read as JSON when it parses as JSON
        /// (`lr=0.01` is a number, `opt=adam` a string). Repeatable. JSON nested deeper than 64
        /// levels or holding an integer outside i64 is an error (quote a big integer to keep
        /// it as a string).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// The run's description.
        #[arg(long)]
        description: Option<String>,
        /// Write alongside other processes that opened the store shared (a sweep's trials:
        /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
        #[arg(long)]
        shared: bool,
    },
    /// Append an output value (a JSON object) to a run.
    ///
    /// Example: runstore log exp.runs mnist/runs/baseline --output '{"epoch":1,"loss":0.5}'
    Log {
        /// The store file.
        path: PathBuf,
        /// `<project>/runs/<run>`.
        run_url: String,
        /// The output value, a JSON object. Repeatable: all are appended in one commit.
        /// Integers must fit i64 and nesting 64 levels.
        #[arg(long, required = true)]
        output: Vec<String>,
        /// Write alongside other processes that opened the store shared (a sweep's trials:
        /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
        #[arg(long)]
        shared: bool,
    },
    /// Set a run's status (a name such as `completed` or a 3LC code 1-7).
    ///
    /// Example: runstore set-status exp.runs mnist/runs/baseline completed
    SetStatus {
        /// The store file.
        path: PathBuf,
        /// `<project>/runs/<run>`.
        run_url: String,
        /// COMPLETED, EMPTY, RUNNING, COLLECTING, POST_PROCESSING, PAUSED, CANCELLED, or 1-7.
        status: String,
        /// Write alongside other processes that opened the store shared (a sweep's trials:
        /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
        #[arg(long)]
        shared: bool,
    },
    /// Delete a run with its parameters, outputs, tables and blobs (space comes back with
    /// `vacuum`).
    ///
    /// Example: runstore delete exp.runs mnist/runs/baseline
    Delete {
        /// The store file.
        path: PathBuf,
        /// `<project>/runs/<run>`.
        run_url: String,
    },
    /// Rewrite the store into a new file, reclaiming space of deleted runs.
    ///
    /// Example: runstore vacuum exp.runs
    Vacuum {
        /// The store file.
        path: PathBuf,
    },
    /// Verify the superblocks, redb's page checksums, every catalog record and every blob
    /// checksum; exit 3 when a problem is found.
    ///
    /// Example: runstore check exp.runs && echo healthy
    Check {
        /// The store file.
        path: PathBuf,
    },
    /// Recover a store left open by a crashed writer (a writer open does the recovery).
    ///
    /// Example: runstore repair exp.runs
    Repair {
        /// The store file.
        path: PathBuf,
    },
    /// Upgrade a store written by an older runstore to this version's catalog layout, in one
    /// commit (any writing open does the same; a read-only open of an old store is refused).
    ///
    /// Example: runstore upgrade old.runs
    Upgrade {
        /// The store file.
        path: PathBuf,
    },
    /// Close stale runs: runs left RUNNING, COLLECTING or POST_PROCESSING by a process that is
    /// gone (same machine; runs from other hosts are never called stale). Prints each url.
    ///
    /// Example: runstore close-stale exp.runs --status cancelled
    CloseStale {
        /// The store file.
        path: PathBuf,
        /// Only runs of this project.
        #[arg(long)]
        project: Option<String>,
        /// The status to close them with.
        #[arg(long, default_value = "cancelled")]
        status: String,
        /// Only list them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the store consistently: byte for byte under the write lock, or, while another
    /// process is writing, one read snapshot copied into a new compact store. The copy opens
    /// and passes `check`; readers and the writer go on meanwhile.
    ///
    /// Example: runstore backup exp.runs /backups/exp-2026-11-22.runs
    Backup {
        /// The store file.
        path: PathBuf,
        /// The new file (must not exist).
        dest: PathBuf,
    },
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
    Append {
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
        format: Option<append::InputFormat>,
        /// Write alongside other processes that opened the store shared (a sweep's trials:
        /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
        #[arg(long)]
        shared: bool,
    },
    /// Copy a run into another store (created if missing), or within one store when both paths
    /// name the same file; prints the copy's url.
    ///
    /// Everything the run holds is copied: record, parameters, description, status, times,
    /// input tables and values, outputs, blobs and metrics tables (column bytes with their
    /// checksums checked). Input tables of the source store the run uses are copied too and
    /// the references rewritten. One commit of the destination: on error it is unchanged.
    ///
    /// Example: runstore copy job7.runs mnist/runs/baseline all.runs --as baseline-job7
    Copy {
        /// The store the run is in.
        src_store: PathBuf,
        /// `<project>/runs/<run>`.
        run_url: String,
        /// The store to copy it into.
        dest_store: PathBuf,
        /// The copy's name, or a whole `<project>/runs/<run>` url (default: the same url; in
        /// the same store, the first free `<name>_NNNN`).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// What to do when the destination run exists.
        #[arg(long, value_enum, default_value = "raise")]
        if_exists: copy::IfExists,
    },
    /// Merge whole stores into one: every project, run, input table, metrics table and blob of
    /// each source, one commit of DEST per source (DEST is created if missing).
    ///
    /// Each source is checked first (as `runstore check`) and its column bytes are checked
    /// again as they are copied; a source that fails, or whose run urls clash under `raise`,
    /// is reported on stderr and changes nothing, and the others are still merged (exit 1).
    /// Input tables equal in content are stored once; references are rewritten. Merging again
    /// with `--if-exists skip` completes an interrupted merge and adds nothing twice.
    ///
    /// Example: runstore merge all.runs job-*.runs --if-exists skip
    Merge {
        /// The store to merge into.
        dest: PathBuf,
        /// The stores to merge, in order.
        #[arg(required = true)]
        sources: Vec<PathBuf>,
        /// What to do when a source run's url is taken in DEST (`raise` leaves that source
        /// out; an input table of another content at the same url is then refused too, and
        /// placed under `<name>_NNNN` by the other modes).
        #[arg(long, value_enum, default_value = "raise")]
        if_exists: merge::IfExists,
    },
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
    Export {
        /// The store file.
        path: PathBuf,
        /// The directory to write into (created if missing).
        dir: PathBuf,
        /// The file format.
        #[arg(long, value_enum, default_value = "parquet")]
        format: export::ExportFormat,
        /// Only this project's runs and tables.
        #[arg(long)]
        project: Option<String>,
    },
    Reduce(reduce::ReduceArgs),
}

/// Runs the parsed command.
pub fn run(args: Args) -> Result<ExitCode> {
    // A run this command sets RUNNING belongs to the script that called it, which goes on
    // working after this process exits (see `runstore::act_for_process`).
    #[cfg(unix)]
    runstore::act_for_process(std::os::unix::process::parent_id());
    if let Some(seconds) = args.wait {
        if !(0.0..=86_400.0).contains(&seconds) {
            anyhow::bail!("--wait {seconds}: give a number of seconds from 0 to 86400");
        }
        let _ = WAIT.set(std::time::Duration::from_secs_f64(seconds));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        Command::Demo { path } => {
            let path = path.unwrap_or_else(|| PathBuf::from("demo.runs"));
            demo::run(&path, &mut out)?;
        }
        Command::Projects { path, json } => {
            let store = open_read(&path)?;
            for project in store.projects()? {
                if json {
                    let line = serde_json::json!({
                        "name": project.name,
                        "created": time::format_us(project.created_us),
                        "runs": project.run_count,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(
                        out,
                        "{}\t{} runs",
                        printable(&project.name),
                        project.run_count
                    )?;
                }
            }
        }
        Command::Runs {
            path,
            project,
            filter,
            order_by,
            limit,
            offset,
            columns,
            json,
            csv,
        } => {
            let keys = match &columns {
                Some(text) => split_column_keys(text),
                None => Vec::new(),
            };
            let store = open_read(&path)?;
            let mut query = store.query_runs().offset(offset);
            if let Some(project) = &project {
                query = query.project(project);
            }
            if let Some(filter) = &filter {
                query = query
                    .filter(filter)
                    .with_context(|| format!("--filter {}", echo(filter)))?;
            }
            if let Some(order_by) = &order_by {
                query = query
                    .order_by(order_by)
                    .with_context(|| format!("--order-by {}", echo(order_by)))?;
            }
            if let Some(limit) = limit {
                query = query.limit(limit);
            }
            let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let (runs, table) = query.run_with_values(&key_refs).with_context(|| {
                format!("--columns {}", echo(columns.as_deref().unwrap_or_default()))
            })?;
            // The table starts with project, name and url; the requested columns follow.
            let first_value = table.num_columns() - keys.len();
            let value_columns = &table.columns()[first_value..];
            let schema = table.schema();
            let value_fields = &schema.fields()[first_value..];
            if json {
                for (row, run) in runs.iter().enumerate() {
                    let mut object = run_json(run)?;
                    if columns.is_some() {
                        let values: serde_json::Map<String, serde_json::Value> = keys
                            .iter()
                            .zip(value_fields.iter().zip(value_columns))
                            .map(|(key, (field, array))| {
                                (key.trim().to_string(), cell_json(field, array, row))
                            })
                            .collect();
                        object["columns"] = serde_json::Value::Object(values);
                    }
                    writeln!(out, "{object}")?;
                }
            } else if csv {
                print_runs_csv(&mut out, &runs, &keys, value_columns)?;
            } else {
                print_runs_table_with_columns(&mut out, &runs, &keys, value_columns)?;
            }
        }
        Command::Show {
            path,
            run_url,
            json,
        } => {
            let store = open_read(&path)?;
            let run = store.run(&run_url)?;
            if json {
                writeln!(out, "{:#}", run_json(&run)?)?;
            } else {
                print_run(&mut out, &run)?;
            }
        }
        Command::Tables { path, scope, json } => {
            let store = open_read(&path)?;
            scan::tables(&store, scope.as_deref(), json, &mut out)?;
        }
        Command::Scan {
            path,
            table_url,
            columns,
            where_,
            limit,
            offset,
            rows,
            group_by,
            agg,
            downsample,
            column,
            x,
            format,
            output,
        } => {
            let store = open_read(&path)?;
            let request = scan::ScanRequest {
                table_url,
                columns,
                filter: where_,
                limit,
                offset,
                rows,
                group_by,
                aggs: agg,
                downsample: downsample.zip(column),
                x,
                format,
                output,
            };
            scan::scan(&store, &request, &mut out)?;
        }
        Command::Info { path, json } => {
            let store = open_read(&path)?;
            let info = store.info()?;
            if json {
                let line = serde_json::json!({
                    "path": info.path,
                    "format_version": info.format_version,
                    "catalog_version": info.catalog_version,
                    "file_bytes": info.file_bytes,
                    "redb_bytes": info.redb_bytes,
                    "column_extent_bytes": info.column_extent_bytes,
                    "column_used_bytes": info.column_used_bytes,
                    "extent_count": info.extent_count,
                    "superblock_generation": info.superblock_generation,
                    "projects": info.projects,
                    "runs": info.runs,
                    "outputs": info.outputs,
                    "inputs": info.inputs,
                    "blobs": info.blobs,
                    "tables": info.tables,
                    "needs_recovery": store.needs_recovery(),
                });
                writeln!(out, "{line:#}")?;
            } else {
                writeln!(
                    out,
                    "path            {}",
                    printable(&info.path.display().to_string())
                )?;
                writeln!(out, "format version  {}", info.format_version)?;
                writeln!(out, "catalog version {}", info.catalog_version)?;
                writeln!(out, "file size       {}", human_bytes(info.file_bytes))?;
                writeln!(out, "catalog (redb)  {}", human_bytes(info.redb_bytes))?;
                writeln!(
                    out,
                    "column data     {} used of {} allocated",
                    human_bytes(info.column_used_bytes),
                    human_bytes(info.column_extent_bytes)
                )?;
                writeln!(
                    out,
                    "extents         {} (superblock generation {})",
                    info.extent_count, info.superblock_generation
                )?;
                writeln!(out, "projects        {}", info.projects)?;
                writeln!(out, "runs            {}", info.runs)?;
                writeln!(out, "output values   {}", info.outputs)?;
                writeln!(out, "input values    {}", info.inputs)?;
                writeln!(out, "blobs           {}", info.blobs)?;
                writeln!(out, "tables          {}", info.tables)?;
                if store.needs_recovery() {
                    writeln!(
                        out,
                        "recovery        needed: its writer stopped without closing it; shown \
                         is its last durable commit (`runstore repair` recovers the file)"
                    )?;
                }
            }
        }
        Command::Init {
            path,
            project,
            name,
            params,
            description,
            shared,
        } => {
            let parameters = parse_params(&params)?;
            let store = retry_open(|| {
                if shared {
                    Store::open_or_create_shared(&path)
                } else {
                    Store::open_or_create(&path)
                }
            })
            .with_context(|| format!("opening {}", path.display()))?;
            let run = store.init_with(
                &project,
                name.as_deref(),
                &runstore::InitOptions {
                    description,
                    parameters: Some(parameters),
                    ..Default::default()
                },
            )?;
            writeln!(out, "{}", run.url())?;
        }
        Command::Log {
            path,
            run_url,
            output,
            shared,
        } => {
            let values = output
                .iter()
                .map(|text| match Value::parse_json(text) {
                    Ok(value) => Ok(value),
                    Err(JsonError::Syntax(error)) => Err(anyhow::Error::new(error)
                        .context(format!("--output {} is not valid JSON", echo(text)))),
                    Err(error) => Err(unstorable_json(error, "an output value", "--output")),
                })
                .collect::<Result<Vec<_>>>()?;
            let store = open_for_writing(&path, shared)?;
            store.run(&run_url)?.add_output_values(&values)?;
        }
        Command::SetStatus {
            path,
            run_url,
            status,
            shared,
        } => {
            let status = runstore::RunStatus::parse(&status)?;
            let store = open_for_writing(&path, shared)?;
            store.run(&run_url)?.set_status(status)?;
        }
        Command::Delete { path, run_url } => {
            let store = open_for_writing(&path, false)?;
            store.delete_run(&run_url)?;
        }
        Command::Vacuum { path } => {
            let report = retry_while_open(|| Store::vacuum(&path))
                .with_context(|| format!("vacuuming {}", path.display()))?;
            writeln!(
                out,
                "vacuumed {}: {} runs, {} -> {}",
                path.display(),
                report.runs,
                human_bytes(report.bytes_before),
                human_bytes(report.bytes_after)
            )?;
        }
        Command::Check { path } => {
            let report = retry_while_open(|| runstore::check(&path))?;
            for problem in &report.problems {
                writeln!(out, "problem: {}", printable(problem))?;
            }
            if report.redb_repaired {
                writeln!(
                    out,
                    "note: {} was not closed cleanly (its writer stopped, or still has it \
                     open); checked its last commit, recovered in memory, file unchanged",
                    path.display()
                )?;
            }
            writeln!(
                out,
                "checked {}: {} runs, {} blobs, {} bytes of segments; {} problems",
                path.display(),
                report.runs,
                report.blobs,
                report.segment_bytes,
                report.problems.len()
            )?;
            if !report.problems.is_empty() {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Repair { path } => {
            // Store::repair closes explicitly: a failed write of the clean shutdown (a full
            // disk) is an error here, not a success message over a file still unrepaired.
            let recovered = retry_while_open(|| Store::repair(&path))
                .with_context(|| format!("repairing {}", path.display()))?;
            let what = if recovered { "recovered: it " } else { "" };
            writeln!(
                out,
                "{} {what}is consistent and can be opened read-only",
                path.display()
            )?;
        }
        Command::Upgrade { path } => {
            // A read-only open tells the version unless the store needs repair first (the
            // writable open below repairs it too).
            let before = match Store::open_read_only(&path) {
                Ok(store) => Some(store.info()?.catalog_version),
                Err(runstore::Error::NeedsUpgrade { found, .. }) => Some(found),
                Err(_) => None,
            };
            let store = retry_open(|| Store::open(&path))
                .with_context(|| format!("upgrading {}", path.display()))?;
            let after = store.info()?.catalog_version;
            drop(store);
            if before.is_none_or(|before| before == after) {
                writeln!(out, "{} is at catalog version {after}", path.display())?;
            } else {
                writeln!(
                    out,
                    "upgraded {} from catalog version {} to {after}",
                    path.display(),
                    before.unwrap_or(after)
                )?;
            }
        }
        Command::CloseStale {
            path,
            project,
            status,
            dry_run,
        } => {
            let status = runstore::RunStatus::parse(&status)?;
            let store = if dry_run {
                open_read(&path)?
            } else {
                retry_open(|| Store::open(&path))
                    .with_context(|| format!("opening {}", path.display()))?
            };
            for run in store.stale_runs(project.as_deref())? {
                if !dry_run {
                    run.set_status(status)?;
                }
                writeln!(out, "{}", run.url())?;
            }
        }
        Command::Backup { path, dest } => {
            // A writer elsewhere holds the write lock for as long as it runs: then copy one
            // read snapshot instead (Store::backup_to on a read-only handle).
            let store = match Store::open(&path) {
                Err(runstore::Error::AlreadyOpen { .. }) => open_read(&path)?,
                other => other.with_context(|| format!("opening {}", path.display()))?,
            };
            let bytes = store.backup_to(&dest)?;
            writeln!(
                out,
                "backed up {} to {} ({})",
                path.display(),
                dest.display(),
                human_bytes(bytes)
            )?;
        }
        Command::Append {
            path,
            run_url,
            table,
            from,
            format,
            shared,
        } => {
            let store = open_for_writing(&path, shared)?;
            let report = append::append(&store, &run_url, &table, from.as_deref(), format)?;
            eprintln!(
                "appended {} rows to {}{}",
                report.rows_appended,
                report.table.url,
                if report.created { " (created)" } else { "" }
            );
        }
        Command::Copy {
            src_store,
            run_url,
            dest_store,
            as_name,
            if_exists,
        } => {
            let run = copy::copy(
                &src_store,
                &run_url,
                &dest_store,
                as_name.as_deref(),
                if_exists,
            )?;
            writeln!(out, "{}", run.url())?;
        }
        Command::Merge {
            dest,
            sources,
            if_exists,
        } => {
            let code = merge::merge(&dest, &sources, if_exists, &mut out)?;
            out.flush()?;
            return Ok(code);
        }
        Command::Export {
            path,
            dir,
            format: export::ExportFormat::Parquet,
            project,
        } => {
            let store = open_read(&path)?;
            let report = export::export(&store, &dir, project.as_deref())?;
            eprintln!(
                "exported {} runs and {} tables ({}) to {}",
                report.runs,
                report.tables,
                human_bytes(report.bytes),
                dir.display()
            );
        }
        Command::Reduce(args) => reduce::reduce(args, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Parameters from `key=value` arguments: the value is JSON when it parses as JSON, else a
/// string. Dotted keys stay single keys (`--param a.b=1` sets the key `a.b`).
/// Opens the store at `path` to write: as its one writer, or with `shared` beside other
/// processes that opened it shared.
fn open_for_writing(path: &Path, shared: bool) -> Result<Store> {
    retry_open(|| {
        if shared {
            Store::open_shared(path)
        } else {
            Store::open(path)
        }
    })
    .with_context(|| format!("opening {}", path.display()))
}

fn parse_params(params: &[String]) -> Result<Value> {
    let mut map = std::collections::BTreeMap::new();
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            anyhow::bail!("--param {} is not key=value", echo(param));
        };
        if key.is_empty() {
            anyhow::bail!("--param {} has an empty key", echo(param));
        }
        // Text that is not JSON is a string; JSON the store cannot hold as written is an error,
        // never a string.
        let value = match Value::parse_json(value) {
            Ok(value) => value,
            Err(JsonError::Syntax(_)) => Value::from(value),
            Err(error) => {
                return Err(unstorable_json(
                    error,
                    "parameters",
                    &format!("--param {key}"),
                ))
            }
        };
        map.insert(key.to_string(), value);
    }
    Ok(Value::Map(map))
}

/// The error for JSON text the store cannot hold as written (`--param`, `--output`): nesting
/// past the limit worded as the store words it for `what` ("parameters nest deeper than 64
/// levels"), an integer outside `i64` or a number beyond `f64` as the parser says it; all
/// `Error::InvalidValue`, led by the argument (`--param seed`).
fn unstorable_json(error: JsonError, what: &str, argument: &str) -> anyhow::Error {
    let reason = match error {
        JsonError::TooDeep { .. } => format!(
            "{argument}: {what} nest deeper than {} levels",
            runstore::value::VALUE_DEPTH_MAX
        ),
        other => format!("{argument}: {other}"),
    };
    runstore::Error::InvalidValue { reason }.into()
}

/// Opens a store for reading. A file a crashed writer left is read as its last durable commit,
/// recovered in memory (`Store::open_read_only`); nothing is written to it.
fn open_read(path: &std::path::Path) -> Result<Store> {
    Store::open_read_only(path).with_context(|| format!("opening {}", path.display()))
}

/// The JSON object of one run, as `runs --json` and `show --json` print it.
pub fn run_json(run: &Run) -> Result<serde_json::Value> {
    let info = run.info()?;
    let outputs: Vec<serde_json::Value> = run.output_values()?.iter().map(Value::to_json).collect();
    Ok(serde_json::json!({
        "url": info.url,
        "project": info.project,
        "name": info.name,
        "status": info.status.name(),
        "status_code": info.status.code(),
        "stale": run.liveness()?.is_stale(),
        "created": time::format_us(info.created_us),
        "last_modified": time::format_us(info.last_modified_us),
        "description": info.description,
        "params": info.parameters.to_json(),
        "input_tables": info.input_tables,
        "input_values": info.input_values.iter().map(Value::to_json).collect::<Vec<_>>(),
        "outputs": outputs,
        "metrics": info.metrics.iter().map(|m| serde_json::json!({
            "url": m.url,
            "stream_name": m.stream_name,
            "row_count": m.row_count,
            "file_size": m.file_size,
        })).collect::<Vec<_>>(),
        "bulk": run.bulk_list()?.iter().map(|b| serde_json::json!({
            "name": b.name,
            "bytes": b.len,
        })).collect::<Vec<_>>(),
    }))
}

/// The keys of a `--columns` list: split at commas outside backticks and double quotes (a
/// quote written twice inside stays inside, as in the filter language). Keys are parsed later,
/// by `RunQuery::run_with_values`, which reports blanks and bad keys.
fn split_column_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut key = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (None, ',') => keys.push(std::mem::take(&mut key)),
            (None, '`' | '"') => {
                quote = Some(c);
                key.push(c);
            }
            (Some(open), _) if c == open => {
                quote = None;
                key.push(c);
            }
            _ => key.push(c),
        }
    }
    keys.push(key);
    keys
}

/// One cell of a `--columns` column as text, for the table and CSV: empty for null, timestamps
/// as RFC 3339, non-finite floats as `NaN`, `inf`, `-inf`, JSON text as is.
fn cell_text(array: &arrow_array::ArrayRef, row: usize) -> String {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_schema::DataType;
    if array.is_null(row) {
        return String::new();
    }
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float64 => {
            let float = array.as_primitive::<Float64Type>().value(row);
            match serde_json::Number::from_f64(float) {
                Some(number) => number.to_string(),
                None if float.is_nan() => "NaN".to_string(),
                None if float > 0.0 => "inf".to_string(),
                None => "-inf".to_string(),
            }
        }
        DataType::Timestamp(..) => {
            time::format_us(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        // RunQuery::values makes no other types.
        _ => String::new(),
    }
}

/// One cell of a `--columns` column as JSON: as `Value::to_json` would give it (non-finite
/// floats as the strings "NaN", "Infinity", "-Infinity"), timestamps as RFC 3339 text like `created`, JSON text parsed back.
fn cell_json(
    field: &arrow_schema::Field,
    array: &arrow_array::ArrayRef,
    row: usize,
) -> serde_json::Value {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_schema::DataType;
    if array.is_null(row) {
        return serde_json::Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)).to_json(),
        DataType::Utf8 => {
            let text = array.as_string::<i32>().value(row);
            // A column of maps, lists or mixed kinds holds JSON text, marked as such; a column
            // of strings is text even where a string reads as JSON.
            if field.extension_type_name() == Some("arrow.json") {
                serde_json::from_str(text).unwrap_or_else(|_| text.into())
            } else {
                text.into()
            }
        }
        _ => cell_text(array, row).into(),
    }
}

fn print_runs_csv(
    out: &mut impl Write,
    runs: &[Run],
    keys: &[String],
    value_columns: &[arrow_array::ArrayRef],
) -> Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    let mut header: Vec<&str> = vec![
        "url",
        "project",
        "name",
        "status",
        "status_code",
        "stale",
        "created",
        "last_modified",
        "description",
        "output_count",
    ];
    header.extend(keys.iter().map(|key| key.trim()));
    writer.write_record(&header)?;
    for (row, run) in runs.iter().enumerate() {
        let info = run.info()?;
        let mut record = vec![
            info.url,
            info.project,
            info.name,
            info.status.name().to_string(),
            info.status.code().to_string(),
            run.liveness()?.is_stale().to_string(),
            time::format_us(info.created_us),
            time::format_us(info.last_modified_us),
            info.description,
            info.output_count.to_string(),
        ];
        record.extend(value_columns.iter().map(|array| cell_text(array, row)));
        writer.write_record(&record)?;
    }
    writer.flush()?;
    Ok(())
}

fn print_runs_table(out: &mut impl Write, runs: &[Run]) -> Result<()> {
    print_runs_table_with_columns(out, runs, &[], &[])
}

/// The aligned runs table, with a column per `--columns` key after OUTPUTS.
fn print_runs_table_with_columns(
    out: &mut impl Write,
    runs: &[Run],
    keys: &[String],
    value_columns: &[arrow_array::ArrayRef],
) -> Result<()> {
    let mut rows = Vec::with_capacity(runs.len());
    for (row, run) in runs.iter().enumerate() {
        let info = run.info()?;
        let last = run
            .last_output()?
            .map(|v| v.to_string())
            .unwrap_or_default();
        let status = if run.liveness()?.is_stale() {
            format!("{} (stale)", info.status.name())
        } else {
            info.status.name().to_string()
        };
        let mut cells = vec![
            printable(&info.url).into_owned(),
            status,
            time::format_us(info.created_us)[..19].replace('T', " "),
            info.output_count.to_string(),
        ];
        // The requested columns go before the last output, which is often long.
        cells.extend(
            value_columns
                .iter()
                .map(|array| printable(&cell_text(array, row)).into_owned()),
        );
        cells.push(printable(&last).into_owned());
        rows.push(cells);
    }
    let mut header: Vec<String> = ["RUN", "STATUS", "CREATED (UTC)", "OUTPUTS"]
        .map(String::from)
        .to_vec();
    header.extend(keys.iter().map(|key| printable(key.trim()).into_owned()));
    header.push("LAST OUTPUT".to_string());
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        text
    };
    writeln!(out, "{}", line(&header))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    let count = rows.len();
    writeln!(out, "({count} run{})", if count == 1 { "" } else { "s" })?;
    Ok(())
}

/// Prints one run for people (`show`, `demo`): every text from the store through
/// [`printable`].
fn print_run(out: &mut impl Write, run: &Run) -> Result<()> {
    let info: RunInfo = run.info()?;
    let text = |value: &dyn std::fmt::Display| printable(&value.to_string()).into_owned();
    writeln!(out, "run           {}", text(&info.url))?;
    writeln!(
        out,
        "status        {} ({})",
        info.status,
        info.status.code()
    )?;
    writeln!(out, "created       {}", time::format_us(info.created_us))?;
    writeln!(
        out,
        "last modified {}",
        time::format_us(info.last_modified_us)
    )?;
    if !info.description.is_empty() {
        writeln!(out, "description   {}", text(&info.description))?;
    }
    writeln!(out, "parameters    {}", text(&info.parameters))?;
    for table in &info.input_tables {
        writeln!(out, "input table   {}", text(table))?;
    }
    for value in &info.input_values {
        writeln!(out, "input value   {}", text(value))?;
    }
    writeln!(out, "outputs       {}", info.output_count)?;
    for value in run.output_values()? {
        writeln!(out, "  {}", text(&value))?;
    }
    for table in &info.metrics {
        writeln!(
            out,
            "metrics table {} ({} rows, stream {})",
            text(&table.url),
            table.row_count,
            text(&table.stream_name)
        )?;
    }
    for blob in run.bulk_list()? {
        writeln!(
            out,
            "bulk          {}/{} ({})",
            text(&run.bulk_data_url()),
            text(&blob.name),
            human_bytes(blob.len)
        )?;
    }
    Ok(())
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Characters of user input an error message quotes before cutting it ([`echo`]).
const ECHO_CHARS_MAX: usize = 200;
/// Characters of one cause of an error printed before cutting it ([`error_text`]): a
/// message that quotes a 160 KB input is useless in full, and no message of the library
/// without quoted input comes near this length.
const CAUSE_CHARS_MAX: usize = 1000;

/// `text` with every control character (C0, DEL, C1, such as ESC, which a terminal takes as
/// the start of a command) and bidirectional-override mark escaped (`\n`, `\t`, `\r`,
/// `\u{1b}`), for text from a store or the command line printed for people. JSON and CSV
/// outputs are escaped by their own formats and do not go through this.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `text` cut to `chars_max` characters followed by `... (N bytes)` when longer.
fn cut(text: &str, chars_max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(chars_max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => {
            std::borrow::Cow::Owned(format!("{}... ({} bytes)", &text[..end], text.len()))
        }
    }
}

/// User input quoted in an error message: in double quotes with control characters escaped,
/// and cut to its first [`ECHO_CHARS_MAX`] characters plus its length when longer.
pub fn echo(text: &str) -> String {
    match text.char_indices().nth(ECHO_CHARS_MAX) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &text[..end], text.len()),
    }
}

/// An error as `main` prints it: its causes joined by `: `, each with control characters
/// escaped and cut to [`CAUSE_CHARS_MAX`] characters (an error of the library may quote a
/// name or url from the command line whole).
pub fn error_text(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(|cause| {
            let text = cause.to_string();
            cut(&printable(&text), CAUSE_CHARS_MAX).into_owned()
        })
        .collect::<Vec<_>>()
        .join(": ")
}
