//! `runstore scan`: print a table's rows, aggregates or a downsampled
//! column as an aligned table, CSV, JSON lines, an Arrow IPC file or Parquet. Nested values
//! (an embedding) print as one cell holding its numbers in the text formats.
//!
//! Binary formats are never written to a terminal, and `--output FILE` writes a new temporary
//! file beside FILE and renames it only when everything was written, so an error leaves no half
//! file; FILE is never the store being read, by any name (`super::files`).

use std::io::{BufWriter, IsTerminal, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, LazyLock};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{ArrowError, DataType, FieldRef, SchemaRef};
use runstore::{Agg, AggFunc, Store};

use super::open::open_read;

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
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
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
    #[arg(long, value_name = "A..B", value_parser = parse_rows)]
    rows: Option<std::ops::Range<u64>>,
    /// Group aggregates by this column (one output row per value).
    #[arg(long, requires = "agg")]
    group_by: Option<String>,
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with_all = ["downsample", "columns"],
        help = format!("Aggregates, comma-separated: {}", AggFunc::forms_listed("COL"))
    )]
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
    format: Format,
    /// Write to this file (complete or not at all) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `scan`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
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
    } = args;
    let store = open_read(&path)?;
    let request = ScanRequest {
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
    scan(&store, &request, out)?;
    Ok(ExitCode::SUCCESS)
}

/// Output formats of `scan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per row; NaN and infinities as the strings "NaN", "Infinity" and
    /// "-Infinity".
    Json,
    /// An Arrow IPC file.
    Arrow,
    /// A Parquet file (zstd-compressed).
    Parquet,
}

impl Format {
    fn is_binary(self) -> bool {
        matches!(self, Format::Arrow | Format::Parquet)
    }
}

/// What `runstore scan` was asked for.
#[derive(Debug)]
pub struct ScanRequest {
    /// The table's url.
    pub table_url: String,
    /// Only these columns.
    pub columns: Option<Vec<String>>,
    /// The `--where` filter.
    pub filter: Option<String>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Rows that pass the filter to skip first.
    pub offset: u64,
    /// Table row positions.
    pub rows: Option<Range<u64>>,
    /// The group column of the aggregates.
    pub group_by: Option<String>,
    /// Aggregates as written (`mean:loss`).
    pub aggs: Option<Vec<String>>,
    /// Buckets and the column to downsample.
    pub downsample: Option<(usize, String)>,
    /// The x column of a downsampled read.
    pub x: Option<String>,
    /// The output format.
    pub format: Format,
    /// The output file; stdout when `None`.
    pub output: Option<PathBuf>,
}

/// `A..B` as a row range.
pub fn parse_rows(text: &str) -> Result<Range<u64>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("expected A..B, found {text:?}"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("expected A..B with whole numbers, found {text:?}"))
    };
    let (start, end) = (number(start)?, number(end)?);
    if start > end {
        return Err(format!("the range {text} ends before it starts"));
    }
    Ok(start..end)
}

