//! Embedding reduction (issue 6): PCA against known axes, UMAP quality and determinism on
//! Gaussian clusters, grouping by foreign table, fit-newest-apply-others, stored reducers
//! reused and applied explicitly, deletion of sources, shared segments, status transitions and
//! their restoration on error, a source changed before the commit (nothing written), a
//! read-only store, and `runstore reduce` end to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, RecordBatch,
    StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use runstore::reduce::pca;
use runstore::{
    with_role, ColumnRole, Error, Method, MetricsOptions, ReduceOptions, Run, RunStatus, Stage,
    Store,
};

use crate::util::{runstore, stdout, temp_store, Rng};

/// A standard normal sample (Box-Muller).
fn normal(rng: &mut Rng) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let v = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * (u + 1e-300).ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn embedding_field(name: &str, width: i32, item: DataType, role: bool) -> Field {
    let field = Field::new(
        name,
        DataType::FixedSizeList(Arc::new(Field::new("item", item, false)), width),
        false,
    );
    if role {
        with_role(field, ColumnRole::Embedding)
    } else {
        field
    }
}

fn list(values: Vec<f32>, width: i32) -> ArrayRef {
    Arc::new(
        FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, false)),
            width,
            Arc::new(Float32Array::from(values)),
            None,
        )
        .expect("list"),
    )
}

/// {label: Int32, embedding: FixedSizeList<f32, width> (role embedding)}.
fn embedding_batch(labels: &[i32], values: Vec<f32>, width: i32) -> RecordBatch {
    let schema = Schema::new(vec![
        with_role(
            Field::new("label", DataType::Int32, false),
            ColumnRole::Label,
        ),
        embedding_field("embedding", width, DataType::Float32, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int32Array::from(labels.to_vec())),
            list(values, width),
        ],
    )
    .expect("batch")
}

/// `clusters x per_cluster` points in `dim` dimensions: centres uniform in [-10, 10]^dim,
/// points the centre plus N(0, 1) noise. Returns (labels, row-major values).
fn clusters(clusters: usize, per_cluster: usize, dim: usize, seed: u64) -> (Vec<i32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let centres: Vec<Vec<f64>> = (0..clusters)
        .map(|_| {
            (0..dim)
                .map(|_| (rng.below(20_001) as f64 / 1000.0) - 10.0)
                .collect()
        })
        .collect();
    let mut labels = Vec::new();
    let mut values = Vec::new();
    for i in 0..clusters * per_cluster {
        let label = i % clusters;
        labels.push(label as i32);
        for centre in &centres[label] {
            values.push((centre + normal(&mut rng)) as f32);
        }
    }
    (labels, values)
}

/// Leave-one-out accuracy of a k-nearest-neighbour classifier (majority vote, ties to the
/// nearer neighbour's label) over rows of `dim` values.
fn knn_accuracy(values: &[f32], dim: usize, labels: &[i32], k: usize) -> f64 {
    let rows = labels.len();
    let mut correct = 0;
    for i in 0..rows {
        let row = &values[i * dim..(i + 1) * dim];
        let mut dists: Vec<(f32, usize)> = (0..rows)
            .filter(|j| *j != i)
            .map(|j| {
                let other = &values[j * dim..(j + 1) * dim];
                let d: f32 = row.iter().zip(other).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, j)
            })
            .collect();
        dists.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut votes: HashMap<i32, usize> = HashMap::new();
        for (_, j) in &dists[..k] {
            *votes.entry(labels[*j]).or_default() += 1;
        }
        let best = votes.values().copied().max().unwrap_or(0);
        let predicted = dists[..k]
            .iter()
            .map(|(_, j)| labels[*j])
            .find(|label| votes[label] == best)
            .expect("a vote");
        correct += usize::from(predicted == labels[i]);
    }
    correct as f64 / rows as f64
}

/// All values of a `FixedSizeList<f32>` column of a table, row-major.
fn column_values(store: &Store, url: &str, column: &str) -> Vec<f32> {
    let batches = store
        .table(url)
        .unwrap()
        .scan_with(&runstore::ScanOptions {
            columns: Some(vec![column.to_string()]),
            rows: None,
        })
        .unwrap();
    let mut out = Vec::new();
    for batch in batches {
        let list = batch
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .expect("a fixed size list");
        for row in 0..list.len() {
            let value = list.value(row);
            let floats = value.as_any().downcast_ref::<Float32Array>().unwrap();
            out.extend_from_slice(floats.values());
        }
    }
    out
}

