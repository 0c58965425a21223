//! `--scaling`: how runstore and SQLite scale. W3 (run catalog) at 1,000 to 1,000,000 runs,
//! W1 (step logging) at 100,000 to 10,000,000 steps and W4 (per-sample rows) at 100,000 to
//! 10,000,000 rows, with the workloads' own functions ([`crate::rs`], [`crate::sqlite`]) at
//! each size and only the jobs charted here ([`Jobs::Scaling`]):
//!
//! - W3: write (one commit per 1,000 runs at most; time and file bytes), first query after
//!   open, query on an open store;
//! - W1: batched durable write, 1,000 steps per call (time and file bytes), and per-step
//!   logging with a 100 ms group commit;
//! - W4: write (one commit; time and file bytes), open + sum of `loss` in a fresh process,
//!   sum of `loss` on an open store.
//!
//! Results: a table, JSON lines (`scaling.jsonl`: a `"system": "meta"` line with the date,
//! machine and reps, then [`report::json_line`]'s fields plus `size`, `scaling_job` and, for
//! runstore, `ratio_to_sqlite`), rewritten after every size so an interrupted run keeps what it
//! measured; and an SVG chart of small multiples drawn with plotters (log-log, one line per
//! system). plotters is built without its font features: its SVG backend writes text as
//! `<text>` elements that the viewer renders with its own fonts, so no font file or system font
//! library is needed.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use plotters::prelude::*;

use crate::data;
use crate::report::{self, Measurement};
use crate::rs::{self, Fallible};
use crate::sqlite;
use crate::Jobs;

/// Where the chart of the issue's sizes goes (relative to the workspace root).
pub const CHART: &str = "docs/bench-scaling.svg";

/// Seed of the W4 rows (the normal run's).
const SAMPLES_SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// The sizes of one scaling run.
pub struct Sizes {
    /// W3: runs in the catalog.
    pub runs: Vec<usize>,
    /// W1: steps of 4 scalars.
    pub steps: Vec<usize>,
    /// W4: per-sample rows.
    pub rows: Vec<usize>,
    /// "issue", "quick" or "tiny", for the output.
    pub name: &'static str,
}

impl Sizes {
    /// The issue's sizes: several minutes, about 10 GB of disk at the largest W3 size.
    pub fn issue() -> Sizes {
        Sizes {
            runs: vec![1_000, 10_000, 100_000, 1_000_000],
            steps: vec![100_000, 1_000_000, 10_000_000],
            rows: vec![100_000, 1_000_000, 10_000_000],
            name: "issue",
        }
    }

    /// Small sizes (`--scaling --quick`): well under a minute.
    pub fn quick() -> Sizes {
        Sizes {
            runs: vec![1_000, 10_000],
            steps: vec![10_000, 100_000],
            rows: vec![10_000, 100_000],
            name: "quick",
        }
    }

    /// Tiny sizes (`--scaling --tiny`): a smoke test of the scaling run (tests/tiny.rs).
    pub fn tiny() -> Sizes {
        Sizes {
            runs: vec![100, 300],
            steps: vec![1_000, 3_000],
            rows: vec![1_000, 3_000],
            name: "tiny",
        }
    }
}

/// Repetitions at a size of `n` items: `--reps` if given, else 3 below 1,000,000 items and 1
/// from there (the queries repeat more: 5 to 20 times, as in the normal run).
fn reps_at(n: usize, reps: Option<usize>) -> usize {
    reps.unwrap_or(if n < 1_000_000 { 3 } else { 1 })
}

/// What the run was: date, machine, sizes and reps (the first line of `scaling.jsonl`).
#[derive(Clone, Debug)]
pub struct Meta {
    /// UTC date and time the run started, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    /// Cores, CPU and memory.
    pub machine: String,
    /// The repetitions, in words.
    pub reps: String,
    /// "issue", "quick" or "tiny".
    pub sizes: String,
}

