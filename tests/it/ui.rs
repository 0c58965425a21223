//! `runstore ui`: the server started as users start it (`--port 0`, the address read from
//! the first line of stdout), every API route compared with what the library and the other
//! commands return, bad requests and a damaged store answered with JSON errors while the
//! server lives on, a writer's commits shown without a restart, its death shown as a stale
//! run, and Ctrl-C stopping the server cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::{Store, Value};
use serde_json::Value as Json;

use crate::util::{child_test, runstore_ok, temp_store};

/// A `runstore ui` process over a store, stopped (SIGKILL) when dropped.
struct Viewer {
    child: Child,
    /// `http://127.0.0.1:PORT/`, as printed.
    base: String,
    /// `127.0.0.1:PORT`.
    address: String,
}

impl Viewer {
    fn start(path: &Path, extra: &[&str]) -> Viewer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runstore"))
            .arg("ui")
            .arg(path)
            .args(["--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start runstore ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("runstore ui printed no address: {stderr}");
        }
        let base = line.trim().to_string();
        let address = base
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("first line is the address: {base:?}"))
            .to_string();
        Viewer {
            child,
            base,
            address,
        }
    }

    /// GET `target` (path and query) with this server's Host.
    fn get(&self, target: &str) -> Reply {
        self.request(&format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        ))
    }

    /// Sends `head` as is and reads the whole response.
    fn request(&self, head: &str) -> Reply {
        let mut stream = TcpStream::connect(&self.address).expect("connect to the viewer");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        Reply::parse(&bytes)
    }

    /// GET `target`, which must answer 200 with JSON.
    fn json(&self, target: &str) -> Json {
        let reply = self.get(target);
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.json()
    }

    /// GET `target`, which must answer `status` with `{"error": ...}`; the error text.
    fn error(&self, target: &str, status: u16) -> String {
        let reply = self.get(target);
        assert_eq!(reply.status, status, "{target}: {}", reply.text());
        reply.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{target}: an error object: {}", reply.text()))
            .to_string()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn parse(bytes: &[u8]) -> Reply {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("a response head: {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: bytes[end + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", self.text()))
    }
}

