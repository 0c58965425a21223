//! Crash soak: kills a writer process with SIGKILL again and again at random moments on one
//! store file, and after every kill checks that the store is intact and that every commit the
//! writer acknowledged is there. The long version of the `crash::crash_kill_loop` test.
//!
//! ```text
//! cargo run --release --example crash_soak -- --kills 1000 [--store PATH] [--seed N]
//! ```
//!
//! The writer is this program run again with a hidden `--child PATH` argument. It commits a
//! random mix (new runs, outputs, parameters, blobs of up to 300 KiB, copies, deletes, status
//! changes, and about one commit in 200 a vacuum, which also keeps the file from growing
//! without bound). It prints `begin <n> <op>` before each call and `ack <n> <op>` after the
//! call returned `Ok`, where `<op>` describes what the commit made durable. After each kill the
//! parent checks, in order: a read-only open works or fails with exactly `Error::NeedsRepair`;
//! `runstore::check` finds no problem; the store opens read-write; its runs are exactly the
//! acknowledged state, or that plus the one commit in flight at the kill; a read-only open
//! then works. Temporary files a killed vacuum left are counted and removed.
//!
//! Prints kills, acknowledged commits, losses and the final file size; exits with status 1 on
//! any loss or problem (the store is kept for inspection), 2 on bad arguments.
//!
//! The logic is a copy of `tests/it/crash.rs` (an example cannot use test code); keep the two
//! in step.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use runstore::{Error, Run, RunStatus, Store, Value};

