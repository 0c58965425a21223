//! Issue 7's benchmark runner: runstore on workloads W1–W6, against the physical references
//! (raw file writes with fsync, the fdatasync rate, sums from memory, plain-file reads) and
//! SQLite (rusqlite, WAL) doing the same jobs, all measured in the same run. Every figure is a
//! median and is printed next to its ratio to the job's reference.
//!
//! ```sh
//! cargo run --release -p bench-compare                   # everything, the issue's sizes
//! cargo run --release -p bench-compare -- --quick        # small sizes, about a minute
//! cargo run --release -p bench-compare -- --tiny         # a smoke test (bench-compare/tests/tiny.rs)
//! cargo run --release -p bench-compare -- --only W3,W4 --reps 5 --dir /mnt/fast/bench
//! cargo run --release -p bench-compare -- --export-data DIR   # data for bench-compare/
//! cargo run --release -p bench-compare -- --from-jsonl target/bench/bench.jsonl --markdown \
//!     --compare DIR/compare.jsonl                        # the README's table again
//! cargo run --release -p bench-compare -- --scaling      # W3, W1, W4 at growing sizes + chart
//! cargo run --release -p bench-compare -- --scaling --quick   # the same at small sizes
//! cargo run --release -p bench-compare -- --scaling-from bench-compare/results/2026-12-07-scaling.jsonl
//!                                                        # docs/bench-scaling.svg again
//! ```
//!
//! Results go to stdout (a table) and to `DIR/bench.jsonl` (one JSON object per figure, the
//! same fields as `bench-compare/`); `--markdown` also prints the README's table, with the
//! Python tools' lines from `--compare FILE` (see `bench-compare/README.md`).
//!
//! `--scaling` measures W3 at 1,000 to 1,000,000 runs, W1 at 100,000 to 10,000,000 steps and
//! W4 at 100,000 to 10,000,000 rows, runstore and SQLite side by side (see `scaling.rs`): a
//! table, `DIR/scaling.jsonl` and a chart, `docs/bench-scaling.svg` (`DIR/bench-scaling.svg`
//! with `--quick` or `--tiny`; `--chart FILE` to put it elsewhere). `--scaling-from FILE`
//! prints the table and draws the chart again from a saved `scaling.jsonl`.

mod data;
mod physical;
mod report;
mod rs;
mod scaling;
mod sqlite;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use report::Measurement;
use rs::Fallible;

/// Which of a workload's jobs a workload function measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    /// Every job, with the physical references (the normal run).
    All,
    /// Only the jobs the scaling run charts (see `scaling.rs`): the others are left out so
    /// that the big sizes take minutes, not hours.
    Scaling,
}

/// What to run, from the command line.
struct Options {
    quick: bool,
    /// Sizes for a smoke test of the runner itself (the test suite runs it).
    tiny: bool,
    /// Print the tables of an earlier run's `bench.jsonl` instead of measuring.
    from_jsonl: Option<PathBuf>,
    only: Option<Vec<String>>,
    /// `--reps`, if given (the normal run's default is 5; the scaling run's, 3 or 1 by size).
    reps: Option<usize>,
    dir: PathBuf,
    export: Option<PathBuf>,
    markdown: bool,
    compare: Option<PathBuf>,
    keep: bool,
    /// Run the scaling measurements instead of the normal run.
    scaling: bool,
    /// Print the table and draw the chart of an earlier run's `scaling.jsonl`.
    scaling_from: Option<PathBuf>,
    /// Where the scaling chart goes, if not its default place.
    chart: Option<PathBuf>,
}

/// Sizes of one run of the bench.
struct Sizes {
    steps: usize,
    durable_calls: usize,
    runs: Vec<usize>,
    rows: usize,
    big_store: u64,
    metrics: u64,
}

