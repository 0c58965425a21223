//! Metrics-table tests: A reader in another process.

use super::*;

const SCAN_CHILD_ENV: &str = "RUNSTORE_TABLES_SCAN_CHILD";
const SCAN_CHILD_URL_ENV: &str = "RUNSTORE_TABLES_SCAN_URL";
/// How long the child writes.
const SCAN_CHILD_WRITE: Duration = Duration::from_secs(2);

/// {i: Int64, f32: Float32, f64: Float64, s: Utf8, e: FixedSizeList<f32, 4>}; row `i` holds
/// `i` in every column.
fn prefix_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("f32", DataType::Float32, false),
        Field::new("f64", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("e", embedding_type(4), true),
    ]))
}

fn prefix_row(i: u64) -> Vec<Value> {
    vec![
        Value::Int(i as i64),
        Value::Float(i as f64),
        Value::Float(i as f64),
        Value::Str(i.to_string()),
        Value::List(vec![Value::Float(i as f64); 4]),
    ]
}

fn prefix_batch(rows: Range<u64>) -> RecordBatch {
    let rows: Vec<Vec<Value>> = rows.map(prefix_row).collect();
    batch_from_rows(&prefix_schema(), &rows)
}

/// The number of rows of a scan of the prefix table, or the first row that is not row `i` in
/// every column.
fn check_prefix(batches: &[RecordBatch]) -> Result<u64, String> {
    let mut row = 0u64;
    for batch in batches {
        let i = batch.column(0).as_primitive::<Int64Type>();
        let f32s = batch.column(1).as_primitive::<Float32Type>();
        let f64s = batch.column(2).as_primitive::<Float64Type>();
        let s = batch.column(3).as_string::<i32>();
        let e = batch.column(4).as_fixed_size_list();
        for at in 0..batch.num_rows() {
            let embedding = e.value(at);
            let embedding = embedding.as_primitive::<Float32Type>();
            let good = i.value(at) == row as i64
                && f32s.value(at) == row as f32
                && f64s.value(at) == row as f64
                && s.value(at) == row.to_string()
                && embedding.values().iter().all(|v| *v == row as f32)
                && [f64s.is_null(at), s.is_null(at), e.is_null(at)] == [false; 3];
            if !good {
                return Err(format!("row {row} is torn: {:?}", batch.slice(at, 1)));
            }
            row += 1;
        }
    }
    Ok(row)
}

/// The child's side of the reader test: appends rows for [`SCAN_CHILD_WRITE`] with per-call
/// durability (single rows, small batches, one batch of `SEAL_ROWS`), sealing now and then,
/// and prints the number of rows it wrote. Does nothing unless started by that test.
#[test]
fn scan_child() {
    let Ok(path) = std::env::var(SCAN_CHILD_ENV) else {
        return;
    };
    let url = std::env::var(SCAN_CHILD_URL_ENV).expect("scan child: table url");
    let store = Store::open(&path).expect("scan child: open the store");
    let mut writer = MetricsWriter::open(&store, &url, &immediate()).expect("scan child: writer");
    let started = Instant::now();
    let mut next = 0u64;
    let mut step = 0u64;
    let mut big_done = false;
    while started.elapsed() < SCAN_CHILD_WRITE {
        step += 1;
        if !big_done && started.elapsed() > SCAN_CHILD_WRITE / 2 {
            writer
                .append(&prefix_batch(next..next + SEAL_ROWS))
                .expect("scan child: large append");
            next += SEAL_ROWS;
            big_done = true;
        } else if step.is_multiple_of(5) {
            let len = 1 + step % 13;
            writer
                .append(&prefix_batch(next..next + len))
                .expect("scan child: append");
            next += len;
        } else {
            writer
                .append_row(&prefix_row(next))
                .expect("scan child: append_row");
            next += 1;
        }
        if step.is_multiple_of(40) {
            writer.flush().expect("scan child: flush");
        }
    }
    let info = writer.close().expect("scan child: close");
    assert_eq!(info.row_count, next);
    println!("scan child wrote {next} rows");
}

fn read_to_string_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

#[test]
fn table_scans_in_another_process_see_a_consistent_prefix_while_a_writer_appends_and_seals() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let url = run
        .metrics_writer(prefix_schema(), "live", "train", &immediate())
        .unwrap()
        .close()
        .unwrap()
        .url;
    drop((run, store));

    let mut child = child_test("tables::second_process::scan_child")
        .env(SCAN_CHILD_ENV, &path)
        .env(SCAN_CHILD_URL_ENV, &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_to_string_thread(child.stdout.take().unwrap());
    let stderr = read_to_string_thread(child.stderr.take().unwrap());

    let mut counts: Vec<u64> = Vec::new();
    let mut needs_repair = 0;
    let mut long_lived: Option<Store> = None;
    let mut failure = None;
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && failure.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child hangs"
        );
        let fresh = match Store::open_read_only(&path) {
            Ok(store) => store,
            Err(Error::NeedsRepair { .. }) => {
                needs_repair += 1;
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(err) => {
                failure = Some(format!("open_read_only: {err:?}"));
                break;
            }
        };
        let long_lived = long_lived.get_or_insert_with(|| fresh.clone());
        for reader in [&fresh, &*long_lived] {
            let scanned = reader
                .table(&url)
                .and_then(|table| table.scan())
                .map_err(|err| format!("scan: {err:?}"))
                .and_then(|batches| check_prefix(&batches));
            match scanned {
                Ok(rows) => counts.push(rows),
                Err(err) => failure = Some(err),
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if failure.is_some() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(failure, None, "child stderr:\n{stderr}");
    assert!(
        status.success(),
        "child failed: {status}\n{stdout}\n{stderr}"
    );
    assert_eq!(
        needs_repair, 0,
        "read-only opens failed with NeedsRepair while the writer was alive"
    );
    let written: u64 = stdout
        .lines()
        .find_map(|line| line.split("scan child wrote ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count from the child:\n{stdout}\n{stderr}"));

    assert!(counts.len() >= 20, "only {} scans", counts.len());
    assert!(
        counts.windows(2).all(|pair| pair[0] <= pair[1]),
        "scans went backwards: {counts:?}"
    );
    let mut distinct = counts.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 3,
        "the scans did not overlap the writes: {distinct:?}"
    );
    assert!(
        counts.iter().any(|&n| n > SEAL_ROWS),
        "no scan saw the large chunk: {distinct:?}"
    );

    let store = Store::open_read_only(&path).unwrap();
    let table = store.table(&url).unwrap();
    assert_eq!(check_prefix(&table.scan().unwrap()), Ok(written));
    assert_eq!(table.info().unwrap().tail_rows, 0);
    drop((table, store, long_lived));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
