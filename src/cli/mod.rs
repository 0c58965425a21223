//! Commands of the `runstore` binary: the global arguments, one enum of subcommands, the
//! dispatch, and `main` (arguments in, exit code out), which the binary and the Python
//! package's `runstore` script both call. Each command is a file, `<command>.rs`, with its
//! `clap::Args` struct (its help text) and a `run` from those arguments to output on stdout and
//! an exit code; errors go back to `main` as `anyhow::Error` with context. Shared helpers:
//! `open` (opening stores, waiting for `--wait`), `print` (runs as the commands print them),
//! `text` (escaping for people), `json_args` (JSON given on the command line) and `files`
//! (files written for the user).

mod append;
mod backup;
mod check;
mod close_stale;
mod copy;
mod delete;
mod demo;
mod export;
mod files;
mod find;
#[cfg(feature = "import")]
mod import;
mod info;
mod init;
mod json_args;
mod log;
mod merge;
mod open;
mod print;
mod projects;
mod reduce;
mod repair;
mod runs;
mod scan;
mod set_status;
mod show;
mod tables;
mod text;
#[cfg(feature = "ui")]
mod ui;
mod upgrade;
mod vacuum;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Once;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// runstore: one transactional file for the runs of your ML experiments.
#[derive(Debug, Parser)]
#[command(
    name = "runstore",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 error, 2 bad usage, 3 `check` found problems.\nEvery command takes the store file first; `runstore <command> --help` shows an example."
)]
pub struct Args {
    /// When another process has the store open for writing, wait up to this many seconds for
    /// it to close instead of failing at once (every command that opens a store for writing:
    /// init, log, append, set-status, delete, copy, merge, import, reduce, vacuum, repair,
    /// upgrade, close-stale, demo, and check, which needs the writer gone for redb's integrity
    /// check).
    /// Commands that only read, and backup (which copies a snapshot beside a writer), never
    /// wait: a writer does not stop them.
    #[arg(long, global = true, value_name = "SECONDS")]
    wait: Option<f64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Demo(demo::Args),
    Projects(projects::Args),
    Runs(runs::Args),
    Show(show::Args),
    Tables(tables::Args),
    Scan(scan::Args),
    Info(info::Args),
    Init(init::Args),
    Log(log::Args),
    SetStatus(set_status::Args),
    Delete(delete::Args),
    Vacuum(vacuum::Args),
    Check(check::Args),
    Repair(repair::Args),
    Upgrade(upgrade::Args),
    CloseStale(close_stale::Args),
    Backup(backup::Args),
    Append(append::Args),
    Copy(copy::Args),
    Merge(merge::Args),
    Export(export::Args),
    #[cfg(feature = "import")]
    Import(import::Args),
    Reduce(reduce::Args),
    #[cfg(feature = "ui")]
    Ui(ui::Args),
}

/// Runs the `runstore` command line over `args`, the program name first (as
/// `std::env::args_os()` gives them), and returns its exit code: 0 success; 1 an error,
/// printed on stderr with its cause chain; 2 bad usage, clap's message on stderr (`--help`
/// and `--version` print on stdout and return 0); 3 `check` found problems. A closed stdout
/// (`runstore runs x | head`) is success.
///
/// The `runstore` binary is this function over its arguments; the Python package's
/// `runstore` script calls it too. It acts for a whole process, as a command line does: it
/// installs, once, a panic hook that keeps the panics runstore contains inside redb quiet,
/// and the runs it sets RUNNING count as the parent process's (see `act_for_process`).
pub fn main<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    quiet_contained_panics();
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => {
            // Nothing to report a failed write of the usage message to.
            let _ = error.print();
            return u8::try_from(error.exit_code()).unwrap_or(2);
        }
    };
    match run(args) {
        Ok(code) => code_number(code),
        Err(error) if is_broken_pipe(&error) => 0,
        Err(error) => {
            eprintln!("runstore: {}", text::error_text(&error));
            1
        }
    }
}

/// `code` as its number: `ExitCode` does not show it, but compares equal to the code it was
/// made from, and the commands make theirs from a `u8`.
fn code_number(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|&number| ExitCode::from(number) == code)
        .unwrap_or(1)
}

/// The library turns a panic inside redb (a damaged catalog page) into `Error::Corrupted`,
/// which the command line prints as an error; the default hook would first print the panic
/// as if the program had crashed. Any other panic is a bug and is printed as usual. Installed
/// once per process, however often `main` runs.
fn quiet_contained_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_redb = info
                .location()
                .is_some_and(|location| location.file().contains("/redb-"));
            if !in_redb {
                default(info);
            }
        }));
    });
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs the parsed command.
fn run(args: Args) -> Result<ExitCode> {
    // A run this command sets RUNNING belongs to the script that called it, which goes on
    // working after this process exits (see `runstore::act_for_process`).
    #[cfg(unix)]
    runstore::act_for_process(std::os::unix::process::parent_id());
    let wait = open::wait_from_arg(args.wait)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match args.command {
        Command::Demo(args) => demo::run(args, wait, &mut out)?,
        Command::Projects(args) => projects::run(args, &mut out)?,
        Command::Runs(args) => runs::run(args, &mut out)?,
        Command::Show(args) => show::run(args, &mut out)?,
        Command::Tables(args) => tables::run(args, &mut out)?,
        Command::Scan(args) => scan::run(args, &mut out)?,
        Command::Info(args) => info::run(args, &mut out)?,
        Command::Init(args) => init::run(args, wait, &mut out)?,
        Command::Log(args) => log::run(args, wait)?,
        Command::SetStatus(args) => set_status::run(args, wait)?,
        Command::Delete(args) => delete::run(args, wait)?,
        Command::Vacuum(args) => vacuum::run(args, wait, &mut out)?,
        Command::Check(args) => check::run(args, wait, &mut out)?,
        Command::Repair(args) => repair::run(args, wait, &mut out)?,
        Command::Upgrade(args) => upgrade::run(args, wait, &mut out)?,
        Command::CloseStale(args) => close_stale::run(args, wait, &mut out)?,
        Command::Backup(args) => backup::run(args, &mut out)?,
        Command::Append(args) => append::run(args, wait)?,
        Command::Copy(args) => copy::run(args, wait, &mut out)?,
        Command::Merge(args) => merge::run(args, wait, &mut out)?,
        Command::Export(args) => export::run(args)?,
        #[cfg(feature = "import")]
        Command::Import(args) => import::run(args, wait, &mut out)?,
        Command::Reduce(args) => reduce::run(args, wait, &mut out)?,
        #[cfg(feature = "ui")]
        Command::Ui(args) => ui::run(args, &mut out)?,
    };
    out.flush()?;
    Ok(code)
}