/// `text` escaped for a query string.
fn q(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn demo_store(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("demo.runs");
    runstore_ok(&["demo", path.to_str().unwrap()]);
    path
}

const BEST: &str = "cifar10-sweep/runs/resnet18-lr0.01";

#[test]
fn every_route_answers_what_the_library_and_the_commands_give() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_store(dir.path());
    let p = path.to_str().unwrap();
    let viewer = Viewer::start(&path, &[]);
    let store = Store::open_read_only(&path).unwrap();

    // Projects.
    let projects = viewer.json("/api/projects");
    let expected: Vec<(String, u64)> = store
        .projects()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.run_count))
        .collect();
    let got: Vec<(String, u64)> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["run_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // Runs: the objects `runs --json --columns` prints, paged, with the total.
    let filter = "params.lr <= 0.1";
    let order = "outputs.val_accuracy DESC";
    let columns = "params.lr,outputs.val_accuracy,outputs.val_accuracy.max";
    let page = viewer.json(&format!(
        "/api/runs?project=cifar10-sweep&filter={}&order_by={}&columns={}&limit=2&offset=1",
        q(filter),
        q(order),
        q(columns)
    ));
    let lines = runstore_ok(&[
        "runs",
        p,
        "--project",
        "cifar10-sweep",
        "--filter",
        filter,
        "--order-by",
        order,
        "--columns",
        columns,
        "--json",
        "--limit",
        "2",
        "--offset",
        "1",
    ]);
    let expected: Vec<Json> = lines
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(page["runs"].as_array().unwrap(), &expected);
    let all = store
        .query_runs()
        .project("cifar10-sweep")
        .filter(filter)
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(page["total"].as_u64(), Some(all.len() as u64));
    assert!(all.len() > 2, "the page is a part of the whole");

    // One run: what `show --json` prints.
    let run = viewer.json(&format!("/api/run?url={}", q(BEST)));
    let shown: Json = serde_json::from_str(&runstore_ok(&["show", p, BEST, "--json"])).unwrap();
    assert_eq!(run, shown);

    // A table's columns and rows.
    let metrics = format!("{BEST}/metrics_0000");
    let table = viewer.json(&format!("/api/table?url={}", q(&metrics)));
    let handle = store.table(&metrics).unwrap();
    assert_eq!(
        table["row_count"].as_u64(),
        Some(handle.row_count().unwrap())
    );
    let names: Vec<&str> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let schema = handle.schema().unwrap();
    let expected_names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, expected_names);

    let rows = viewer.json(&format!(
        "/api/rows?table={}&columns=example_id,loss&where={}&order_by={}&offset=2&limit=5",
        q(&metrics),
        q("loss > 1.5"),
        q("loss DESC")
    ));
    let batches = handle
        .query()
        .columns(&["example_id", "loss"])
        .filter("loss > 1.5")
        .unwrap()
        .order_by("loss", true)
        .offset(2)
        .limit(5)
        .batches()
        .unwrap();
    let ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let ids = arrow_cast::cast(b.column(0), &DataType::Int64).unwrap();
            let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap().clone();
            ids.values().to_vec()
        })
        .collect();
    let got: Vec<i64> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_i64().unwrap())
        .collect();
    assert_eq!(got, ids);
    assert_eq!(rows["columns"], serde_json::json!(["example_id", "loss"]));
    let count = handle
        .query()
        .filter("loss > 1.5")
        .unwrap()
        .count()
        .unwrap();
    assert_eq!(rows["total"].as_u64(), Some(count));
    let losses: Vec<f64> = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[1].as_f64().unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "{losses:?}");

    // A series: the library's downsampled read, bucket by bucket, also zoomed.
    let steps = format!("{BEST}/steps_0000");
    for (zoom, from_to) in [("", None), ("&from=100&to=350", Some((100.0, 350.0)))] {
        let series = viewer.json(&format!(
            "/api/series?table={}&y=loss&x=step&buckets=7{zoom}",
            q(&steps)
        ));
        let table = store.table(&steps).unwrap();
        let mut query = table.query();
        if let Some((from, to)) = from_to {
            query = query
                .filter(&format!("step >= {from} AND step <= {to}"))
                .unwrap();
        }
        let expected = query.downsample_with_x("loss", Some("step"), 7).unwrap();
        for (field, column) in [
            ("x", "x_first"),
            ("min", "min"),
            ("max", "max"),
            ("last", "last"),
        ] {
            let want = floats(&expected, column);
            let got: Vec<f64> = series[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(got, want, "{field}{zoom}");
        }
        let counts: Vec<u64> = series["count"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), query.count().unwrap());
    }

    // A scatter of the reduced embedding: the first two values of each row, in row order.
    let reduced = format!("{BEST}/metrics_0000_pca");
    let points = viewer.json(&format!(
        "/api/points?table={}&column=embedding_pca&color=predicted&limit=300",
        q(&reduced)
    ));
    let batches = store
        .table(&reduced)
        .unwrap()
        .query()
        .columns(&["embedding_pca", "predicted"])
        .limit(300)
        .batches()
        .unwrap();
    let mut want_x = Vec::new();
    let mut want_color = Vec::new();
    for batch in &batches {
        let lists = batch
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeListArray>()
            .unwrap();
        let values = arrow_cast::cast(lists.values(), &DataType::Float64).unwrap();
        let values = values
            .as_any()
            .downcast_ref::<arrow_array::Float64Array>()
            .unwrap();
        let width = lists.value_length() as usize;
        for row in 0..batch.num_rows() {
            want_x.push(values.value(row * width));
        }
        let colors = arrow_cast::cast(batch.column(1), &DataType::Int64).unwrap();
        let colors = colors.as_any().downcast_ref::<Int64Array>().unwrap();
        want_color.extend(colors.values().iter().copied());
    }
    let got_x: Vec<f64> = points["x"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(got_x.len(), 300);
    for (got, want) in got_x.iter().zip(&want_x) {
        assert!((got - want).abs() <= want.abs() * 1e-6, "{got} vs {want}");
    }
    let got_color: Vec<i64> = points["color"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(got_color, want_color);
    assert_eq!(points["row"][299], 299);
    assert_eq!(points["total"].as_u64(), Some(10_000));

    // The store's own facts.
    let facts = viewer.json("/api/store");
    assert_eq!(facts["runs"].as_u64(), Some(store.run_count().unwrap()));
    assert_eq!(facts["needs_recovery"], false);

    // A blob, byte for byte.
    let blob = viewer.get(&format!("/api/bulk?url={}&name=checkpoint.pt", q(BEST)));
    assert_eq!(blob.status, 200);
    assert_eq!(
        blob.body,
        store
            .run(BEST)
            .unwrap()
            .bulk_bytes("checkpoint.pt")
            .unwrap()
    );
    assert!(blob
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));

    // Pages and assets, each with the security headers.
    for page in [
        "/",
        "/project?name=cifar10-sweep",
        "/run?url=x",
        "/table?url=y",
        "/compare",
    ] {
        let reply = viewer.get(page);
        assert_eq!(reply.status, 200, "{page}");
        assert!(reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        let csp = reply.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    }
    for asset in [
        "/assets/app.js",
        "/assets/app.css",
        "/assets/uPlot.iife.min.js",
    ] {
        assert_eq!(viewer.get(asset).status, 200, "{asset}");
    }
}

/// A column of a downsampled read as `f64`s.
fn floats(batch: &RecordBatch, name: &str) -> Vec<f64> {
    let column = arrow_cast::cast(batch.column_by_name(name).unwrap(), &DataType::Float64).unwrap();
    let column = column
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .unwrap();
    column.values().to_vec()
}

#[test]
fn bad_requests_get_json_errors_and_the_server_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_store(dir.path());
    let viewer = Viewer::start(&path, &[]);
    let steps = q(&format!("{BEST}/steps_0000"));

    let error = viewer.error(&format!("/api/runs?filter={}", q("params.lr <")), 400);
    assert!(error.starts_with("filter: "), "{error}");
    let error = viewer.error(
        &format!("/api/runs?order_by={}", q("outputs.acc SIDEWAYS")),
        400,
    );
    assert!(error.starts_with("order_by: "), "{error}");
    // A key no run has is a typo, named with the closest key, wherever it is written.
    let error = viewer.error(
        &format!("/api/runs?filter={}", q("outputs.val_acc > 0.9")),
        400,
    );
    assert!(
        error.contains("no run has output 'val_acc' (did you mean 'val_accuracy'?)"),
        "{error}"
    );
    let error = viewer.error(&format!("/api/runs?order_by={}", q("params.LR")), 400);
    assert!(error.starts_with("no run has parameter 'LR'"), "{error}");
    let error = viewer.error("/api/runs?columns=params.lr,params.momentun", 400);
    assert!(error.contains("no run has parameter 'momentun'"), "{error}");
    viewer.error("/api/runs?limit=lots", 400);
    viewer.error("/api/runs?limit=100000", 400);
    viewer.error("/api/runs?project=nope", 404);
    viewer.error("/api/run", 400);
    viewer.error("/api/run?url=cifar10-sweep/runs/nope", 404);
    viewer.error("/api/run?url=not%20a%20url", 400);
    viewer.error("/api/table?url=nope/tables/x", 404);
    viewer.error(&format!("/api/series?table={steps}&y=nope"), 404);
    viewer.error(&format!("/api/series?table={steps}&y=loss&buckets=0"), 400);
    viewer.error(
        &format!("/api/series?table={steps}&y=loss&buckets=1000000"),
        400,
    );
    viewer.error(&format!("/api/series?table={steps}&y=loss&from=abc"), 400);
    let error = viewer.error(&format!("/api/rows?table={steps}&where=los%3E1"), 400);
    assert!(error.contains("did you mean 'loss'"), "{error}");
    viewer.error(&format!("/api/rows?table={steps}&columns=nope"), 404);
    viewer.error(&format!("/api/points?table={steps}&column=loss"), 400);
    viewer.error(&format!("/api/bulk?url={}&name=nope", q(BEST)), 404);
    viewer.error("/api/runs?filter=%zz", 400);
    viewer.error("/api/runs?filter=%ff", 400);
    viewer.error("/api/nope", 404);
    viewer.error("/nope", 404);

    // Only GET, no body, this server's Host only.
    let head = |method: &str, extra: &str| {
        format!(
            "{method} /api/projects HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\r\n",
            viewer.address
        )
    };
    assert_eq!(
        viewer
            .request(&head("POST", "Content-Length: 0\r\n"))
            .status,
        405
    );
    assert_eq!(viewer.request(&head("DELETE", "")).status, 405);
    assert_eq!(
        viewer.request(&head("GET", "Content-Length: 5\r\n")).status,
        413
    );
    let rebound = viewer.request(
        "GET /api/projects HTTP/1.1\r\nHost: rebind.example:8321\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(rebound.status, 403);
    assert!(rebound.json()["error"].as_str().unwrap().contains("Host"));
    let localhost = viewer.request(&format!(
        "GET /api/projects HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        viewer.address.rsplit(':').next().unwrap()
    ));
    assert_eq!(localhost.status, 200);
    // A head larger than the server takes is refused, not buffered.
    let huge = viewer.request(&format!(
        "GET /api/projects HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\n\r\n",
        viewer.address,
        "a".repeat(200_000)
    ));
    assert!(huge.status >= 400, "{}", huge.status);

    // Still serving.
    assert_eq!(viewer.json("/api/projects").as_array().unwrap().len(), 1);
}

/// A store with one run whose metrics table holds `MARKER`-patterned integers and a blob of
/// marker bytes, closed.
const MARKER: i64 = 0x5eed_cafe_f00d_0000;

fn marked_store(path: &Path) {
    let store = Store::create(path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("loss", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..70_000)),
            Arc::new(Int64Array::from_iter_values(
                (0..70_000).map(|i| MARKER + i),
            )),
        ],
    )
    .unwrap();
    store.create_table("p", "marked", &[batch]).unwrap();
    run.put_bulk("blob.bin", &[0xabu8; 300_000]).unwrap();
    store.close().unwrap();
}

