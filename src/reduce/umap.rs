//! UMAP (McInnes, Healy, Melville 2018), after umap-learn's defaults: euclidean distance, a
//! k-nearest-neighbour graph (exact below [`BRUTE_ROWS_MAX`] rows, otherwise random-projection
//! trees refined by NN-descent), the fuzzy simplicial set (smooth kNN distances, fuzzy union),
//! a PCA initialisation scaled to [0, 10], and the SGD layout with negative sampling.
//!
//! Applying a fitted model to new rows ([`UmapModel::transform`]) is umap-learn's `transform`:
//! each new row's neighbours among the training rows, their memberships, an initial position
//! at the weighted mean of the neighbours' positions, then the same SGD with the training
//! layout held fixed.
//!
//! Deterministic: every random choice comes from a splitmix64 stream seeded by the caller, the
//! graph and the layout are built single-threaded, and the parallel parts (exact neighbours,
//! the neighbour search of `transform`) compute each row independently.

use std::collections::HashSet;

use super::{pca, threads, Progress, ProgressFn, Stage};

/// At most this many rows get exact neighbours (all pairs: 4096^2 x 64 dims is about a
/// second); larger inputs use the approximate graph.
pub const BRUTE_ROWS_MAX: usize = 4096;
/// Random-projection trees that seed NN-descent and the neighbour search of `transform`.
const TREE_COUNT: usize = 8;
/// Rows in a leaf of a random-projection tree (at least `k + 1`).
const LEAF_ROWS: usize = 32;
/// NN-descent rounds at most; it usually stops on [`NN_DESCENT_DELTA`] after 4 to 8.
const NN_DESCENT_ROUNDS_MAX: usize = 12;
/// NN-descent stops when fewer than this fraction of the graph's entries changed in a round.
const NN_DESCENT_DELTA: f64 = 0.001;
/// Negative samples per positive sample (umap-learn's `negative_sample_rate`).
const NEGATIVE_SAMPLE_RATE: f64 = 5.0;
/// Repulsion weight (umap-learn's `repulsion_strength`).
const GAMMA: f32 = 1.0;
/// Per-coordinate gradient clip, as umap-learn.
const GRADIENT_CLIP: f32 = 4.0;
/// umap-learn's floor on a row's kernel width, as a fraction of its mean neighbour distance.
const MIN_K_DIST_SCALE: f64 = 1e-3;
/// Binary-search steps for a row's kernel width.
const SIGMA_SEARCH_STEPS: usize = 64;

/// UMAP's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UmapParams {
    /// Output dimensions.
    pub n_components: usize,
    /// Neighbours per row, the row itself included (umap-learn's convention).
    pub n_neighbors: usize,
    /// Smallest distance between embedded points.
    pub min_dist: f64,
    /// Seed of every random choice.
    pub seed: u64,
}

/// A fitted UMAP: the parameters, the curve, the training rows, their layout and their
/// neighbour graph (what `transform` needs).
#[derive(Clone, Debug, PartialEq)]
pub struct UmapModel {
    /// The parameters it was fitted with.
    pub params: UmapParams,
    /// Curve parameter `a` of `1 / (1 + a d^(2b))`.
    pub a: f64,
    /// Curve parameter `b`.
    pub b: f64,
    /// Input width.
    pub dim: usize,
    /// Training rows (`rows * dim`).
    pub data: Vec<f32>,
    /// Their layout (`rows * n_components`).
    pub embedding: Vec<f32>,
    /// Neighbours per training row in `knn` (the row itself excluded).
    pub knn_width: usize,
    /// Each training row's nearest other rows, nearest first (`rows * knn_width`).
    pub knn: Vec<u32>,
}

