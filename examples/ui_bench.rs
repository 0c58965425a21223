//! Issue 17's viewer measurements, through HTTP against a running `runstore ui`, as the pages
//! ask:
//!
//! - **compare**: 20 runs x 1,000,000 steps (`step`, `loss` with one spike per run), each
//!   run's series at 1,000 buckets (`/api/series`), all 20 fetched one after another and 6 at a
//!   time (as a browser does); the total, median of 7; every spike must be in its bucket's max.
//! - **runs table**: a 100,000-run project (5 parameters and 5 output keys per run), the first
//!   page of 50 runs with those 10 columns (`/api/runs?...&columns=`), then sorted by an
//!   output, by a parameter, and filtered; the first request after the server starts and the
//!   median of 7 after it.
//!
//! `cargo build --release && cargo run --release --example ui_bench -- [DIR] [--runs N]
//! [--steps N]` (the stores are written to DIR, default a temporary directory, and kept when
//! DIR is given; `runstore` is found beside this example or as `$RUNSTORE_BIN`). With
//! `--browser`, also runs `bench-compare/ui_browser.py` (playwright and Debian's chromium) for
//! the time to first drawn chart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Float32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use runstore::{InitOptions, MetricsOptions, Store, Value};

const SERIES_RUNS: usize = 20;
const REPS: usize = 7;
const COLUMNS: &str = "params.lr,params.batch_size,params.optimizer,params.dropout,params.seed,\
                       outputs.acc,outputs.loss,outputs.epoch,outputs.val_acc,outputs.val_loss";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The spike's step and value in run `r`'s series.
fn spike(r: usize, steps: usize) -> (usize, f32) {
    ((r * 7919 + 123_457) % steps, 50.0 + r as f32)
}

fn write_series_store(path: &Path, steps: usize) -> runstore::Result<Vec<String>> {
    let store = Store::create(path)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("step", DataType::Int64, false),
        Field::new("loss", DataType::Float32, false),
    ]));
    let mut urls = Vec::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for r in 0..SERIES_RUNS {
        let run = store.init("series", Some(&format!("run-{r:02}")))?;
        let (at, value) = spike(r, steps);
        let loss: Vec<f32> = (0..steps)
            .map(|s| {
                if s == at {
                    value
                } else {
                    (2.0 * (-(s as f64) / steps as f64 * 3.0).exp() + 0.05 * rng.unit()) as f32
                }
            })
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..steps as i64)),
                Arc::new(Float32Array::from(loss)),
            ],
        )
        .map_err(|e| runstore::Error::InvalidInput {
            reason: e.to_string(),
        })?;
        let infos = run.add_metrics_data(
            &batch,
            &MetricsOptions {
                table_writer_base_name: "steps".into(),
                stream_name: "train".into(),
                ..MetricsOptions::default()
            },
        )?;
        run.set_status_completed()?;
        urls.extend(infos.into_iter().map(|info| info.url));
    }
    store.close()?;
    Ok(urls)
}

fn write_runs_store(path: &Path, runs: u64) -> runstore::Result<()> {
    let store = Store::create(path)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let optimizers = ["adam", "sgd", "adamw", "rmsprop"];
    let mut i = 0;
    while i < runs {
        let end = (i + 1000).min(runs);
        store.batch(|batch| {
            for j in i..end {
                let parameters = Value::map([
                    ("lr", Value::from(10f64.powf(-4.0 + 3.0 * rng.unit()))),
                    ("batch_size", Value::from(16i64 << (rng.next() % 5))),
                    (
                        "optimizer",
                        Value::from(optimizers[(rng.next() % 4) as usize]),
                    ),
                    ("dropout", Value::from(rng.unit() * 0.5)),
                    ("seed", Value::from(j as i64)),
                ]);
                let options = InitOptions {
                    parameters: Some(parameters),
                    ..InitOptions::default()
                };
                let run = batch.init_with("big", Some(&format!("run-{j:07}")), &options)?;
                let ceiling = rng.unit();
                let outputs: Vec<Value> = (0..5)
                    .map(|epoch| {
                        let progress = f64::from(epoch + 1) / 5.0;
                        Value::map([
                            ("epoch", Value::from(i64::from(epoch))),
                            ("acc", Value::from(ceiling * progress)),
                            ("loss", Value::from((1.0 - ceiling * progress) * 2.0)),
                            ("val_acc", Value::from(ceiling * progress * 0.95)),
                            ("val_loss", Value::from((1.0 - ceiling * progress) * 2.1)),
                        ])
                    })
                    .collect();
                batch.add_output_values(&run, &outputs)?;
            }
            Ok(())
        })?;
        i = end;
    }
    store.close()?;
    Ok(())
}

