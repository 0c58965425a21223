//! Metrics-table tests: proptest against a model.

use super::*;

/// A row of the model table: {step: Int64, loss: Float64, note: Utf8 nullable}.
type ModelRow = (i64, f64, Option<String>);

#[derive(Clone, Debug)]
enum TableOp {
    /// `Store::append_to_table` (a tail entry).
    Append(Vec<ModelRow>),
    /// `MetricsWriter::append` with per-call durability.
    WriterAppend(Vec<ModelRow>),
    /// `MetricsWriter::append_row`.
    AppendRow(ModelRow),
    /// `MetricsWriter::flush` (seals the tail).
    Flush,
    /// Closes the writer (sealing) if one is open, drops the store, opens it read-only to
    /// compare, then read-write.
    Reopen,
    /// A scan of some rows and columns (column indices, in the order asked).
    Scan {
        start: u64,
        len: u64,
        columns: Vec<usize>,
    },
}

const MODEL_COLUMNS: [&str; 3] = ["step", "loss", "note"];

fn model_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("loss", DataType::Float64, false),
        Field::new("note", DataType::Utf8, true),
    ]))
}

fn model_batch(rows: &[ModelRow]) -> RecordBatch {
    RecordBatch::try_new(
        model_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.2.as_deref()))),
        ],
    )
    .expect("model batch")
}

/// Cells of a row compared exactly (floats by bits, so NaN equals itself).
#[derive(Clone, Debug, PartialEq)]
enum ModelCell {
    Int(i64),
    Bits(u64),
    Text(Option<String>),
}

fn model_cells(row: &ModelRow, columns: &[usize]) -> Vec<ModelCell> {
    columns
        .iter()
        .map(|&c| match c {
            0 => ModelCell::Int(row.0),
            1 => ModelCell::Bits(row.1.to_bits()),
            _ => ModelCell::Text(row.2.clone()),
        })
        .collect()
}

fn scanned_cells(batches: &[RecordBatch], columns: &[usize]) -> Vec<Vec<ModelCell>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(at, &c)| {
                    let column = batch.column(at);
                    match c {
                        0 => ModelCell::Int(column.as_primitive::<Int64Type>().value(row)),
                        1 => ModelCell::Bits(
                            column.as_primitive::<Float64Type>().value(row).to_bits(),
                        ),
                        _ => {
                            let strings = column.as_string::<i32>();
                            ModelCell::Text(
                                strings
                                    .is_valid(row)
                                    .then(|| strings.value(row).to_string()),
                            )
                        }
                    }
                })
                .collect();
            out.push(cells);
        }
    }
    out
}

fn model_row() -> impl Strategy<Value = ModelRow> {
    (
        any::<i64>(),
        any::<f64>(),
        proptest::option::of("[a-zé ]{0,6}"),
    )
}

fn table_op() -> impl Strategy<Value = TableOp> {
    prop_oneof![
        4 => vec(model_row(), 1..20).prop_map(TableOp::Append),
        3 => vec(model_row(), 1..20).prop_map(TableOp::WriterAppend),
        5 => model_row().prop_map(TableOp::AppendRow),
        1 => Just(TableOp::Flush),
        1 => Just(TableOp::Reopen),
        2 => (
            0u64..300,
            0u64..80,
            proptest::sample::subsequence(vec![0usize, 1, 2], 1..=3).prop_shuffle()
        )
            .prop_map(|(start, len, columns)| TableOp::Scan { start, len, columns }),
    ]
}

/// The store, the open writer (if any) and the model: every row, and how many are in the tail.
struct ModelHarness {
    path: PathBuf,
    url: String,
    store: Option<Store>,
    writer: Option<MetricsWriter>,
    rows: Vec<ModelRow>,
    tail_rows: u64,
}

impl ModelHarness {
    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn writer(&mut self) -> &mut MetricsWriter {
        if self.writer.is_none() {
            let writer =
                MetricsWriter::open(self.store(), &self.url, &immediate()).expect("open writer");
            self.writer = Some(writer);
        }
        self.writer.as_mut().expect("writer")
    }