fn column_names(store: &Store, url: &str) -> Vec<String> {
    store
        .table(url)
        .unwrap()
        .schema()
        .unwrap()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

fn metrics_urls(run: &Run) -> Vec<String> {
    run.metrics_tables()
        .unwrap()
        .into_iter()
        .map(|m| m.url)
        .collect()
}

fn pca_options() -> ReduceOptions {
    ReduceOptions {
        method: Method::Pca,
        ..ReduceOptions::default()
    }
}

fn add_table(run: &Run, batch: &RecordBatch, input: Option<&str>) -> String {
    run.add_metrics_data(
        batch,
        &MetricsOptions {
            input_table_url: input.map(str::to_string),
            ..MetricsOptions::default()
        },
    )
    .unwrap()[0]
        .url
        .clone()
}

fn input_table(store: &Store, name: &str, rows: usize) -> String {
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "image",
            DataType::Utf8,
            false,
        )])),
        vec![Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("{name}/{i}.png")),
        ))],
    )
    .unwrap();
    store
        .create_table("p", name, &[batch])
        .unwrap()
        .url()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// PCA

/// Orthonormal axes from random vectors (Gram-Schmidt), computed here, not by the crate.
fn orthonormal_axes(count: usize, dim: usize, rng: &mut Rng) -> Vec<Vec<f64>> {
    let mut axes: Vec<Vec<f64>> = Vec::new();
    while axes.len() < count {
        let mut v: Vec<f64> = (0..dim).map(|_| normal(rng)).collect();
        for axis in &axes {
            let d: f64 = v.iter().zip(axis).map(|(a, b)| a * b).sum();
            for (x, a) in v.iter_mut().zip(axis) {
                *x -= d * a;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        axes.push(v.into_iter().map(|x| x / norm).collect());
    }
    axes
}

#[test]
fn pca_recovers_known_axes_and_explained_variance() {
    let (dim, rows) = (16, 20_000);
    let mut rng = Rng::new(42);
    let axes = orthonormal_axes(3, dim, &mut rng);
    let scales = [8.0, 4.0, 2.0];
    let noise = 0.1;
    let offset: Vec<f64> = (0..dim).map(|i| i as f64 - 5.0).collect();
    let mut data = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let z: Vec<f64> = scales.iter().map(|s| s * normal(&mut rng)).collect();
        for d in 0..dim {
            let signal: f64 = (0..3).map(|a| z[a] * axes[a][d]).sum();
            data.push((offset[d] + signal + noise * normal(&mut rng)) as f32);
        }
    }
    let model = pca::fit(&data, dim, 3, None);
    // Expected ratios: each axis's variance over the total (signal plus isotropic noise).
    let total: f64 = scales.iter().map(|s| s * s).sum::<f64>() + dim as f64 * noise * noise;
    for a in 0..3 {
        let component = &model.components[a * dim..(a + 1) * dim];
        let alignment: f64 = component.iter().zip(&axes[a]).map(|(x, y)| x * y).sum();
        assert!(alignment.abs() > 0.999, "axis {a}: |cos| {alignment}");
        let expected = (scales[a] * scales[a] + noise * noise) / total;
        let found = model.explained_variance_ratio[a];
        assert!(
            (found - expected).abs() < 0.02 * expected.max(0.05),
            "axis {a}: ratio {found}, expected {expected}"
        );
    }
    assert!(model.explained_variance_ratio[0] > model.explained_variance_ratio[1]);
    for (m, o) in model.mean.iter().zip(&offset) {
        assert!((m - o).abs() < 0.2, "mean {m} vs {o}");
    }
}

#[test]
fn pca_reduction_through_the_run_matches_an_independent_projection() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (dim, rows) = (8usize, 3000usize);
    let mut rng = Rng::new(7);
    let axes = orthonormal_axes(2, dim, &mut rng);
    let mut values = Vec::new();
    for _ in 0..rows {
        let (a, b) = (10.0 * normal(&mut rng), 3.0 * normal(&mut rng));
        for (x, y) in axes[0].iter().zip(&axes[1]) {
            values.push((a * x + b * y + 0.01 * normal(&mut rng)) as f32);
        }
    }
    let labels = vec![0; rows];
    let url = add_table(
        &run,
        &embedding_batch(&labels, values.clone(), dim as i32),
        None,
    );
    let report = run.reduce_embeddings_per_dataset(&pca_options()).unwrap();
    assert_eq!(report.tables, vec![(url.clone(), format!("{url}_pca"))]);
    let ratios = report.reducers[0]
        .explained_variance_ratio
        .clone()
        .expect("pca reports explained variance");
    assert_eq!(ratios.len(), 2);
    assert!((ratios[0] - 100.0 / 109.0).abs() < 0.02, "{ratios:?}");
    let reduced = column_values(&store, &format!("{url}_pca"), "embedding_pca");
    assert_eq!(reduced.len(), rows * 2);
    // The reference: the sample covariance's leading eigenvectors by power iteration with
    // deflation, computed here; they lie close to the known axes. Signs may differ.
    let mut mean = vec![0f64; dim];
    for row in values.chunks(dim) {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += f64::from(*x) / rows as f64;
        }
    }
    let mut cov = vec![0f64; dim * dim];
    for row in values.chunks(dim) {
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] += (f64::from(row[i]) - mean[i]) * (f64::from(row[j]) - mean[j])
                    / (rows - 1) as f64;
            }
        }
    }
    let mut reference_axes: Vec<Vec<f64>> = Vec::new();
    for known in axes.iter().take(2) {
        let mut v = known.clone();
        let mut lambda = 0.0;
        for _ in 0..2000 {
            let mut w: Vec<f64> = (0..dim)
                .map(|i| (0..dim).map(|j| cov[i * dim + j] * v[j]).sum())
                .collect();
            lambda = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            for x in &mut w {
                *x /= lambda;
            }
            v = w;
        }
        let alignment: f64 = v.iter().zip(known).map(|(a, b)| a * b).sum();
        assert!(
            alignment.abs() > 0.999,
            "sample axis far from the known one: {alignment}"
        );
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] -= lambda * v[i] * v[j];
            }
        }
        reference_axes.push(v);
    }
    for (a, axis) in reference_axes.iter().enumerate() {
        let reference: Vec<f64> = values
            .chunks(dim)
            .map(|row| {
                row.iter()
                    .zip(&mean)
                    .zip(axis)
                    .map(|((x, m), axis)| (f64::from(*x) - m) * axis)
                    .sum()
            })
            .collect();
        let sign = if f64::from(reduced[a]) * reference[0] < 0.0 {
            -1.0
        } else {
            1.0
        };
        for (row, expected) in reference.iter().enumerate() {
            let found = f64::from(reduced[row * 2 + a]) * sign;
            assert!(
                (found - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                "row {row} axis {a}: {found} vs {expected}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// UMAP

#[test]
fn umap_keeps_cluster_structure_and_is_deterministic() {
    let (dim, k) = (64usize, 5);
    let (labels, values) = clusters(10, 200, dim, 11);
    let high = knn_accuracy(&values, dim, &labels, k);
    let reduce = |seed: u64| {
        let (dir, path) = temp_store();
        let store = Store::create(&path).unwrap();
        let run = store.init("p", Some("r")).unwrap();
        let url = add_table(
            &run,
            &embedding_batch(&labels, values.clone(), dim as i32),
            None,
        );
        let report = run
            .reduce_embeddings_per_dataset(&ReduceOptions {
                seed,
                ..ReduceOptions::default()
            })
            .unwrap();
        assert_eq!(report.tables[0].1, format!("{url}_umap"));
        let out = column_values(&store, &report.tables[0].1, "embedding_umap");
        drop(dir);
        out
    };
    let started = std::time::Instant::now();
    let first = reduce(1);
    let elapsed = started.elapsed();
    assert_eq!(first.len(), labels.len() * 2);
    assert!(first.iter().all(|x| x.is_finite()));
    let low = knn_accuracy(&first, 2, &labels, k);
    assert!(
        low >= 0.95 * high,
        "2-D kNN accuracy {low} against {high} in 64-D ({elapsed:?})"
    );
    assert_eq!(reduce(1), first, "same seed, same output");
    assert_ne!(reduce(2), first, "another seed, another layout");
}

#[test]
fn umap_fits_the_newest_table_and_applies_the_stored_model_to_the_older() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let input = input_table(&store, "inputs", 600);
    let dim = 16;
    let (labels, old_values) = clusters(4, 150, dim, 1);
    let (_, new_values) = clusters(4, 150, dim, 1);
    // Epoch 1 moves every point a little: the same clusters, other values.
    let new_values: Vec<f32> = new_values.iter().map(|x| x * 1.05 + 0.1).collect();
    let old = add_table(
        &run,
        &embedding_batch(&labels, old_values.clone(), dim as i32),
        Some(&input),
    );
    let new = add_table(
        &run,
        &embedding_batch(&labels, new_values.clone(), dim as i32),
        Some(&input),
    );
    let report = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            n_neighbors: 10,
            ..ReduceOptions::default()
        })
        .unwrap();
    assert_eq!(report.reducers.len(), 1);
    let summary = &report.reducers[0];
    assert_eq!(summary.fitted_on, new);
    assert_eq!(summary.foreign_table_url, input);
    assert!(summary.fitted_now);
    let stored = run.reducer(&summary.name).unwrap();
    assert_eq!(stored.fitted_on, new);
    assert_eq!(stored.column, "embedding");
    assert_eq!(run.reducers().unwrap(), vec![stored.clone()]);
    let runstore::reduce::Model::Umap(model) = &stored.model else {
        panic!("a umap model");
    };
    // The newest table's layout is the fit's; the older one is the stored model applied.
    assert_eq!(
        column_values(&store, &format!("{new}_umap"), "embedding_umap"),
        model.embedding
    );
    assert_eq!(
        column_values(&store, &format!("{old}_umap"), "embedding_umap"),
        stored.transform(&old_values).unwrap()
    );
    // The sources are kept (not deleted), so they stay listed, each before its reduction.
    assert_eq!(
        metrics_urls(&run),
        vec![
            old.clone(),
            format!("{old}_umap"),
            new.clone(),
            format!("{new}_umap")
        ]
    );
    // The applied rows land in their clusters of the fitted layout.
    let applied = column_values(&store, &format!("{old}_umap"), "embedding_umap");
    let mut correct = 0;
    for (row, label) in labels.iter().enumerate() {
        let point = &applied[row * 2..row * 2 + 2];
        let nearest = (0..labels.len())
            .min_by(|a, b| {
                let d = |j: &usize| {
                    let q = &model.embedding[j * 2..j * 2 + 2];
                    (point[0] - q[0]).powi(2) + (point[1] - q[1]).powi(2)
                };
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        correct += usize::from(labels[nearest] == *label);
    }
    assert!(
        correct as f64 >= 0.95 * labels.len() as f64,
        "{correct} of {}",
        labels.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Grouping, reuse, explicit application

#[test]
fn reduction_groups_tables_by_foreign_table() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let train = input_table(&store, "train", 200);
    let val = input_table(&store, "val", 100);
    let dim = 8i32;
    let (train_labels, train_values) = clusters(2, 100, dim as usize, 3);
    let (val_labels, val_values) = clusters(2, 50, dim as usize, 4);
    let t0 = add_table(
        &run,
        &embedding_batch(&train_labels, train_values.clone(), dim),
        Some(&train),
    );
    let v0 = add_table(
        &run,
        &embedding_batch(&val_labels, val_values.clone(), dim),
        Some(&val),
    );
    let t1 = add_table(
        &run,
        &embedding_batch(&train_labels, train_values.clone(), dim),
        Some(&train),
    );
    // A table with no embedding is left alone.
    let plain = run
        .add_metrics_columns(
            vec![(
                "loss".into(),
                Arc::new(Float32Array::from(vec![1.0, 2.0])) as ArrayRef,
            )],
            &MetricsOptions::default(),
        )
        .unwrap()[0]
        .url
        .clone();
    let report = run.reduce_embeddings_per_dataset(&pca_options()).unwrap();
    let mut fitted: Vec<(String, String)> = report
        .reducers
        .iter()
        .map(|r| (r.foreign_table_url.clone(), r.fitted_on.clone()))
        .collect();
    fitted.sort();
    assert_eq!(
        fitted,
        vec![(train.clone(), t1.clone()), (val.clone(), v0.clone())]
    );
    assert_eq!(
        report.tables,
        vec![
            (t0.clone(), format!("{t0}_pca")),
            (v0.clone(), format!("{v0}_pca")),
            (t1.clone(), format!("{t1}_pca")),
        ]
    );
    assert_eq!(
        metrics_urls(&run),
        vec![
            t0.clone(),
            format!("{t0}_pca"),
            v0.clone(),
            format!("{v0}_pca"),
            t1.clone(),
            format!("{t1}_pca"),
            plain.clone()
        ]
    );
    // The new tables keep the other columns and the foreign table; the embedding is gone.
    let info = store.table(&format!("{v0}_pca")).unwrap().info().unwrap();
    assert_eq!(info.foreign_table_url.as_deref(), Some(val.as_str()));
    assert_eq!(info.row_count, 100);
    assert_eq!(
        column_names(&store, &format!("{v0}_pca")),
        ["example_id", "label", "embedding_pca", "input_table_id"]
    );
    let field = info
        .schema
        .field_with_name("embedding_pca")
        .unwrap()
        .clone();
    assert_eq!(
        field.data_type(),
        &DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), 2)
    );
    assert_eq!(
        field
            .metadata()
            .get(runstore::reduce::REDUCED_FROM_KEY)
            .map(String::as_str),
        Some("embedding")
    );
    // Sources are kept (not deleted) but no longer attached.
    assert_eq!(store.table(&t0).unwrap().row_count().unwrap(), 200);
    // Each group's reducer projects its own tables: t0 and t1 hold the same rows.
    assert_eq!(
        column_values(&store, &format!("{t0}_pca"), "embedding_pca"),
        column_values(&store, &format!("{t1}_pca"), "embedding_pca")
    );
    // A second reduction finds nothing left to do with this method.
    let again = run.reduce_embeddings_per_dataset(&pca_options()).unwrap();
    assert!(again.tables.is_empty());
}

#[test]
fn reduction_by_foreign_table_applies_one_reducer_to_every_table() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let train = input_table(&store, "train", 100);
    let val = input_table(&store, "val", 100);
    let dim = 6i32;
    let (labels, train_values) = clusters(2, 50, dim as usize, 5);
    let (_, val_values) = clusters(2, 50, dim as usize, 6);
    add_table(
        &run,
        &embedding_batch(&labels, train_values, dim),
        Some(&train),
    );
    let v = add_table(
        &run,
        &embedding_batch(&labels, val_values.clone(), dim),
        Some(&val),
    );
    let report = run
        .reduce_embeddings_by_foreign_table_url(&train, &pca_options())
        .unwrap();
    assert_eq!(report.reducers.len(), 1);
    assert_eq!(report.tables.len(), 2);
    let stored = run.reducer(&report.reducers[0].name).unwrap();
    assert_eq!(stored.foreign_table_url, train);
    assert_eq!(
        column_values(&store, &format!("{v}_pca"), "embedding_pca"),
        stored.transform(&val_values).unwrap()
    );
    let missing = run
        .reduce_embeddings_by_foreign_table_url("p/tables/nothing", &pca_options())
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
}

#[test]
fn a_later_table_is_reduced_with_the_stored_reducer_and_one_can_be_applied_explicitly() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let input = input_table(&store, "inputs", 300);
    let dim = 12;
    let (labels, epoch0) = clusters(3, 100, dim, 8);
    let options = ReduceOptions {
        n_neighbors: 8,
        seed: 5,
        ..ReduceOptions::default()
    };
    add_table(
        &run,
        &embedding_batch(&labels, epoch0, dim as i32),
        Some(&input),
    );
    let first = run.reduce_embeddings_per_dataset(&options).unwrap();
    assert!(first.reducers[0].fitted_now);
    // The next epoch: reduced with the same projection, not refitted.
    let (_, epoch1) = clusters(3, 100, dim, 9);
    let next = add_table(
        &run,
        &embedding_batch(&labels, epoch1.clone(), dim as i32),
        Some(&input),
    );
    let second = run.reduce_embeddings_per_dataset(&options).unwrap();
    assert_eq!(second.tables, vec![(next.clone(), format!("{next}_umap"))]);
    assert!(!second.reducers[0].fitted_now);
    assert_eq!(second.reducers[0].name, first.reducers[0].name);
    let stored = run.reducer(&first.reducers[0].name).unwrap();
    let expected = stored.transform(&epoch1).unwrap();
    assert_eq!(
        column_values(&store, &format!("{next}_umap"), "embedding_umap"),
        expected
    );
    let (_, epoch2) = clusters(3, 100, dim, 10);
    let later = add_table(
        &run,
        &embedding_batch(&labels, epoch2.clone(), dim as i32),
        Some(&input),
    );
    // Explicitly: the stored reducer applied to one table of the store.
    let applied = run
        .apply_reducer(&stored.name, &later, &ReduceOptions::default())
        .unwrap();
    assert_eq!(
        applied.tables,
        vec![(later.clone(), format!("{later}_umap"))]
    );
    assert_eq!(
        column_values(&store, &format!("{later}_umap"), "embedding_umap"),
        stored.transform(&epoch2).unwrap()
    );
    let error = run
        .apply_reducer(
            "reducer-umap-0000000000000000",
            &later,
            &ReduceOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Deletion, shared segments, tails, retention

#[test]
fn delete_source_tables_removes_them_in_the_same_commit() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (labels, values) = clusters(2, 20, 4, 2);
    let a = add_table(&run, &embedding_batch(&labels, values.clone(), 4), None);
    let b = add_table(&run, &embedding_batch(&labels, values, 4), None);
    let report = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            delete_source_tables: true,
            ..pca_options()
        })
        .unwrap();
    assert_eq!(report.deleted, vec![a.clone(), b.clone()]);
    for url in [&a, &b] {
        assert!(matches!(store.table(url), Err(Error::NotFound { .. })));
    }
    assert_eq!(
        metrics_urls(&run),
        vec![format!("{a}_pca"), format!("{b}_pca")]
    );
    assert_eq!(
        column_names(&store, &format!("{a}_pca")),
        ["label", "embedding_pca"]
    );
    drop(run);
    drop(store);
    assert!(runstore::check(&path).unwrap().is_ok());
}

