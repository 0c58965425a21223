//! `runstore scan` end to end: every output format, `--where`, `--group-by`/`--agg`,
//! `--downsample`, and `--output` files read back with the Arrow IPC and Parquet readers and
//! compared with the batches of the Rust API; bad input exits 1 (or 2 for usage) with a
//! message naming the column, and leaves no file behind.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use runstore::{Agg, Store};

use crate::util::{runstore, stdout, temp_store};

const TABLE: &str = "p/tables/steps";

/// A store with one table of 1,000 rows: step, epoch, loss (some null), split.
fn store_with_table(path: &Path) -> Store {
    let store = Store::create(path).unwrap();
    let rows = 1_000i64;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows)),
        Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i / 100))),
        Arc::new(
            (0..rows)
                .map(|i| (i % 50 != 7).then(|| 1.0 / (1 + i) as f64))
                .collect::<Float64Array>(),
        ),
        Arc::new(StringArray::from_iter_values((0..rows).map(|i| {
            if i % 4 == 0 {
                "val"
            } else {
                "train"
            }
        }))),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("epoch", DataType::Int64, false),
        Field::new("loss", DataType::Float64, true),
        Field::new("split", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(schema, columns).unwrap();
    store.create_table("p", "steps", &[batch]).unwrap();
    store
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
}

