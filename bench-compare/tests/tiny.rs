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