#[test]
fn kept_columns_share_segments_and_survive_vacuum_with_tail_rows_and_nulls() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (rows, wide) = (20_000usize, 64i32);
    let mut rng = Rng::new(3);
    let features: Vec<f32> = (0..rows * wide as usize)
        .map(|_| normal(&mut rng) as f32)
        .collect();
    let embedding: Vec<f64> = (0..rows * 4).map(|_| normal(&mut rng)).collect();
    let schema = Arc::new(Schema::new(vec![
        embedding_field("features", wide, DataType::Float32, false),
        Field::new(
            "embedding",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float64, false)), 4),
            true,
        ),
    ]));
    let validity: Vec<bool> = (0..rows).map(|i| i % 97 != 5).collect();
    let emb = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float64, false)),
        4,
        Arc::new(Float64Array::from(embedding.clone())),
        Some(validity.clone().into()),
    )
    .unwrap();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![list(features.clone(), wide), Arc::new(emb)],
    )
    .unwrap();
    let url = add_table(&run, &batch, None);
    // Ten more rows in the tail.
    store.append_to_table(&url, &batch.slice(0, 10)).unwrap();
    let before = store.info().unwrap().column_used_bytes;
    let report = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            columns: Some(vec!["embedding".into()]),
            retain_source_embedding_column: true,
            ..pca_options()
        })
        .unwrap();
    let grown = store.info().unwrap().column_used_bytes - before;
    // The 5 MiB features column is shared, not copied: the column bytes grow by the reduced
    // column, the reducer and the ten tail rows only.
    let copy_bytes = (rows * wide as usize * 4) as u64;
    assert!(
        grown < copy_bytes / 2,
        "grew {grown} bytes; a copy is {copy_bytes}"
    );
    let out = &report.tables[0].1;
    assert_eq!(
        column_names(&store, out),
        ["features", "embedding", "embedding_pca"]
    );
    let check_output = |store: &Store| {
        let table = store.table(out).unwrap();
        assert_eq!(table.row_count().unwrap(), rows as u64 + 10);
        let batches = table.scan().unwrap();
        let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
        let kept = all
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let kept_values = kept
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .unwrap();
        assert_eq!(&kept_values.values()[..features.len()], &features[..]);
        assert_eq!(
            &kept_values.values()[features.len()..],
            &features[..10 * wide as usize]
        );
        let reduced = all
            .column(2)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        for row in 0..rows + 10 {
            assert_eq!(reduced.is_valid(row), validity[row % rows], "row {row}");
        }
        // Tail rows repeat the first ten rows, so their projections match.
        for row in 0..10 {
            assert_eq!(
                reduced.value(row).to_data(),
                reduced.value(rows + row).to_data()
            );
        }
    };
    check_output(&store);
    // The source is still there too; vacuum copies the shared segments once and both read.
    assert_eq!(
        store.table(&url).unwrap().row_count().unwrap(),
        rows as u64 + 10
    );
    drop(run);
    drop(store);
    let vacuumed = Store::vacuum(&path).unwrap();
    let _ = vacuumed;
    let store = Store::open(&path).unwrap();
    check_output(&store);
    drop(store);
    assert!(runstore::check(&path).unwrap().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Status

#[test]
fn status_is_post_processing_during_and_completed_after() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    run.set_status_running().unwrap();
    let (labels, values) = clusters(2, 30, 4, 2);
    add_table(&run, &embedding_batch(&labels, values, 4), None);
    let seen: Arc<Mutex<Vec<(runstore::Progress, RunStatus)>>> = Arc::default();
    let observer = run.clone();
    let log = seen.clone();
    run.reduce_embeddings_per_dataset(&ReduceOptions {
        progress: Some(Arc::new(move |progress: &runstore::Progress| {
            let status = observer.status().unwrap();
            log.lock().unwrap().push((*progress, status));
        })),
        ..pca_options()
    })
    .unwrap();
    let seen = seen.lock().unwrap();
    for stage in [Stage::Read, Stage::Fit, Stage::Apply, Stage::Write] {
        assert!(
            seen.iter().any(|(p, _)| p.stage == stage),
            "no {stage:?} in {seen:?}"
        );
    }
    // Every report but the last (the commit done) sees POST_PROCESSING; the last, COMPLETED.
    let (last, before_last) = seen.split_last().expect("progress reports");
    assert!(before_last
        .iter()
        .all(|(_, status)| *status == RunStatus::PostProcessing));
    assert_eq!(last.0.stage, Stage::Write);
    assert_eq!(last.1, RunStatus::Completed);
    assert_eq!(run.status().unwrap(), RunStatus::Completed);
}