/// The project every soak run lives in.
const PROJECT: &str = "crash";
/// Largest blob the child writes: several fill a 1 MiB column extent, so both new column
/// extents and writes into existing ones happen.
const BLOB_BYTES_MAX: u64 = 300 * 1024;
const BLOB_NAMES: [&str; 3] = ["ckpt", "embeddings", "image"];
const PARAMETER_KEYS: [&str; 4] = ["lr", "epochs", "batch", "seed"];
/// The child keeps roughly this many runs: it creates runs below it and deletes above it.
const RUNS_TARGET: usize = 12;
/// Longest the parent waits for the child to open the store (it may be repairing it).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: crash_soak [--kills N] [--store PATH] [--seed N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Ok(Mode::Child { path, config }) => child_main(&path, config),
        Ok(Mode::Soak(options)) => soak(options),
        Err(message) => {
            eprintln!("crash_soak: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

struct SoakOptions {
    kills: u64,
    store: Option<PathBuf>,
    seed: Option<u64>,
}

enum Mode {
    Soak(SoakOptions),
    Child { path: PathBuf, config: ChildConfig },
}

fn parse_args(args: &[String]) -> Result<Mode, String> {
    let mut options = SoakOptions {
        kills: 1000,
        store: None,
        seed: None,
    };
    let mut child: Option<PathBuf> = None;
    let mut incarnation = 0;
    let mut args = args.iter();
    let number = |flag: &str, value: Option<&String>| -> Result<u64, String> {
        value
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kills" => options.kills = number("--kills", args.next())?,
            "--seed" => options.seed = Some(number("--seed", args.next())?),
            "--store" => {
                let path = args.next().ok_or("--store needs a path")?;
                options.store = Some(PathBuf::from(path));
            }
            // Hidden: the writer process this program starts.
            "--child" => child = Some(PathBuf::from(args.next().ok_or("--child needs a path")?)),
            "--incarnation" => incarnation = number("--incarnation", args.next())?,
            "-h" | "--help" => return Err("help".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(match child {
        Some(path) => Mode::Child {
            path,
            config: ChildConfig {
                seed: options.seed.ok_or("--child needs --seed")?,
                incarnation,
            },
        },
        None => Mode::Soak(options),
    })
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// splitmix64: small, deterministic, good enough to pick operations and delays.
struct Rng {
    state: u64,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
        ^ u64::from(std::process::id())
}

// ---------------------------------------------------------------------------------------------
// The protocol: one commit, as the child announces and acknowledges it

/// One commit of the child, in the words of its `begin` and `ack` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum CrashOp {
    /// A new run (EMPTY, no parameters, outputs or blobs).
    Init { url: String },
    /// The output `{"step": outputs - 1, ...}` was appended; the run now has `outputs`.
    Output { url: String, outputs: u64 },
    /// Parameter `key` is now `value`.
    Params {
        url: String,
        key: String,
        value: i64,
    },
    /// Blob `blob` now holds `len` bytes with CRC32 `crc`.
    Put {
        url: String,
        blob: String,
        len: u64,
        crc: u32,
    },
    /// `to` is a new copy of `from`.
    Copy { from: String, to: String },
    /// The run is gone.
    Delete { url: String },
    /// The run's status is now `status`.
    Status { url: String, status: RunStatus },
    /// The store was vacuumed (closed, rewritten into a new file renamed over it, reopened);
    /// it holds `runs` runs, unchanged.
    Vacuum { runs: u64 },
}

impl fmt::Display for CrashOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashOp::Init { url } => write!(f, "init {url}"),
            CrashOp::Output { url, outputs } => write!(f, "output {url} outputs={outputs}"),
            CrashOp::Params { url, key, value } => write!(f, "params {url} {key}={value}"),
            CrashOp::Put {
                url,
                blob,
                len,
                crc,
            } => write!(f, "put {url} {blob} len={len} crc={crc:08x}"),
            CrashOp::Copy { from, to } => write!(f, "copy {from} {to}"),
            CrashOp::Delete { url } => write!(f, "delete {url}"),
            CrashOp::Status { url, status } => write!(f, "status {url} {status}"),
            CrashOp::Vacuum { runs } => write!(f, "vacuum runs={runs}"),
        }
    }
}

impl CrashOp {
    /// Parses what `Display` wrote.
    fn parse(words: &[&str]) -> Option<CrashOp> {
        fn field<'a>(word: &'a str, name: &str) -> Option<&'a str> {
            word.strip_prefix(name)?.strip_prefix('=')
        }
        Some(match *words {
            ["init", url] => CrashOp::Init { url: url.into() },
            ["output", url, outputs] => CrashOp::Output {
                url: url.into(),
                outputs: field(outputs, "outputs")?.parse().ok()?,
            },
            ["params", url, assignment] => {
                let (key, value) = assignment.split_once('=')?;
                CrashOp::Params {
                    url: url.into(),
                    key: key.into(),
                    value: value.parse().ok()?,
                }
            }
            ["put", url, blob, len, crc] => CrashOp::Put {
                url: url.into(),
                blob: blob.into(),
                len: field(len, "len")?.parse().ok()?,
                crc: u32::from_str_radix(field(crc, "crc")?, 16).ok()?,
            },
            ["copy", from, to] => CrashOp::Copy {
                from: from.into(),
                to: to.into(),
            },
            ["delete", url] => CrashOp::Delete { url: url.into() },
            ["status", url, status] => CrashOp::Status {
                url: url.into(),
                status: RunStatus::parse(status).ok()?,
            },
            ["vacuum", runs] => CrashOp::Vacuum {
                runs: field(runs, "runs")?.parse().ok()?,
            },
            _ => return None,
        })
    }
}

/// What the parent knows about one run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunState {
    outputs: u64,
    parameters: BTreeMap<String, i64>,
    status: RunStatus,
    /// Blob name to length and CRC32.
    blobs: BTreeMap<String, (u64, u32)>,
}

impl RunState {
    fn new() -> RunState {
        RunState {
            outputs: 0,
            parameters: BTreeMap::new(),
            status: RunStatus::Empty,
            blobs: BTreeMap::new(),
        }
    }
}

/// Run url to state: the whole project, as acknowledged.
type State = BTreeMap<String, RunState>;

