//! Exact PCA: the mean and the covariance matrix in f64, a cyclic Jacobi eigen decomposition
//! of the (symmetric) covariance, and the projection onto the leading eigenvectors.
//!
//! Deterministic: rows are summed in fixed blocks combined in block order whatever the number
//! of threads, Jacobi sweeps in a fixed order, and each axis's sign is fixed (its largest
//! component is positive), so the same data always gives the same bytes.

use super::{threads, Progress, ProgressFn, Stage};

/// Rows summed per block; partial sums are combined in block order, so the result does not
/// depend on how many threads ran.
const BLOCK_ROWS: usize = 16 * 1024;
/// Jacobi sweeps before giving up on convergence; cyclic Jacobi converges quadratically, so a
/// symmetric matrix of any size this crate accepts needs fewer than 20.
const JACOBI_SWEEPS_MAX: usize = 64;

/// A fitted PCA: the mean, the leading axes and how much variance each explains.
#[derive(Clone, Debug, PartialEq)]
pub struct PcaModel {
    /// Input width.
    pub dim: usize,
    /// The mean of the training rows (`dim` values).
    pub mean: Vec<f64>,
    /// The axes, one after the other (`n_components * dim` values), by decreasing variance.
    pub components: Vec<f64>,
    /// Variance along each axis divided by the total variance.
    pub explained_variance_ratio: Vec<f64>,
}

impl PcaModel {
    /// Number of output dimensions.
    pub fn n_components(&self) -> usize {
        self.explained_variance_ratio.len()
    }

    /// Projects `rows` (row-major, `dim` wide) onto the axes: `n_components` values a row.
    pub fn transform(&self, data: &[f32]) -> Vec<f32> {
        assert_eq!(data.len() % self.dim.max(1), 0);
        let c = self.n_components();
        let mut out = vec![0f32; data.len() / self.dim.max(1) * c];
        let rows_out = out.chunks_mut(BLOCK_ROWS * c);
        let rows_in = data.chunks(BLOCK_ROWS * self.dim);
        let jobs: Vec<(&[f32], &mut [f32])> = rows_in.zip(rows_out).collect();
        threads::for_each(jobs, |(input, output)| {
            let mut centred = vec![0f64; self.dim];
            for (row, projected) in input.chunks_exact(self.dim).zip(output.chunks_exact_mut(c)) {
                for ((x, m), slot) in row.iter().zip(&self.mean).zip(&mut centred) {
                    *slot = f64::from(*x) - m;
                }
                for (axis, value) in self.components.chunks_exact(self.dim).zip(projected) {
                    *value = dot(axis, &centred) as f32;
                }
            }
        });
        out
    }
}

