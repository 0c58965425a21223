//! `runstore tables`: a run's metrics tables, a project's tables, or every table.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use runstore::Store;

use super::open::open_read;
use super::scan::print_aligned;
use super::text::{human_bytes, printable};

/// List tables: a run's metrics tables, a project's tables, or every table.
///
/// Example: runstore tables demo.runs cifar10-sweep/runs/resnet18-lr0.01
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// A run url (`<project>/runs/<run>`) or a project name.
    scope: Option<String>,
    /// One JSON object per table.
    #[arg(long)]
    json: bool,
}

/// Runs `tables`.
pub fn run(args: Args, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path, scope, json } = args;
    let store = open_read(&path)?;
    tables(&store, scope.as_deref(), json, out)?;
    Ok(ExitCode::SUCCESS)
}

/// Lists tables: a run's metrics tables (`scope` is a run url), a project's tables, or all.
fn tables(store: &Store, scope: Option<&str>, json: bool, out: &mut impl Write) -> Result<()> {
    let infos = match scope {
        Some(scope) if scope.contains("/runs/") => {
            let run = store.run(scope)?;
            let mut infos = Vec::new();
            for table in run.metrics_table_handles()? {
                infos.push(table.info()?);
            }
            infos
        }
        Some(project) if project.contains('/') => {
            bail!("expected a project or a run url, got {project}")
        }
        Some(project) => store.tables(Some(project))?,
        None => store.tables(None)?,
    };
    if json {
        for info in infos {
            let line = serde_json::json!({
                "url": info.url,
                "stream_name": info.stream_name,
                "row_count": info.row_count,
                "file_size": info.file_size,
                "foreign_table_url": info.foreign_table_url,
                "columns": info.schema.fields().iter().map(|f| serde_json::json!({
                    "name": f.name(),
                    "type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                    "role": f.metadata().get(runstore::table::ROLE_KEY),
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let mut rows = vec![vec![
        "TABLE".to_string(),
        "ROWS".into(),
        "SIZE".into(),
        "STREAM".into(),
        "COLUMNS".into(),
    ]];
    for info in &infos {
        let columns: Vec<String> = info
            .schema
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect();
        rows.push(vec![
            printable(&info.url).into_owned(),
            info.row_count.to_string(),
            human_bytes(info.file_size),
            printable(&info.stream_name).into_owned(),
            printable(&columns.join(" ")).into_owned(),
        ]);
    }
    print_aligned(out, &rows)?;
    writeln!(out, "({} tables)", infos.len())?;
    Ok(())
}