impl UmapModel {
    /// Number of training rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// Places new rows (row-major, `dim` wide) into the training layout.
    pub fn transform(&self, data: &[f32], progress: Option<&ProgressFn>) -> Vec<f32> {
        let dim = self.dim;
        let c = self.params.n_components;
        assert_eq!(data.len() % dim, 0);
        let rows = data.len() / dim;
        if rows == 0 {
            return Vec::new();
        }
        let k = self.params.n_neighbors.min(self.rows());
        let neighbours = self.neighbours_of(data, k);
        // Memberships with no local connectivity (umap-learn passes `local_connectivity - 1`).
        let target = (self.params.n_neighbors as f64).log2();
        let mut weights = vec![0f32; rows * k];
        for row in 0..rows {
            let dists: Vec<f64> = neighbours[row * k..(row + 1) * k]
                .iter()
                .map(|(d, _)| f64::from(*d).sqrt())
                .collect();
            let (rho, sigma) = smooth_knn(&dists, 0.0, target);
            for (w, d) in weights[row * k..(row + 1) * k].iter_mut().zip(&dists) {
                *w = membership(*d, rho, sigma);
            }
        }
        let n_epochs = if rows <= 10_000 { 100 } else { 30 };
        let mut embedding = vec![0f32; rows * c];
        for row in 0..rows {
            let slot = &mut embedding[row * c..(row + 1) * c];
            let total: f32 = weights[row * k..(row + 1) * k].iter().sum();
            for (w, (_, j)) in weights[row * k..(row + 1) * k]
                .iter()
                .zip(&neighbours[row * k..(row + 1) * k])
            {
                let share = if total > 0.0 {
                    w / total
                } else {
                    1.0 / k as f32
                };
                let at = *j as usize * c;
                for (s, e) in slot.iter_mut().zip(&self.embedding[at..at + c]) {
                    *s += share * e;
                }
            }
        }
        let max_weight = weights.iter().copied().fold(0f32, f32::max);
        let mut edges = Edges::default();
        for row in 0..rows {
            for (w, (_, j)) in weights[row * k..(row + 1) * k]
                .iter()
                .zip(&neighbours[row * k..(row + 1) * k])
            {
                if *w > 0.0 && *w >= max_weight / n_epochs as f32 {
                    edges.push(row as u32, *j, *w);
                }
            }
        }
        let mut rng = Rng::new(self.params.seed ^ 0x7472_616e_7366_6f72);
        optimize(
            &mut embedding,
            Some(&self.embedding),
            &edges,
            &Layout {
                c,
                a: self.a as f32,
                b: self.b as f32,
                n_epochs,
                initial_alpha: 0.25,
            },
            &mut rng,
            progress,
            Stage::Apply,
        );
        embedding
    }

