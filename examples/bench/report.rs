//! One measurement of one system on one job, and how measurements are printed: an aligned
//! table with ratios to the job's reference, JSON lines, and the README's Markdown table.

use std::io::Write;

/// One system doing one job, repeated: the samples are seconds per repetition.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// "W1" .. "W6".
    pub workload: &'static str,
    /// The job within the workload, e.g. "per-step, group commit"; systems doing the same
    /// job share it, and ratios are taken within a job.
    pub job: String,
    /// "runstore", "sqlite", "raw file", "memory" ...
    pub system: String,
    /// How the system did the job, in a few words.
    pub how: String,
    /// Items the job covers (steps, rows, runs ...).
    pub n: u64,
    /// Values the job moved, for a rate (values/s); none where a rate means nothing.
    pub values: Option<f64>,
    /// Seconds per repetition.
    pub samples: Vec<f64>,
    /// Bytes the system's file(s) took, where that is part of the job.
    pub bytes: Option<u64>,
    /// Whether the answer matched the expected one (reads and queries).
    pub correct: Option<bool>,
    /// The job's reference: ratios in this job are to this measurement.
    pub is_reference: bool,
    /// The target the issue sets, in words ("<= 1.5x raw"), if any.
    pub target: Option<String>,
}

impl Measurement {
    /// A measurement with the given identity and samples and nothing else.
    pub fn new(
        workload: &'static str,
        job: impl Into<String>,
        system: impl Into<String>,
        how: impl Into<String>,
        n: u64,
        samples: Vec<f64>,
    ) -> Measurement {
        Measurement {
            workload,
            job: job.into(),
            system: system.into(),
            how: how.into(),
            n,
            values: None,
            samples,
            bytes: None,
            correct: None,
            is_reference: false,
            target: None,
        }
    }

    /// Marks this as the job's reference.
    pub fn reference(mut self) -> Measurement {
        self.is_reference = true;
        self
    }

    /// Sets the value count (for values/s).
    pub fn values(mut self, values: f64) -> Measurement {
        self.values = Some(values);
        self
    }

    /// Sets the file bytes.
    pub fn bytes(mut self, bytes: u64) -> Measurement {
        self.bytes = Some(bytes);
        self
    }

    /// Sets whether the answer was right.
    pub fn correct(mut self, correct: bool) -> Measurement {
        self.correct = Some(correct);
        self
    }

    /// Sets the target for this figure.
    pub fn target(mut self, target: impl Into<String>) -> Measurement {
        self.target = Some(target.into());
        self
    }

    /// The median of the samples, in seconds.
    pub fn median(&self) -> f64 {
        median(&self.samples)
    }
}