#[test]
fn a_failed_reduction_restores_the_status_and_writes_nothing() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    run.set_status_collecting().unwrap();
    let (labels, mut values) = clusters(2, 30, 4, 2);
    let good = add_table(&run, &embedding_batch(&labels, values.clone(), 4), None);
    values[17] = f32::NAN;
    let bad = add_table(&run, &embedding_batch(&labels, values, 4), None);
    let statuses: Arc<Mutex<Vec<RunStatus>>> = Arc::default();
    let observer = run.clone();
    let log = statuses.clone();
    let error = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            progress: Some(Arc::new(move |_: &runstore::Progress| {
                log.lock().unwrap().push(observer.status().unwrap());
            })),
            ..pca_options()
        })
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    assert!(error.to_string().contains("not finite"), "{error}");
    // It was POST_PROCESSING while it worked, and is COLLECTING again.
    assert!(statuses
        .lock()
        .unwrap()
        .contains(&RunStatus::PostProcessing));
    assert_eq!(run.status().unwrap(), RunStatus::Collecting);
    assert_eq!(metrics_urls(&run), vec![good.clone(), bad.clone()]);
    assert!(run.reducers().unwrap().is_empty());
    assert_eq!(store.tables(None).unwrap().len(), 2);

    // A column with the embedding role that is not a FixedSizeList: refused up front.
    let schema = Schema::new(vec![with_role(
        Field::new("embedding", DataType::Utf8, false),
        ColumnRole::Embedding,
    )]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(StringArray::from(vec!["a", "b"]))],
    )
    .unwrap();
    let run2 = store.init("p", Some("r2")).unwrap();
    run2.set_status_running().unwrap();
    add_table(&run2, &batch, None);
    let error = run2
        .reduce_embeddings_per_dataset(&pca_options())
        .unwrap_err();
    assert!(matches!(error, Error::SchemaMismatch { .. }), "{error}");
    assert_eq!(run2.status().unwrap(), RunStatus::Running);
    // Bad options are refused before anything changes.
    let error = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            n_components: 0,
            ..ReduceOptions::default()
        })
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    // An error after the status changed (the NaN again; the width would fail the fit next):
    // the status is restored.
    let error = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            n_components: 5,
            columns: Some(vec!["embedding".into()]),
            ..pca_options()
        })
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    assert_eq!(run.status().unwrap(), RunStatus::Collecting);
    assert_eq!(store.tables(None).unwrap().len(), 3);
}

