//! Runs as the commands print them: the JSON object of `runs --json` and `show --json`, the
//! aligned runs table of `runs` and `demo`, and one run for people (`show`, `demo`).

use std::io::Write;

use anyhow::Result;
use runstore::{time, Run, RunInfo, Value};

use super::text::{human_bytes, printable};

/// The JSON object of one run, as `runs --json` and `show --json` print it.
pub(super) fn run_json(run: &Run) -> Result<serde_json::Value> {
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

/// One cell of a `--columns` column as text, for the table and CSV: empty for null, timestamps
/// as RFC 3339, non-finite floats as `NaN`, `inf`, `-inf`, JSON text as is.
pub(super) fn cell_text(array: &arrow_array::ArrayRef, row: usize) -> String {
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

/// The aligned runs table without value columns.
pub(super) fn print_runs_table(out: &mut impl Write, runs: &[Run]) -> Result<()> {
    print_runs_table_with_columns(out, runs, &[], &[])
}

/// The aligned runs table, with a column per `--columns` key after OUTPUTS.
pub(super) fn print_runs_table_with_columns(
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
pub(super) fn print_run(out: &mut impl Write, run: &Run) -> Result<()> {
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
    // The user's blobs first, then the reducers a reduction stored, each labelled as such.
    let mut blobs = run.bulk_list()?;
    blobs.sort_by_key(|blob| blob.name.starts_with(runstore::reduce::REDUCER_BLOB_PREFIX));
    for blob in blobs {
        let label = if blob.name.starts_with(runstore::reduce::REDUCER_BLOB_PREFIX) {
            "reducer"
        } else {
            "bulk"
        };
        writeln!(
            out,
            "{label:<13} {}/{} ({})",
            text(&run.bulk_data_url()),
            text(&blob.name),
            human_bytes(blob.len)
        )?;
    }
    Ok(())
}