#[test]
fn cli_scan_writes_every_format_and_the_files_read_back_as_the_rust_api_batches() {
    let (dir, path) = temp_store();
    let store = store_with_table(&path);
    let path_text = path.to_str().unwrap();
    let filter = "split = 'val' AND loss < 0.01";
    let expected = concat(
        &store
            .table(TABLE)
            .unwrap()
            .query()
            .columns(&["step", "loss"])
            .filter(filter)
            .unwrap()
            .offset(2)
            .limit(50)
            .batches()
            .unwrap(),
    );
    assert_eq!(expected.num_rows(), 50);
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            path_text,
            TABLE,
            "--columns",
            "step,loss",
            "--where",
            filter,
            "--offset",
            "2",
            "--limit",
            "50",
        ];
        args.extend_from_slice(extra);
        runstore(&args)
    };

    let csv = stdout(&scan(&["--format", "csv"]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,loss");
    assert_eq!(lines.len(), 51);
    let steps = expected
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    let losses = expected
        .column(1)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    for (i, line) in lines[1..].iter().enumerate() {
        let (step, loss) = line.split_once(',').unwrap();
        assert_eq!(step.parse::<i64>().unwrap(), steps.value(i));
        assert_eq!(loss.parse::<f64>().unwrap(), losses.value(i));
    }

    let json = stdout(&scan(&["--format", "json"]));
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 50);
    assert_eq!(objects[0]["step"], steps.value(0));
    assert_eq!(objects[49]["loss"].as_f64().unwrap(), losses.value(49));

    let table = stdout(&scan(&[]));
    assert!(table.starts_with("step"), "{table}");
    assert!(table.trim_end().ends_with("(50 rows)"), "{table}");

    // Arrow IPC and Parquet files read back equal to the Rust API's batches.
    let arrow_path = dir.path().join("out.arrow");
    stdout(&scan(&[
        "--format",
        "arrow",
        "--output",
        arrow_path.to_str().unwrap(),
    ]));
    let reader =
        arrow_ipc::reader::FileReader::try_new(File::open(&arrow_path).unwrap(), None).unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(concat(&batches), expected);

    let parquet_path = dir.path().join("out.parquet");
    stdout(&scan(&[
        "--format",
        "parquet",
        "--output",
        parquet_path.to_str().unwrap(),
    ]));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        File::open(&parquet_path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let read = concat(&batches);
    assert_eq!(read.columns(), expected.columns());
    assert_eq!(read.schema().field(0).name(), "step");

    // Binary to a pipe is fine (a terminal is refused).
    let output = scan(&["--format", "parquet"]);
    assert!(output.status.success());
    assert!(output.stdout.starts_with(b"PAR1") && output.stdout.ends_with(b"PAR1"));
    let output = scan(&["--format", "arrow"]);
    assert!(output.status.success());
    assert!(output.stdout.starts_with(b"ARROW1"));

    // Only the two output files and the store: no temporary files left.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["out.arrow", "out.parquet", "test.runs"]);
}

#[test]
fn cli_scan_aggregates_and_downsamples_as_the_rust_api_does() {
    let (_dir, path) = temp_store();
    let store = store_with_table(&path);
    let path_text = path.to_str().unwrap();
    let table = store.table(TABLE).unwrap();

    let json = stdout(&runstore(&[
        "scan",
        path_text,
        TABLE,
        "--where",
        "split = 'train'",
        "--group-by",
        "epoch",
        "--agg",
        "mean:loss,count,max:step",
        "--format",
        "json",
    ]));
    let expected = table
        .query()
        .filter("split = 'train'")
        .unwrap()
        .aggregate(
            Some("epoch"),
            &[Agg::mean("loss"), Agg::count(), Agg::max("step")],
        )
        .unwrap();
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 10);
    assert_eq!(objects.len(), expected.num_rows());
    let means = expected
        .column(1)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    for (i, object) in objects.iter().enumerate() {
        assert_eq!(object["epoch"], i);
        assert_eq!(object["count"], 75);
        // JSON text of a float may differ in the last bit.
        let mean = object["mean(loss)"].as_f64().unwrap();
        assert!((mean - means.value(i)).abs() <= 1e-15 * means.value(i).abs());
        assert_eq!(object["max(step)"].as_f64().unwrap(), (i * 100 + 99) as f64);
    }

    let csv = stdout(&runstore(&[
        "scan",
        path_text,
        TABLE,
        "--downsample",
        "8",
        "--column",
        "loss",
        "--x",
        "step",
        "--format",
        "csv",
    ]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "bucket,first_row,last_row,count,min,max,last,x_first,x_last"
    );
    assert_eq!(lines.len(), 9);
    assert!(lines[1].starts_with("0,0,124,125,"), "{}", lines[1]);
    assert!(lines[8].starts_with("7,875,999,125,"), "{}", lines[8]);
    let expected = table
        .query()
        .downsample_with_x("loss", Some("step"), 8)
        .unwrap();
    let max = expected
        .column(5)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let cells: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(cells[5].parse::<f64>().unwrap(), max.value(0));
    assert_eq!(max.value(0), 1.0);
}

#[test]
fn cli_scan_rejects_bad_input_with_the_column_and_leaves_no_file() {
    let (dir, path) = temp_store();
    store_with_table(&path);
    let path_text = path.to_str().unwrap();
    let out = dir.path().join("never.parquet");
    let output = runstore(&[
        "scan",
        path_text,
        TABLE,
        "--where",
        "step > 3 AND los < 1",
        "--format",
        "parquet",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("column 14"), "{stderr}");
    assert!(
        stderr.contains("unknown column 'los' (did you mean 'loss'?)"),
        "{stderr}"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["test.runs"]);

    let output = runstore(&["scan", path_text, TABLE, "--where", "split < 3"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("column 1"), "{stderr}");
    assert!(stderr.contains("column 'split' is Utf8"), "{stderr}");

    let output = runstore(&["scan", path_text, TABLE, "--agg", "median:loss"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown aggregate"));

    // Usage errors are clap's: exit 2.
    for args in [
        &["--group-by", "epoch"][..],
        &["--downsample", "10"][..],
        &["--rows", "5..2"][..],
        &["--agg", "count", "--downsample", "3", "--column", "loss"][..],
    ] {
        let mut all = vec!["scan", path_text, TABLE];
        all.extend_from_slice(args);
        let output = runstore(&all);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn cli_scan_rows_selects_table_positions() {
    let (_dir, path) = temp_store();
    store_with_table(&path);
    let csv = stdout(&runstore(&[
        "scan",
        path.to_str().unwrap(),
        TABLE,
        "--rows",
        "990..2000",
        "--columns",
        "step",
        "--where",
        "step != 995",
        "--format",
        "csv",
    ]));
    let steps: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(
        steps,
        ["990", "991", "992", "993", "994", "996", "997", "998", "999"]
    );
}
