//! The viewer's JSON API: one function per route, from decoded parameters to a reply, over
//! the library's read API. The pages use it, and so can scripts; the routes, their parameters
//! and their fields are a contract (README, "runstore ui").
//!
//! Every route is a GET. Errors are `{"error": "..."}`: 400 for a bad parameter or filter, 404
//! for an unknown route, run, table, column or blob, 500 for a store that cannot be read (a
//! damaged file among them). Run objects are those of `runstore show --json`; NaN and the
//! infinities are the strings "NaN", "Infinity" and "-Infinity", as everywhere in runstore's
//! JSON.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use runstore::{ColumnRole, Store, Value};

use super::params::Params;
use super::view::View;
use crate::cli::print::run_json;
use crate::cli::runs::{cell_json, split_column_keys};
use crate::cli::scan::NonFiniteAsText;

/// Most runs one `/api/runs` page returns.
const RUNS_LIMIT_MAX: u64 = 1000;
/// Most rows one `/api/rows` page returns.
const ROWS_LIMIT_MAX: u64 = 1000;
/// Buckets of `/api/series` when not given, and the most it serves.
const SERIES_BUCKETS_DEFAULT: u64 = 1000;
const SERIES_BUCKETS_MAX: u64 = 10_000;
/// Points of `/api/points` when not given, and the most it serves.
const POINTS_DEFAULT: u64 = 50_000;
const POINTS_MAX: u64 = 500_000;
/// Bytes of a blob `/api/bulk` reads and checks before it answers.
const BLOB_FIRST_BYTES: usize = 256 * 1024;
/// Most columns one `/api/rows` or `/api/runs` request names.
const COLUMNS_MAX: usize = 256;

/// An error reply: an HTTP status and the text for `{"error": ...}`.
#[derive(Debug)]
pub(in crate::cli::ui) struct ApiError {
    pub(in crate::cli::ui) status: u16,
    pub(in crate::cli::ui) message: String,
}

impl ApiError {
    /// 400: the request is wrong.
    pub(in crate::cli::ui) fn bad(message: String) -> ApiError {
        ApiError {
            status: 400,
            message,
        }
    }

    /// 404: what it names is not there.
    pub(in crate::cli::ui) fn not_found(message: String) -> ApiError {
        ApiError {
            status: 404,
            message,
        }
    }

    /// A library error, with the parameter it concerns in front when given: not-found errors
    /// are 404, errors in what the request gave are 400, the rest (I/O, a damaged store) 500.
    fn from_store(error: runstore::Error, about: Option<&str>) -> ApiError {
        use runstore::Error as E;
        let status = match &error {
            E::NotFound { .. } | E::NoActiveRun => 404,
            E::InvalidName { .. }
            | E::InvalidUrl { .. }
            | E::InvalidQuery { .. }
            | E::UnknownKey { .. }
            | E::InvalidInput { .. }
            | E::InvalidValue { .. }
            | E::InvalidStatus { .. } => 400,
            _ => 500,
        };
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        if let Some(about) = about {
            message = format!("{about}: {message}");
        }
        ApiError { status, message }
    }
}

impl From<runstore::Error> for ApiError {
    fn from(error: runstore::Error) -> ApiError {
        ApiError::from_store(error, None)
    }
}

/// Tags a library error with the parameter it concerns.
trait About<T> {
    fn about(self, what: &str) -> Result<T, ApiError>;
}

impl<T> About<T> for runstore::Result<T> {
    fn about(self, what: &str) -> Result<T, ApiError> {
        self.map_err(|error| ApiError::from_store(error, Some(what)))
    }
}

/// A successful reply.
pub(in crate::cli::ui) enum Reply {
    /// A JSON document.
    Json(serde_json::Value),
    /// A blob, streamed: its name (for the download), length, its first bytes (already read
    /// and checked) and the reader of the rest.
    Blob {
        name: String,
        len: u64,
        first: Vec<u8>,
        reader: runstore::BulkReader,
    },
}

/// Answers API route `route` (the path after `/api/`).
pub(in crate::cli::ui) fn answer(
    view: &View,
    route: &str,
    params: &Params,
) -> Result<Reply, ApiError> {
    let store = view.store();
    let json = match route {
        "projects" => projects(&store)?,
        "runs" => runs(&store, params)?,
        "run" => run(&store, params)?,
        "table" => table(&store, params)?,
        "series" => series(&store, params)?,
        "rows" => rows(&store, params)?,
        "points" => points(&store, params)?,
        "store" => store_info(view, &store)?,
        "bulk" => return bulk(&store, params),
        _ => return Err(ApiError::not_found(format!("no API route /api/{route}"))),
    };
    Ok(Reply::Json(json))
}