#[test]
fn a_damaged_store_gets_error_responses_not_a_dead_server() {
    let (_dir, path) = temp_store();
    marked_store(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = (MARKER + 1000).to_le_bytes();
    let at = bytes
        .windows(8)
        .position(|w| w == needle)
        .expect("the column's bytes in the file");
    bytes[at + 2] ^= 0x10;
    let blob_at = bytes
        .windows(64)
        .position(|w| w.iter().all(|b| *b == 0xab))
        .expect("the blob's bytes in the file");
    bytes[blob_at + 1000] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let viewer = Viewer::start(&path, &[]);
    let table = q("p/tables/marked");
    let error = viewer.error(
        &format!("/api/rows?table={table}&offset=900&limit=200"),
        500,
    );
    assert!(error.to_lowercase().contains("corrupt"), "{error}");
    let error = viewer.error(&format!("/api/series?table={table}&y=loss"), 500);
    assert!(error.to_lowercase().contains("corrupt"), "{error}");
    // The blob's damaged chunk ends the download early: never the wrong bytes in full.
    let blob = viewer.get("/api/bulk?url=p/runs/r&name=blob.bin");
    assert!(
        blob.status != 200 || blob.body.len() < 300_000,
        "a damaged blob is not served whole"
    );
    // Everything else still answers.
    assert_eq!(viewer.json("/api/projects").as_array().unwrap().len(), 1);
    assert_eq!(viewer.json("/api/run?url=p/runs/r")["name"], "r");
}

/// The child test behind `shows_a_writers_commits_and_its_death`: opens the store for writing,
/// starts a RUNNING run with one output, says "ready", adds an output for each line it reads,
/// saying "ok", until it is killed.
#[test]
fn ui_writer_child() {
    let Ok(path) = std::env::var("RUNSTORE_UI_WRITER") else {
        return;
    };
    let store = Store::open(&path).unwrap();
    let run = store.init("live", Some("training")).unwrap();
    run.set_status_running().unwrap();
    run.add_output_value(&Value::map([("step", Value::from(0i64))]))
        .unwrap();
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut step = 0i64;
    for line in std::io::stdin().lines() {
        if line.is_err() {
            break;
        }
        step += 1;
        run.add_output_value(&Value::map([("step", Value::from(step))]))
            .unwrap();
        println!("ok");
        std::io::stdout().flush().unwrap();
    }
    // Stdin closed: wait to be killed, the store still open.
    std::thread::sleep(Duration::from_secs(600));
}

/// Polls `check` on the viewer for up to 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn shows_a_writers_commits_and_its_death() {
    if !Path::new("/proc/self/stat").exists() {
        eprintln!("no /proc: a writer's death cannot be told here");
        return;
    }
    let (_dir, path) = temp_store();
    Store::create(&path).unwrap().close().unwrap();
    let mut writer = child_test("ui::ui_writer_child")
        .env("RUNSTORE_UI_WRITER", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = writer.stdin.take().unwrap();
    let mut output = BufReader::new(writer.stdout.take().unwrap());
    let mut read_until = |word: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(output.read_line(&mut line).unwrap() > 0, "the writer ended");
            // libtest prints "test ui::ui_writer_child ... " before the test's own output.
            if line.trim().ends_with(word) {
                return;
            }
        }
    };
    read_until("ready");

    let viewer = Viewer::start(&path, &[]);
    let run = || viewer.json("/api/run?url=live/runs/training");
    assert_eq!(run()["status"], "RUNNING");
    assert_eq!(run()["stale"], false);
    assert_eq!(run()["outputs"].as_array().unwrap().len(), 1);
    // New commits show up without a restart.
    for expected in 2..=4 {
        writeln!(input, "more").unwrap();
        read_until("ok");
        eventually("the new output", || {
            run()["outputs"].as_array().unwrap().len() == expected
        });
    }
    // The writer dies: the last durable commit stays, and the run is stale.
    writer.kill().unwrap();
    writer.wait().unwrap();
    eventually("the run marked stale", || run()["stale"] == true);
    let after = run();
    assert_eq!(after["status"], "RUNNING");
    assert_eq!(after["outputs"].as_array().unwrap().len(), 4);
    let runs = viewer.json("/api/runs?project=live");
    assert_eq!(runs["runs"][0]["stale"], true);
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_store(dir.path());
    let mut viewer = Viewer::start(&path, &[]);
    assert_eq!(viewer.get("/api/projects").status, 200);
    // SAFETY: kill(2) with a pid this test spawned and a standard signal; no memory involved.
    let sent = unsafe { libc::kill(viewer.child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = viewer.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "runstore ui did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    viewer
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        TcpStream::connect(&viewer.address).is_err(),
        "the port is closed"
    );
}

#[test]
fn listening_beyond_loopback_warns_and_a_missing_store_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_store(dir.path());
    let mut viewer = Viewer::start(&path, &["--host", "0.0.0.0"]);
    assert!(
        viewer.base.starts_with("http://0.0.0.0:"),
        "{}",
        viewer.base
    );
    viewer.address = viewer.address.replacen("0.0.0.0", "127.0.0.1", 1);
    assert_eq!(viewer.get("/api/projects").status, 200);
    viewer.child.kill().unwrap();
    let mut stderr = String::new();
    viewer
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("no authentication"), "{stderr}");

    let missing = dir.path().join("missing.runs");
    let output = Command::new(env!("CARGO_BIN_EXE_runstore"))
        .args(["ui", missing.to_str().unwrap(), "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}
