//! `runstore reduce`: reduces the embedding columns of a run's metrics tables
//! (`Run::reduce_embeddings_per_dataset`, or `..._by_foreign_table_url`), with a progress bar
//! on stderr when it is a terminal.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use runstore::{Method, Progress, ReduceOptions, Store};

/// Reduce the embedding columns of a run's metrics tables to a few dimensions for plotting.
///
/// Tables are grouped by their foreign (input) table; one reducer per group and embedding
/// column is fitted on the group's newest table and applied to the others (a reducer stored
/// by an earlier reduction with the same parameters is reused). Each source gets a new table
/// with `<column>_umap` or `<column>_pca` in place of the embedding column; the run's metrics
/// point at the new tables. All in one commit; the run is POST_PROCESSING meanwhile and
/// COMPLETED after, or back to its old status on error; with nothing to reduce nothing changes.
/// Prints `source -> new` per table.
///
/// Example: runstore reduce demo.runs cifar10-sweep/runs/resnet18-lr0.01 --method pca --components 2
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store file.
    path: PathBuf,
    /// `<project>/runs/<run>`.
    run_url: String,
    /// The reduction method.
    #[arg(long, value_enum, default_value = "umap")]
    method: MethodArg,
    /// Fit on the newest table of this foreign (input) table and apply to every table.
    #[arg(long = "by-foreign-table", value_name = "URL")]
    by_foreign_table: Option<String>,
    /// Output dimensions.
    #[arg(long, default_value_t = 2)]
    components: usize,
    /// UMAP's neighbours per row.
    #[arg(long, default_value_t = 15)]
    neighbors: usize,
    /// UMAP's smallest distance between embedded points.
    #[arg(long, default_value_t = 0.1)]
    min_dist: f64,
    /// Seed of every random choice (same seed, same output).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reduce these columns (comma-separated; default: columns with the embedding role).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Delete the source tables in the same commit.
    #[arg(long)]
    delete_source_tables: bool,
    /// Keep the source embedding column next to the reduced one.
    #[arg(long = "retain-source")]
    retain_source: bool,
}

/// `--method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// UMAP.
    Umap,
    /// Exact PCA.
    Pca,
}

/// Runs `reduce`, printing `source -> new` lines to `out`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let store = Store::open_waiting(&args.path, wait)
        .with_context(|| format!("opening {}", args.path.display()))?;
    let run = super::find::run(&store, &args.path, &args.run_url)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>10} {bar:30} {pos}/{len} [{elapsed}]")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress_bar = bar.clone();
    let options = ReduceOptions {
        method: match args.method {
            MethodArg::Umap => Method::Umap,
            MethodArg::Pca => Method::Pca,
        },
        n_components: args.components,
        n_neighbors: args.neighbors,
        min_dist: args.min_dist,
        seed: args.seed,
        delete_source_tables: args.delete_source_tables,
        retain_source_embedding_column: args.retain_source,
        columns: args.columns,
        progress: Some(Arc::new(move |progress: &Progress| {
            progress_bar.set_message(progress.stage.name());
            progress_bar.set_length(progress.total);
            progress_bar.set_position(progress.done);
        })),
    };
    let report = match &args.by_foreign_table {
        Some(url) => run.reduce_embeddings_by_foreign_table_url(url, &options),
        None => run.reduce_embeddings_per_dataset(&options),
    };
    bar.finish_and_clear();
    let report = report?;
    for reducer in &report.reducers {
        let how = if reducer.fitted_now {
            "fitted on"
        } else {
            "reused, fitted on"
        };
        let explained = match &reducer.explained_variance_ratio {
            Some(ratios) => format!(
                ", explained variance {}",
                ratios
                    .iter()
                    .map(|r| format!("{:.1}%", r * 100.0))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => String::new(),
        };
        eprintln!(
            "reducer {} ({}): {how} {}{explained}",
            reducer.name, reducer.column, reducer.fitted_on
        );
    }
    for (from, to) in &report.tables {
        writeln!(out, "{from} -> {to}")?;
    }
    for url in &report.deleted {
        eprintln!("deleted {url}");
    }
    Ok(ExitCode::SUCCESS)
}