/// `/api/projects`: `[{"name", "run_count", "created"}]`.
fn projects(store: &Store) -> Result<serde_json::Value, ApiError> {
    let projects: Vec<serde_json::Value> = store
        .projects()?
        .into_iter()
        .map(|project| {
            serde_json::json!({
                "name": project.name,
                "run_count": project.run_count,
                "created": runstore::time::format_us(project.created_us),
            })
        })
        .collect();
    Ok(serde_json::Value::Array(projects))
}

/// `/api/store`: the file, its size, whether a writer left it without closing, and the run
/// count, for the page's header.
fn store_info(view: &View, store: &Store) -> Result<serde_json::Value, ApiError> {
    let info = store.info()?;
    Ok(serde_json::json!({
        "path": view.path().display().to_string(),
        "file_bytes": info.file_bytes,
        "runs": store.run_count()?,
        "needs_recovery": store.needs_recovery(),
    }))
}

/// `/api/runs?project=&filter=&order_by=&limit=&offset=[&columns=]`: `{"runs": [...],
/// "total": N}`, each run as `runstore runs --json` prints it (with `columns`, also the
/// `"columns"` object).
fn runs(store: &Store, params: &Params) -> Result<serde_json::Value, ApiError> {
    let limit = params.number("limit", 50, RUNS_LIMIT_MAX)?;
    let offset = params.number("offset", 0, u64::MAX)?;
    let mut query = store.query_runs();
    let project = params.get("project").filter(|p| !p.is_empty());
    if let Some(project) = project {
        query = query.project(project);
    }
    if let Some(filter) = params.get("filter") {
        query = query.filter(filter).about("filter")?;
    }
    if let Some(order_by) = params.get("order_by").filter(|o| !o.trim().is_empty()) {
        query = query.order_by(order_by).about("order_by")?;
    }
    let keys = match params.get("columns").filter(|c| !c.trim().is_empty()) {
        Some(text) => split_column_keys(text),
        None => Vec::new(),
    };
    if keys.len() > COLUMNS_MAX {
        return Err(ApiError::bad(format!(
            "columns: {} keys; at most {COLUMNS_MAX}",
            keys.len()
        )));
    }
    // The count and the page, side by side on the machine's cores (each one snapshot; a
    // commit landing between them can make them differ by its runs).
    let page = query.clone().offset(offset).limit(limit);
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (total, page) = std::thread::scope(|scope| {
        let counting = scope.spawn(|| query.count());
        let page = page_json(&page, &keys, &key_refs);
        let total = counting.join().unwrap_or_else(|_| {
            Err(runstore::Error::InvalidInput {
                reason: "counting the runs failed".into(),
            })
        });
        (total, page)
    });
    let (total, out) = (total?, page?);
    if total == 0 {
        if let Some(project) = project {
            if !store.projects()?.iter().any(|p| p.name == project) {
                return Err(ApiError::not_found(format!(
                    "project: no project {}",
                    serde_json::Value::from(project)
                )));
            }
        }
    }
    Ok(serde_json::json!({ "runs": out, "total": total }))
}

/// The runs of one page as `runs --json` prints them, with the `"columns"` object when keys
/// are given.
fn page_json(
    page: &runstore::RunQuery,
    keys: &[String],
    key_refs: &[&str],
) -> Result<Vec<serde_json::Value>, ApiError> {
    // An unknown key names itself (it may be in the filter or the sort keys); the other
    // errors here are about `columns`.
    let (runs, table) = page
        .run_with_values(key_refs)
        .map_err(|error| match error {
            runstore::Error::UnknownKey { .. } => ApiError::from(error),
            other => ApiError::from_store(other, Some("columns")),
        })?;
    let first_value = table.num_columns() - keys.len();
    let schema = table.schema();
    let mut out = Vec::with_capacity(runs.len());
    for (row, run) in runs.iter().enumerate() {
        let mut object = run_json(run).map_err(internal)?;
        if !keys.is_empty() {
            let values: serde_json::Map<String, serde_json::Value> = keys
                .iter()
                .enumerate()
                .map(|(i, key)| {
                    let at = first_value + i;
                    (
                        key.trim().to_string(),
                        cell_json(schema.field(at), table.column(at), row),
                    )
                })
                .collect();
            object["columns"] = serde_json::Value::Object(values);
        }
        out.push(object);
    }
    Ok(out)
}