/// Applies an acknowledged commit. An `Err` means the child's view of the store disagreed with
/// the parent's, which is itself a lost or invented commit.
fn apply(state: &mut State, op: &CrashOp) -> Result<(), String> {
    fn run<'a>(state: &'a mut State, url: &str, op: &CrashOp) -> Result<&'a mut RunState, String> {
        state
            .get_mut(url)
            .ok_or_else(|| format!("{op}: run {url} is not in the acknowledged state"))
    }
    match op {
        CrashOp::Init { url } => {
            if state.insert(url.clone(), RunState::new()).is_some() {
                return Err(format!("{op}: the run already existed"));
            }
        }
        CrashOp::Output { url, outputs } => {
            let run = run(state, url, op)?;
            if run.outputs + 1 != *outputs {
                return Err(format!("{op}: the run had {} outputs", run.outputs));
            }
            run.outputs = *outputs;
        }
        CrashOp::Params { url, key, value } => {
            run(state, url, op)?.parameters.insert(key.clone(), *value);
        }
        CrashOp::Put {
            url,
            blob,
            len,
            crc,
        } => {
            run(state, url, op)?
                .blobs
                .insert(blob.clone(), (*len, *crc));
        }
        CrashOp::Copy { from, to } => {
            let copy = run(state, from, op)?.clone();
            if state.insert(to.clone(), copy).is_some() {
                return Err(format!("{op}: the destination already existed"));
            }
        }
        CrashOp::Delete { url } => {
            if state.remove(url).is_none() {
                return Err(format!("{op}: the run did not exist"));
            }
        }
        CrashOp::Status { url, status } => run(state, url, op)?.status = *status,
        CrashOp::Vacuum { runs } => {
            if state.len() as u64 != *runs {
                return Err(format!(
                    "{op}: the acknowledged state has {} runs",
                    state.len()
                ));
            }
        }
    }
    Ok(())
}

/// The output value number `step` of every soak run, so its contents can be checked.
fn output_value(step: u64) -> Value {
    Value::map([
        ("step", Value::from(step as i64)),
        ("loss", Value::from(1.0 / (step as f64 + 1.0))),
    ])
}

// ---------------------------------------------------------------------------------------------
// The child

/// What one child does.
#[derive(Clone, Copy, Debug)]
struct ChildConfig {
    /// Seed of its operation choices.
    seed: u64,
    /// Which child this is on the store, so the run names it makes are new.
    incarnation: u64,
}