impl Meta {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "system": "meta",
            "date": self.date,
            "machine": self.machine,
            "reps": self.reps,
            "sizes": self.sizes,
        })
    }
}

/// The current UTC date and time as `YYYY-MM-DD HH:MM UTC` (no date crate for one line).
fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// A charted job, whatever its size: its order in the table and its name without the size.
/// None for the jobs the scaling run does not keep.
fn kind(m: &Measurement) -> Option<(usize, &'static str)> {
    let job = m.job.as_str();
    Some(match m.workload {
        "W3" if job.starts_with("write ") && job.ends_with("runs, one commit") => {
            (0, "write (one commit per <= 1,000 runs)")
        }
        "W3" if job.starts_with("first query after open") => (1, "first query after open"),
        "W3" if job.starts_with("query, ") => (2, "query, store open"),
        "W1" if job == "batched, 1,000 steps per call" => {
            (3, "batched, 1,000 steps per call, durable")
        }
        "W1" if job == "per-step, group commit" => (4, "per-step, 100 ms group commit"),
        "W4" if job.starts_with("write ") => (5, "write (one commit)"),
        "W4" if job == "open + sum of loss, fresh process" => {
            (6, "open + sum of loss, fresh process")
        }
        "W4" if job == "sum of loss, after open" => (7, "sum of loss, store open"),
        _ => return None,
    })
}

