//! `runstore log`: append output values (JSON objects) to a run in one commit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use runstore::value::JsonError;
use runstore::Value;

use super::json_args::unstorable_json;
use super::open::open_for_writing;
use super::text::echo;

/// Append an output value (a JSON object) to a run.
///
/// Example: runstore log exp.runs mnist/runs/baseline --output '{"epoch":1,"loss":0.5}'
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
    /// The output value, a JSON object. Repeatable: all are appended in one commit.
    /// Integers must fit i64 and nesting 64 levels.
    #[arg(long, required = true)]
    output: Vec<String>,
    /// Write alongside other processes that opened the store shared (a sweep's trials:
    /// `--shared` here, `Store::open_shared` in Rust) instead of as its one writer.
    #[arg(long)]
    shared: bool,
}

/// Runs `log`.
pub fn run(args: Args, wait: Duration) -> Result<ExitCode> {
    let Args {
        path,
        run_url,
        output,
        shared,
    } = args;
    let values = output
        .iter()
        .map(|text| match Value::parse_json(text) {
            Ok(value) => Ok(value),
            Err(JsonError::Syntax(error)) => Err(anyhow::Error::new(error)
                .context(format!("--output {} is not valid JSON", echo(text)))),
            Err(error) => Err(unstorable_json(error, "an output value", "--output")),
        })
        .collect::<Result<Vec<_>>>()?;
    let store = open_for_writing(&path, shared, wait)?;
    super::find::run(&store, &path, &run_url)?.add_output_values(&values)?;
    Ok(ExitCode::SUCCESS)
}
