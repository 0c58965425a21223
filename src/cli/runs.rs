//! `runstore runs`: the runs a query selects, as a table, CSV or JSON lines, optionally with
//! a column per chosen value (`--columns`, the cross-run table of `RunQuery::run_with_values`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use runstore::{time, Run, Value};

use super::open::open_read;
use super::print::{cell_text, print_runs_table_with_columns, run_json};
use super::text::echo;

/// List runs, optionally with columns of chosen values per run.
///
/// Example: runstore runs demo.runs --filter "params.lr <= 0.05" --order-by "outputs.val_accuracy DESC" --columns params.lr,outputs.val_accuracy
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// Only runs of this project (an error naming the closest project when there is none).
    #[arg(long)]
    project: Option<String>,
    /// Only runs this filter selects: MLflow's search syntax plus OR, NOT and parentheses,
    /// e.g. "params.lr < 0.01 AND outputs.acc > 0.5". A parameter or output key that no
    /// run has, here, in --order-by or in --columns, is an error with the closest key (keys
    /// are case-sensitive); one that only some runs have is not.
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
}

/// Runs `runs`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        path,
        project,
        filter,
        order_by,
        limit,
        offset,
        columns,
        json,
        csv,
    } = args;
    let keys = match &columns {
        Some(text) => split_column_keys(text),
        None => Vec::new(),
    };
    let store = open_read(&path)?;
    let mut query = store.query_runs().offset(offset);
    if let Some(project) = &project {
        super::find::project_exists(&store, &path, project)?;
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
    // Only a key that does not parse is about `--columns` alone; an unknown key (in the filter,
    // the sort keys or the columns) names itself.
    let (runs, table) = query
        .run_with_values(&key_refs)
        .map_err(|error| match error {
            runstore::Error::InvalidQuery { .. } => anyhow::Error::new(error).context(format!(
                "--columns {}",
                echo(columns.as_deref().unwrap_or_default())
            )),
            other => anyhow::Error::new(other),
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
        print_runs_csv(out, &runs, &keys, value_columns)?;
    } else {
        print_runs_table_with_columns(out, &runs, &keys, value_columns)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The keys of a `--columns` list: split at commas outside backticks and double quotes (a
/// quote written twice inside stays inside, as in the filter language). Keys are parsed later,
/// by `RunQuery::run_with_values`, which reports blanks and bad keys.
pub(super) fn split_column_keys(text: &str) -> Vec<String> {
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

/// One cell of a `--columns` column as JSON: as `Value::to_json` would give it (non-finite
/// floats as the strings "NaN", "Infinity", "-Infinity"), timestamps as RFC 3339 text like `created`, JSON text parsed back.
pub(super) fn cell_json(
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