/// Measures every size of `sizes` (the workloads `wanted` says), writing `jsonl` after each.
pub fn measure(
    sizes: &Sizes,
    reps: Option<usize>,
    dir: &Path,
    exe: &Path,
    machine: &str,
    wanted: &dyn Fn(&str) -> bool,
    jsonl: &Path,
) -> Fallible<(Meta, Vec<Measurement>)> {
    let meta = Meta {
        date: now_utc(),
        machine: machine.to_string(),
        reps: match reps {
            Some(r) => format!("{r} per size (queries: 5 to 20)"),
            None => "3 below 1,000,000 items, 1 from 1,000,000 (queries: 5 to 20)".into(),
        },
        sizes: sizes.name.to_string(),
    };
    let mut all: Vec<Measurement> = Vec::new();
    let keep = |ms: Vec<Measurement>, all: &mut Vec<Measurement>| {
        all.extend(ms.into_iter().filter(|m| kind(m).is_some()));
        write_json_lines(&meta, all, jsonl)
    };
    let started = Instant::now();
    let log = |what: String, t: Instant| {
        eprintln!(
            "bench --scaling: {what} in {:.1} s ({:.0} s so far)",
            t.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    };
    if wanted("W3") {
        for &n in &sizes.runs {
            let t = Instant::now();
            let runs = data::runs(n);
            let r = reps_at(n, reps);
            let (ms, path) = rs::w3(&runs, dir, r, Jobs::Scaling)?;
            let _ = std::fs::remove_file(path);
            keep(ms, &mut all)?;
            keep(sqlite::w3(&runs, dir, r, Jobs::Scaling), &mut all)?;
            drop(runs);
            log(format!("W3 {} runs", report::thousands(n)), t);
        }
    }
    if wanted("W1") {
        for &n in &sizes.steps {
            let t = Instant::now();
            let steps = data::Steps::generate(n);
            let r = reps_at(n, reps);
            let (ms, path, _) = rs::w1(&steps, dir, r, 0, Jobs::Scaling)?;
            let _ = std::fs::remove_file(path);
            keep(ms, &mut all)?;
            keep(sqlite::w1(&steps, dir, r, 0, Jobs::Scaling), &mut all)?;
            drop(steps);
            log(format!("W1 {} steps", report::thousands(n)), t);
        }
    }
    if wanted("W4") {
        for &n in &sizes.rows {
            let t = Instant::now();
            // 10,000,000 rows are 2.8 GB of column data, held once (the systems write
            // from it without copies of the whole batch).
            let samples = data::samples(n, SAMPLES_SEED);
            let r = reps_at(n, reps);
            let ms = rs::w4(&samples, dir, r, exe, Jobs::Scaling);
            let _ = std::fs::remove_file(dir.join("w4.runs"));
            keep(ms?, &mut all)?;
            keep(sqlite::w4(&samples, dir, r, exe, Jobs::Scaling), &mut all)?;
            drop(samples);
            log(format!("W4 {} rows", report::thousands(n)), t);
        }
    }
    Ok((meta, all))
}

/// The runstore / SQLite ratio of `m`'s job at `m`'s size, for runstore's figures.
fn ratio_to_sqlite(m: &Measurement, all: &[Measurement]) -> Option<f64> {
    if m.system != "runstore" {
        return None;
    }
    let sqlite = all.iter().find(|o| {
        o.system == "sqlite" && o.workload == m.workload && o.n == m.n && kind(o) == kind(m)
    })?;
    Some(m.median() / sqlite.median())
}

/// One JSON line of a scaling figure.
fn json_line(m: &Measurement, all: &[Measurement]) -> serde_json::Value {
    let mut line = report::json_line(m, &[]);
    let object = line.as_object_mut().expect("an object");
    object.insert("size".into(), m.n.into());
    if let Some((_, name)) = kind(m) {
        object.insert("scaling_job".into(), name.into());
    }
    if let Some(r) = ratio_to_sqlite(m, all) {
        object.insert("ratio_to_sqlite".into(), r.into());
    }
    line
}

fn write_json_lines(meta: &Meta, all: &[Measurement], path: &Path) -> Fallible<()> {
    let mut text = format!("{}\n", meta.json());
    for m in all {
        text.push_str(&format!("{}\n", json_line(m, all)));
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// The meta line and the figures of a `scaling.jsonl`.
pub fn from_json_lines(text: &str) -> Fallible<(Meta, Vec<Measurement>)> {
    let mut meta = Meta {
        date: "unknown date".into(),
        machine: "unknown machine".into(),
        reps: "unknown".into(),
        sizes: "unknown".into(),
    };
    let mut figures = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        if value.get("system").and_then(|s| s.as_str()) == Some("meta") {
            let field = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
            meta = Meta {
                date: field("date").unwrap_or(meta.date),
                machine: field("machine").unwrap_or(meta.machine),
                reps: field("reps").unwrap_or(meta.reps),
                sizes: field("sizes").unwrap_or(meta.sizes),
            };
        } else {
            figures.push_str(line);
            figures.push('\n');
        }
    }
    let all = report::from_json_lines(&figures)?;
    Ok((
        meta,
        all.into_iter().filter(|m| kind(m).is_some()).collect(),
    ))
}

/// Prints the table and draws the chart into `chart`.
pub fn report(
    meta: &Meta,
    all: &[Measurement],
    chart: &Path,
    out: &mut impl Write,
) -> Fallible<()> {
    print_table(meta, all, out)?;
    draw_chart(meta, all, chart)?;
    writeln!(out, "chart in {}", chart.display())?;
    Ok(())
}

/// The figures in table order: workload (W3, W1, W4), job, size, runstore first.
fn sorted(all: &[Measurement]) -> Vec<&Measurement> {
    let mut rows: Vec<&Measurement> = all.iter().filter(|m| kind(m).is_some()).collect();
    rows.sort_by_key(|m| (kind(m), m.n, m.system != "runstore", m.system.clone()));
    rows
}

/// One line per (workload, job, size, system), with runstore's ratio to SQLite.
pub fn print_table(meta: &Meta, all: &[Measurement], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "runstore bench --scaling ({} sizes): {}, {}; medians; reps: {}",
        meta.sizes, meta.date, meta.machine, meta.reps
    )?;
    writeln!(
        out,
        "{:<3} {:<40} {:>12} {:<9} {:>4} {:>10} {:>10} {:>9} {:>4}",
        "W", "job", "size", "system", "reps", "median", "bytes", "vs SQLite", "ok"
    )?;
    for m in sorted(all) {
        let (order, name) = kind(m).expect("sorted keeps charted jobs");
        // The file's size is a figure of the writes; the reads repeat it.
        let bytes = match order {
            0 | 3 | 4 | 5 => m.bytes.map_or("-".into(), report::size),
            _ => "-".into(),
        };
        let ok = match m.correct {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        writeln!(
            out,
            "{:<3} {:<40} {:>12} {:<9} {:>4} {:>10} {:>10} {:>9} {:>4}",
            m.workload,
            name,
            report::thousands(m.n as usize),
            m.system,
            m.samples.len(),
            report::seconds(m.median()),
            bytes,
            ratio_to_sqlite(m, all).map_or("-".into(), report::ratio_text),
            ok
        )?;
    }
    Ok(())
}

/// What a panel's y axis shows.
#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Bytes,
}

/// One panel of the chart: a metric of some jobs, one line per (system, job).
struct Panel {
    title: &'static str,
    /// What x counts: "runs", "steps", "rows".
    x: &'static str,
    unit: Unit,
    /// (workload, job kind order, series label suffix) of the lines drawn.
    jobs: &'static [(&'static str, usize, &'static str)],
    /// Whether the y axis goes a decade higher, to leave the legend (upper left) room above
    /// the lines.
    room_above: bool,
}

const PANELS: &[Panel] = &[
    Panel {
        title: "W3 write runs (20 params + 10 outputs each)",
        x: "runs",
        unit: Unit::Seconds,
        jobs: &[("W3", 0, "")],
        room_above: false,
    },
    Panel {
        title: "W3 store file size",
        x: "runs",
        unit: Unit::Bytes,
        jobs: &[("W3", 0, "")],
        room_above: false,
    },
    Panel {
        title: "W3 first query after open",
        x: "runs",
        unit: Unit::Seconds,
        jobs: &[("W3", 1, "")],
        room_above: true,
    },
    Panel {
        title: "W3 query, store open (warm)",
        x: "runs",
        unit: Unit::Seconds,
        jobs: &[("W3", 2, "")],
        room_above: true,
    },
    Panel {
        title: "W1 write steps x 4 scalars",
        x: "steps",
        unit: Unit::Seconds,
        jobs: &[
            ("W1", 3, ", 1,000/call durable"),
            ("W1", 4, ", group commit"),
        ],
        room_above: false,
    },
    Panel {
        title: "W1 file size (batched)",
        x: "steps",
        unit: Unit::Bytes,
        jobs: &[("W1", 3, "")],
        room_above: false,
    },
    Panel {
        title: "W4 write per-sample rows (64-wide embedding)",
        x: "rows",
        unit: Unit::Seconds,
        jobs: &[("W4", 5, "")],
        room_above: false,
    },
    Panel {
        title: "W4 file size",
        x: "rows",
        unit: Unit::Bytes,
        jobs: &[("W4", 5, "")],
        room_above: false,
    },
    Panel {
        title: "W4 read the loss column + sum",
        x: "rows",
        unit: Unit::Seconds,
        jobs: &[("W4", 6, ", fresh process"), ("W4", 7, ", store open")],
        room_above: true,
    },
];

/// 1000 -> "1k", 10000000 -> "10M": an axis label.
fn short(x: f64) -> String {
    let (value, suffix) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}{suffix}")
    } else {
        format!("{value:.1}{suffix}")
    }
}