    /// The `k` nearest training rows of each row of `data`, as (squared distance, index).
    fn neighbours_of(&self, data: &[f32], k: usize) -> Vec<(f32, u32)> {
        let dim = self.dim;
        let train = &self.data;
        let rows = data.len() / dim;
        let blocks: Vec<std::ops::Range<usize>> = (0..rows)
            .step_by(1024)
            .map(|s| s..(s + 1024).min(rows))
            .collect();
        let forest = if self.rows() > BRUTE_ROWS_MAX {
            let mut rng = Rng::new(self.params.seed);
            Some(
                (0..TREE_COUNT)
                    .map(|_| Tree::build(train, dim, LEAF_ROWS.max(k + 1), &mut rng))
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        let parts = threads::map(&blocks, |block| {
            let mut out = Vec::with_capacity(block.len() * k);
            for row in block.clone() {
                let query = &data[row * dim..(row + 1) * dim];
                let found = match &forest {
                    None => exact_neighbours(query, train, dim, k, None),
                    Some(forest) => self.search(query, forest, k),
                };
                out.extend(found);
            }
            out
        });
        parts.into_iter().flatten().collect()
    }

    /// Best-first search of the training graph from the leaves `query` falls into.
    fn search(&self, query: &[f32], forest: &[Tree], k: usize) -> Vec<(f32, u32)> {
        let dim = self.dim;
        let pool = (2 * k).max(32);
        let mut visited = HashSet::new();
        // Sorted by distance; the flag says whether the entry's neighbours were looked at.
        let mut candidates: Vec<(f32, u32, bool)> = Vec::with_capacity(pool + 1);
        let offer = |candidates: &mut Vec<(f32, u32, bool)>, j: u32| {
            let at = j as usize * dim;
            let d = dist_sq(query, &self.data[at..at + dim]);
            if candidates.len() >= pool && candidates.last().is_some_and(|last| d >= last.0) {
                return;
            }
            let position = candidates.partition_point(|c| (c.0, c.1) < (d, j));
            candidates.insert(position, (d, j, false));
            candidates.truncate(pool);
        };
        for tree in forest {
            for &j in tree.leaf_of(query, dim) {
                if visited.insert(j) {
                    offer(&mut candidates, j);
                }
            }
        }
        while let Some(next) = candidates.iter().position(|c| !c.2) {
            candidates[next].2 = true;
            let row = candidates[next].1 as usize;
            for &j in &self.knn[row * self.knn_width..(row + 1) * self.knn_width] {
                if visited.insert(j) {
                    offer(&mut candidates, j);
                }
            }
        }
        candidates.truncate(k);
        candidates.into_iter().map(|(d, j, _)| (d, j)).collect()
    }
}

/// Fits UMAP to `data` (row-major, `dim` wide, at least 2 rows, fewer than `u32::MAX`) and
/// returns the model and the training rows' layout.
pub fn fit(
    data: &[f32],
    dim: usize,
    params: UmapParams,
    progress: Option<&ProgressFn>,
) -> UmapModel {
    assert!(dim > 0 && data.len().is_multiple_of(dim));
    let rows = data.len() / dim;
    assert!(rows >= 2 && rows < u32::MAX as usize);
    assert!(params.n_neighbors >= 2);
    let c = params.n_components;
    let k = (params.n_neighbors - 1).min(rows - 1);
    let mut rng = Rng::new(params.seed);
    let graph = if rows <= BRUTE_ROWS_MAX {
        let ranges: Vec<std::ops::Range<usize>> = (0..rows)
            .step_by(256)
            .map(|s| s..(s + 256).min(rows))
            .collect();
        let parts = threads::map(&ranges, |range| {
            let mut out = Vec::with_capacity(range.len() * k);
            for row in range.clone() {
                out.extend(exact_neighbours(
                    &data[row * dim..(row + 1) * dim],
                    data,
                    dim,
                    k,
                    Some(row as u32),
                ));
            }
            out
        });
        let pairs: Vec<(f32, u32)> = parts.into_iter().flatten().collect();
        Graph {
            k,
            dist: pairs.iter().map(|p| p.0).collect(),
            index: pairs.iter().map(|p| p.1).collect(),
            new: Vec::new(),
        }
    } else {
        nn_descent(data, dim, k, &mut rng, progress)
    };

    // The fuzzy simplicial set: directed memberships, then the fuzzy union a + b - ab.
    let target = (params.n_neighbors as f64).log2();
    let mut directed: Vec<(u32, u32, f32)> = Vec::with_capacity(rows * k * 2);
    for row in 0..rows {
        let dists: Vec<f64> = graph.dist[row * k..(row + 1) * k]
            .iter()
            .map(|d| f64::from(*d).sqrt())
            .collect();
        let (rho, sigma) = smooth_knn(&dists, 1.0, target);
        for (d, j) in dists.iter().zip(&graph.index[row * k..(row + 1) * k]) {
            let w = membership(*d, rho, sigma);
            let (low, high) = if (row as u32) < *j {
                (row as u32, *j)
            } else {
                (*j, row as u32)
            };
            // Tag which direction this membership is, so the union sees both.
            directed.push((low, high, if (row as u32) < *j { w } else { -w }));
        }
    }
    directed.sort_by_key(|x| (x.0, x.1));
    let mut edges = Edges::default();
    let mut undirected: Vec<(u32, u32, f32)> = Vec::with_capacity(directed.len());
    let mut at = 0;
    while at < directed.len() {
        let (i, j) = (directed[at].0, directed[at].1);
        let (mut forward, mut backward) = (0f32, 0f32);
        while at < directed.len() && directed[at].0 == i && directed[at].1 == j {
            let w = directed[at].2;
            if w.is_sign_negative() {
                backward = backward.max(-w);
            } else {
                forward = forward.max(w);
            }
            at += 1;
        }
        let w = forward + backward - forward * backward;
        if w > 0.0 {
            undirected.push((i, j, w));
        }
    }
    let n_epochs = if rows <= 10_000 { 500 } else { 200 };
    let max_weight = undirected.iter().map(|e| e.2).fold(0f32, f32::max);
    for &(i, j, w) in &undirected {
        if w >= max_weight / n_epochs as f32 {
            edges.push(i, j, w);
            edges.push(j, i, w);
        }
    }

    let mut embedding = initial_layout(data, dim, c, &mut rng);
    let (a, b) = find_ab(params.min_dist);
    optimize(
        &mut embedding,
        None,
        &edges,
        &Layout {
            c,
            a: a as f32,
            b: b as f32,
            n_epochs,
            initial_alpha: 1.0,
        },
        &mut rng,
        progress,
        Stage::Fit,
    );
    UmapModel {
        params,
        a,
        b,
        dim,
        data: data.to_vec(),
        embedding,
        knn_width: k,
        knn: graph.index,
    }
}

/// The PCA projection scaled to [0, 10] per axis with a little noise (umap-learn's `pca` init
/// followed by its normalisation).
fn initial_layout(data: &[f32], dim: usize, c: usize, rng: &mut Rng) -> Vec<f32> {
    let rows = data.len() / dim;
    let mut embedding = if c <= dim {
        pca::fit(data, dim, c, None).transform(data)
    } else {
        (0..rows * c).map(|_| rng.unit() * 20.0 - 10.0).collect()
    };
    for axis in 0..c {
        let (mut low, mut high) = (f32::INFINITY, f32::NEG_INFINITY);
        for row in 0..rows {
            let x = embedding[row * c + axis];
            low = low.min(x);
            high = high.max(x);
        }
        let span = if high > low { high - low } else { 1.0 };
        for row in 0..rows {
            let x = &mut embedding[row * c + axis];
            *x = 10.0 * (*x - low) / span + (rng.unit() - 0.5) * 1e-4;
        }
    }
    embedding
}

/// umap-learn's `smooth_knn_dist` for one row: `rho` (distance to the nearest neighbour, when
/// local connectivity is 1) and the kernel width whose memberships sum to `target`.
fn smooth_knn(dists: &[f64], local_connectivity: f64, target: f64) -> (f64, f64) {
    let rho = if local_connectivity >= 1.0 {
        dists.iter().copied().find(|d| *d > 0.0).unwrap_or(0.0)
    } else {
        0.0
    };
    let (mut low, mut high, mut mid) = (0f64, f64::INFINITY, 1f64);
    for _ in 0..SIGMA_SEARCH_STEPS {
        let sum: f64 = dists
            .iter()
            .map(|d| {
                let d = d - rho;
                if d > 0.0 {
                    (-d / mid).exp()
                } else {
                    1.0
                }
            })
            .sum();
        if (sum - target).abs() < 1e-5 {
            break;
        }
        if sum > target {
            high = mid;
            mid = (low + high) / 2.0;
        } else {
            low = mid;
            mid = if high.is_infinite() {
                mid * 2.0
            } else {
                (low + high) / 2.0
            };
        }
    }
    let mean = dists.iter().sum::<f64>() / dists.len().max(1) as f64;
    let sigma = mid.max(MIN_K_DIST_SCALE * mean);
    (rho, sigma)
}

fn membership(d: f64, rho: f64, sigma: f64) -> f32 {
    if d - rho <= 0.0 || sigma == 0.0 {
        1.0
    } else {
        (-(d - rho) / sigma).exp() as f32
    }
}

/// Fits `1 / (1 + a x^(2b))` to umap-learn's target curve for `min_dist` (spread 1) by
/// Levenberg-Marquardt over 300 points of [0, 3].
pub fn find_ab(min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|x| {
            if *x < min_dist {
                1.0
            } else {
                (-(x - min_dist)).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(x, y)| {
                let f = 1.0 / (1.0 + a * x.powf(2.0 * b));
                (f - y) * (f - y)
            })
            .sum()
    };
    let (mut a, mut b, mut lambda) = (1.0f64, 1.0f64, 1e-3f64);
    let mut current = cost(a, b);
    for _ in 0..500 {
        // Normal equations J^T J d = -J^T r.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for (x, y) in xs.iter().zip(&ys) {
            if *x <= 0.0 {
                continue;
            }
            let p = x.powf(2.0 * b);
            let denominator = 1.0 + a * p;
            let f = 1.0 / denominator;
            let r = f - y;
            let da = -p / (denominator * denominator);
            let db = -a * p * 2.0 * x.ln() / (denominator * denominator);
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let (maa, mbb) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
        let det = maa * mbb - jab * jab;
        if det.abs() < 1e-300 {
            break;
        }
        let step_a = -(mbb * ga - jab * gb) / det;
        let step_b = -(maa * gb - jab * ga) / det;
        let (next_a, next_b) = (a + step_a, b + step_b);
        let next = if next_a > 0.0 && next_b > 0.0 {
            cost(next_a, next_b)
        } else {
            f64::INFINITY
        };
        if next < current {
            let converged = (current - next) < 1e-14;
            a = next_a;
            b = next_b;
            current = next;
            lambda = (lambda / 10.0).max(1e-12);
            if converged {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (a, b)
}

/// Directed edges of the layout graph and how often each is sampled.
#[derive(Default)]
struct Edges {
    head: Vec<u32>,
    tail: Vec<u32>,
    weight: Vec<f32>,
}

impl Edges {
    fn push(&mut self, head: u32, tail: u32, weight: f32) {
        self.head.push(head);
        self.tail.push(tail);
        self.weight.push(weight);
    }
}

struct Layout {
    c: usize,
    a: f32,
    b: f32,
    n_epochs: usize,
    initial_alpha: f32,
}

/// umap-learn's `optimize_layout_euclidean`. With `fixed`, tails (and negative samples) are
/// rows of `fixed`, which does not move; otherwise both ends are rows of `embedding`.
fn optimize(
    embedding: &mut [f32],
    fixed: Option<&[f32]>,
    edges: &Edges,
    layout: &Layout,
    rng: &mut Rng,
    progress: Option<&ProgressFn>,
    stage: Stage,
) {
    let c = layout.c;
    let (a, b) = (layout.a, layout.b);
    let max_weight = edges.weight.iter().copied().fold(0f32, f32::max);
    if max_weight <= 0.0 {
        return;
    }
    let per_sample: Vec<f64> = edges
        .weight
        .iter()
        .map(|w| f64::from(max_weight) / f64::from(*w))
        .collect();
    let per_negative: Vec<f64> = per_sample
        .iter()
        .map(|e| e / NEGATIVE_SAMPLE_RATE)
        .collect();
    let mut next_sample = per_sample.clone();
    let mut next_negative = per_negative.clone();
    let tail_rows = fixed.map_or(embedding.len(), <[f32]>::len) / c;
    let mut current = vec![0f32; c];
    let mut other = vec![0f32; c];
    let report_every = (layout.n_epochs / 50).max(1);
    for epoch in 0..layout.n_epochs {
        let alpha = layout.initial_alpha * (1.0 - epoch as f32 / layout.n_epochs as f32);
        let n = epoch as f64;
        for edge in 0..edges.head.len() {
            if next_sample[edge] > n {
                continue;
            }
            let j = edges.head[edge] as usize;
            let k = edges.tail[edge] as usize;
            current.copy_from_slice(&embedding[j * c..(j + 1) * c]);
            match fixed {
                Some(fixed) => other.copy_from_slice(&fixed[k * c..(k + 1) * c]),
                None => other.copy_from_slice(&embedding[k * c..(k + 1) * c]),
            }
            let d2 = dist_sq(&current, &other);
            let coefficient = if d2 > 0.0 {
                // d2^(b-1) as d2^b / d2: one powf instead of two.
                let d2_b = d2.powf(b);
                -2.0 * a * b * (d2_b / d2) / (a * d2_b + 1.0)
            } else {
                0.0
            };
            for axis in 0..c {
                let grad = clip(coefficient * (current[axis] - other[axis])) * alpha;
                current[axis] += grad;
                other[axis] -= grad;
            }
            if fixed.is_none() {
                embedding[k * c..(k + 1) * c].copy_from_slice(&other);
            }
            next_sample[edge] += per_sample[edge];
            let negatives = ((n - next_negative[edge]) / per_negative[edge]).max(0.0) as usize;
            for _ in 0..negatives {
                let k = rng.below(tail_rows);
                let other = match fixed {
                    Some(fixed) => &fixed[k * c..(k + 1) * c],
                    None if k == j => continue,
                    None => &embedding[k * c..(k + 1) * c],
                };
                let d2 = dist_sq(&current, other);
                if d2 <= 0.0 {
                    continue;
                }
                let coefficient = 2.0 * GAMMA * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0));
                for axis in 0..c {
                    current[axis] += clip(coefficient * (current[axis] - other[axis])) * alpha;
                }
            }
            next_negative[edge] += negatives as f64 * per_negative[edge];
            embedding[j * c..(j + 1) * c].copy_from_slice(&current);
        }
        if let Some(progress) = progress {
            if (epoch + 1) % report_every == 0 || epoch + 1 == layout.n_epochs {
                progress(&Progress {
                    stage,
                    done: epoch as u64 + 1,
                    total: layout.n_epochs as u64,
                });
            }
        }
    }
}

fn clip(x: f32) -> f32 {
    x.clamp(-GRADIENT_CLIP, GRADIENT_CLIP)
}

/// Squared euclidean distance.
pub(crate) fn dist_sq(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks_a = a.chunks_exact(8);
    let mut chunks_b = b.chunks_exact(8);
    for (x, y) in (&mut chunks_a).zip(&mut chunks_b) {
        for lane in 0..8 {
            let d = x[lane] - y[lane];
            lanes[lane] += d * d;
        }
    }
    let mut sum: f32 = lanes.iter().sum();
    for (x, y) in chunks_a.remainder().iter().zip(chunks_b.remainder()) {
        sum += (x - y) * (x - y);
    }
    sum
}

/// The `k` nearest rows of `data` to `query` (skipping `skip`), as (squared distance, index),
/// nearest first, ties by index.
fn exact_neighbours(
    query: &[f32],
    data: &[f32],
    dim: usize,
    k: usize,
    skip: Option<u32>,
) -> Vec<(f32, u32)> {
    let mut all: Vec<(f32, u32)> = data
        .chunks_exact(dim)
        .enumerate()
        .filter(|(j, _)| Some(*j as u32) != skip)
        .map(|(j, row)| (dist_sq(query, row), j as u32))
        .collect();
    let order = |x: &(f32, u32), y: &(f32, u32)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
    if all.len() > k {
        all.select_nth_unstable_by(k, order);
        all.truncate(k);
    }
    all.sort_by(order);
    all
}

/// A k-nearest-neighbour graph: row `i`'s neighbours at `i*k..(i+1)*k`, nearest first.
struct Graph {
    k: usize,
    index: Vec<u32>,
    dist: Vec<f32>,
    /// Whether the entry arrived since the row's last local join (NN-descent only).
    new: Vec<bool>,
}

impl Graph {
    fn empty(rows: usize, k: usize) -> Graph {
        Graph {
            k,
            index: vec![u32::MAX; rows * k],
            dist: vec![f32::INFINITY; rows * k],
            new: vec![false; rows * k],
        }
    }

    /// Offers `j` at squared distance `d` as a neighbour of `i`; true if it was taken.
    fn push(&mut self, i: usize, j: u32, d: f32) -> bool {
        let k = self.k;
        let start = i * k;
        if i == j as usize || d >= self.dist[start + k - 1] {
            return false;
        }
        if self.index[start..start + k].contains(&j) {
            return false;
        }
        let mut p = k - 1;
        while p > 0 && self.dist[start + p - 1] > d {
            self.dist[start + p] = self.dist[start + p - 1];
            self.index[start + p] = self.index[start + p - 1];
            self.new[start + p] = self.new[start + p - 1];
            p -= 1;
        }
        self.dist[start + p] = d;
        self.index[start + p] = j;
        self.new[start + p] = true;
        true
    }
}

/// NN-descent (Dong, Charikar, Li 2011) seeded by random-projection trees.
fn nn_descent(
    data: &[f32],
    dim: usize,
    k: usize,
    rng: &mut Rng,
    progress: Option<&ProgressFn>,
) -> Graph {
    let rows = data.len() / dim;
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let mut graph = Graph::empty(rows, k);
    let report = |done: usize| {
        if let Some(progress) = progress {
            progress(&Progress {
                stage: Stage::Neighbors,
                done: done as u64,
                total: (TREE_COUNT + NN_DESCENT_ROUNDS_MAX) as u64,
            });
        }
    };
    for tree_number in 0..TREE_COUNT {
        let tree = Tree::build(data, dim, LEAF_ROWS.max(k + 1), rng);
        for leaf in tree.leaves() {
            for (x, &p) in leaf.iter().enumerate() {
                for &q in &leaf[x + 1..] {
                    let d = dist_sq(row(p as usize), row(q as usize));
                    graph.push(p as usize, q, d);
                    graph.push(q as usize, p, d);
                }
            }
        }
        report(tree_number + 1);
    }
    // Rows a tree left short (possible only with tiny leaves) get random neighbours.
    for i in 0..rows {
        while graph.index[i * k + k - 1] == u32::MAX {
            let j = rng.below(rows) as u32;
            let d = dist_sq(row(i), row(j as usize));
            graph.push(i, j, d);
        }
    }
    let max_candidates = k.clamp(8, 60);
    for round in 0..NN_DESCENT_ROUNDS_MAX {
        let mut new_candidates: Vec<Vec<u32>> = vec![Vec::new(); rows];
        let mut old_candidates: Vec<Vec<u32>> = vec![Vec::new(); rows];
        for i in 0..rows {
            for s in 0..k {
                let j = graph.index[i * k + s];
                let list = if graph.new[i * k + s] {
                    &mut new_candidates
                } else {
                    &mut old_candidates
                };
                list[i].push(j);
                list[j as usize].push(i as u32);
                graph.new[i * k + s] = false;
            }
        }
        for list in new_candidates.iter_mut().chain(old_candidates.iter_mut()) {
            list.sort_unstable();
            list.dedup();
            if list.len() > max_candidates {
                rng.shuffle(list);
                list.truncate(max_candidates);
            }
        }
        let mut updates = 0usize;
        for i in 0..rows {
            let new = &new_candidates[i];
            let old = &old_candidates[i];
            for (x, &p) in new.iter().enumerate() {
                for &q in new[x + 1..].iter().chain(old.iter()) {
                    if p == q {
                        continue;
                    }
                    let d = dist_sq(row(p as usize), row(q as usize));
                    updates += usize::from(graph.push(p as usize, q, d));
                    updates += usize::from(graph.push(q as usize, p, d));
                }
            }
        }
        if (updates as f64) <= NN_DESCENT_DELTA * (rows * k) as f64 {
            break;
        }
        report(TREE_COUNT + round + 1);
    }
    report(TREE_COUNT + NN_DESCENT_ROUNDS_MAX);
    graph
}

/// A random-projection tree: each split is the hyperplane halfway between two random rows.
struct Tree {
    nodes: Vec<Node>,
    order: Vec<u32>,
}

enum Node {
    Split {
        normal: Vec<f32>,
        offset: f32,
        left: usize,
        right: usize,
    },
    Leaf {
        start: usize,
        end: usize,
    },
}

impl Tree {
    fn build(data: &[f32], dim: usize, leaf_rows: usize, rng: &mut Rng) -> Tree {
        let rows = data.len() / dim;
        let mut order: Vec<u32> = (0..rows as u32).collect();
        let mut nodes = vec![Node::Leaf {
            start: 0,
            end: rows,
        }];
        let mut work = vec![(0usize, 0usize, rows)];
        let row = |i: u32| &data[i as usize * dim..(i as usize + 1) * dim];
        while let Some((node, start, end)) = work.pop() {
            if end - start <= leaf_rows {
                continue;
            }
            let span = end - start;
            let first = order[start + rng.below(span)];
            let mut second = order[start + rng.below(span)];
            for _ in 0..8 {
                if second != first {
                    break;
                }
                second = order[start + rng.below(span)];
            }
            let (x, y) = (row(first), row(second));
            let normal: Vec<f32> = x.iter().zip(y).map(|(a, b)| a - b).collect();
            let offset: f32 = normal
                .iter()
                .zip(x.iter().zip(y))
                .map(|(n, (a, b))| n * (a + b) / 2.0)
                .sum();
            // Partition: left side first.
            let slice = &mut order[start..end];
            let mut sides: Vec<bool> = Vec::with_capacity(span);
            for &i in slice.iter() {
                let margin = dot(&normal, row(i)) - offset;
                sides.push(if margin == 0.0 {
                    rng.below(2) == 0
                } else {
                    margin > 0.0
                });
            }
            let mut left_rows: Vec<u32> = Vec::with_capacity(span);
            let mut right_rows: Vec<u32> = Vec::with_capacity(span);
            for (&i, &left) in slice.iter().zip(&sides) {
                if left {
                    left_rows.push(i);
                } else {
                    right_rows.push(i);
                }
            }
            let (normal, offset, middle) = if left_rows.is_empty() || right_rows.is_empty() {
                // Every row on one side (duplicates): split in half; a query follows the left.
                (vec![0f32; dim], 0f32, start + span / 2)
            } else {
                let middle = start + left_rows.len();
                left_rows.extend_from_slice(&right_rows);
                slice.copy_from_slice(&left_rows);
                (normal, offset, middle)
            };
            let left = nodes.len();
            nodes.push(Node::Leaf { start, end: middle });
            let right = nodes.len();
            nodes.push(Node::Leaf { start: middle, end });
            nodes[node] = Node::Split {
                normal,
                offset,
                left,
                right,
            };
            work.push((left, start, middle));
            work.push((right, middle, end));
        }
        Tree { nodes, order }
    }

    fn leaves(&self) -> impl Iterator<Item = &[u32]> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Leaf { start, end } => Some(&self.order[*start..*end]),
            Node::Split { .. } => None,
        })
    }

