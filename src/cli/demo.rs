//! `runstore demo`: writes a realistic store and prints what is in it.
//!
//! The store holds one project of four runs of a small image classifier sweep: parameters
//! (a nested config), per-epoch output values, the test split as an input table (10,000
//! rows), per-step training loss (a metrics table written row by row with group commit), a
//! per-example evaluation table (loss, confidence, predicted class, a 64-wide embedding)
//! joined to the input table (with a 2-D PCA of the embedding for the completed runs), a
//! checkpoint blob, and statuses COMPLETED, COMPLETED,
//! CANCELLED and RUNNING.
//!
//! Run twice it replaces its own earlier store, and nothing else: an existing file is replaced
//! only when it is a store that holds nothing but the demo's project and runs, and only
//! under the writer lock (opened for writing first, so a process writing to it makes the demo
//! refuse; held until the new file is renamed into place, so no commit can land in the old
//! file meanwhile). A symbolic link stays and the file it points to is replaced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::{FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use runstore::{
    with_role, ColumnRole, Method, MetricsOptions, ReduceOptions, Store, Value, WriterOptions,
};

const PROJECT: &str = "cifar10-sweep";

/// The runs the demo writes, with their learning rate, batch size, final status and epochs.
const SWEEP: [(&str, f64, i32, &str, i32); 4] = [
    ("resnet18-lr0.1", 0.1, 128, "COMPLETED", 10),
    ("resnet18-lr0.01", 0.01, 128, "COMPLETED", 10),
    ("resnet18-lr0.3", 0.3, 256, "CANCELLED", 4),
    ("resnet34-lr0.05", 0.05, 128, "RUNNING", 6),
];
/// Write a realistic demo store (default demo.runs) and print what is in it.
///
/// Example: runstore demo /tmp/demo.runs
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write it; an existing file there is replaced only when it is a store
    /// holding nothing but an earlier demo (its project cifar10-sweep), and no other
    /// process has it open for writing.
    path: Option<PathBuf>,
}

/// Runs `demo`.
pub fn run(args: Args, wait: Duration, out: &mut impl Write) -> Result<ExitCode> {
    let Args { path } = args;
    let path = path.unwrap_or_else(|| PathBuf::from("demo.runs"));
    demo(&path, wait, out)?;
    Ok(ExitCode::SUCCESS)
}

/// The project-level table the demo writes (`<PROJECT>/tables/<INPUT_TABLE>`).
const INPUT_TABLE: &str = "test";
/// Names listed in a refusal before `...`.
const LISTED_NAMES_MAX: usize = 5;

/// Writes the demo store to `path` and prints a summary to `out`; an open of an earlier demo
/// waits up to `wait` for its writer to close.
fn demo(path: &Path, wait: Duration, out: &mut impl Write) -> Result<()> {
    let started = Instant::now();
    let shown = super::text::printable(&path.display().to_string()).into_owned();
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            // Nothing there: create it (a hard link into place, so a file that appears
            // meanwhile is never replaced) and fill it.
            let store = Store::create(path).with_context(|| format!("creating {shown}"))?;
            write_demo(&store)?;
        }
        Err(error) => return Err(error).with_context(|| format!("reading {shown}")),
        Ok(_) => {
            // The open follows a symbolic link and refuses anything that is not a regular
            // file, saying what it is (a FIFO, a directory, ...).
            let store = match Store::open_waiting(path, wait) {
                Ok(store) => store,
                Err(error) => bail!("refusing to replace {shown}: {error}"),
            };
            if let Some(holds) = not_only_the_demo(&store)? {
                bail!(
                    "refusing to replace {shown}: it holds {holds}; demo replaces only a store \
                     holding nothing but its own project {PROJECT}"
                );
            }
            store
                .replace_with(write_demo)
                .with_context(|| format!("replacing {shown}"))?;
        }
    }
    let elapsed = started.elapsed();

    let store = Store::open_read_only(path)?;
    let info = store.info()?;
    writeln!(
        out,
        "wrote {} in {:.0} ms: {} project, {} runs, {} output values, {} tables, {} blobs, {}",
        path.display(),
        elapsed.as_secs_f64() * 1e3,
        info.projects,
        info.runs,
        info.outputs,
        info.tables,
        info.blobs,
        super::text::human_bytes(info.file_bytes),
    )?;
    writeln!(out)?;
    let runs = store.runs(Some(PROJECT))?;
    super::print::print_runs_table(out, &runs)?;
    writeln!(out)?;
    let best = &runs[0];
    super::print::print_run(out, best)?;
    writeln!(out)?;
    writeln!(out, "try: runstore runs {} --json", path.display())?;
    writeln!(out, "     runstore show {} {}", path.display(), best.url())?;
    writeln!(
        out,
        "     runstore tables {} {}",
        path.display(),
        best.url()
    )?;
    writeln!(
        out,
        "     runstore scan {} {}/metrics_0000 --columns example_id,loss,predicted --limit 5",
        path.display(),
        best.url()
    )?;
    writeln!(out, "     runstore info {}", path.display())?;
    writeln!(
        out,
        "     runstore ui {}        (a viewer in your browser)",
        path.display()
    )?;
    Ok(())
}

