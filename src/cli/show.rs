//! `runstore show`: one run with everything it holds, for people or as JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::open::open_read;
use super::print::{print_run, run_json};

/// Show one run: attributes, parameters, inputs, outputs, metrics tables and blobs.
///
/// Example: runstore show demo.runs cifar10-sweep/runs/resnet18-lr0.01 --json
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
    /// As one JSON object (NaN and infinities as the strings "NaN", "Infinity" and
    /// "-Infinity").
    #[arg(long)]
    json: bool,
}

/// Runs `show`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args {
        path,
        run_url,
        json,
    } = args;
    let store = open_read(&path)?;
    let run = super::find::run(&store, &path, &run_url)?;
    if json {
        writeln!(out, "{:#}", run_json(&run)?)?;
    } else {
        print_run(out, &run)?;
    }
    Ok(ExitCode::SUCCESS)
}