/// Commits random operations until killed. Every failure is a panic: the parent sees the child
/// exit on its own instead of by SIGKILL, and prints its stderr.
fn child_main(path: &Path, config: ChildConfig) -> ! {
    let ChildConfig { seed, incarnation } = config;
    let mut store = Store::open_or_create(path).expect("crash child: open the store");
    // The runs of the project and their output counts, as the store has them now (this
    // includes a commit of an earlier child that landed without its ack).
    let mut runs = list_runs(&store);
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{line}").expect("crash child: write to stdout");
        out.flush().expect("crash child: flush stdout");
    };
    say("ready".into());
    let mut rng = Rng::new(seed);
    for n in 0u64.. {
        let urls: Vec<&String> = runs.keys().collect();
        let pick = |rng: &mut Rng| urls[rng.below(urls.len() as u64) as usize].clone();
        let grow = runs.len() < 2 * RUNS_TARGET;
        let roll = rng.below(100);
        let mut blob_bytes = Vec::new();
        let op = if roll == 99 && rng.below(2) == 0 {
            // One commit in 200 or so: it also bounds the file, which otherwise only grows.
            CrashOp::Vacuum {
                runs: runs.len() as u64,
            }
        } else if runs.len() < 2 || (grow && roll < 8) {
            CrashOp::Init {
                url: runstore::run_url(PROJECT, &format!("r{incarnation}-{n}")),
            }
        } else if roll < 40 {
            let url = pick(&mut rng);
            let outputs = runs[&url].1 + 1;
            CrashOp::Output { url, outputs }
        } else if roll < 52 {
            CrashOp::Params {
                url: pick(&mut rng),
                key: PARAMETER_KEYS[rng.below(PARAMETER_KEYS.len() as u64) as usize].into(),
                value: rng.below(1000) as i64,
            }
        } else if roll < 66 {
            // Half small, half anywhere up to the maximum.
            let len = if rng.below(2) == 0 {
                rng.below(4096)
            } else {
                rng.range(0, BLOB_BYTES_MAX)
            };
            blob_bytes = rng.bytes(len as usize);
            CrashOp::Put {
                url: pick(&mut rng),
                blob: BLOB_NAMES[rng.below(BLOB_NAMES.len() as u64) as usize].into(),
                len,
                crc: crc32fast::hash(&blob_bytes),
            }
        } else if roll < 72 && grow {
            CrashOp::Copy {
                from: pick(&mut rng),
                to: runstore::run_url(PROJECT, &format!("c{incarnation}-{n}")),
            }
        } else if roll < 82 && (runs.len() > RUNS_TARGET || roll < 74) {
            CrashOp::Delete {
                url: pick(&mut rng),
            }
        } else {
            CrashOp::Status {
                url: pick(&mut rng),
                status: RunStatus::ALL[rng.below(RunStatus::ALL.len() as u64) as usize],
            }
        };
        say(format!("begin {n} {op}"));
        let failed = |e: Error| -> ! { panic!("crash child: {op} failed: {e}") };
        match &op {
            CrashOp::Init { url } => {
                let (_, name) = runstore::parse_run_url(url).expect("crash child: url");
                let run = store
                    .init(PROJECT, Some(&name))
                    .unwrap_or_else(|e| failed(e));
                assert_eq!(run.url(), *url, "crash child: init renamed the run");
                runs.insert(url.clone(), (run, 0));
            }
            CrashOp::Output { url, outputs } => {
                let entry = runs.get_mut(url).expect("crash child: known run");
                entry
                    .0
                    .add_output_value(&output_value(outputs - 1))
                    .unwrap_or_else(|e| failed(e));
                entry.1 = *outputs;
            }
            CrashOp::Params { url, key, value } => runs[url]
                .0
                .set_parameters(&Value::map([(key.as_str(), Value::from(*value))]))
                .unwrap_or_else(|e| failed(e)),
            CrashOp::Put { url, blob, len, .. } => {
                let written = runs[url]
                    .0
                    .put_bulk(blob, &blob_bytes)
                    .unwrap_or_else(|e| failed(e));
                assert_eq!(written, *len, "crash child: put_bulk length");
            }
            CrashOp::Copy { from, to } => {
                let (_, name) = runstore::parse_run_url(to).expect("crash child: url");
                let options = runstore::CopyOptions {
                    run_name: Some(name),
                    ..Default::default()
                };
                let copy = runs[from].0.copy(&options).unwrap_or_else(|e| failed(e));
                assert_eq!(copy.url(), *to, "crash child: copy renamed the run");
                let outputs = runs[from].1;
                runs.insert(to.clone(), (copy, outputs));
            }
            CrashOp::Delete { url } => {
                let (run, _) = runs.remove(url).expect("crash child: known run");
                run.delete().unwrap_or_else(|e| failed(e));
            }
            CrashOp::Status { url, status } => runs[url]
                .0
                .set_status(*status)
                .unwrap_or_else(|e| failed(e)),
            CrashOp::Vacuum { .. } => {
                // Every handle holds the store open, and vacuum wants it closed.
                runs.clear();
                drop(store);
                Store::vacuum(path).unwrap_or_else(|e| failed(e));
                store = Store::open(path).unwrap_or_else(|e| failed(e));
                runs = list_runs(&store);
            }
        }
        say(format!("ack {n} {op}"));
    }
    unreachable!("the child loops until it is killed")
}

/// The project's runs with their output counts.
fn list_runs(store: &Store) -> BTreeMap<String, (Run, u64)> {
    let mut runs = BTreeMap::new();
    for run in store.runs(Some(PROJECT)).expect("crash child: list runs") {
        let outputs = run.output_count().expect("crash child: output count");
        runs.insert(run.url(), (run, outputs));
    }
    runs
}

// ---------------------------------------------------------------------------------------------
// The parent

