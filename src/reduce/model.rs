//! A fitted reducer's bytes: how a model is kept as a blob of its run (layout in
//! docs/FORMAT.md, "Reducers"). Little-endian throughout; the decoder checks every length
//! against the bytes present and returns `Error::Corrupted`, never panics.

use super::pca::PcaModel;
use super::umap::{UmapModel, UmapParams};
use super::Method;
use crate::error::{Error, Location, Result};

/// First bytes of every stored reducer.
pub const MAGIC: &[u8; 8] = b"RSREDUCE";
/// The layout version written.
pub const VERSION: u32 = 1;
/// Widest input a reducer accepts: the covariance of PCA is `dim^2` f64 and its Jacobi
/// decomposition `O(dim^3)` (2048 is about a minute); embeddings are rarely wider than 1024.
pub const EMBEDDING_WIDTH_MAX: usize = 2048;
/// Most output dimensions (plots want 2 or 3; more is allowed for downstream clustering).
pub const COMPONENTS_MAX: usize = 64;
/// Most neighbours UMAP takes per row (umap-learn's practical range is 2 to 200).
pub const NEIGHBORS_MAX: usize = 200;
/// Longest column name or url kept in a model header (a name is at most 256 bytes; a url
/// joins three names).
const TEXT_BYTES_MAX: usize = 4096;

/// A fitted model.
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    /// PCA.
    Pca(PcaModel),
    /// UMAP.
    Umap(UmapModel),
}

impl Model {
    /// The method.
    pub fn method(&self) -> Method {
        match self {
            Model::Pca(_) => Method::Pca,
            Model::Umap(_) => Method::Umap,
        }
    }

    /// Input width.
    pub fn dim(&self) -> usize {
        match self {
            Model::Pca(model) => model.dim,
            Model::Umap(model) => model.dim,
        }
    }

    /// Output width.
    pub fn n_components(&self) -> usize {
        match self {
            Model::Pca(model) => model.n_components(),
            Model::Umap(model) => model.params.n_components,
        }
    }
}

/// A fitted reducer as stored: the model and what it was fitted on.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReducer {
    /// The blob name it is kept under.
    pub name: String,
    /// The embedding column it reduces.
    pub column: String,
    /// The foreign (input) table of the tables it was fitted for (empty if none).
    pub foreign_table_url: String,
    /// The metrics table it was fitted on.
    pub fitted_on: String,
    /// The seed it was fitted with.
    pub seed: u64,
    /// The model.
    pub model: Model,
}