/// A system's colour: (first job's, second job's).
fn colours(system: &str) -> (RGBColor, RGBColor) {
    if system == "runstore" {
        (RGBColor(31, 119, 180), RGBColor(130, 185, 225))
    } else {
        (RGBColor(230, 110, 10), RGBColor(245, 180, 110))
    }
}

/// A series of one panel: label, colour, points (size, value).
type Series = (String, RGBColor, Vec<(f64, f64)>);

fn series(panel: &Panel, all: &[Measurement]) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, (workload, order, suffix)) in panel.jobs.iter().enumerate() {
        for system in ["runstore", "sqlite"] {
            let mut points: Vec<(f64, f64)> = all
                .iter()
                .filter(|m| {
                    m.workload == *workload
                        && m.system == system
                        && kind(m).map(|k| k.0) == Some(*order)
                })
                .filter_map(|m| {
                    let y = match panel.unit {
                        Unit::Seconds => m.median(),
                        Unit::Bytes => m.bytes? as f64,
                    };
                    (y.is_finite() && y > 0.0 && m.n > 0).then_some((m.n as f64, y))
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if points.is_empty() {
                continue;
            }
            let name = if system == "runstore" {
                "runstore"
            } else {
                "SQLite"
            };
            let (first, second) = colours(system);
            out.push((
                format!("{name}{suffix}"),
                if i == 0 { first } else { second },
                points,
            ));
        }
    }
    out
}

/// The least and the most of `values` (infinity and zero for none).
fn extent(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// The range a log axis needs for `values`: from the power of ten below the least (with a
/// margin) to the power of ten above the most, so that every axis has labelled decades.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = extent(values);
    if !lo.is_finite() || hi <= 0.0 {
        return 1.0..10.0;
    }
    10f64.powf((lo / 1.3).log10().floor())..10f64.powf((hi * 1.3).log10().ceil())
}

/// The x range of a panel: its sizes with a margin (the sizes are decades apart already).
fn size_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = extent(values);
    if !lo.is_finite() || hi <= 0.0 {
        return 1.0..10.0;
    }
    lo / 1.5..hi * 1.5
}

