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

/// Which `bench-compare/` figure stands in a job's row: (tool, workload, variant, job).
/// The tools' calls differ from runstore's (see `bench-compare/README.md`); each sits in the
/// row of the job it does: MLflow's per-step call is a durable commit, TensorBoard's, Aim's and
/// trackio's buffer; their run writes are one run per call. trackio is measured on W1 and W2 only.
const TOOL_JOBS: &[(&str, &str, &str, &str)] = &[
    ("mlflow", "W1", "per-step", "per-step, durable per call"),
    ("tensorboard", "W1", "per-step", "per-step, group commit"),
    ("aim", "W1", "per-step", "per-step, group commit"),
    ("trackio", "W1", "per-step", "per-step, group commit"),
    ("mlflow", "W1", "batched", "batched, 1,000 steps per call"),
    (
        "mlflow",
        "W2",
        "fresh-process",
        "read loss series, fresh process",
    ),
    (
        "tensorboard",
        "W2",
        "fresh-process",
        "read loss series, fresh process",
    ),
    (
        "aim",
        "W2",
        "fresh-process",
        "read loss series, fresh process",
    ),
    ("mlflow", "W2", "warm-read", "read loss series, after open"),
    (
        "tensorboard",
        "W2",
        "warm-read",
        "read loss series, after open",
    ),
    ("aim", "W2", "warm-read", "read loss series, after open"),
    (
        "trackio",
        "W2",
        "fresh-process",
        "read loss series, fresh process",
    ),
    ("trackio", "W2", "warm-read", "read loss series, after open"),
    (
        "mlflow",
        "W3",
        "write",
        "write 1,000 runs, one commit per run",
    ),
    (
        "tensorboard",
        "W3",
        "write",
        "write 1,000 runs, one commit per run",
    ),
    ("aim", "W3", "write", "write 1,000 runs, one commit per run"),
    ("mlflow", "W3", "query", "query, 1,000 runs"),
    ("tensorboard", "W3", "query", "query, 1,000 runs"),
    ("aim", "W3", "query", "query, 1,000 runs"),
    ("mlflow", "W4", "write", "write 1,000,000 rows"),
    ("tensorboard", "W4", "write", "write 1,000,000 rows"),
    ("aim", "W4", "parquet-artifact", "write 1,000,000 rows"),
    (
        "mlflow",
        "W4",
        "read-sum",
        "read all columns, fresh process",
    ),
    (
        "tensorboard",
        "W4",
        "read-sum",
        "read all columns, fresh process",
    ),
    (
        "aim",
        "W4",
        "parquet-artifact-read-sum",
        "read all columns, fresh process",
    ),
];

fn tool_cell(line: &serde_json::Value, job_n: u64) -> String {
    let number = |k: &str| line.get(k).and_then(|v| v.as_f64());
    let Some(median) = number("median_s") else {
        return "unsupported".into();
    };
    let mut text = seconds(median);
    if let Some(rate) = number("values_per_s") {
        text.push_str(&format!(", {}/s", count(rate)));
    }
    if let Some(bytes) = number("bytes") {
        text.push_str(&format!(", {}", size(bytes as u64)));
    }
    if let Some(n) = number("n") {
        if n as u64 != job_n {
            text.push_str(&format!(" (n = {})", thousands(n as usize)));
        }
    }
    if let (Some(r), Some(reference)) = (
        number("ratio"),
        line.get("reference").and_then(|v| v.as_str()),
    ) {
        text.push_str(&format!(" (**{}** {reference})", ratio_text(r)));
    }
    if line.get("correct").and_then(|v| v.as_bool()) == Some(false) {
        text.push_str(" WRONG ANSWER");
    }
    text
}

/// The README's table: one row per job; runstore, the job's reference, SQLite and, from
/// `compare` (`bench-compare/`'s JSON lines), MLflow, TensorBoard, Aim and trackio as columns.
pub fn print_markdown(
    all: &[Measurement],
    compare: &str,
    machine: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let tools: Vec<serde_json::Value> = compare
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l.get("workload").is_some())
        .collect();
    writeln!(
        out,
        "\nMachine: {machine}. Medians; (**r x**) = ratio to the row's reference, measured in \
         the same run (for the Python tools: to Python's sqlite3 or pyarrow in the same \
         script run).\n"
    )?;
    writeln!(
        out,
        "| | job | runstore | reference | SQLite (rusqlite, WAL) | MLflow | TensorBoard | Aim | trackio | target |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|")?;
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
        let job_n = ours.map_or(0, |m| m.n);
        let tool = |name: &str| {
            TOOL_JOBS
                .iter()
                .filter(|(t, w, _, j)| *t == name && *w == workload && *j == job)
                .filter_map(|(_, _, variant, _)| {
                    tools.iter().find(|l| {
                        l.get("system").and_then(|v| v.as_str()) == Some(name)
                            && l.get("workload").and_then(|v| v.as_str()) == Some(workload)
                            && l.get("variant").and_then(|v| v.as_str()) == Some(variant)
                    })
                })
                .map(|l| tool_cell(l, job_n))
                .next()
                .unwrap_or_else(|| "-".into())
        };
        let target = ours.and_then(|m| m.target.clone()).unwrap_or_default();
        writeln!(
            out,
            "| {workload} | {job} | {} | {reference_cell} | {} | {} | {} | {} | {} | {target} |",
            ours.map_or("-".into(), |m| cell(m, all)),
            sqlite.map_or("-".into(), |m| cell(m, all)),
            tool("mlflow"),
            tool("tensorboard"),
            tool("aim"),
            tool("trackio"),
        )?;
    }
    Ok(())
}

/// Measurements read back from the JSON lines [`json_line`] wrote (to print the tables again,
/// e.g. with a newer `bench-compare/` file, without measuring again).
pub fn from_json_lines(text: &str) -> Result<Vec<Measurement>, String> {
    let mut all = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let workload: &'static str = match text("workload").as_str() {
            "W1" => "W1",
            "W2" => "W2",
            "W3" => "W3",
            "W4" => "W4",
            "W5" => "W5",
            "W6" => "W6",
            other => return Err(format!("line {}: workload {other:?}", i + 1)),
        };
        let samples: Vec<f64> = v
            .get("samples_s")
            .and_then(|x| x.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        let mut m = Measurement::new(
            workload,
            text("variant"),
            text("system"),
            text("how"),
            v.get("n").and_then(|x| x.as_u64()).unwrap_or(0),
            samples,
        );
        if let Some(rate) = v.get("values_per_s").and_then(|x| x.as_f64()) {
            m.values = Some(rate * m.median());
        }
        m.bytes = v.get("bytes").and_then(|x| x.as_u64());
        m.correct = v.get("correct").and_then(|x| x.as_bool());
        m.target = v.get("target").and_then(|x| x.as_str()).map(str::to_string);
        m.is_reference = v.get("reference").and_then(|x| x.as_str()) == Some(m.system.as_str());
        all.push(m);
    }
    Ok(all)
}