/// A small deterministic generator, so the demo is the same every time.
struct Lcg(u64);

impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Examples in the demo's test split (one metrics row per example per evaluated epoch).
const EXAMPLES: usize = 10_000;
/// Width of the per-example embedding.
const EMBEDDING_WIDTH: i32 = 64;
const CLASSES: i32 = 10;

/// The input table: CIFAR-10's test split as (example_id, image path, label).
fn write_input_table(store: &Store) -> Result<String> {
    let labels: Vec<i32> = (0..EXAMPLES as i32)
        .map(|i| (i * 7 + 3) % CLASSES)
        .collect();
    let paths: Vec<String> = (0..EXAMPLES).map(|i| format!("test/{i:05}.png")).collect();
    let schema = Arc::new(Schema::new(vec![
        with_role(
            Field::new("example_id", DataType::Int32, false),
            ColumnRole::ExampleId,
        ),
        Field::new("image", DataType::Utf8, false),
        with_role(
            Field::new("label", DataType::Int32, false),
            ColumnRole::Label,
        ),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from_iter_values(0..EXAMPLES as i32)),
            Arc::new(StringArray::from(paths)),
            Arc::new(Int32Array::from(labels)),
        ],
    )?;
    Ok(store
        .create_table(PROJECT, INPUT_TABLE, &[batch])?
        .url()
        .to_string())
}

/// Per-example metrics of one evaluation: loss, confidence, predicted class and a 64-wide
/// embedding that clusters by class (so reduction has structure to find).
fn evaluation_batch(rng: &mut Lcg, accuracy: f64) -> Result<RecordBatch> {
    let mut loss = Vec::with_capacity(EXAMPLES);
    let mut confidence = Vec::with_capacity(EXAMPLES);
    let mut predicted = Vec::with_capacity(EXAMPLES);
    let mut embedding = Vec::with_capacity(EXAMPLES * EMBEDDING_WIDTH as usize);
    for i in 0..EXAMPLES as i32 {
        let label = (i * 7 + 3) % CLASSES;
        let correct = rng.next_f64() < accuracy;
        let guess = if correct {
            label
        } else {
            (label + 1 + (rng.next_f64() * 8.0) as i32) % CLASSES
        };
        let p = if correct {
            0.5 + 0.5 * rng.next_f64()
        } else {
            0.1 + 0.4 * rng.next_f64()
        };
        loss.push(-(p as f32).ln());
        confidence.push(p as f32);
        predicted.push(guess);
        for d in 0..EMBEDDING_WIDTH {
            let center = if d % CLASSES == guess { 2.0 } else { 0.0 };
            embedding.push((center + rng.next_f64() - 0.5) as f32);
        }
    }
    let embedding_field = Arc::new(Field::new("item", DataType::Float32, false));
    let embedding = FixedSizeListArray::try_new(
        embedding_field.clone(),
        EMBEDDING_WIDTH,
        Arc::new(Float32Array::from(embedding)),
        None,
    )?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("loss", DataType::Float32, false),
        Field::new("confidence", DataType::Float32, false),
        with_role(
            Field::new("predicted", DataType::Int32, false),
            ColumnRole::Prediction,
        ),
        with_role(
            Field::new(
                "embedding",
                DataType::FixedSizeList(embedding_field, EMBEDDING_WIDTH),
                false,
            ),
            ColumnRole::Embedding,
        ),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Float32Array::from(loss)),
            Arc::new(Float32Array::from(confidence)),
            Arc::new(Int32Array::from(predicted)),
            Arc::new(embedding),
        ],
    )?)
}

