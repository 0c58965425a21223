//! Sorted reads: [`TableQuery::order_by`] orders the selected rows by one column before the
//! offset and the limit apply, as SQL's `ORDER BY ... OFFSET ... LIMIT` does.
//!
//! Two passes. The first reads the sort column (and the filter's columns) chunk by chunk and
//! keeps the candidates, each a key and its table row position; with a limit it keeps at most
//! twice `offset + limit` of them, cutting back to the best `offset + limit` with Arrow's
//! `lexsort_to_indices` (key, then position, so ties keep table order and the result is the
//! same on every read), so memory stays bounded by a chunk plus the result. The second reads
//! the chosen rows' columns by position (one range, no filter: the positions already passed it)
//! and puts them in sorted order with `take`.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use arrow_ord::sort::{lexsort_to_indices, SortColumn, SortOptions};
use arrow_schema::DataType;

use super::{arrow_error, column_index, TableQuery};
use crate::error::{Error, Result};
use crate::table::ScanOptions;

/// The sort column of a query, and whether it sorts descending.
#[derive(Clone, Debug)]
pub(super) struct Order {
    pub(super) column: String,
    pub(super) descending: bool,
}

/// Whether a column of this type can be sorted on: numbers, strings, booleans, times.
fn sortable(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
}

impl TableQuery {
    /// The selected rows in the order of `order`, after the offset and within the limit, as
    /// one batch of the query's columns.
    pub(super) fn sorted_batch(&self, order: &Order) -> Result<RecordBatch> {
        let schema = self.table.schema()?;
        let field = schema.field(column_index(&schema, &order.column, self.table.url())?);
        if !sortable(field.data_type()) {
            return Err(Error::InvalidInput {
                reason: format!(
                    "cannot sort by column {} of type {}",
                    order.column,
                    field.data_type()
                ),
            });
        }
        let positions = self.sorted_positions(order)?;
        self.rows_at(&positions)
    }

    /// The table row positions of the selected rows in sorted order, the offset skipped and
    /// the limit applied.
    fn sorted_positions(&self, order: &Order) -> Result<Vec<u64>> {
        let mut all = self.clone();
        all.offset = 0;
        all.limit = None;
        all.order = None;
        let need = self
            .limit
            .map(|limit| usize::try_from(self.offset.saturating_add(limit)).unwrap_or(usize::MAX));
        if need == Some(0) {
            return Ok(Vec::new());
        }
        let options = SortOptions {
            descending: order.descending,
            nulls_first: false,
        };
        let mut keys: Vec<ArrayRef> = Vec::new();
        let mut positions: Vec<ArrayRef> = Vec::new();
        let mut held = 0usize;
        let range = all.range()?;
        all.visit(
            std::slice::from_ref(&order.column),
            range,
            true,
            &mut |batch, rows| {
                let count = batch.num_rows();
                keys.push(batch.column(0).clone());
                positions.push(Arc::new(UInt64Array::from_iter_values(
                    (0..count).map(|i| rows.at(i)),
                )));
                held += count;
                if let Some(need) = need {
                    if held > need.saturating_mul(2).max(4096) {
                        let (k, p) = best(&keys, &positions, options, Some(need))?;
                        held = k.len();
                        keys = vec![k];
                        positions = vec![p];
                    }
                }
                Ok(true)
            },
        )?;
        if held == 0 {
            return Ok(Vec::new());
        }
        let (_, sorted) = best(&keys, &positions, options, need)?;
        let skip = usize::try_from(self.offset).unwrap_or(usize::MAX);
        Ok(sorted
            .as_primitive::<UInt64Type>()
            .values()
            .iter()
            .skip(skip)
            .copied()
            .collect())
    }

    /// The query's columns at table row `positions`, in that order.
    fn rows_at(&self, positions: &[u64]) -> Result<RecordBatch> {
        let schema = self.schema()?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut ascending: Vec<u64> = positions.to_vec();
        ascending.sort_unstable();
        let (Some(&first), Some(&last)) = (ascending.first(), ascending.last()) else {
            return Ok(RecordBatch::new_empty(schema));
        };
        let batches = self.table.scan_with(&ScanOptions {
            columns: Some(columns),
            rows: Some(first..last + 1),
        })?;
        // The wanted rows in position order, gathered batch by batch.
        let mut picked: Vec<RecordBatch> = Vec::new();
        let mut next = 0usize;
        let mut start = first;
        for batch in batches {
            let end = start + batch.num_rows() as u64;
            let mut indices: Vec<u32> = Vec::new();
            while next < ascending.len() && ascending[next] < end {
                indices.push((ascending[next] - start) as u32);
                next += 1;
            }
            if !indices.is_empty() {
                let indices = UInt32Array::from(indices);
                let columns = batch
                    .columns()
                    .iter()
                    .map(|column| arrow_select::take::take(column, &indices, None))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(arrow_error)?;
                picked.push(RecordBatch::try_new(batch.schema(), columns).map_err(arrow_error)?);
            }
            start = end;
            if next == ascending.len() {
                break;
            }
        }
        let gathered =
            arrow_select::concat::concat_batches(&schema, &picked).map_err(arrow_error)?;
        if gathered.num_rows() != positions.len() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "table {} changed while it was read sorted ({} of {} rows found)",
                    self.table.url(),
                    gathered.num_rows(),
                    positions.len()
                ),
            });
        }
        // From position order to the sort's order.
        let order: Vec<u32> = positions
            .iter()
            .map(|p| ascending.binary_search(p).unwrap_or(0) as u32)
            .collect();
        let order = UInt32Array::from(order);
        let columns = gathered
            .columns()
            .iter()
            .map(|column| arrow_select::take::take(column, &order, None))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(arrow_error)?;
        RecordBatch::try_new(schema, columns).map_err(arrow_error)
    }
}

/// The best `need` candidates (all without a limit) of the held keys and positions, sorted by
/// key (per `options`), then position.
fn best(
    keys: &[ArrayRef],
    positions: &[ArrayRef],
    options: SortOptions,
    need: Option<usize>,
) -> Result<(ArrayRef, ArrayRef)> {
    let concat = |parts: &[ArrayRef]| -> Result<ArrayRef> {
        let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        arrow_select::concat::concat(&parts).map_err(arrow_error)
    };
    let keys = concat(keys)?;
    let positions = concat(positions)?;
    let indices = lexsort_to_indices(
        &[
            SortColumn {
                values: keys.clone(),
                options: Some(options),
            },
            SortColumn {
                values: positions.clone(),
                options: Some(SortOptions {
                    descending: false,
                    nulls_first: false,
                }),
            },
        ],
        need,
    )
    .map_err(arrow_error)?;
    let take = |array: &ArrayRef| arrow_select::take::take(array.as_ref(), &indices, None);
    Ok((
        take(&keys).map_err(arrow_error)?,
        take(&positions).map_err(arrow_error)?,
    ))
}