/// Runs `runstore scan`, writing to `out` (stdout) or to the `--output` file.
pub fn scan(store: &Store, request: &ScanRequest, out: &mut impl Write) -> Result<()> {
    if request.output.is_none() && request.format.is_binary() && std::io::stdout().is_terminal() {
        bail!(
            "--format {} writes binary data; redirect stdout or use --output FILE",
            format_name(request.format)
        );
    }
    if let Some(path) = &request.output {
        super::files::refuse_store(store.path(), path, "--output")?;
    }
    let table = store.table(&request.table_url)?;
    let mut query = table.query().offset(request.offset);
    if let Some(columns) = &request.columns {
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        query = query.columns(&columns);
    }
    if let Some(rows) = &request.rows {
        query = query.rows(rows.clone());
    }
    if let Some(filter) = &request.filter {
        query = query
            .filter(filter)
            .with_context(|| format!("--where {}", super::text::echo(filter)))?;
    }
    if let Some(limit) = request.limit {
        query = query.limit(limit);
    }
    let (schema, batches) = if let Some(aggs) = &request.aggs {
        let aggs = aggs
            .iter()
            .map(|text| {
                text.parse::<Agg>()
                    .with_context(|| format!("--agg {}", super::text::echo(text)))
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = query.aggregate(request.group_by.as_deref(), &aggs)?;
        (batch.schema(), vec![batch])
    } else if let Some((buckets, column)) = &request.downsample {
        let batch = query.downsample_with_x(column, request.x.as_deref(), *buckets)?;
        (batch.schema(), vec![batch])
    } else {
        (query.schema()?, query.batches()?)
    };
    match &request.output {
        None => {
            // Parquet's writer wants a `Send` sink, which the locked `out` is not: write
            // through a handle of stdout after what `out` holds.
            out.flush()?;
            let mut stdout = BufWriter::new(std::io::stdout());
            write_batches(request.format, &schema, &batches, &mut stdout)
        }
        Some(path) => super::files::write_file_replacing(store.path(), path, "--output", |file| {
            let mut writer = BufWriter::new(file);
            write_batches(request.format, &schema, &batches, &mut writer)?;
            writer.flush()?;
            Ok(())
        }),
    }
}

/// The format's name as `--format` takes it.
fn format_name(format: Format) -> String {
    clap::ValueEnum::to_possible_value(&format)
        .map(|value| value.get_name().to_string())
        .unwrap_or_default()
}

/// Writes `batches` in `format`.
fn write_batches(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    out: &mut (dyn Write + Send),
) -> Result<()> {
    match format {
        Format::Json => {
            let mut writer = arrow_json::WriterBuilder::new()
                .with_encoder_factory(Arc::new(NonFiniteAsText))
                .build::<_, arrow_json::writer::LineDelimited>(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
        }
        Format::Csv => {
            let header: Vec<String> = schema.fields().iter().map(|f| csv_cell(f.name())).collect();
            writeln!(out, "{}", header.join(","))?;
            for batch in batches {
                for row in rows_as_text(batch)? {
                    let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
                    writeln!(out, "{}", cells.join(","))?;
                }
            }
        }
        Format::Table => {
            // For people: names and cells from the store with control characters escaped.
            let header: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| super::text::printable(f.name()).into_owned())
                .collect();
            let mut rows = vec![header];
            for batch in batches {
                rows.extend(rows_as_text(batch)?.into_iter().map(|row| {
                    row.iter()
                        .map(|cell| super::text::printable(cell).into_owned())
                        .collect()
                }));
            }
            let count = rows.len() - 1;
            print_aligned(out, &rows)?;
            writeln!(out, "({count} rows)")?;
        }
        Format::Arrow => {
            let mut writer = arrow_ipc::writer::FileWriter::try_new(&mut *out, schema)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
        Format::Parquet => {
            let properties = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(&mut *out, schema.clone(), Some(properties))?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.close()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// arrow-json writes NaN and the infinities as `null`, which reads as a missing value; this
/// factory writes them as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, as run values
/// print (`runstore::value::non_finite_json_text`). arrow-json asks it at every depth, so an
/// embedding's items are covered too; an array without a non-finite value keeps arrow-json's
/// own encoder.
#[derive(Debug)]
pub(super) struct NonFiniteAsText;

impl arrow_json::EncoderFactory for NonFiniteAsText {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a arrow_json::EncoderOptions,
    ) -> std::result::Result<Option<arrow_json::writer::NullableEncoder<'a>>, ArrowError> {
        // arrow-json's float encoder ignores the options; plain ones keep it from asking this
        // factory again.
        static PLAIN: LazyLock<arrow_json::EncoderOptions> =
            LazyLock::new(arrow_json::EncoderOptions::default);
        let value: Box<dyn Fn(usize) -> f64 + 'a> = match array.data_type() {
            DataType::Float16 => {
                let floats = array.as_primitive::<Float16Type>();
                Box::new(move |i| f64::from(floats.value(i)))
            }
            DataType::Float32 => {
                let floats = array.as_primitive::<Float32Type>();
                Box::new(move |i| f64::from(floats.value(i)))
            }
            DataType::Float64 => {
                let floats = array.as_primitive::<Float64Type>();
                Box::new(move |i| floats.value(i))
            }
            _ => return Ok(None),
        };
        if !(0..array.len()).any(|i| array.is_valid(i) && !value(i).is_finite()) {
            return Ok(None);
        }
        let finite = arrow_json::writer::make_encoder(field, array, &PLAIN)?;
        let encoder = NonFiniteEncoder { value, finite };
        Ok(Some(arrow_json::writer::NullableEncoder::new(
            Box::new(encoder),
            array.nulls().cloned(),
        )))
    }
}

/// A float array's encoder: non-finite values as JSON strings, the rest by arrow-json.
struct NonFiniteEncoder<'a> {
    value: Box<dyn Fn(usize) -> f64 + 'a>,
    finite: arrow_json::writer::NullableEncoder<'a>,
}

impl arrow_json::Encoder for NonFiniteEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        match runstore::value::non_finite_json_text((self.value)(idx)) {
            Some(text) => {
                out.push(b'"');
                out.extend_from_slice(text.as_bytes());
                out.push(b'"');
            }
            None => self.finite.encode(idx, out),
        }
    }
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
pub(super) fn print_aligned(out: &mut (impl Write + ?Sized), rows: &[Vec<String>]) -> Result<()> {
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