/// What the store holds besides the demo's own project, runs and input table, said for a
/// refusal (`2 projects (a, b) and 17 runs`), or `None` when it holds nothing else.
fn not_only_the_demo(store: &Store) -> Result<Option<String>> {
    let list = |names: &[String]| {
        let mut listed: Vec<String> = names
            .iter()
            .take(LISTED_NAMES_MAX)
            .map(|name| super::text::printable(name).into_owned())
            .collect();
        if names.len() > LISTED_NAMES_MAX {
            listed.push("...".into());
        }
        listed.join(", ")
    };
    let plural =
        |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    let projects: Vec<String> = store.projects()?.into_iter().map(|p| p.name).collect();
    let runs: Vec<String> = store.runs(None)?.iter().map(|run| run.url()).collect();
    let holds = format!(
        "{} ({}) and {}",
        plural(projects.len(), "project"),
        list(&projects),
        plural(runs.len(), "run")
    );
    if projects.iter().any(|project| project != PROJECT) {
        return Ok(Some(holds));
    }
    let demo_runs: Vec<String> = SWEEP
        .iter()
        .map(|(name, ..)| format!("{PROJECT}/runs/{name}"))
        .collect();
    let foreign_runs: Vec<String> = runs
        .iter()
        .filter(|url| !demo_runs.contains(url))
        .cloned()
        .collect();
    if !foreign_runs.is_empty() {
        return Ok(Some(format!(
            "{holds}, {} the demo does not write ({})",
            plural(foreign_runs.len(), "run"),
            list(&foreign_runs)
        )));
    }
    let demo_table = format!("{PROJECT}/tables/{INPUT_TABLE}");
    let foreign_tables: Vec<String> = store
        .tables(Some(PROJECT))?
        .into_iter()
        .map(|info| info.url)
        .filter(|url| !url.contains("/runs/") && *url != demo_table)
        .collect();
    if !foreign_tables.is_empty() {
        return Ok(Some(format!(
            "{holds}, and {} the demo does not write ({})",
            plural(foreign_tables.len(), "table"),
            list(&foreign_tables)
        )));
    }
    Ok(None)
}

fn write_demo(store: &Store) -> Result<()> {
    let input_table = write_input_table(store)?;
    let mut rng = Lcg(7);
    for (name, lr, batch_size, status, epochs) in SWEEP {
        let run = store.init(PROJECT, Some(name))?;
        run.set_description(&format!(
            "{} on CIFAR-10, SGD lr={lr}, batch {batch_size}",
            name.split('-').next().unwrap_or(name)
        ))?;
        run.set_parameters(&Value::from_json_str(&format!(
            r#"{{"model": "{}", "lr": {lr}, "batch_size": {batch_size}, "epochs": 10,
                "optimizer": {{"name": "sgd", "momentum": 0.9, "weight_decay": 0.0005}},
                "augment": ["random_crop", "hflip"], "seed": 42}}"#,
            name.split('-').next().unwrap_or(name)
        ))?)?;
        run.add_input_table("cifar10/tables/train")?;
        run.add_input_table(&input_table)?;
        run.add_input_value(&Value::map([("dataset_version", Value::from("v2"))]))?;
        run.set_status_running()?;
        let mut loss = 2.3;
        let mut accuracy: f64 = 0.1;
        let quality = 1.0 - (lr - 0.05f64).abs() * 2.0;
        // Per-step training loss, one row per step through a group-commit writer.
        let steps_schema = Arc::new(Schema::new(vec![
            Field::new("step", DataType::Int64, false),
            Field::new("epoch", DataType::Int32, false),
            Field::new("loss", DataType::Float64, false),
        ]));
        let mut steps =
            run.metrics_writer(steps_schema, "steps", "train", &WriterOptions::default())?;
        let mut step_loss = 2.3;
        for step in 0..epochs as i64 * 100 {
            step_loss *= 0.997 + 0.002 * rng.next_f64();
            steps.append_row(&[
                Value::from(step),
                Value::from((step / 100) as i32),
                Value::from(round4(step_loss)),
            ])?;
        }
        steps.close()?;
        for epoch in 0..epochs {
            loss *= 0.72 + 0.08 * rng.next_f64() + 0.1 * (1.0 - quality);
            accuracy = (accuracy + (0.93 - accuracy) * 0.35 * quality).min(0.99);
            run.add_output_value(&Value::map([
                ("epoch", Value::from(epoch)),
                ("train_loss", Value::from(round4(loss))),
                ("val_accuracy", Value::from(round4(accuracy))),
                ("lr", Value::from(lr)),
            ]))?;
        }
        // Per-example metrics of the final evaluation, joined to the input table.
        let evaluation = evaluation_batch(&mut rng, accuracy)?;
        run.add_metrics_data(
            &evaluation,
            &MetricsOptions {
                input_table_url: Some(input_table.clone()),
                ..MetricsOptions::default()
            },
        )?;
        if status == "COMPLETED" {
            // A 2-D PCA of the embeddings, for plotting (`embedding_pca`, in a new table listed
            // after the source, which is kept).
            run.reduce_embeddings_per_dataset(&ReduceOptions {
                method: Method::Pca,
                ..ReduceOptions::default()
            })?;
        }
        // A small stand-in checkpoint, streamed into the store as a blob.
        let checkpoint: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
        run.put_bulk("checkpoint.pt", &checkpoint)?;
        run.set_status(runstore::RunStatus::parse(status)?)?;
    }
    Ok(())
}

fn round4(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}