/// Kills and reaps the child if the parent stops early.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// When the parent kills the child.
#[derive(Clone, Copy, Debug)]
struct KillPlan {
    /// Delay before SIGKILL.
    delay: Duration,
    /// Count the delay from the child's `ready` line (after its open, so commits happen), or
    /// from the spawn (so some kills land while it opens or repairs the store).
    after_ready: bool,
}

impl KillPlan {
    /// Seven times in eight 5 to 150 ms after `ready`, while the child commits. Otherwise 0 to
    /// 4 ms after the spawn: the child starts and opens (and repairs) the store in some 2 to
    /// 3 ms, so about half of these kills land in the open or its repair.
    fn random(rng: &mut Rng) -> KillPlan {
        let after_ready = rng.below(8) != 0;
        let delay = if after_ready {
            Duration::from_millis(rng.range(5, 150))
        } else {
            Duration::from_micros(rng.range(0, 4_000))
        };
        KillPlan { delay, after_ready }
    }
}

/// Runs one child on `path` and kills it as planned; returns its complete stdout lines.
fn run_child_and_kill(
    path: &Path,
    config: ChildConfig,
    plan: KillPlan,
) -> Result<Vec<String>, String> {
    let stderr_path = PathBuf::from(format!("{}.child-stderr", path.display()));
    let stderr = File::create(&stderr_path).map_err(|e| format!("create child stderr: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("--child")
        .arg(path)
        .args(["--seed", &config.seed.to_string()])
        .args(["--incarnation", &config.incarnation.to_string()]);
    let mut child = ChildGuard(Some(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| format!("spawn child: {e}"))?,
    ));
    let spawned = Instant::now();
    let stdout = child
        .0
        .as_mut()
        .and_then(|child| child.stdout.take())
        .expect("the child's stdout is piped");
    let (sender, receiver) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                // A line cut short by the kill has no newline: it was never said.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    line.pop();
                    if sender.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    let mut lines = Vec::new();
    if plan.after_ready {
        loop {
            let line = receiver
                .recv_timeout(READY_TIMEOUT.saturating_sub(spawned.elapsed()))
                .map_err(|_| format!("the child was not ready in {READY_TIMEOUT:?}"))?;
            let ready = line == "ready";
            lines.push(line);
            if ready {
                break;
            }
        }
    }
    let start = if plan.after_ready {
        Instant::now()
    } else {
        spawned
    };
    std::thread::sleep(plan.delay.saturating_sub(start.elapsed()));
    // Killed and reaped through the guard's slot, so an error on the way still reaps it.
    let running = child.0.as_mut().expect("the child is running");
    running.kill().map_err(|e| format!("kill child: {e}"))?;
    let status = running.wait().map_err(|e| format!("wait for child: {e}"))?;
    child.0 = None;
    reader.join().map_err(|_| "the stdout reader panicked")?;
    lines.extend(receiver.try_iter());
    if status.signal() != Some(libc::SIGKILL) {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        return Err(format!(
            "the child ended by itself ({status}) instead of by SIGKILL; its stderr:\n{stderr}"
        ));
    }
    let _ = std::fs::remove_file(&stderr_path);
    Ok(lines)
}

/// The parent's record of the store across kills.
#[derive(Debug, Default)]
struct Journal {
    /// The acknowledged state (after each verification: the state found in the store).
    state: State,
    kills: u64,
    acks: u64,
    /// Runs whose state matched neither the acknowledged state nor it plus the commit in
    /// flight, and runs found that were never acknowledged.
    losses: u64,
    /// Kills after which an unacknowledged commit had landed.
    in_flight_landed: u64,
    /// Kills that landed before the child had opened the store.
    killed_before_ready: u64,
    /// Read-only opens right after a kill that worked, and that asked for repair.
    read_only_ok: u64,
    read_only_needs_repair: u64,
    /// Temporary files a killed vacuum left beside the store (removed after being counted).
    temp_files_left: u64,
    problems: Vec<String>,
}

impl Journal {
    /// Applies the acks of one child's lines and returns the commit in flight at the kill.
    fn take_lines(&mut self, lines: &[String]) -> Result<Option<CrashOp>, String> {
        if !lines.iter().any(|line| line == "ready") {
            self.killed_before_ready += 1;
        }
        let mut in_flight: Option<(u64, CrashOp)> = None;
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (kind, n, op) = match words.as_slice() {
                [kind @ ("begin" | "ack"), n, rest @ ..] => {
                    let n: u64 = n.parse().map_err(|_| format!("bad line {line:?}"))?;
                    let op = CrashOp::parse(rest).ok_or_else(|| format!("bad line {line:?}"))?;
                    (*kind, n, op)
                }
                _ => continue,
            };
            if kind == "begin" {
                if let Some((pending, _)) = &in_flight {
                    return Err(format!("begin {n} while {pending} was not acknowledged"));
                }
                in_flight = Some((n, op));
            } else {
                match in_flight.take() {
                    Some((pending, begun)) if pending == n && begun == op => {}
                    other => return Err(format!("{line:?} does not match the begin {other:?}")),
                }
                apply(&mut self.state, &op)?;
                self.acks += 1;
            }
        }
        Ok(in_flight.map(|(_, op)| op))
    }

    /// Everything checked after a kill, on the store at `path`.
    fn verify(&mut self, path: &Path, in_flight: Option<&CrashOp>) -> Result<(), String> {
        match Store::open_read_only(path) {
            Ok(_) => self.read_only_ok += 1,
            Err(Error::NeedsRepair { .. }) => self.read_only_needs_repair += 1,
            Err(other) => return Err(format!("read-only open after a kill: {other:?}")),
        }
        let report = runstore::check(path).map_err(|e| format!("check: {e:?}"))?;
        for problem in &report.problems {
            self.problems
                .push(format!("kill {}: check: {problem}", self.kills));
        }
        let store =
            Store::open(path).map_err(|e| format!("read-write open after a kill: {e:?}"))?;
        let (found, problems) = read_state(&store).map_err(|e| format!("read the store: {e:?}"))?;
        drop(store);
        for problem in problems {
            self.problems
                .push(format!("kill {}: {problem}", self.kills));
        }
        self.compare(found, in_flight)?;
        Store::open_read_only(path)
            .map_err(|e| format!("read-only open after a writer opened the store: {e:?}"))?;
        self.temp_files_left += remove_temp_files(path);
        Ok(())
    }

    /// Compares the store's state with the acknowledged one (or it plus the commit in flight)
    /// and adopts what was found.
    fn compare(&mut self, found: State, in_flight: Option<&CrashOp>) -> Result<(), String> {
        if found == self.state {
            return Ok(());
        }
        if let Some(op) = in_flight {
            let mut landed = self.state.clone();
            apply(&mut landed, op)?;
            if found == landed {
                self.in_flight_landed += 1;
                self.state = found;
                return Ok(());
            }
        }
        let urls: BTreeSet<&String> = self.state.keys().chain(found.keys()).collect();
        for url in urls {
            let (expected, actual) = (self.state.get(url), found.get(url));
            if expected != actual {
                self.losses += 1;
                self.problems.push(format!(
                    "kill {}: {url}: acknowledged {expected:?}, found {actual:?} (in flight: {})",
                    self.kills,
                    in_flight.map_or("nothing".to_string(), |op| op.to_string())
                ));
            }
        }
        self.state = found;
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "kills={} acknowledged={} losses={} in_flight_landed={} killed_before_ready={} \
             read_only_after_kill: ok={} needs_repair={} temp_files_left={} problems={}",
            self.kills,
            self.acks,
            self.losses,
            self.in_flight_landed,
            self.killed_before_ready,
            self.read_only_ok,
            self.read_only_needs_repair,
            self.temp_files_left,
            self.problems.len()
        )
    }
}

