//! The benchmark runner (`bench-compare`, issue 7) at `--tiny` sizes: it runs every workload
//! for runstore, SQLite and the physical references, every answer it checks is right, and
//! every job that has a runstore figure has a reference to take its ratio from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn bench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bench-compare"))
}

#[test]
fn bench_runner_at_tiny_sizes_answers_every_check_correctly() {
    let bench = bench_binary();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(&bench)
        .args(["--tiny", "--reps", "1", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bench --tiny failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("bench.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut systems: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in &lines {
        let job = format!("{} {}", line["workload"], line["variant"]);
        let system = line["system"].as_str().unwrap().to_string();
        assert_ne!(
            line["correct"],
            serde_json::json!(false),
            "wrong answer: {line}"
        );
        let median = line["median_s"].as_f64().unwrap();
        assert!(median.is_finite() && median >= 0.0, "{line}");
        if system == "runstore" && line.get("ratio").is_none() {
            // Jobs only runstore does (the per-call API, the calls alone, open alone).
            assert!(
                ["per-call API", "the calls", "open, fresh process"]
                    .iter()
                    .any(|j| job.contains(j)),
                "a runstore figure without a reference: {line}"
            );
        }
        systems.entry(job).or_default().insert(system);
    }
    for workload in ["W1", "W2", "W3", "W4", "W5", "W6"] {
        let jobs: Vec<_> = systems
            .iter()
            .filter(|(job, _)| job.contains(&format!("\"{workload}\"")))
            .collect();
        assert!(!jobs.is_empty(), "no figures for {workload}");
        for system in ["runstore", "sqlite"] {
            assert!(
                jobs.iter().any(|(_, s)| s.contains(system)),
                "{workload}: no {system} figure in {jobs:?}"
            );
        }
    }
    // The README table again from those lines, with a peer line from bench-compare/: each tool
    // has its column, and its figure lands in the row of the job it does.
    let compare = dir.path().join("compare.jsonl");
    std::fs::write(
        &compare,
        "{\"system\": \"meta\"}\n\
         {\"system\": \"trackio\", \"workload\": \"W1\", \"variant\": \"per-step\", \"n\": 2000, \
         \"median_s\": 1.5, \"values_per_s\": 5333.3, \"bytes\": 3000000, \"correct\": true, \
         \"reference\": \"sqlite3-wal\", \"ratio\": 1.25}\n",
    )
    .unwrap();
    let output = Command::new(&bench)
        .arg("--from-jsonl")
        .arg(dir.path().join("bench.jsonl"))
        .arg("--markdown")
        .arg("--compare")
        .arg(&compare)
        .output()
        .unwrap();
    assert!(output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    let header = table
        .lines()
        .find(|l| l.starts_with("| | job |"))
        .expect("the markdown table's header");
    assert!(
        header.ends_with("| MLflow | TensorBoard | Aim | trackio | target |"),
        "{header}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("| W1 | per-step, group commit |"))
        .expect("the group-commit row");
    assert!(
        row.contains("| 1.50 s, 5.3k/s, 3.0 MB (**1.25x** sqlite3-wal) |"),
        "{row}"
    );
    assert_eq!(
        row.matches('|').count(),
        header.matches('|').count(),
        "{row}"
    );
    // The data set for bench-compare/ is written where asked.
    let data = dir.path().join("data");
    let status = Command::new(&bench)
        .args(["--tiny", "--export-data"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    for name in [
        "w1_steps.arrow",
        "w3_params_200.arrow",
        "w3_outputs_200.arrow",
        "w4_samples.arrow",
        "expected.json",
    ] {
        assert!(data.join(name).is_file(), "{name} not exported");
    }
}

/// `--scaling --tiny`: every (workload, job, size) has a runstore and an SQLite figure in the
/// JSON lines, the SVG chart is written with its panels, axis labels and legend as text, and
/// `--scaling-from` draws it again from the JSON lines alone.
#[test]
fn scaling_run_at_tiny_sizes_writes_json_lines_and_a_chart() {
    let bench = bench_binary();
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("chart.svg");
    let output = Command::new(&bench)
        .args(["--scaling", "--tiny", "--dir"])
        .arg(dir.path())
        .arg("--chart")
        .arg(&chart)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bench --scaling --tiny failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let jsonl = dir.path().join("scaling.jsonl");
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["system"], "meta", "{}", lines[0]);
    assert!(lines[0]["machine"].as_str().unwrap().contains("cores"));
    let mut systems: BTreeMap<(String, String, u64), BTreeSet<String>> = BTreeMap::new();
    for line in &lines[1..] {
        assert_ne!(line["correct"], serde_json::json!(false), "{line}");
        let median = line["median_s"].as_f64().unwrap();
        assert!(median.is_finite() && median > 0.0, "{line}");
        assert!(line["reps"].as_u64().unwrap() >= 1, "{line}");
        let key = (
            line["workload"].as_str().unwrap().to_string(),
            line["scaling_job"].as_str().unwrap().to_string(),
            line["size"].as_u64().unwrap(),
        );
        if line["system"] == "runstore" {
            assert!(line["ratio_to_sqlite"].as_f64().unwrap() > 0.0, "{line}");
        }
        if line["scaling_job"].as_str().unwrap().starts_with("write") {
            assert!(line["bytes"].as_u64().unwrap() > 0, "{line}");
        }
        systems
            .entry(key)
            .or_default()
            .insert(line["system"].as_str().unwrap().to_string());
    }
    // W3: write, first query, warm query; W1: batched, group commit; W4: write, two reads;
    // two sizes each.
    assert_eq!(systems.len(), (3 + 2 + 3) * 2, "{systems:?}");
    for (key, found) in &systems {
        assert_eq!(
            found.iter().map(String::as_str).collect::<Vec<_>>(),
            ["runstore", "sqlite"],
            "{key:?}"
        );
    }
    let check_svg = |path: &std::path::Path| {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "W3 write runs",
            "W3 store file size",
            "W3 first query after open",
            "W3 query, store open",
            "W1 write steps",
            "W4 write per-sample rows",
            "W4 read the loss column",
            "runstore",
            "SQLite",
            "cores",
            "time (median)",
            "file size (bytes on disk)",
            "runs",
            "steps",
            "rows",
        ] {
            assert!(svg.contains(text), "{text:?} not in the chart");
        }
        // One polyline per (panel, line): 9 panels, 11 lines, each with its points.
        assert!(svg.matches("<polyline").count() >= 11, "too few lines");
        assert!(svg.matches("<circle").count() >= 11 * 2, "too few points");
        svg
    };
    let first = check_svg(&chart);
    let again = dir.path().join("again.svg");
    let output = Command::new(&bench)
        .arg("--scaling-from")
        .arg(&jsonl)
        .arg("--chart")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(check_svg(&again), first, "the chart drawn again differs");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("first query after open"), "{table}");
}