/// Fits `n_components` axes to `data` (row-major, `dim` wide, at least one row).
pub fn fit(
    data: &[f32],
    dim: usize,
    n_components: usize,
    progress: Option<&ProgressFn>,
) -> PcaModel {
    assert!(dim > 0);
    assert!(n_components > 0 && n_components <= dim);
    assert!(!data.is_empty() && data.len().is_multiple_of(dim));
    let rows = data.len() / dim;
    let report = |done, total| {
        if let Some(progress) = progress {
            progress(&Progress {
                stage: Stage::Fit,
                done,
                total,
            });
        }
    };
    report(0, 3);
    // Mean, then covariance around it (two passes: one pass of raw moments loses precision
    // when the mean is large next to the spread).
    let blocks: Vec<&[f32]> = data.chunks(BLOCK_ROWS * dim).collect();
    let sums = threads::map(&blocks, |block| {
        let mut sum = vec![0f64; dim];
        for row in block.chunks_exact(dim) {
            for (s, x) in sum.iter_mut().zip(row) {
                *s += f64::from(*x);
            }
        }
        sum
    });
    let mut mean = vec![0f64; dim];
    for sum in &sums {
        for (m, s) in mean.iter_mut().zip(sum) {
            *m += s;
        }
    }
    for m in &mut mean {
        *m /= rows as f64;
    }
    report(1, 3);
    let partials = threads::map(&blocks, |block| {
        let mut cov = vec![0f64; dim * dim];
        let mut centred = vec![0f64; dim];
        for row in block.chunks_exact(dim) {
            for ((slot, x), m) in centred.iter_mut().zip(row).zip(&mean) {
                *slot = f64::from(*x) - m;
            }
            // Upper triangle only; mirrored below.
            for i in 0..dim {
                let ci = centred[i];
                let line = &mut cov[i * dim + i..(i + 1) * dim];
                for (c, x) in line.iter_mut().zip(&centred[i..]) {
                    *c += ci * x;
                }
            }
        }
        cov
    });
    let mut cov = vec![0f64; dim * dim];
    for partial in &partials {
        for (c, p) in cov.iter_mut().zip(partial) {
            *c += p;
        }
    }
    let denominator = (rows.max(2) - 1) as f64;
    for i in 0..dim {
        for j in i..dim {
            let value = cov[i * dim + j] / denominator;
            cov[i * dim + j] = value;
            cov[j * dim + i] = value;
        }
    }
    report(2, 3);
    let (values, vectors) = jacobi_eigen(cov, dim);
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let mut components = Vec::with_capacity(n_components * dim);
    let mut explained_variance_ratio = Vec::with_capacity(n_components);
    for &k in order.iter().take(n_components) {
        // Column k of the eigenvector matrix.
        let mut axis: Vec<f64> = (0..dim).map(|i| vectors[i * dim + k]).collect();
        let largest = axis
            .iter()
            .copied()
            .fold(0f64, |best, x| if x.abs() > best.abs() { x } else { best });
        if largest < 0.0 {
            for x in &mut axis {
                *x = -*x;
            }
        }
        components.extend_from_slice(&axis);
        explained_variance_ratio.push(if total > 0.0 {
            values[k].max(0.0) / total
        } else {
            0.0
        });
    }
    report(3, 3);
    PcaModel {
        dim,
        mean,
        components,
        explained_variance_ratio,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Eigenvalues and eigenvectors (columns of the returned row-major `dim x dim` matrix) of the
/// symmetric matrix `a`, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _ in 0..JACOBI_SWEEPS_MAX {
        let off: f64 = (0..n)
            .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= f64::EPSILON * scale || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 || apq.abs() < 1e-300 {
                    continue;
                }
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A <- J^T A J on rows and columns p and q.
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| a[i * n + i]).collect();
    (values, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(matrix: &[f64], n: usize) {
        let (values, vectors) = jacobi_eigen(matrix.to_vec(), n);
        // A v = lambda v for every column, and the columns are orthonormal.
        for k in 0..n {
            for i in 0..n {
                let av: f64 = (0..n).map(|j| matrix[i * n + j] * vectors[j * n + k]).sum();
                assert!((av - values[k] * vectors[i * n + k]).abs() < 1e-9, "{av}");
            }
            for l in 0..n {
                let d: f64 = (0..n)
                    .map(|i| vectors[i * n + k] * vectors[i * n + l])
                    .sum();
                let expected = if k == l { 1.0 } else { 0.0 };
                assert!((d - expected).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn jacobi_diagonalises_symmetric_matrices() {
        check(&[2.0, 1.0, 1.0, 2.0], 2);
        check(&[4.0, 1.0, 0.5, 1.0, 3.0, 0.25, 0.5, 0.25, 1.0], 3);
        check(&[1.0, 0.0, 0.0, 1.0], 2);
        let n = 12;
        let mut m = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] = ((i * 7 + j * 3) % 11) as f64 + ((j * 7 + i * 3) % 11) as f64;
            }
        }
        check(&m, n);
    }

    #[test]
    fn pca_finds_the_axis_of_a_line() {
        // Points on the line t * (3, 4) / 5 plus a tiny orthogonal wiggle.
        let mut data = Vec::new();
        for t in 0..100 {
            let t = t as f32 - 50.0;
            let wiggle = if t as i32 % 2 == 0 { 0.01 } else { -0.01 };
            data.push(t * 0.6 - wiggle * 0.8);
            data.push(t * 0.8 + wiggle * 0.6);
        }
        let model = fit(&data, 2, 1, None);
        assert!((model.components[0] - 0.6).abs() < 1e-5, "{model:?}");
        assert!((model.components[1] - 0.8).abs() < 1e-5, "{model:?}");
        assert!(model.explained_variance_ratio[0] > 0.9999);
        let projected = model.transform(&data[..2]);
        assert!((projected[0] + 49.5).abs() < 1e-3, "{projected:?}");
    }
}
