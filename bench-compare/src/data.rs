//! The workloads' data, generated from a fixed seed so every system (and every run of the
//! bench) gets the same values; exported as Arrow IPC files for the Python comparison
//! scripts in `bench-compare/` (contract: `bench-compare/README.md`).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};

/// Steps of W1 / W2.
pub const STEPS: usize = 100_000;
/// Rows of W4.
pub const SAMPLE_ROWS: usize = 1_000_000;
/// Width of W4's embedding.
pub const EMBEDDING: i32 = 64;
/// Epochs (output values) per W3 run.
pub const EPOCHS: usize = 10;
/// The W3 query, in runstore's filter language.
pub const QUERY: &str = "params.lr < 0.01 AND outputs.acc > 0.5 ORDER BY outputs.acc DESC LIMIT 10";

/// xorshift64: small, deterministic, the same in every build.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// W1: one run's per-step scalars.
pub struct Steps {
    pub loss: Vec<f64>,
    pub acc: Vec<f64>,
    pub lr: Vec<f64>,
    pub grad_norm: Vec<f64>,
}

impl Steps {
    /// `n` steps of a plausible training curve.
    pub fn generate(n: usize) -> Steps {
        let mut rng = Rng(0x5eed_0001_d00d_f00d);
        let mut steps = Steps {
            loss: Vec::with_capacity(n),
            acc: Vec::with_capacity(n),
            lr: Vec::with_capacity(n),
            grad_norm: Vec::with_capacity(n),
        };
        for t in 0..n {
            let progress = t as f64 / n.max(1) as f64;
            let loss = 2.3 * (-5.0 * progress).exp() + 0.05 * rng.unit();
            steps.loss.push(loss);
            steps.acc.push((1.0 - loss / 2.4).clamp(0.0, 1.0));
            steps
                .lr
                .push(0.05 * (1.0 + (std::f64::consts::PI * progress).cos()));
            steps.grad_norm.push(0.5 + rng.unit());
        }
        steps
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.loss.len()
    }

    /// The steps as one record batch: step, loss, acc, lr, grad_norm.
    pub fn batch(&self) -> RecordBatch {
        let mut fields = vec![Field::new("step", DataType::Int64, false)];
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(Int64Array::from_iter_values(0..self.len() as i64))];
        for (name, values) in self.columns() {
            fields.push(Field::new(name, DataType::Float64, false));
            columns.push(Arc::new(Float64Array::from(values.to_vec())));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("step batch")
    }

    /// The four scalar columns by name.
    pub fn columns(&self) -> [(&'static str, &[f64]); 4] {
        [
            ("loss", &self.loss),
            ("acc", &self.acc),
            ("lr", &self.lr),
            ("grad_norm", &self.grad_norm),
        ]
    }
}

/// One parameter value of a W3 run.
#[derive(Clone, Debug)]
pub enum Param {
    Int(i64),
    Float(f64),
    Text(String),
}

/// One W3 run: 20 parameters and 10 epochs of (acc, loss).
pub struct RunData {
    pub name: String,
    pub params: Vec<(String, Param)>,
    /// Per epoch: (acc, loss).
    pub outputs: Vec<(f64, f64)>,
}

impl RunData {
    /// The parameter `lr`.
    pub fn lr(&self) -> f64 {
        match &self.params[0].1 {
            Param::Float(lr) => *lr,
            _ => unreachable!("lr is the first parameter and a float"),
        }
    }