impl StoredReducer {
    /// Applies the model to `data` (row-major rows of the model's input width): PCA projects,
    /// UMAP places the rows into the training layout. Returns `n_components` values a row.
    pub fn transform(&self, data: &[f32]) -> Result<Vec<f32>> {
        let dim = self.model.dim();
        if !data.len().is_multiple_of(dim) {
            return Err(Error::InvalidInput {
                reason: format!(
                    "{} values are not whole rows of the reducer's width {dim}",
                    data.len()
                ),
            });
        }
        if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidInput {
                reason: format!("row {} has a value that is not finite", bad / dim),
            });
        }
        Ok(match &self.model {
            Model::Pca(model) => model.transform(data),
            Model::Umap(model) => model.transform(data, None),
        })
    }

    /// The model's bytes (see docs/FORMAT.md).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(match self.model {
            Model::Pca(_) => 1,
            Model::Umap(_) => 2,
        });
        out.extend_from_slice(&[0, 0, 0]);
        for text in [&self.column, &self.foreign_table_url, &self.fitted_on] {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&(self.model.dim() as u32).to_le_bytes());
        out.extend_from_slice(&(self.model.n_components() as u32).to_le_bytes());
        out.extend_from_slice(&self.seed.to_le_bytes());
        match &self.model {
            Model::Pca(model) => {
                for x in model
                    .explained_variance_ratio
                    .iter()
                    .chain(&model.mean)
                    .chain(&model.components)
                {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            Model::Umap(model) => {
                out.extend_from_slice(&(model.params.n_neighbors as u32).to_le_bytes());
                out.extend_from_slice(&(model.knn_width as u32).to_le_bytes());
                out.extend_from_slice(&model.params.min_dist.to_le_bytes());
                out.extend_from_slice(&model.a.to_le_bytes());
                out.extend_from_slice(&model.b.to_le_bytes());
                out.extend_from_slice(&(model.rows() as u64).to_le_bytes());
                for x in model.data.iter().chain(&model.embedding) {
                    out.extend_from_slice(&x.to_le_bytes());
                }
                for j in &model.knn {
                    out.extend_from_slice(&j.to_le_bytes());
                }
            }
        }
        out
    }

    /// Decodes a stored reducer named `name`.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<StoredReducer> {
        let mut reader = Reader { bytes, at: 0, name };
        if reader.take(8)? != MAGIC {
            return Err(reader.corrupted("not a reducer (bad magic)"));
        }
        let version = reader.u32()?;
        if version != VERSION {
            return Err(reader.corrupted(&format!("unknown version {version}")));
        }
        let method = reader.take(4)?[0];
        let column = reader.text()?;
        let foreign_table_url = reader.text()?;
        let fitted_on = reader.text()?;
        let dim = reader.u32()? as usize;
        let c = reader.u32()? as usize;
        let seed = reader.u64()?;
        if dim == 0 || dim > EMBEDDING_WIDTH_MAX || c == 0 || c > COMPONENTS_MAX || c > dim {
            return Err(reader.corrupted(&format!("{dim} inputs, {c} components")));
        }
        let model = match method {
            1 => {
                let explained_variance_ratio = reader.f64s(c)?;
                let mean = reader.f64s(dim)?;
                let components = reader.f64s(c * dim)?;
                Model::Pca(PcaModel {
                    dim,
                    mean,
                    components,
                    explained_variance_ratio,
                })
            }
            2 => {
                let n_neighbors = reader.u32()? as usize;
                let knn_width = reader.u32()? as usize;
                let min_dist = reader.f64()?;
                let a = reader.f64()?;
                let b = reader.f64()?;
                let rows = reader.u64()?;
                if !(2..=NEIGHBORS_MAX).contains(&n_neighbors) || knn_width == 0 {
                    return Err(reader.corrupted("bad neighbour counts"));
                }
                let rows = usize::try_from(rows)
                    .ok()
                    .filter(|r| *r >= 2 && *r < u32::MAX as usize && knn_width < *r)
                    .ok_or_else(|| reader.corrupted("bad row count"))?;
                let data = reader.f32s(rows.saturating_mul(dim))?;
                let embedding = reader.f32s(rows.saturating_mul(c))?;
                let knn = reader.u32s(rows.saturating_mul(knn_width))?;
                if knn.iter().any(|j| *j as usize >= rows) {
                    return Err(reader.corrupted("a neighbour index is out of range"));
                }
                Model::Umap(UmapModel {
                    params: UmapParams {
                        n_components: c,
                        n_neighbors,
                        min_dist,
                        seed,
                    },
                    a,
                    b,
                    dim,
                    data,
                    embedding,
                    knn_width,
                    knn,
                })
            }
            other => return Err(reader.corrupted(&format!("unknown method {other}"))),
        };
        if reader.at != bytes.len() {
            return Err(reader.corrupted("trailing bytes"));
        }
        Ok(StoredReducer {
            name: name.to_string(),
            column,
            foreign_table_url,
            fitted_on,
            seed,
            model,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    name: &'a str,
}

impl<'a> Reader<'a> {
    fn corrupted(&self, reason: &str) -> Error {
        Error::Corrupted {
            at: Location::Catalog,
            reason: format!("reducer {}: {reason}", self.name),
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.corrupted("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn text(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        if len > TEXT_BYTES_MAX {
            return Err(self.corrupted("a name is too long"));
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupted("a name is not UTF-8"))
    }

    fn f64s(&mut self, count: usize) -> Result<Vec<f64>> {
        let bytes = self.take(
            count
                .checked_mul(8)
                .ok_or_else(|| self.corrupted("overflow"))?,
        )?;
        Ok(bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect())
    }

    fn f32s(&mut self, count: usize) -> Result<Vec<f32>> {
        let bytes = self.take(
            count
                .checked_mul(4)
                .ok_or_else(|| self.corrupted("overflow"))?,
        )?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn u32s(&mut self, count: usize) -> Result<Vec<u32>> {
        let bytes = self.take(
            count
                .checked_mul(4)
                .ok_or_else(|| self.corrupted("overflow"))?,
        )?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reducer: StoredReducer) {
        let bytes = reducer.encode();
        assert_eq!(
            StoredReducer::decode(&reducer.name, &bytes).unwrap(),
            reducer
        );
        for cut in 0..bytes.len() {
            assert!(matches!(
                StoredReducer::decode(&reducer.name, &bytes[..cut]),
                Err(Error::Corrupted { .. })
            ));
        }
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(matches!(
            StoredReducer::decode(&reducer.name, &bad),
            Err(Error::Corrupted { .. })
        ));
    }

    #[test]
    fn reducers_round_trip_and_reject_truncation() {
        check(StoredReducer {
            name: "reducer-pca-0".into(),
            column: "emb".into(),
            foreign_table_url: "p/tables/t".into(),
            fitted_on: "p/runs/r/metrics_0001".into(),
            seed: 3,
            model: Model::Pca(PcaModel {
                dim: 3,
                mean: vec![1.0, 2.0, 3.0],
                components: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                explained_variance_ratio: vec![0.7, 0.2],
            }),
        });
        check(StoredReducer {
            name: "reducer-umap-0".into(),
            column: "emb".into(),
            foreign_table_url: String::new(),
            fitted_on: "p/runs/r/metrics_0000".into(),
            seed: 9,
            model: Model::Umap(UmapModel {
                params: UmapParams {
                    n_components: 2,
                    n_neighbors: 3,
                    min_dist: 0.1,
                    seed: 9,
                },
                a: 1.5,
                b: 0.9,
                dim: 2,
                data: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                embedding: vec![0.5, 0.5, 1.5, 1.5, 2.5, 2.5],
                knn_width: 2,
                knn: vec![1, 2, 0, 2, 1, 0],
            }),
        });
    }
}