/// Draws the small multiples into `path` (SVG).
pub fn draw_chart(meta: &Meta, all: &[Measurement], path: &Path) -> Fallible<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let (width, height) = (1500u32, 1140u32);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(64);
    top.draw(&Text::new(
        "runstore vs SQLite (rusqlite, WAL): how the time and the file size grow with the data",
        (16, 10),
        ("sans-serif", 27).into_font().color(&BLACK),
    ))?;
    top.draw(&Text::new(
        format!(
            "bench-compare --scaling, {}; {}; medians, reps: {}; both axes log scale",
            meta.date, meta.machine, meta.reps
        ),
        (16, 38),
        ("sans-serif", 17).into_font().color(&RGBColor(80, 80, 80)),
    ))?;
    for (area, panel) in body.split_evenly((3, 3)).iter().zip(PANELS) {
        let lines = series(panel, all);
        let x_range = size_range(lines.iter().flat_map(|s| s.2.iter().map(|p| p.0)));
        let mut y_range = log_range(lines.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
        if panel.room_above {
            y_range.end *= 10.0;
        }
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 19))
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())?;
        let (y_desc, unit) = match panel.unit {
            Unit::Seconds => ("time (median)", panel.unit),
            Unit::Bytes => ("file size (bytes on disk)", panel.unit),
        };
        let y_format = move |y: &f64| match unit {
            Unit::Seconds => report::seconds(*y),
            Unit::Bytes => report::size(*y as u64),
        };
        chart
            .configure_mesh()
            .x_desc(panel.x)
            .y_desc(y_desc)
            .x_label_formatter(&|x| short(*x))
            .y_label_formatter(&y_format)
            .x_labels(8)
            .y_labels(7)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        if lines.is_empty() {
            continue;
        }
        for (label, colour, points) in lines {
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)).point_size(3))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_labels_and_dates() {
        assert_eq!(short(1_000.0), "1k");
        assert_eq!(short(10_000_000.0), "10M");
        assert_eq!(short(2_500.0), "2.5k");
        let date = now_utc();
        assert_eq!(date.len(), "2026-12-07 13:05 UTC".len(), "{date}");
        assert!(date.starts_with("20"), "{date}");
    }
}