/// 1000 -> "1,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The median of `samples` (NaN for none).
pub fn median(samples: &[f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// A duration for people: µs, ms or s with three significant digits.
pub fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// A count for people: 12.3M, 45.6k.
pub fn count(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// Bytes for people.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// The ratio of `m`'s median to its job's reference, if the job has one.
pub fn ratio(m: &Measurement, all: &[Measurement]) -> Option<f64> {
    let reference = all
        .iter()
        .find(|r| r.is_reference && r.workload == m.workload && r.job == m.job)?;
    Some(m.median() / reference.median())
}

/// Prints one line per measurement, grouped by job.
pub fn print_table(all: &[Measurement], out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<3} {:<34} {:<16} {:>10} {:>8} {:>11} {:>10} {:>4}  how",
        "W", "job", "system", "median", "ratio", "values/s", "bytes", "ok"
    )?;
    for m in all {
        let ratio = ratio(m, all).map_or("-".into(), |r| {
            if m.is_reference {
                "ref".into()
            } else {
                ratio_text(r)
            }
        });
        let rate = m.values.map_or("-".into(), |v| count(v / m.median()));
        let bytes = m.bytes.map_or("-".into(), size);
        let ok = match m.correct {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        let target = m
            .target
            .as_deref()
            .map_or(String::new(), |t| format!(" [target {t}]"));
        writeln!(
            out,
            "{:<3} {:<34} {:<16} {:>10} {:>8} {:>11} {:>10} {:>4}  {}{}",
            m.workload,
            m.job,
            m.system,
            seconds(m.median()),
            ratio,
            rate,
            bytes,
            ok,
            m.how,
            target
        )?;
    }
    Ok(())
}

/// One JSON object per measurement (the same fields `bench-compare/` prints).
pub fn json_line(m: &Measurement, all: &[Measurement]) -> serde_json::Value {
    let mut line = serde_json::json!({
        "system": m.system,
        "workload": m.workload,
        "variant": m.job,
        "how": m.how,
        "n": m.n,
        "reps": m.samples.len(),
        "median_s": m.median(),
        "samples_s": m.samples,
    });
    let object = line.as_object_mut().expect("an object");
    if let Some(values) = m.values {
        object.insert("values_per_s".into(), (values / m.median()).into());
    }
    if let Some(bytes) = m.bytes {
        object.insert("bytes".into(), bytes.into());
    }
    if let Some(correct) = m.correct {
        object.insert("correct".into(), correct.into());
    }
    if let Some(reference) = all
        .iter()
        .find(|r| r.is_reference && r.workload == m.workload && r.job == m.job)
    {
        object.insert("reference".into(), reference.system.clone().into());
        object.insert("reference_median_s".into(), reference.median().into());
        object.insert("ratio".into(), (m.median() / reference.median()).into());
    }
    if let Some(target) = &m.target {
        object.insert("target".into(), target.clone().into());
    }
    line
}

/// A ratio for people: `2.35x`, `340x`, or `1/2470x` when far below one.
pub fn ratio_text(r: f64) -> String {
    if !r.is_finite() {
        "-".into()
    } else if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 0.1 {
        format!("{r:.2}x")
    } else {
        format!("1/{:.0}x", 1.0 / r)
    }
}

fn cell(m: &Measurement, all: &[Measurement]) -> String {
    let mut text = seconds(m.median());
    if let Some(values) = m.values {
        text.push_str(&format!(", {}/s", count(values / m.median())));
    }
    if let Some(bytes) = m.bytes {
        text.push_str(&format!(", {}", size(bytes)));
    }
    if !m.is_reference {
        if let Some(r) = ratio(m, all) {
            text.push_str(&format!(" (**{}**)", ratio_text(r)));
        }
    }
    if m.correct == Some(false) {
        text.push_str(" WRONG ANSWER");
    }
    text
}

/// The README's tables: one row per job with runstore, the job's reference and SQLite as
/// columns; then the Python tools' JSON lines (`bench-compare/`), if any, one row each.
pub fn print_markdown(
    all: &[Measurement],
    compare: &str,
    machine: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(out, "\nMachine: {machine}. Medians; (**r x**) = ratio to the row's reference, measured in the same run.\n")?;
    writeln!(
        out,
        "| | job | runstore | reference | SQLite (rusqlite, WAL) | target |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    let mut jobs: Vec<(&str, &str)> = Vec::new();
    for m in all {
        if !jobs.contains(&(m.workload, m.job.as_str())) {
            jobs.push((m.workload, m.job.as_str()));
        }
    }
    for (workload, job) in jobs {
        let find = |system: &str| {
            all.iter()
                .find(|m| m.workload == workload && m.job == job && m.system == system)
        };
        let reference = all
            .iter()
            .find(|m| m.workload == workload && m.job == job && m.is_reference);
        let ours = find("runstore");
        let sqlite = find("sqlite");
        let reference_cell = match reference {
            Some(r) if r.system != "sqlite" && r.system != "runstore" => {
                format!("{}: {}", r.system, cell(r, all))
            }
            Some(r) if r.system == "runstore" => format!("runstore, {}", r.how),
            Some(_) => "SQLite".to_string(),
            None => "-".into(),
        };
        let target = ours.and_then(|m| m.target.clone()).unwrap_or_default();
        writeln!(
            out,
            "| {workload} | {job} | {} | {reference_cell} | {} | {target} |",
            ours.map_or("-".into(), |m| cell(m, all)),
            sqlite.map_or("-".into(), |m| cell(m, all)),
        )?;
    }
    let lines: Vec<serde_json::Value> = compare
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l.get("workload").is_some())
        // Python's sqlite3 and pyarrow are the scripts' same-run references: each tool's row
        // names its ratio to them.
        .filter(|l| {
            !matches!(
                l.get("system").and_then(|v| v.as_str()),
                Some("sqlite3" | "pyarrow-ipc")
            )
        })
        .collect();
    if !lines.is_empty() {
        writeln!(
            out,
            "\nPython tools (`bench-compare/`, same machine, same session):\n"
        )?;
        writeln!(
            out,
            "| | variant | system | n | median | values/s | bytes | ratio to | correct |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
        for l in &lines {
            let text = |k: &str| l.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let number = |k: &str| l.get(k).and_then(|v| v.as_f64());
            let ratio = match (number("ratio"), l.get("reference").and_then(|v| v.as_str())) {
                (Some(r), Some(reference)) => format!("{} {reference}", ratio_text(r)),
                _ => "-".into(),
            };
            let supported = l.get("supported").and_then(|v| v.as_bool()) != Some(false);
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                text("workload"),
                text("variant"),
                text("system"),
                number("n").map_or("-".into(), count),
                if supported {
                    number("median_s").map_or("-".into(), seconds)
                } else {
                    format!("unsupported: {}", text("note"))
                },
                number("values_per_s").map_or("-".into(), count),
                number("bytes").map_or("-".into(), |b| size(b as u64)),
                ratio,
                match l.get("correct").and_then(|v| v.as_bool()) {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "",
                },
            )?;
        }
    }
    Ok(())
}