#[test]
fn a_table_changed_during_the_reduction_fails_the_commit_and_nothing_is_written() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (labels, values) = clusters(2, 30, 4, 2);
    let batch = embedding_batch(&labels, values, 4);
    let url = add_table(&run, &batch, None);
    let used = store.info().unwrap().column_used_bytes;
    // Just before the commit, another writer appends to the source.
    let writer = store.clone();
    let (target, rows) = (url.clone(), batch.slice(0, 3));
    let error = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            progress: Some(Arc::new(move |progress: &runstore::Progress| {
                if progress.stage == Stage::Write && progress.done == 0 {
                    writer.append_to_table(&target, &rows).unwrap();
                }
            })),
            delete_source_tables: true,
            ..pca_options()
        })
        .unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    assert!(error.to_string().contains("changed"), "{error}");
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
    assert_eq!(metrics_urls(&run), vec![url.clone()]);
    assert_eq!(store.table(&url).unwrap().row_count().unwrap(), 63);
    assert!(matches!(
        store.table(&format!("{url}_pca")),
        Err(Error::NotFound { .. })
    ));
    assert!(run.reducers().unwrap().is_empty());
    // The three appended rows went to the tail (redb), so no column bytes were committed.
    assert_eq!(store.info().unwrap().column_used_bytes, used);
    // Run again, it succeeds and covers the appended rows.
    let report = run.reduce_embeddings_per_dataset(&pca_options()).unwrap();
    assert_eq!(
        store
            .table(&report.tables[0].1)
            .unwrap()
            .row_count()
            .unwrap(),
        63
    );
}