/// `/api/run?url=RUN_URL`: the object `runstore show --json` prints.
fn run(store: &Store, params: &Params) -> Result<serde_json::Value, ApiError> {
    let url = params.required("url")?;
    let run = store.run(url).about("url")?;
    run_json(&run).map_err(internal)
}

/// An error of the command line's JSON helpers (anyhow over a library error).
fn internal(error: anyhow::Error) -> ApiError {
    match error.downcast::<runstore::Error>() {
        Ok(error) => ApiError::from(error),
        Err(error) => ApiError {
            status: 500,
            message: format!("{error:#}"),
        },
    }
}

/// `/api/table?url=TABLE_URL`: `{"url", "row_count", "columns": [{"name", "type", "role"}]}`.
fn table(store: &Store, params: &Params) -> Result<serde_json::Value, ApiError> {
    let url = params.required("url")?;
    let table = store.table(url).about("url")?;
    let schema = table.schema()?;
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|field| {
            serde_json::json!({
                "name": field.name(),
                "type": field.data_type().to_string(),
                "role": ColumnRole::of(field).map(ColumnRole::as_str),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "url": table.url(),
        "row_count": table.row_count()?,
        "columns": columns,
    }))
}

/// A column filter's text with `name` quoted for it (backticks, a backtick doubled).
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `/api/series?table=&y=[&x=][&buckets=][&from=&to=]`: the downsampled read of column `y`,
/// per bucket `x` (x's value at the bucket's first row, or that row's position without `x`),
/// `x_last`, `min`, `max`, `last` and `count`, plus `first_row` and `last_row`. `from` and
/// `to` narrow the rows to x (or the row position) within them, both ends included.
fn series(store: &Store, params: &Params) -> Result<serde_json::Value, ApiError> {
    let url = params.required("table")?;
    let y = params.required("y")?;
    let x = params.get("x").filter(|x| !x.is_empty());
    let buckets = params.number("buckets", SERIES_BUCKETS_DEFAULT, SERIES_BUCKETS_MAX)?;
    if buckets == 0 {
        return Err(ApiError::bad(format!(
            "buckets=0: give 1 to {SERIES_BUCKETS_MAX}"
        )));
    }
    let from = params.float("from")?;
    let to = params.float("to")?;
    let table = store.table(url).about("table")?;
    let mut query = table.query();
    match x {
        Some(x) => {
            let mut parts = Vec::new();
            if let Some(from) = from {
                parts.push(format!("{} >= {from:?}", quoted(x)));
            }
            if let Some(to) = to {
                parts.push(format!("{} <= {to:?}", quoted(x)));
            }
            if !parts.is_empty() {
                query = query.filter(&parts.join(" AND ")).about("x")?;
            }
        }
        None => {
            if from.is_some() || to.is_some() {
                let start = from.map_or(0, |f| f.max(0.0).ceil() as u64);
                let end = to.map_or(u64::MAX, |t| {
                    if t < 0.0 {
                        0
                    } else {
                        (t.floor() as u64).saturating_add(1)
                    }
                });
                query = query.rows(start..end.max(start));
            }
        }
    }
    let batch = query
        .downsample_with_x(y, x, buckets as usize)
        .about("series")?;
    let column = |name: &str| -> Vec<serde_json::Value> {
        match batch.column_by_name(name) {
            Some(array) => floats_json(array),
            None => Vec::new(),
        }
    };
    let (x_first, x_last) = if x.is_some() {
        (column("x_first"), column("x_last"))
    } else {
        (column("first_row"), column("last_row"))
    };
    Ok(serde_json::json!({
        "x": x_first,
        "x_last": x_last,
        "min": column("min"),
        "max": column("max"),
        "last": column("last"),
        "count": column("count"),
        "first_row": column("first_row"),
        "last_row": column("last_row"),
    }))
}

/// A numeric column as JSON numbers (null for null, non-finite floats as their strings).
fn floats_json(array: &ArrayRef) -> Vec<serde_json::Value> {
    let Ok(floats) = arrow_cast::cast(array, &DataType::Float64) else {
        return vec![serde_json::Value::Null; array.len()];
    };
    let floats = floats.as_primitive::<Float64Type>();
    (0..floats.len())
        .map(|i| {
            if floats.is_null(i) {
                serde_json::Value::Null
            } else if array.data_type().is_integer() {
                // Counts and row positions stay integers.
                serde_json::Value::from(floats.value(i) as u64)
            } else {
                Value::Float(floats.value(i)).to_json()
            }
        })
        .collect()
}

