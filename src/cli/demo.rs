//! `runstore demo`: writes a realistic store and prints what is in it.
//!
//! The store holds one project of four runs of a small image classifier sweep: parameters
//! (a nested config), per-epoch output values, an input table reference, an input value, a
//! checkpoint blob, and statuses COMPLETED, COMPLETED, CANCELLED and RUNNING. Run twice it
//! replaces its own earlier store; it refuses to replace a file that is not a store.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use runstore::{Error, Store, Value};

const PROJECT: &str = "cifar10-sweep";

/// Writes the demo store to `path` and prints a summary to `out`.
pub fn run(path: &Path, out: &mut impl Write) -> Result<()> {
    let started = Instant::now();
    match Store::probe(path) {
        Ok(()) => {}
        Err(Error::NotFound { .. }) => {}
        Err(error) => {
            bail!(
                "refusing to replace {}: it is not a runstore store ({error})",
                path.display()
            )
        }
    }
    let store =
        Store::create_replacing(path).with_context(|| format!("creating {}", path.display()))?;
    write_demo(&store)?;
    let elapsed = started.elapsed();
    drop(store);

    let store = Store::open_read_only(path)?;
    let info = store.info()?;
    writeln!(
        out,
        "wrote {} in {:.0} ms: {} project, {} runs, {} output values, {} blobs, {}",
        path.display(),
        elapsed.as_secs_f64() * 1e3,
        info.projects,
        info.runs,
        info.outputs,
        info.blobs,
        super::human_bytes(info.file_bytes),
    )?;
    writeln!(out)?;
    let runs = store.runs(Some(PROJECT))?;
    super::print_runs_table(out, &runs)?;
    writeln!(out)?;
    let best = &runs[0];
    super::print_run(out, best)?;
    writeln!(out)?;
    writeln!(out, "try: runstore runs {} --json", path.display())?;
    writeln!(out, "     runstore show {} {}", path.display(), best.url())?;
    writeln!(out, "     runstore info {}", path.display())?;
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

fn write_demo(store: &Store) -> Result<()> {
    let sweep = [
        ("resnet18-lr0.1", 0.1, 128, "COMPLETED", 10),
        ("resnet18-lr0.01", 0.01, 128, "COMPLETED", 10),
        ("resnet18-lr0.3", 0.3, 256, "CANCELLED", 4),
        ("resnet34-lr0.05", 0.05, 128, "RUNNING", 6),
    ];
    let mut rng = Lcg(7);
    for (name, lr, batch_size, status, epochs) in sweep {
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
        run.add_input_table("cifar10/tables/test")?;
        run.add_input_value(&Value::map([("dataset_version", Value::from("v2"))]))?;
        run.set_status_running()?;
        let mut loss = 2.3;
        let mut accuracy: f64 = 0.1;
        let quality = 1.0 - (lr - 0.05f64).abs() * 2.0;
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
