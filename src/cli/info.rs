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
    /// Also where the catalog's bytes go: per catalog table its entries, pages, stored,
    /// metadata and fragmented bytes (walks the whole catalog).
    #[arg(long)]
    tables: bool,
}

/// Runs `info`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path, json, tables } = args;
    let store = open_read(&path)?;
    let info = store.info()?;
    let catalog = if tables {
        Some(store.catalog_stats()?)
    } else {
        None
    };
    if json {
        let mut line = serde_json::json!({
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
        if let Some(catalog) = &catalog {
            line["catalog_tables"] = catalog
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "entries": t.entries,
                        "leaf_pages": t.leaf_pages,
                        "branch_pages": t.branch_pages,
                        "stored_bytes": t.stored_bytes,
                        "metadata_bytes": t.metadata_bytes,
                        "fragmented_bytes": t.fragmented_bytes,
                    })
                })
                .collect();
        }
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
        if let Some(catalog) = &catalog {
            print_catalog(out, catalog, info.redb_bytes)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The per-table lines of `--tables`, with what redb's pages hold in total against its length.
fn print_catalog(
    out: &mut impl Write,
    catalog: &[runstore::CatalogTableStats],
    redb_bytes: u64,
) -> Result<()> {
    const PAGE: u64 = 4096;
    writeln!(
        out,
        "\n{:<14} {:>10} {:>8} {:>7} {:>10} {:>10} {:>10} {:>10}",
        "catalog table", "entries", "leaves", "branch", "pages", "stored", "metadata", "unused"
    )?;
    let mut pages_total = 0;
    for t in catalog {
        let pages = t.leaf_pages + t.branch_pages;
        pages_total += pages;
        writeln!(
            out,
            "{:<14} {:>10} {:>8} {:>7} {:>10} {:>10} {:>10} {:>10}",
            printable(&t.name),
            t.entries,
            t.leaf_pages,
            t.branch_pages,
            human_bytes(pages * PAGE),
            human_bytes(t.stored_bytes),
            human_bytes(t.metadata_bytes),
            human_bytes(t.fragmented_bytes),
        )?;
    }
    writeln!(
        out,
        "tables' pages  {} of the catalog's {} (the rest: redb's own tables, free pages)",
        human_bytes(pages_total * PAGE),
        human_bytes(redb_bytes)
    )?;
    Ok(())
}
