//! `runstore info`: format version, file size and counts of a store.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::open::open_read;
use super::text::{human_bytes, printable};

/// Format version, file size and counts.
///
/// Example: runstore info demo.runs --json
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// As one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `info`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path, json } = args;
    let store = open_read(&path)?;
    let info = store.info()?;
    if json {
        let line = serde_json::json!({
            "path": info.path,
            "format_version": info.format_version,
            "catalog_version": info.catalog_version,
            "file_bytes": info.file_bytes,
            "redb_bytes": info.redb_bytes,
            "column_extent_bytes": info.column_extent_bytes,
            "column_used_bytes": info.column_used_bytes,
            "extent_count": info.extent_count,
            "superblock_generation": info.superblock_generation,
            "projects": info.projects,
            "runs": info.runs,
            "outputs": info.outputs,
            "inputs": info.inputs,
            "blobs": info.blobs,
            "tables": info.tables,
            "needs_recovery": store.needs_recovery(),
        });
        writeln!(out, "{line:#}")?;
    } else {
        writeln!(
            out,
            "path            {}",
            printable(&info.path.display().to_string())
        )?;
        writeln!(out, "format version  {}", info.format_version)?;
        writeln!(out, "catalog version {}", info.catalog_version)?;
        writeln!(out, "file size       {}", human_bytes(info.file_bytes))?;
        writeln!(out, "catalog (redb)  {}", human_bytes(info.redb_bytes))?;
        writeln!(
            out,
            "column data     {} used of {} allocated",
            human_bytes(info.column_used_bytes),
            human_bytes(info.column_extent_bytes)
        )?;
        writeln!(
            out,
            "extents         {} (superblock generation {})",
            info.extent_count, info.superblock_generation
        )?;
        writeln!(out, "projects        {}", info.projects)?;
        writeln!(out, "runs            {}", info.runs)?;
        writeln!(out, "output values   {}", info.outputs)?;
        writeln!(out, "input values    {}", info.inputs)?;
        writeln!(out, "blobs           {}", info.blobs)?;
        writeln!(out, "tables          {}", info.tables)?;
        if store.needs_recovery() {
            writeln!(
                out,
                "recovery        needed: its writer stopped without closing it; shown \
                 is its last durable commit (`runstore repair` recovers the file)"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
