//! `runstore projects`: the projects of a store with their run counts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use runstore::time;

use super::open::open_read;
use super::text::printable;

/// List projects with their run counts.
///
/// Example: runstore projects demo.runs --json
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Runs `projects`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path, json } = args;
    let store = open_read(&path)?;
    for project in store.projects()? {
        if json {
            let line = serde_json::json!({
                "name": project.name,
                "created": time::format_us(project.created_us),
                "runs": project.run_count,
            });
            writeln!(out, "{line}")?;
        } else {
            writeln!(
                out,
                "{}\t{} runs",
                printable(&project.name),
                project.run_count
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