/// `/api/rows?table=[&columns=a,b][&where=][&order_by=COL [DESC]][&offset=][&limit=]`:
/// `{"columns": [...], "rows": [[...]], "total": N}`, total counting the rows `where` selects.
fn rows(store: &Store, params: &Params) -> Result<serde_json::Value, ApiError> {
    let url = params.required("table")?;
    let limit = params.number("limit", 50, ROWS_LIMIT_MAX)?;
    let offset = params.number("offset", 0, u64::MAX)?;
    let table = store.table(url).about("table")?;
    let mut query = table.query();
    let columns: Vec<String> = match params.get("columns").filter(|c| !c.trim().is_empty()) {
        Some(text) => text.split(',').map(|c| c.trim().to_string()).collect(),
        None => Vec::new(),
    };
    if columns.len() > COLUMNS_MAX {
        return Err(ApiError::bad(format!(
            "columns: {} columns; at most {COLUMNS_MAX}",
            columns.len()
        )));
    }
    if !columns.is_empty() {
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        query = query.columns(&refs);
    }
    if let Some(filter) = params.get("where") {
        query = query.filter(filter).about("where")?;
    }
    if let Some(order_by) = params.get("order_by").filter(|o| !o.trim().is_empty()) {
        let (column, descending) = sort_key(order_by)?;
        query = query.order_by(&column, descending);
    }
    let schema = query.schema().about("columns")?;
    let total = query.count()?;
    let batches = query.offset(offset).limit(limit).batches().about("rows")?;
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(batch_rows(batch, &names)?);
    }
    Ok(serde_json::json!({
        "columns": names,
        "rows": rows,
        "total": total,
    }))
}

/// `COL`, `COL ASC` or `COL DESC` (the name in backticks or double quotes when it holds a
/// space).
fn sort_key(text: &str) -> Result<(String, bool), ApiError> {
    let text = text.trim();
    let (name, descending) = match text.rsplit_once(char::is_whitespace) {
        Some((name, word)) if word.eq_ignore_ascii_case("desc") => (name.trim(), true),
        Some((name, word)) if word.eq_ignore_ascii_case("asc") => (name.trim(), false),
        _ => (text, false),
    };
    let name = match name.as_bytes() {
        [b'`', .., b'`'] => name[1..name.len() - 1].replace("``", "`"),
        [b'"', .., b'"'] => name[1..name.len() - 1].replace("\"\"", "\""),
        _ => name.to_string(),
    };
    if name.is_empty() {
        return Err(ApiError::bad(format!(
            "order_by={text}: give a column, optionally followed by ASC or DESC"
        )));
    }
    Ok((name, descending))
}

/// The rows of `batch` as JSON arrays in the order of `names`, as `runstore scan --format
/// json` writes cells (arrow-json, with non-finite floats as strings).
fn batch_rows(batch: &RecordBatch, names: &[&String]) -> Result<Vec<serde_json::Value>, ApiError> {
    let mut bytes = Vec::new();
    {
        let mut writer = arrow_json::WriterBuilder::new()
            .with_encoder_factory(Arc::new(NonFiniteAsText))
            .build::<_, arrow_json::writer::LineDelimited>(&mut bytes);
        writer.write(batch).map_err(|e| ApiError {
            status: 500,
            message: format!("writing rows as JSON: {e}"),
        })?;
        writer.finish().map_err(|e| ApiError {
            status: 500,
            message: format!("writing rows as JSON: {e}"),
        })?;
    }
    let mut rows = Vec::with_capacity(batch.num_rows());
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
            .map_err(|e| ApiError {
                status: 500,
                message: format!("reading back a row: {e}"),
            })?;
        let row: Vec<serde_json::Value> = names
            .iter()
            .map(|name| {
                object
                    .get(*name)
                    .cloned()
                    .unwrap_or(serde_json::Value::Null)
            })
            .collect();
        rows.push(serde_json::Value::Array(row));
    }
    Ok(rows)
}