    fn leaf_of(&self, query: &[f32], _dim: usize) -> &[u32] {
        let mut node = 0;
        loop {
            match &self.nodes[node] {
                Node::Leaf { start, end } => return &self.order[*start..*end],
                Node::Split {
                    normal,
                    offset,
                    left,
                    right,
                } => {
                    node = if dot(normal, query) - offset >= 0.0 {
                        *left
                    } else {
                        *right
                    };
                }
            }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// splitmix64: small, fast, and the same stream for the same seed on every platform.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform below `n` (> 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_ab_matches_umap_learn() {
        // umap-learn's find_ab_params(1.0, 0.1) = (1.5769, 0.8951).
        let (a, b) = find_ab(0.1);
        assert!((a - 1.577).abs() < 0.01, "{a}");
        assert!((b - 0.895).abs() < 0.01, "{b}");
        // min_dist 0.5: (0.5830, 1.3341).
        let (a, b) = find_ab(0.5);
        assert!((a - 0.583).abs() < 0.01, "{a}");
        assert!((b - 1.334).abs() < 0.01, "{b}");
    }

    #[test]
    fn smooth_knn_hits_its_target() {
        let dists = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0];
        let target = 7f64.log2();
        let (rho, sigma) = smooth_knn(&dists, 1.0, target);
        assert_eq!(rho, 1.0);
        let sum: f64 = dists
            .iter()
            .map(|d| f64::from(membership(*d, rho, sigma)))
            .sum();
        assert!((sum - target).abs() < 1e-3, "{sum}");
    }