/// A `runstore ui` over `store` on a free port; killed on drop.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(binary: &Path, store: &Path) -> Server {
        let mut child = Command::new(binary)
            .arg("ui")
            .arg(store)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start runstore ui");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        assert!(!address.is_empty(), "runstore ui printed no address");
        Server { child, address }
    }

    /// GET `target`; the body, which must come with status 200.
    fn get(&self, target: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&bytes[..end]);
        assert!(head.starts_with("HTTP/1.1 200"), "{target}: {head}");
        bytes[end + 4..].to_vec()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn runstore_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RUNSTORE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    // target/release/examples/ui_bench -> target/release/runstore
    let binary = exe.parent().unwrap().parent().unwrap().join("runstore");
    assert!(
        binary.exists(),
        "{} missing: run `cargo build --release` first, or set RUNSTORE_BIN",
        binary.display()
    );
    binary
}

fn main() -> runstore::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let runs = value("--runs").unwrap_or(100_000);
    let steps = value("--steps").unwrap_or(1_000_000) as usize;
    let browser = args.iter().any(|a| a == "--browser");
    let temp = tempfile::tempdir().unwrap();
    // DIR: the first argument that is neither a flag nor a flag's value.
    let dir = args
        .iter()
        .enumerate()
        .find(|(i, a)| {
            let after_flag = *i > 0 && ["--runs", "--steps"].contains(&args[i - 1].as_str());
            !a.starts_with("--") && !after_flag
        })
        .map(|(_, a)| PathBuf::from(a))
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let binary = runstore_binary();

    // Compare: 20 series of `steps` steps.
    let series_path = dir.join("series.runs");
    let started = Instant::now();
    let _ = std::fs::remove_file(&series_path);
    let tables = write_series_store(&series_path, steps)?;
    println!(
        "wrote {SERIES_RUNS} runs x {steps} steps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = Server::start(&binary, &series_path);
    let fetch = |r: usize, table: &str| {
        let body = server.get(&format!(
            "/api/series?table={}&y=loss&x=step&buckets=1000",
            q(table)
        ));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let max = json["max"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .fold(f64::MIN, f64::max);
        assert_eq!(
            max as f32,
            spike(r, steps).1,
            "run {r}: the spike is in a bucket's max"
        );
        assert_eq!(json["x"].as_array().unwrap().len(), 1000.min(steps));
    };
    let mut first = 0.0;
    let mut sequential = Vec::new();
    for rep in 0..=REPS {
        let started = Instant::now();
        for (r, table) in tables.iter().enumerate() {
            fetch(r, table);
        }
        if rep == 0 {
            first = ms(started);
        } else {
            sequential.push(ms(started));
        }
    }
    let mut parallel = Vec::new();
    for _ in 0..REPS {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for worker in 0..6 {
                let tables = &tables;
                let fetch = &fetch;
                scope.spawn(move || {
                    for (r, table) in tables.iter().enumerate().skip(worker).step_by(6) {
                        fetch(r, table);
                    }
                });
            }
        });
        parallel.push(ms(started));
    }
    println!(
        "compare {SERIES_RUNS} x {steps} steps at 1,000 buckets, all series served: first {first:.0} ms, \
         median {:.0} ms one at a time, {:.0} ms 6 at a time (target <= 200 ms; every spike kept)",
        median(sequential),
        median(parallel)
    );
    drop(server);

    // Runs table: a project of `runs` runs.
    let runs_path = dir.join("runs.runs");
    let started = Instant::now();
    let _ = std::fs::remove_file(&runs_path);
    write_runs_store(&runs_path, runs)?;
    println!(
        "wrote {runs} runs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let server = Server::start(&binary, &runs_path);
    let views = [
        ("first page", String::new()),
        (
            "sorted by an output",
            format!("&order_by={}", q("outputs.acc DESC")),
        ),
        (
            "sorted by a parameter",
            format!("&order_by={}", q("params.lr")),
        ),
        (
            "filtered",
            format!("&filter={}", q("params.lr < 0.01 AND outputs.acc > 0.5")),
        ),
        (
            "filtered and sorted",
            format!(
                "&filter={}&order_by={}",
                q("params.optimizer = 'adam'"),
                q("outputs.val_loss")
            ),
        ),
        ("page 1,000", "&offset=49950".to_string()),
    ];
    for (name, extra) in views {
        let target = format!(
            "/api/runs?project=big&limit=50&columns={}{extra}",
            q(COLUMNS)
        );
        let started = Instant::now();
        let body = server.get(&target);
        let first = ms(started);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut samples = Vec::new();
        for _ in 0..REPS {
            let started = Instant::now();
            server.get(&target);
            samples.push(ms(started));
        }
        println!(
            "runs table ({runs} runs), {name}: {} of {} runs, first {first:.0} ms, median {:.0} ms \
             (target <= 100 ms)",
            json["runs"].as_array().unwrap().len(),
            json["total"],
            median(samples)
        );
    }
    drop(server);

    if browser {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-compare/ui_browser.py");
        let status = Command::new("python3")
            .arg(script)
            .arg(&binary)
            .arg(&series_path)
            .arg(&runs_path)
            .args(&tables)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!(
                "browser timing failed or unavailable (needs playwright and /usr/bin/chromium)"
            );
        }
    }
    Ok(())
}