#[test]
fn a_read_only_store_refuses_to_reduce() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (labels, values) = clusters(2, 30, 4, 2);
    add_table(&run, &embedding_batch(&labels, values, 4), None);
    drop(run);
    drop(store);
    let store = Store::open_read_only(&path).unwrap();
    let run = store.run("p/runs/r").unwrap();
    let error = run
        .reduce_embeddings_per_dataset(&pca_options())
        .unwrap_err();
    assert!(matches!(error, Error::ReadOnly), "{error}");
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
}

// ---------------------------------------------------------------------------------------------
// CLI

#[test]
fn cli_reduce_end_to_end() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (labels, values) = clusters(3, 40, 8, 4);
    let url = add_table(&run, &embedding_batch(&labels, values, 8), None);
    run.set_status_running().unwrap();
    drop(run);
    drop(store);
    let path_text = path.to_str().unwrap();
    let out = stdout(&runstore(&[
        "reduce",
        path_text,
        "p/runs/r",
        "--method",
        "pca",
        "--components",
        "3",
        "--delete-source-tables",
    ]));
    assert_eq!(out, format!("{url} -> {url}_pca\n"));
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/r").unwrap();
    assert_eq!(run.status().unwrap(), RunStatus::Completed);
    assert!(matches!(store.table(&url), Err(Error::NotFound { .. })));
    assert_eq!(
        column_values(&store, &format!("{url}_pca"), "embedding_pca").len(),
        120 * 3
    );
    drop(run);
    drop(store);
    // UMAP with a seed; a bad method is a usage error.
    let (labels, values) = clusters(3, 40, 8, 5);
    let store = Store::open(&path).unwrap();
    let url2 = add_table(
        &store.run("p/runs/r").unwrap(),
        &embedding_batch(&labels, values, 8),
        None,
    );
    drop(store);
    let out = stdout(&runstore(&[
        "reduce",
        path_text,
        "p/runs/r",
        "--seed",
        "3",
        "--neighbors",
        "5",
    ]));
    assert_eq!(out, format!("{url2} -> {url2}_umap\n"));
    let bad = runstore(&["reduce", path_text, "p/runs/r", "--method", "tsne"]);
    assert_eq!(bad.status.code(), Some(2));
    let missing = runstore(&["reduce", path_text, "p/runs/nope"]);
    assert_eq!(missing.status.code(), Some(1));
}

