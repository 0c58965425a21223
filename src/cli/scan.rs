//! `runstore scan` and `runstore tables`: print a table's rows as an aligned table, CSV or
//! JSON lines. Nested values (an embedding) print as one cell holding its numbers.

use std::io::Write;

use anyhow::{bail, Result};
use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use runstore::{ScanOptions, Store};

/// Output formats of `scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Prints the rows of the table at `url`.
pub fn scan(
    store: &Store,
    url: &str,
    columns: Option<Vec<String>>,
    limit: Option<u64>,
    format: Format,
    out: &mut impl Write,
) -> Result<()> {
    let table = store.table(url)?;
    let batches = table.scan_with(&ScanOptions {
        columns,
        rows: limit.map(|limit| 0..limit),
    })?;
    let schema = match batches.first() {
        Some(batch) => batch.schema(),
        None => table.schema()?,
    };
    match format {
        Format::Json => {
            let mut writer = arrow_json::LineDelimitedWriter::new(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
        }
        Format::Csv => {
            let header: Vec<String> = schema.fields().iter().map(|f| csv_cell(f.name())).collect();
            writeln!(out, "{}", header.join(","))?;
            for batch in &batches {
                for row in rows_as_text(batch)? {
                    let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
            }
        }
        Format::Table => {
            let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let mut rows = vec![header];
            for batch in &batches {
                rows.extend(rows_as_text(batch)?);
            }
            let count = rows.len() - 1;
            print_aligned(out, &rows)?;
            writeln!(out, "({count} rows)")?;
        }
    }
    Ok(())
}

fn rows_as_text(batch: &RecordBatch) -> Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        rows.push(
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect(),
        );
    }
    Ok(rows)
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Prints rows of cells in aligned columns (cells cut at 60 characters).
pub fn print_aligned(out: &mut impl Write, rows: &[Vec<String>]) -> Result<()> {
    const CELL_CHARS_MAX: usize = 60;
    let cut = |cell: &str| -> String {
        if cell.chars().count() > CELL_CHARS_MAX {
            let mut short: String = cell.chars().take(CELL_CHARS_MAX - 1).collect();
            short.push('…');
            short
        } else {
            cell.to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| cut(c)).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Lists tables: a run's metrics tables (`scope` is a run url), a project's tables, or all.
pub fn tables(store: &Store, scope: Option<&str>, json: bool, out: &mut impl Write) -> Result<()> {
    let infos = match scope {
        Some(scope) if scope.contains("/runs/") => {
            let run = store.run(scope)?;
            let mut infos = Vec::new();
            for table in run.metrics_table_handles()? {
                infos.push(table.info()?);
            }
            infos
        }
        Some(project) if project.contains('/') => {
            bail!("expected a project or a run url, got {project}")
        }
        Some(project) => store.tables(Some(project))?,
        None => store.tables(None)?,
    };
    if json {
        for info in infos {
            let line = serde_json::json!({
                "url": info.url,
                "stream_name": info.stream_name,
                "row_count": info.row_count,
                "file_size": info.file_size,
                "foreign_table_url": info.foreign_table_url,
                "columns": info.schema.fields().iter().map(|f| serde_json::json!({
                    "name": f.name(),
                    "type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                    "role": f.metadata().get(runstore::table::ROLE_KEY),
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let mut rows = vec![vec![
        "TABLE".to_string(),
        "ROWS".into(),
        "SIZE".into(),
        "STREAM".into(),
        "COLUMNS".into(),
    ]];
    for info in &infos {
        let columns: Vec<String> = info
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect();
        rows.push(vec![
            info.url.clone(),
            info.row_count.to_string(),
            super::human_bytes(info.file_size),
            info.stream_name.clone(),
            columns.join(" "),
        ]);
    }
    print_aligned(out, &rows)?;
    writeln!(out, "({} tables)", infos.len())?;
    Ok(())
}