/// Removes the temporary files (`.<name>.<purpose>-...`) a killed vacuum leaves beside the
/// store at `path` and returns how many there were.
fn remove_temp_files(path: &Path) -> u64 {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return 0;
    };
    let prefix = format!(".{}.", name.to_string_lossy());
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
            removed += 1;
        }
    }
    removed
}

/// Reads the project's runs as a `State`, with any output that is not the value the child
/// wrote reported as a problem.
fn read_state(store: &Store) -> runstore::Result<(State, Vec<String>)> {
    let mut state = State::new();
    let mut problems = Vec::new();
    for run in store.runs(Some(PROJECT))? {
        let url = run.url();
        let info = run.info()?;
        let outputs = run.output_values()?;
        if outputs.len() as u64 != info.output_count {
            problems.push(format!(
                "{url}: {} outputs read, output count {}",
                outputs.len(),
                info.output_count
            ));
        }
        for (step, value) in outputs.iter().enumerate() {
            if value.encode() != output_value(step as u64).encode() {
                problems.push(format!("{url}: output {step} is {value:?}"));
            }
        }
        let mut parameters = BTreeMap::new();
        for (key, value) in info.parameters.as_map().into_iter().flatten() {
            match value.as_i64() {
                Some(value) => {
                    parameters.insert(key.clone(), value);
                }
                None => problems.push(format!("{url}: parameter {key} is {value:?}")),
            }
        }
        let mut blobs = BTreeMap::new();
        for blob in run.bulk_list()? {
            let bytes = run.bulk_bytes(&blob.name)?;
            if bytes.len() as u64 != blob.len {
                problems.push(format!(
                    "{url}: blob {} lists {} bytes, reads {}",
                    blob.name,
                    blob.len,
                    bytes.len()
                ));
            }
            blobs.insert(blob.name, (bytes.len() as u64, crc32fast::hash(&bytes)));
        }
        state.insert(
            url,
            RunState {
                outputs: info.output_count,
                parameters,
                status: info.status,
                blobs,
            },
        );
    }
    Ok((state, problems))
}

