//! `runstore init`: create a run (and the store when the file does not exist).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runstore::Store;

use super::json_args::parse_params;
use super::open::retry_while_open;

/// Create a run (and the store, if the file does not exist); prints the run's url.
///
/// Example: runstore init exp.runs --project mnist --name baseline --param lr=0.01
/// --param opt=adam
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// The project (created on first use).
    #[arg(long)]
    project: String,
    /// The run's name (default: a generated adjective-noun name; a taken name gets the
    /// first free `_NNNN` suffix).
    #[arg(long)]
    name: Option<String>,
    /// A parameter `key=value`; the value is read as JSON when it parses as JSON
    /// (`lr=0.01` is a number, `opt=adam` a string). Repeatable. JSON nested deeper than 64
    /// levels or holding an integer outside i64 is an error (quote a big integer to keep
    /// it as a string).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// The run's description.
    #[arg(long)]
    description: Option<String>,
    /// Write alongside other processes that opened the store shared (a sweep's trials:
    /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
    #[arg(long)]
    shared: bool,
}

/// Runs `init`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        path,
        project,
        name,
        params,
        description,
        shared,
    } = args;
    let parameters = parse_params(&params)?;
    let store = retry_while_open(wait, || {
        if shared {
            Store::open_or_create_shared(&path)
        } else {
            Store::open_or_create(&path)
        }
    })
    .with_context(|| format!("opening {}", path.display()))?;
    let run = store.init_with(
        &project,
        name.as_deref(),
        &runstore::InitOptions {
            description,
            parameters: Some(parameters),
            ..Default::default()
        },
    )?;
    writeln!(out, "{}", run.url())?;
    Ok(ExitCode::SUCCESS)
}