/// A column named in `columns` that no table has is an error naming the run's columns; a kept
/// source stays listed before its reduction and is not reduced twice by the same method; a
/// reduction is reduced again only when named, under a name that says what it reduces.
#[test]
fn kept_sources_stay_listed_and_reductions_are_reduced_only_when_named() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (labels, values) = clusters(2, 20, 4, 3);
    let url = add_table(&run, &embedding_batch(&labels, values, 4), None);
    let error = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            columns: Some(vec!["embeding".into()]),
            ..pca_options()
        })
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { reason } if reason.contains("'embeding'")
            && reason.contains("label, embedding")
            && reason.contains("embeddings: embedding")),
        "{error}"
    );
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
    run.reduce_embeddings_per_dataset(&pca_options()).unwrap();
    let reduced = format!("{url}_pca");
    assert_eq!(metrics_urls(&run), vec![url.clone(), reduced.clone()]);
    assert!(run
        .reduce_embeddings_per_dataset(&pca_options())
        .unwrap()
        .tables
        .is_empty());
    // UMAP reduces the source's `embedding`, not the reduction `embedding_pca`.
    let umap = ReduceOptions {
        method: Method::Umap,
        n_neighbors: 5,
        ..ReduceOptions::default()
    };
    let report = run.reduce_embeddings_per_dataset(&umap).unwrap();
    assert_eq!(report.tables, vec![(url.clone(), format!("{url}_umap"))]);
    assert_eq!(
        column_names(&store, &format!("{url}_umap")),
        ["label", "embedding_umap"]
    );
    let report = run
        .reduce_embeddings_per_dataset(&ReduceOptions {
            columns: Some(vec!["embedding_pca".into()]),
            ..umap
        })
        .unwrap();
    assert_eq!(report.tables.len(), 1);
    assert!(column_names(&store, &report.tables[0].1).contains(&"embedding_pca_umap".to_string()));
}

/// A reduction that deleted its source frees the source's url; a later table that takes the
/// url is a new source, reduced as any other (it was skipped as "already reduced" once).
#[test]
fn a_new_table_at_a_reduced_and_deleted_tables_url_is_reduced() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    let (labels, values) = clusters(2, 20, 8, 7);
    let first = add_table(&run, &embedding_batch(&labels, values.clone(), 8), None);
    let deleting = ReduceOptions {
        delete_source_tables: true,
        ..pca_options()
    };
    let report = run.reduce_embeddings_per_dataset(&deleting).unwrap();
    assert_eq!(report.tables.len(), 1, "{report:?}");
    assert!(
        !metrics_urls(&run).contains(&first),
        "the source was deleted"
    );
    // the same url again, a new table
    let again = add_table(&run, &embedding_batch(&labels, values, 8), None);
    assert_eq!(again, first);
    let report = run.reduce_embeddings_per_dataset(&pca_options()).unwrap();
    let sources: Vec<&String> = report.tables.iter().map(|(source, _)| source).collect();
    assert_eq!(sources, vec![&again], "{report:?}");
    let reduced = &report.tables[0].1;
    assert_eq!(
        column_values(&store, reduced, "embedding_pca").len(),
        2 * 20 * 2
    );
}