fn soak(options: SoakOptions) -> ExitCode {
    let seed = options.seed.unwrap_or_else(clock_seed);
    let (path, temporary) = match options.store {
        Some(path) => (path, false),
        None => (
            std::env::temp_dir().join(format!("crash_soak-{}.runs", std::process::id())),
            true,
        ),
    };
    if let Err(error) = Store::open_or_create(&path) {
        eprintln!("crash_soak: open or create {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    let mut rng = Rng::new(seed);
    let mut journal = Journal::default();
    // A store given on the command line may hold runs already: they are the starting state.
    match Store::open(&path).and_then(|store| read_state(&store)) {
        Ok((state, _)) => journal.state = state,
        Err(error) => {
            eprintln!("crash_soak: read {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "crash_soak: store={} seed={seed} kills={}",
        path.display(),
        options.kills
    );
    let started = Instant::now();
    let mut failure = None;
    for _ in 0..options.kills {
        let plan = KillPlan::random(&mut rng);
        let config = ChildConfig {
            seed: rng.next_u64(),
            incarnation: journal.kills,
        };
        let result = run_child_and_kill(&path, config, plan).and_then(|lines| {
            journal.kills += 1;
            let in_flight = journal.take_lines(&lines)?;
            journal.verify(&path, in_flight.as_ref())
        });
        if let Err(error) = result {
            failure = Some(format!("kill {} ({plan:?}): {error}", journal.kills));
            break;
        }
        if journal.kills % 50 == 0 {
            eprintln!(
                "crash_soak: {} elapsed={:.0?}",
                journal.summary(),
                started.elapsed()
            );
        }
    }
    let file_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    for problem in &journal.problems {
        println!("crash_soak: PROBLEM {problem}");
    }
    if let Some(failure) = &failure {
        println!("crash_soak: FAILED {failure}");
    }
    println!("crash_soak: {}", journal.summary());
    println!(
        "crash_soak: file_bytes={file_bytes} elapsed={:.1?}",
        started.elapsed()
    );
    let ok = failure.is_none() && journal.losses == 0 && journal.problems.is_empty();
    if ok && temporary {
        let _ = std::fs::remove_file(&path);
    } else if !ok {
        println!("crash_soak: store kept at {}", path.display());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