    fn apply(&mut self, op: &TableOp) -> Result<(), TestCaseError> {
        match op {
            TableOp::Append(rows) => {
                self.store()
                    .append_to_table(&self.url, &model_batch(rows))
                    .map_err(|e| TestCaseError::fail(format!("append_to_table: {e}")))?;
                self.rows.extend(rows.iter().cloned());
                self.tail_rows += rows.len() as u64;
            }
            TableOp::WriterAppend(rows) => {
                self.writer()
                    .append(&model_batch(rows))
                    .map_err(|e| TestCaseError::fail(format!("append: {e}")))?;
                self.rows.extend(rows.iter().cloned());
                self.tail_rows += rows.len() as u64;
            }
            TableOp::AppendRow(row) => {
                let note = row.2.as_deref().map_or(Value::Null, Value::from);
                self.writer()
                    .append_row(&[Value::Int(row.0), Value::Float(row.1), note])
                    .map_err(|e| TestCaseError::fail(format!("append_row: {e}")))?;
                self.rows.push(row.clone());
                self.tail_rows += 1;
            }
            TableOp::Flush => {
                self.writer()
                    .flush()
                    .map_err(|e| TestCaseError::fail(format!("flush: {e}")))?;
                self.tail_rows = 0;
            }
            TableOp::Reopen => {
                if let Some(writer) = self.writer.take() {
                    let info = writer
                        .close()
                        .map_err(|e| TestCaseError::fail(format!("close: {e}")))?;
                    prop_assert_eq!(info.row_count, self.rows.len() as u64);
                    self.tail_rows = 0;
                }
                self.store = None;
                self.store = Some(Store::open_read_only(&self.path).expect("open read-only"));
                self.check_table()?;
                self.store = None;
                self.store = Some(Store::open(&self.path).expect("reopen"));
            }
            TableOp::Scan {
                start,
                len,
                columns,
            } => {
                let names = columns
                    .iter()
                    .map(|&c| MODEL_COLUMNS[c].to_string())
                    .collect();
                let batches = self
                    .store()
                    .table(&self.url)
                    .and_then(|table| {
                        table.scan_with(&ScanOptions {
                            columns: Some(names),
                            rows: Some(*start..start + len),
                        })
                    })
                    .map_err(|e| TestCaseError::fail(format!("scan: {e}")))?;
                let total = self.rows.len();
                let from = (*start as usize).min(total);
                let to = ((start + len) as usize).min(total);
                let expected: Vec<Vec<ModelCell>> = self.rows[from..to]
                    .iter()
                    .map(|row| model_cells(row, columns))
                    .collect();
                prop_assert_eq!(scanned_cells(&batches, columns), expected);
            }
        }
        self.check_table()
    }

    /// The table's facts and every row equal the model.
    fn check_table(&self) -> Result<(), TestCaseError> {
        let table = self.store().table(&self.url).expect("table");
        let info = table.info().expect("info");
        prop_assert_eq!(info.row_count, self.rows.len() as u64);
        prop_assert_eq!(info.tail_rows, self.tail_rows);
        prop_assert_eq!(info.sealed_rows + info.tail_rows, info.row_count);
        let batches = table.scan().expect("scan");
        let all = [0, 1, 2];
        let expected: Vec<Vec<ModelCell>> =
            self.rows.iter().map(|row| model_cells(row, &all)).collect();
        prop_assert_eq!(scanned_cells(&batches, &all), expected);
        Ok(())
    }
}

fn run_model_case(ops: &[TableOp]) -> Result<(), TestCaseError> {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    let run = store.init("p", Some("r")).expect("init");
    let url = run
        .metrics_writer(model_schema(), "model", "train", &immediate())
        .and_then(MetricsWriter::close)
        .expect("create table")
        .url;
    drop(run);
    let mut harness = ModelHarness {
        path,
        url,
        store: Some(store),
        writer: None,
        rows: Vec::new(),
        tail_rows: 0,
    };
    for op in ops {
        harness.apply(op)?;
    }
    Ok(())
}

#[test]
fn table_matches_a_model_under_random_appends_flushes_and_reopens() {
    let cases = std::env::var("RUNSTORE_TABLE_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&vec(table_op(), 1..=30), |ops| run_model_case(&ops));
    if let Err(error) = result {
        panic!("{error}");
    }
}