    /// The last epoch's accuracy (what `outputs.acc` means in the query).
    pub fn last_acc(&self) -> f64 {
        self.outputs.last().map_or(f64::NAN, |o| o.0)
    }
}

/// `n` runs, the same first runs for every `n`.
pub fn runs(n: usize) -> Vec<RunData> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let optimizers = ["adam", "sgd", "adamw", "rmsprop"];
    (0..n)
        .map(|i| {
            let lr = 10f64.powf(-4.0 + 3.0 * rng.unit());
            let mut params = vec![
                ("lr".to_string(), Param::Float(lr)),
                (
                    "batch_size".to_string(),
                    Param::Int(16i64 << (rng.next() % 5)),
                ),
                (
                    "optimizer".to_string(),
                    Param::Text(optimizers[(rng.next() % 4) as usize].to_string()),
                ),
                ("seed".to_string(), Param::Int(i as i64)),
                ("dropout".to_string(), Param::Float(rng.unit() * 0.5)),
            ];
            for k in 0..15 {
                let value = match k % 3 {
                    0 => Param::Int((rng.next() % 1000) as i64),
                    1 => Param::Text(format!("choice_{}", rng.next() % 10)),
                    _ => Param::Float(rng.unit()),
                };
                params.push((format!("p{k:02}"), value));
            }
            let ceiling = rng.unit();
            let outputs = (0..EPOCHS)
                .map(|epoch| {
                    let progress = (epoch + 1) as f64 / EPOCHS as f64;
                    (ceiling * progress, (1.0 - ceiling * progress) * 2.0)
                })
                .collect();
            RunData {
                name: format!("run-{i:07}"),
                params,
                outputs,
            }
        })
        .collect()
}

/// The W3 query's answer, computed naively: names of the top 10 and the number of matches.
pub fn expected_top10(runs: &[RunData]) -> (Vec<String>, usize) {
    let mut matches: Vec<&RunData> = runs
        .iter()
        .filter(|r| r.lr() < 0.01 && r.last_acc() > 0.5)
        .collect();
    let count = matches.len();
    matches.sort_by(|a, b| {
        b.last_acc()
            .total_cmp(&a.last_acc())
            .then_with(|| a.name.cmp(&b.name))
    });
    (
        matches.iter().take(10).map(|r| r.name.clone()).collect(),
        count,
    )
}

/// W4: `rows` per-sample rows {example_id, epoch, predicted: i32; loss, confidence: f32;
/// embedding: f32[64]}.
pub fn samples(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Rng(seed | 1);
    let mut next = move || (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("example_id", DataType::Int32, false),
        Field::new("epoch", DataType::Int32, false),
        Field::new("predicted", DataType::Int32, false),
        Field::new("loss", DataType::Float32, false),
        Field::new("confidence", DataType::Float32, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), EMBEDDING),
            false,
        ),
    ]));
    let loss: Vec<f32> = (0..rows).map(|_| next() * 3.0).collect();
    let confidence: Vec<f32> = (0..rows).map(|_| next()).collect();
    let embedding: Vec<f32> = (0..rows * EMBEDDING as usize).map(|_| next()).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int32Array::from_iter_values(0..rows as i32)),
            Arc::new(Int32Array::from(vec![3; rows])),
            Arc::new(Int32Array::from_iter_values(
                (0..rows as i32).map(|i| i.wrapping_mul(7919) % 10),
            )),
            Arc::new(Float32Array::from(loss)),
            Arc::new(Float32Array::from(confidence)),
            Arc::new(
                FixedSizeListArray::try_new(
                    item,
                    EMBEDDING,
                    Arc::new(Float32Array::from(embedding)),
                    None,
                )
                .expect("embedding column"),
            ),
        ],
    )
    .expect("sample batch")
}

/// The column bytes of a batch, concatenated: what a plain file of the same data holds.
pub fn raw_bytes(batch: &RecordBatch) -> Vec<u8> {
    fn push(data: &arrow_data::ArrayData, out: &mut Vec<u8>) {
        for buffer in data.buffers() {
            out.extend_from_slice(buffer.as_slice());
        }
        for child in data.child_data() {
            push(child, out);
        }
    }
    let mut out = Vec::new();
    for column in batch.columns() {
        push(&column.to_data(), &mut out);
    }
    out
}