const USAGE: &str = "usage: bench [--quick | --tiny] [--only W1,W2,...] [--reps N] [--dir DIR] \
    [--export-data DIR] [--markdown] [--compare FILE] [--keep] [--from-jsonl FILE]\n       \
    bench --scaling [--quick | --tiny] [--only W1,W3,W4] [--reps N] [--dir DIR] [--chart FILE]\n       \
    bench --scaling-from FILE [--chart FILE]";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        tiny: false,
        from_jsonl: None,
        only: None,
        reps: None,
        dir: PathBuf::from("target/bench"),
        export: None,
        markdown: false,
        compare: None,
        keep: false,
        scaling: false,
        scaling_from: None,
        chart: None,
    };
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{} needs a value\n{USAGE}", args[i]))
        };
        match args[i].as_str() {
            "--quick" => options.quick = true,
            "--tiny" => options.tiny = true,
            "--from-jsonl" => {
                options.from_jsonl = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            "--markdown" => options.markdown = true,
            "--keep" => options.keep = true,
            "--only" => {
                options.only = Some(
                    value(i)?
                        .split(',')
                        .map(|w| w.trim().to_uppercase())
                        .collect(),
                );
                i += 1;
            }
            "--reps" => {
                options.reps = Some(
                    value(i)?
                        .parse()
                        .ok()
                        .filter(|r| *r >= 1)
                        .ok_or_else(|| format!("--reps needs a positive number\n{USAGE}"))?,
                );
                i += 1;
            }
            "--scaling" => options.scaling = true,
            "--scaling-from" => {
                options.scaling_from = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            "--chart" => {
                options.chart = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            "--dir" => {
                options.dir = PathBuf::from(value(i)?);
                i += 1;
            }
            "--export-data" => {
                options.export = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            "--compare" => {
                options.compare = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
        i += 1;
    }
    Ok(options)
}

fn child(args: &[String]) -> Fallible<()> {
    let arg = |i: usize| -> Fallible<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("child {args:?}: missing argument {i}").into())
    };
    match arg(0)? {
        "rs-read" => rs::child_read(arg(1)?, arg(2)?, arg(3)?),
        "rs-sum-loop" => rs::child_sum_loop(arg(1)?, arg(2)?, arg(3)?, arg(4)?),
        "rs-read-all" => rs::child_read_all(arg(1)?, arg(2)?),
        "rs-query" => rs::child_query(arg(1)?),
        "raw-read" => Ok(physical::child_read(Path::new(arg(1)?), arg(2)?)?),
        _ if sqlite::child(args) => Ok(()),
        other => Err(format!("unknown child {other:?}").into()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        if let Err(e) = child(&args[1..]) {
            eprintln!("bench child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let options = match parse_args(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn wanted(options: &Options, workload: &str) -> bool {
    options
        .only
        .as_ref()
        .is_none_or(|only| only.iter().any(|w| w == workload))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("? GiB".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    format!("{cores} cores ({cpu}), {memory}")
}

/// Runs the scaling measurements, or draws an earlier run's chart again.
fn run_scaling(options: &Options) -> Fallible<()> {
    let chart = |default: PathBuf| options.chart.clone().unwrap_or(default);
    if let Some(path) = &options.scaling_from {
        let text = std::fs::read_to_string(path)?;
        let (meta, all) = scaling::from_json_lines(&text)?;
        let chart = chart(PathBuf::from(scaling::CHART));
        scaling::report(&meta, &all, &chart, &mut std::io::stdout().lock())?;
        return Ok(());
    }
    let (sizes, chart) = if options.tiny {
        (
            scaling::Sizes::tiny(),
            chart(options.dir.join("bench-scaling.svg")),
        )
    } else if options.quick {
        (
            scaling::Sizes::quick(),
            chart(options.dir.join("bench-scaling.svg")),
        )
    } else {
        (
            scaling::Sizes::issue(),
            chart(PathBuf::from(scaling::CHART)),
        )
    };
    std::fs::create_dir_all(&options.dir)?;
    let exe = std::env::current_exe()?;
    let jsonl = options.dir.join("scaling.jsonl");
    let wanted = |w: &str| wanted(options, w);
    let (meta, all) = scaling::measure(
        &sizes,
        options.reps,
        &options.dir,
        &exe,
        &machine(),
        &wanted,
        &jsonl,
    )?;
    let mut stdout = std::io::stdout().lock();
    scaling::report(&meta, &all, &chart, &mut stdout)?;
    writeln!(stdout, "JSON lines in {}", jsonl.display())?;
    Ok(())
}

fn run(options: &Options) -> Fallible<()> {
    if options.scaling || options.scaling_from.is_some() {
        return run_scaling(options);
    }
    if let Some(path) = &options.from_jsonl {
        let all = report::from_json_lines(&std::fs::read_to_string(path)?)?;
        let mut stdout = std::io::stdout().lock();
        report::print_table(&all, &mut stdout)?;
        if options.markdown {
            let compare = match &options.compare {
                Some(path) => std::fs::read_to_string(path)?,
                None => String::new(),
            };
            report::print_markdown(&all, &compare, &machine(), &mut stdout)?;
        }
        return Ok(());
    }
    let sizes = if options.tiny {
        Sizes {
            steps: 2_000,
            durable_calls: 10,
            runs: vec![200],
            rows: 5_000,
            big_store: 8 << 20,
            metrics: 2 << 20,
        }
    } else if options.quick {
        Sizes {
            steps: 10_000,
            durable_calls: 100,
            runs: vec![1_000],
            rows: 100_000,
            big_store: 256 << 20,
            metrics: 64 << 20,
        }
    } else {
        Sizes {
            steps: data::STEPS,
            durable_calls: 500,
            runs: vec![1_000, 100_000],
            rows: data::SAMPLE_ROWS,
            big_store: 10_000_000_000,
            metrics: 1_000_000_000,
        }
    };
    let reps = options.reps.unwrap_or(5);
    std::fs::create_dir_all(&options.dir)?;
    let dir = options.dir.as_path();
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    eprintln!("bench: generating data");
    let steps = data::Steps::generate(sizes.steps);
    let largest = sizes.runs.iter().copied().max().unwrap_or(1_000);
    let runs = data::runs(largest);
    let samples = data::samples(sizes.rows, 0x2545_f491_4f6c_dd1d);
    if let Some(export) = &options.export {
        data::export(export, &steps, &runs, &samples)?;
        eprintln!(
            "bench: data for bench-compare written to {}",
            export.display()
        );
        if options.only.is_none() {
            return Ok(());
        }
    }
    let mut all: Vec<Measurement> = Vec::new();

    if wanted(options, "W1") || wanted(options, "W2") {
        eprintln!("bench: W1 step logging");
        let (ms, path, url) = rs::w1(&steps, dir, reps, sizes.durable_calls, Jobs::All)?;
        let raw: Vec<u8> = bytes_of_steps(&steps);
        all.push(
            Measurement::new(
                "W1",
                "per-step, group commit",
                "raw file",
                "the same bytes, one write + one fdatasync",
                steps.len() as u64,
                physical::write_fsync(&raw, dir, reps)?,
            )
            .values(4.0 * steps.len() as f64)
            .bytes(raw.len() as u64)
            .reference(),
        );
        all.extend(ms);
        all.extend(sqlite::w1(
            &steps,
            dir,
            reps,
            sizes.durable_calls,
            Jobs::All,
        ));
        if wanted(options, "W2") {
            eprintln!("bench: W2 history read");
            all.extend(rs::w2(&steps, &path, &url, reps, &exe)?);
            let loss_file = dir.join("loss.f64");
            std::fs::write(
                &loss_file,
                steps
                    .loss
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            )?;
            let mut times = Vec::new();
            for _ in 0..reps {
                let words =
                    rs::run_child(&exe, &["raw-read", &loss_file.to_string_lossy(), "f64"])?;
                times.push(words[0].parse()?);
            }
            all.push(
                Measurement::new(
                    "W2",
                    "read loss series, fresh process",
                    "raw file",
                    "new process: read a plain file of the 100,000 f64 + sum",
                    steps.len() as u64,
                    times,
                )
                .values(steps.len() as f64)
                .reference(),
            );
            all.push(
                Measurement::new(
                    "W2",
                    "read loss series, after open",
                    "memory",
                    "sum of a Vec<f64> in memory",
                    steps.len() as u64,
                    physical::sum_f64(&steps.loss, reps.max(50)),
                )
                .values(steps.len() as f64)
                .reference(),
            );
            all.extend(sqlite::w2(&steps, dir, reps, &exe));
        }
    }

    if wanted(options, "W3") {
        for &n in &sizes.runs {
            eprintln!("bench: W3 {n} runs");
            let subset = &runs[..n];
            let (ms, path) = rs::w3(subset, dir, reps, Jobs::All)?;
            all.extend(ms);
            let mut times = Vec::new();
            for _ in 0..20 {
                let started = Instant::now();
                std::hint::black_box(data::expected_top10(subset));
                times.push(started.elapsed().as_secs_f64());
            }
            all.push(
                Measurement::new(
                    "W3",
                    format!("query, {} runs", report::thousands(n)),
                    "memory",
                    "filter + sort of the runs held in a Vec",
                    n as u64,
                    times,
                )
                .reference(),
            );
            all.extend(sqlite::w3(subset, dir, reps, Jobs::All));
            if !options.keep {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    if wanted(options, "W4") {
        eprintln!("bench: W4 per-sample table");
        let raw = data::raw_bytes(&samples);
        all.extend(rs::w4(&samples, dir, reps, &exe, Jobs::All)?);
        all.push(
            Measurement::new(
                "W4",
                format!("write {} rows", report::thousands(samples.num_rows())),
                "raw file",
                "the column bytes, one write + one fdatasync",
                samples.num_rows() as u64,
                physical::write_fsync(&raw, dir, reps)?,
            )
            .values(samples.num_rows() as f64)
            .bytes(raw.len() as u64)
            .reference(),
        );
        let raw_file = dir.join("samples.raw");
        std::fs::write(&raw_file, &raw)?;
        let loss: Vec<f32> = samples
            .column_by_name("loss")
            .and_then(|c| c.as_any().downcast_ref::<arrow_array::Float32Array>())
            .map(|a| a.values().to_vec())
            .unwrap_or_default();
        let loss_file = dir.join("loss.f32");
        std::fs::write(
            &loss_file,
            loss.iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        )?;
        for (job, file, how) in [
            (
                "read all columns, fresh process",
                &raw_file,
                "new process: read a plain file of the column bytes + sum",
            ),
            (
                "open + sum of loss, fresh process",
                &loss_file,
                "new process: read a plain file of the loss column + sum",
            ),
        ] {
            let mut times = Vec::new();
            for _ in 0..reps {
                let words = rs::run_child(&exe, &["raw-read", &file.to_string_lossy(), "f32"])?;
                times.push(words[0].parse()?);
            }
            all.push(
                Measurement::new("W4", job, "raw file", how, samples.num_rows() as u64, times)
                    .values(samples.num_rows() as f64)
                    .reference(),
            );
        }
        all.push(
            Measurement::new(
                "W4",
                "sum of loss, after open",
                "memory",
                "sum of a Vec<f32> in memory",
                samples.num_rows() as u64,
                physical::sum_f32(&loss, reps.max(50)),
            )
            .values(samples.num_rows() as f64)
            .reference(),
        );
        all.extend(sqlite::w4(&samples, dir, reps, &exe, Jobs::All));
        let _ = std::fs::remove_file(raw_file);
        let _ = std::fs::remove_file(loss_file);
    }

    if wanted(options, "W5") {
        eprintln!("bench: W5 open a {} store", report::size(sizes.big_store));
        let runs_1k = &runs[..1000.min(runs.len())];
        all.extend(rs::w5(runs_1k, &samples, dir, sizes.big_store, reps, &exe)?);
        all.extend(sqlite::w5(runs_1k, &samples, dir, sizes.big_store, &exe));
    }

    if wanted(options, "W6") {
        eprintln!("bench: W6 copy, delete, vacuum");
        let ms = rs::w6(&samples, dir, sizes.metrics, reps)?;
        let held = ms.first().map_or(sizes.metrics, |m| m.n);
        let vacuumed = ms.last().and_then(|m| m.bytes).unwrap_or(held);
        all.extend(ms);
        let zeros = vec![0x33u8; held as usize];
        all.push(
            Measurement::new(
                "W6",
                "copy a run with 1 GB of metrics",
                "raw file",
                "write the metrics' bytes to a new file + fdatasync",
                held,
                physical::write_fsync(&zeros, dir, 1)?,
            )
            .reference(),
        );
        all.push(
            Measurement::new(
                "W6",
                "vacuum",
                "raw file",
                "write the vacuumed file's bytes + fdatasync",
                held,
                physical::write_fsync(&zeros[..(vacuumed as usize).min(zeros.len())], dir, 1)?,
            )
            .reference(),
        );
        drop(zeros);
        all.extend(sqlite::w6(&samples, dir, sizes.metrics));
    }

    // Rates count what runstore's figure counts (rows, steps x 4 ...), so a job's rates compare.
    let counts: Vec<(&'static str, String, Option<f64>)> = all
        .iter()
        .filter(|m| m.system == "runstore")
        .map(|m| (m.workload, m.job.clone(), m.values))
        .collect();
    for m in all.iter_mut().filter(|m| m.system != "runstore") {
        if let Some((_, _, values)) = counts
            .iter()
            .find(|(w, j, _)| *w == m.workload && *j == m.job)
        {
            m.values = *values;
        }
    }
    // A job with no physical reference takes SQLite's figure as its reference.
    let jobs: Vec<(&'static str, String)> =
        all.iter().map(|m| (m.workload, m.job.clone())).collect();
    for (workload, job) in jobs {
        let same = |m: &Measurement| m.workload == workload && m.job == job;
        if !all.iter().any(|m| same(m) && m.is_reference) {
            if let Some(m) = all.iter_mut().find(|m| same(m) && m.system == "sqlite") {
                m.is_reference = true;
            }
        }
    }
    all.sort_by(|a, b| {
        (a.workload, &a.job, !a.is_reference, a.system != "runstore").cmp(&(
            b.workload,
            &b.job,
            !b.is_reference,
            b.system != "runstore",
        ))
    });

    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "runstore bench: {}, {} reps, medians; ratio = median / the job's reference (ref); {}",
        machine(),
        reps,
        if options.quick || options.tiny {
            "REDUCED sizes"
        } else {
            "the issue's sizes"
        }
    )?;
    report::print_table(&all, &mut stdout)?;
    let jsonl = dir.join("bench.jsonl");
    let mut file = std::fs::File::create(&jsonl)?;
    for m in &all {
        writeln!(file, "{}", report::json_line(m, &all))?;
    }
    writeln!(
        stdout,
        "\n{} figures in {:.0} s; JSON lines in {}",
        all.len(),
        started.elapsed().as_secs_f64(),
        jsonl.display()
    )?;
    if options.markdown {
        let compare = match &options.compare {
            Some(path) => std::fs::read_to_string(path)?,
            None => String::new(),
        };
        report::print_markdown(&all, &compare, &machine(), &mut stdout)?;
    }
    if !options.keep {
        for name in ["w1.runs", "w4.runs", "w6.runs", "w5-small.runs"] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    Ok(())
}

fn bytes_of_steps(steps: &data::Steps) -> Vec<u8> {
    let mut out = Vec::with_capacity(steps.len() * 40);
    for i in 0..steps.len() {
        out.extend_from_slice(&(i as i64).to_le_bytes());
        for (_, values) in steps.columns() {
            out.extend_from_slice(&values[i].to_le_bytes());
        }
    }
    out
}
