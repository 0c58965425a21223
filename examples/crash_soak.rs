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
//! without bound). About a third of its operations are on metrics tables of one schema
//! (`row` i64, `value` nullable f64, `tag` nullable utf8, `emb` `FixedSizeList<f32, 8>`) whose
//! content is fixed by the table's name inside its run and the row index: `add_metrics_data`
//! of 1 to 200,000 rows, `Store::append_to_table`, and appends of single rows and batches through
//! `MetricsWriter`s with `WriteDurability::Immediate` and with `Group { window: 20 ms }`, with
//! flushes (which seal the tail) and closes. It prints `begin <n> <op>` before each call and
//! `ack <n> <op>` after the call returned `Ok`, where `<op>` describes what the commit made
//! durable; a group writer's appends are acknowledged as appended, not as durable, and only
//! its flush or close makes them durable. After each kill the parent checks, in order: a
//! read-only open works (recovering the crashed store in memory) and reads what the writable
//! open reads below, and neither it nor `runstore::check` changes the file's length or mtime;
//! `runstore::check` finds no problem (for tables: every segment CRC, every array rebuilt); the store opens read-write;
//! its runs are exactly the acknowledged state, or that plus the one commit in flight at the
//! kill, where each table has a row count from its last durable acknowledgement up to the rows
//! appended and every row, read by a full scan, is the expected content (so the rows present
//! are a prefix of what was appended); copied runs have copies of their tables, deleted runs'
//! tables are gone; a read-only open then works. Temporary files a killed vacuum left are
//! counted and removed.
//!
//! Prints kills, acknowledged commits, losses, tables and rows checked, the unflushed group
//! rows that survived and that did not, acknowledged and in-flight commits by operation and the
//! final file size; exits with status 1 on any loss or problem (the store is kept for
//! inspection), 2 on bad arguments.
//!
//! The writer, the kill and the checks are the harness in `tests/harness/crash/`, which the
//! `crash` tests use too.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use runstore::Store;

#[path = "../tests/harness/crash/mod.rs"]
mod crash;
// `seed_from_env` is the tests' way to a seed; the soak takes `--seed`.
#[allow(dead_code)]
#[path = "../tests/harness/rng.rs"]
mod rng;

use crash::{child_main, read_state, run_child_and_kill, ChildConfig, Journal, KillPlan};
use rng::{clock_seed, Rng};

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

/// The command that starts a writer on `path`: this program with the hidden `--child`.
fn child_command(path: &std::path::Path, config: &ChildConfig) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("--child")
        .arg(path)
        .args(["--seed", &config.seed.to_string()])
        .args(["--incarnation", &config.incarnation.to_string()]);
    Ok(command)
}

// ---------------------------------------------------------------------------------------------
// The soak

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
        let result = child_command(&path, &config)
            .and_then(|child| run_child_and_kill(child, &path, plan))
            .and_then(|lines| {
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
    println!("crash_soak: {}", journal.op_summary());
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