/// Sum of a float32 column, in f64.
pub fn sum_f32(column: &dyn Array) -> f64 {
    column
        .as_any()
        .downcast_ref::<Float32Array>()
        .map_or(f64::NAN, |a| a.values().iter().map(|v| f64::from(*v)).sum())
}

fn write_ipc(path: &Path, batch: &RecordBatch) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &batch.schema())
        .map_err(std::io::Error::other)?;
    writer.write(batch).map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)?;
    Ok(())
}

fn params_batch(runs: &[RunData]) -> RecordBatch {
    let mut fields = vec![Field::new("run", DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        runs.iter().map(|r| r.name.as_str()),
    ))];
    let Some(first) = runs.first() else {
        return RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("empty");
    };
    for (k, (name, kind)) in first.params.iter().enumerate() {
        let column: ArrayRef = match kind {
            Param::Int(_) => {
                Arc::new(Int64Array::from_iter_values(runs.iter().map(
                    |r| match r.params[k].1 {
                        Param::Int(v) => v,
                        _ => unreachable!("parameter kinds are the same in every run"),
                    },
                )))
            }
            Param::Float(_) => {
                Arc::new(Float64Array::from_iter_values(runs.iter().map(
                    |r| match r.params[k].1 {
                        Param::Float(v) => v,
                        _ => unreachable!("parameter kinds are the same in every run"),
                    },
                )))
            }
            Param::Text(_) => {
                Arc::new(StringArray::from_iter_values(runs.iter().map(
                    |r| match &r.params[k].1 {
                        Param::Text(v) => v.as_str(),
                        _ => unreachable!("parameter kinds are the same in every run"),
                    },
                )))
            }
        };
        fields.push(Field::new(name, column.data_type().clone(), false));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("params batch")
}

fn outputs_batch(runs: &[RunData]) -> RecordBatch {
    let rows = || {
        runs.iter()
            .flat_map(|r| r.outputs.iter().enumerate().map(move |e| (r, e)))
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("run", DataType::Utf8, false),
        Field::new("epoch", DataType::Int64, false),
        Field::new("acc", DataType::Float64, false),
        Field::new("loss", DataType::Float64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(
                rows().map(|(r, _)| r.name.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows().map(|(_, (e, _))| e as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows().map(|(_, (_, o))| o.0),
            )),
            Arc::new(Float64Array::from_iter_values(
                rows().map(|(_, (_, o))| o.1),
            )),
        ],
    )
    .expect("outputs batch")
}

/// Writes the data set of the Python comparison into `dir`: `w1_steps.arrow`,
/// `w3_params_1000.arrow`, `w3_outputs_1000.arrow`, `w4_samples.arrow` and `expected.json`.
pub fn export(
    dir: &Path,
    steps: &Steps,
    runs: &[RunData],
    samples: &RecordBatch,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_ipc(&dir.join("w1_steps.arrow"), &steps.batch())?;
    let runs_1k = &runs[..runs.len().min(1000)];
    write_ipc(
        &dir.join(format!("w3_params_{}.arrow", runs_1k.len())),
        &params_batch(runs_1k),
    )?;
    write_ipc(
        &dir.join(format!("w3_outputs_{}.arrow", runs_1k.len())),
        &outputs_batch(runs_1k),
    )?;
    write_ipc(&dir.join("w4_samples.arrow"), samples)?;
    let (top, matches) = expected_top10(runs_1k);
    let loss = samples
        .column_by_name("loss")
        .map_or(f64::NAN, |c| sum_f32(c.as_ref()));
    let expected = serde_json::json!({
        "w1_loss_sum": steps.loss.iter().sum::<f64>(),
        "w3_top10_1000": top,
        "w3_matches_1000": matches,
        "w4_loss_sum": loss,
    });
    std::fs::write(
        dir.join("expected.json"),
        serde_json::to_vec_pretty(&expected)?,
    )?;
    Ok(())
}