    /// Random points in `dim` dimensions.
    fn points(rows: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..rows * dim).map(|_| rng.unit()).collect()
    }

    #[test]
    fn nn_descent_recalls_most_true_neighbours() {
        let (rows, dim, k) = (3000, 8, 10);
        let data = points(rows, dim, 7);
        let graph = nn_descent(&data, dim, k, &mut Rng::new(1), None);
        let mut hits = 0;
        for i in 0..rows {
            let exact =
                exact_neighbours(&data[i * dim..(i + 1) * dim], &data, dim, k, Some(i as u32));
            for (_, j) in exact {
                hits += usize::from(graph.index[i * k..(i + 1) * k].contains(&j));
            }
        }
        let recall = hits as f64 / (rows * k) as f64;
        assert!(recall > 0.95, "recall {recall}");
    }

    #[test]
    fn transform_search_finds_true_neighbours() {
        let (rows, dim) = (BRUTE_ROWS_MAX + 1000, 8);
        let data = points(rows, dim, 3);
        let mut rng = Rng::new(5);
        let graph = nn_descent(&data, dim, 14, &mut rng, None);
        let model = UmapModel {
            params: UmapParams {
                n_components: 2,
                n_neighbors: 15,
                min_dist: 0.1,
                seed: 9,
            },
            a: 1.0,
            b: 1.0,
            dim,
            data: data.clone(),
            embedding: vec![0.0; rows * 2],
            knn_width: 14,
            knn: graph.index,
        };
        let queries = points(200, dim, 11);
        let found = model.neighbours_of(&queries, 15);
        let mut hits = 0;
        for q in 0..200 {
            let exact = exact_neighbours(&queries[q * dim..(q + 1) * dim], &data, dim, 15, None);
            for (_, j) in exact {
                hits += usize::from(found[q * 15..(q + 1) * 15].iter().any(|f| f.1 == j));
            }
        }
        let recall = hits as f64 / (200 * 15) as f64;
        assert!(recall > 0.95, "recall {recall}");
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut rng = Rng::new(0);
        for n in 1..100 {
            assert!(rng.below(n) < n);
        }
        let u = rng.unit();
        assert!((0.0..1.0).contains(&u));
    }
}