/// `/api/points?table=&column=EMB[&color=COL][&limit=N]`: the first two values of a list
/// column per row (a reduced embedding, `<col>_umap` or `<col>_pca`) for a scatter, with a
/// colour column and the row positions: `{"x", "y", "color", "row", "total"}`.
fn points(store: &Store, params: &Params) -> Result<serde_json::Value, ApiError> {
    let url = params.required("table")?;
    let column = params.required("column")?;
    let color = params.get("color").filter(|c| !c.is_empty());
    let limit = params.number("limit", POINTS_DEFAULT, POINTS_MAX)?;
    let table = store.table(url).about("table")?;
    let mut names = vec![column];
    names.extend(color);
    let batches = table
        .query()
        .columns(&names)
        .limit(limit)
        .batches()
        .about("column")?;
    let (mut xs, mut ys, mut colors, mut rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut row = 0u64;
    for batch in &batches {
        let (x, y) = list_pairs(batch.column(0), column)?;
        for i in 0..batch.num_rows() {
            xs.push(x[i].map_or(serde_json::Value::Null, |v| Value::Float(v).to_json()));
            ys.push(y[i].map_or(serde_json::Value::Null, |v| Value::Float(v).to_json()));
            rows.push(row);
            row += 1;
        }
        if color.is_some() {
            let name = batch.schema().field(1).name().clone();
            for cells in batch_rows(
                &batch.project(&[1]).map_err(|e| ApiError {
                    status: 500,
                    message: e.to_string(),
                })?,
                &[&name],
            )? {
                colors.push(match cells {
                    serde_json::Value::Array(mut cells) => cells.pop().unwrap_or_default(),
                    other => other,
                });
            }
        }
    }
    Ok(serde_json::json!({
        "x": xs,
        "y": ys,
        "color": colors,
        "row": rows,
        "total": table.row_count()?,
    }))
}

/// The first and second item of each row of a list column of numbers (None where the row is
/// null, shorter, or not a number).
#[allow(clippy::type_complexity)]
fn list_pairs(
    array: &ArrayRef,
    name: &str,
) -> Result<(Vec<Option<f64>>, Vec<Option<f64>>), ApiError> {
    let not_a_list = || {
        ApiError::bad(format!(
            "column {name} is {}; a scatter needs a list of numbers (a reduced embedding)",
            array.data_type()
        ))
    };
    let (values, offsets): (ArrayRef, Vec<(usize, usize)>) = match array.data_type() {
        DataType::FixedSizeList(_, width) => {
            let list = array.as_fixed_size_list();
            let width = *width as usize;
            (
                list.values().clone(),
                (0..list.len()).map(|i| (i * width, width)).collect(),
            )
        }
        DataType::List(_) => list_spans(array.as_list::<i32>()),
        DataType::LargeList(_) => list_spans(array.as_list::<i64>()),
        _ => return Err(not_a_list()),
    };
    if !values.data_type().is_numeric() {
        return Err(not_a_list());
    }
    let floats = arrow_cast::cast(&values, &DataType::Float64).map_err(|_| not_a_list())?;
    let floats = floats.as_primitive::<Float64Type>();
    let item = |at: usize| (at < floats.len() && floats.is_valid(at)).then(|| floats.value(at));
    let mut xs = Vec::with_capacity(offsets.len());
    let mut ys = Vec::with_capacity(offsets.len());
    for (i, (start, len)) in offsets.into_iter().enumerate() {
        if array.is_null(i) || len < 2 {
            xs.push(None);
            ys.push(None);
        } else {
            xs.push(item(start));
            ys.push(item(start + 1));
        }
    }
    Ok((xs, ys))
}

/// A variable-size list's values and each row's (start, length) in them.
fn list_spans<O: arrow_array::OffsetSizeTrait>(
    list: &arrow_array::GenericListArray<O>,
) -> (ArrayRef, Vec<(usize, usize)>) {
    let offsets = list.value_offsets();
    let spans = offsets
        .windows(2)
        .map(|w| (w[0].as_usize(), (w[1] - w[0]).as_usize()))
        .collect();
    (list.values().clone(), spans)
}

/// `/api/bulk?url=RUN_URL&name=NAME`: the blob, streamed with its checksums checked.
fn bulk(store: &Store, params: &Params) -> Result<Reply, ApiError> {
    let url = params.required("url")?;
    let name = params.required("name")?;
    let run = store.run(url).about("url")?;
    let Some(info) = run.bulk_list()?.into_iter().find(|b| b.name == name) else {
        return Err(ApiError::not_found(format!(
            "name: run {url} has no blob {}",
            serde_json::Value::from(name)
        )));
    };
    let mut reader = run.bulk(name).about("name")?;
    // The first bytes are read, their checksums checked, before the answer starts: a blob
    // damaged at its start gets a 500 with its error, not a response cut off before its head.
    // (Damage further in still ends the download early, after the head is sent.)
    let mut first = vec![0u8; BLOB_FIRST_BYTES];
    let mut filled = 0;
    while filled < first.len() {
        match std::io::Read::read(&mut reader, &mut first[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) => {
                return Err(ApiError {
                    status: 500,
                    message: format!("name: blob {name} of run {url} is corrupted: {e}"),
                })
            }
        }
    }
    first.truncate(filled);
    Ok(Reply::Blob {
        name: info.name,
        len: info.len,
        first,
        reader,
    })
}
