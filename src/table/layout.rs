//! How one Arrow array is laid out as segments, and rebuilt from them.
//!
//! An array becomes a pre-order list of [`NodeRecord`]s, one per `ArrayData` node (the array,
//! then its children: list values, dictionary values, struct fields), each naming its
//! validity bitmap and buffers as [`SegmentRef`]s. The same layout serves sealed chunks (the
//! refs are physical file offsets, read zero-copy from the mapping) and tail entries (the refs
//! are offsets into the entry's own byte blob).
//!
//! Invariant: a rebuilt array has passed `ArrayData` validation (buffer sizes, offsets, UTF-8)
//! against the table's schema, so a damaged or hostile record yields `Error::Corrupted`,
//! never an out-of-bounds read.

use crate::catalog::records::{NodeRecord, SegmentRef};
use crate::error::{Error, Location, Result};
use arrow_array::{make_array, Array, ArrayRef};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use arrow_schema::DataType;

/// Deepest nesting of types a table may have. Arrow schemas of metrics tables are flat or one
/// level deep (an embedding is a list of floats); 32 leaves room and bounds the recursion.
pub const TYPE_DEPTH_MAX: usize = 32;

/// Returns `array` with every offset zero (copying only if it was sliced), so its buffers can
/// be written as they are.
pub fn unsliced(array: &ArrayRef) -> Result<ArrayRef> {
    fn sliced(data: &ArrayData) -> bool {
        data.offset() != 0
            || data.nulls().is_some_and(|nulls| nulls.offset() != 0)
            || data.child_data().iter().any(sliced)
    }
    if !sliced(&array.to_data()) {
        return Ok(array.clone());
    }
    // A real copy: `concat` of one array only re-slices it.
    let data = array.to_data();
    let mut copy = arrow_data::transform::MutableArrayData::new(vec![&data], false, data.len());
    copy.try_extend(0, 0, data.len())
        .map_err(|e| Error::InvalidInput {
            reason: format!("cannot copy a sliced array: {e}"),
        })?;
    Ok(make_array(copy.freeze()))
}

/// Flattens `data` (offset zero: see [`unsliced`]) into `out`, handing each buffer's bytes to
/// `sink`, which stores them and returns where.
pub fn flatten(
    data: &ArrayData,
    sink: &mut dyn FnMut(&[u8]) -> Result<SegmentRef>,
    out: &mut Vec<NodeRecord>,
) -> Result<()> {
    assert_eq!(data.offset(), 0, "flatten needs an unsliced array");
    let len = data.len();
    let validity = match data.nulls() {
        Some(nulls) if nulls.null_count() > 0 => {
            assert_eq!(nulls.offset(), 0);
            let bytes = &nulls.buffer().as_slice()[..len.div_ceil(8)];
            Some(sink(bytes)?)
        }
        _ => None,
    };
    let mut buffers = Vec::with_capacity(data.buffers().len());
    for (index, buffer) in data.buffers().iter().enumerate() {
        let needed = needed_bytes(data.data_type(), index, len).unwrap_or(buffer.len());
        let bytes = &buffer.as_slice()[..needed.min(buffer.len())];
        buffers.push(sink(bytes)?);
    }
    out.push(NodeRecord {
        len: len as u64,
        null_count: validity.map_or(0, |_| data.null_count() as u64),
        validity,
        buffers,
        child_count: data.child_data().len() as u32,
    });
    for child in data.child_data() {
        flatten(child, sink, out)?;
    }
    Ok(())
}

/// Appends `bytes` to `blob` at the next 64-byte boundary and returns where: the segment
/// refs of a tail entry, which point into the entry's own bytes.
pub(crate) fn append_aligned(blob: &mut Vec<u8>, bytes: &[u8]) -> SegmentRef {
    let offset = blob.len().next_multiple_of(64);
    blob.resize(offset, 0);
    blob.extend_from_slice(bytes);
    SegmentRef {
        offset: offset as u64,
        len: bytes.len() as u64,
        crc32: crc32fast::hash(bytes),
    }
}

/// Bytes of buffer `index` that `len` slots of `data_type` use, where that is simple to say;
/// `None` means "keep the whole buffer" (e.g. variable-length values).
fn needed_bytes(data_type: &DataType, index: usize, len: usize) -> Option<usize> {
    match (data_type, index) {
        (DataType::Boolean, 0) => Some(len.div_ceil(8)),
        (DataType::Utf8 | DataType::Binary | DataType::List(_), 0) => Some((len + 1) * 4),
        (DataType::LargeUtf8 | DataType::LargeBinary | DataType::LargeList(_), 0) => {
            Some((len + 1) * 8)
        }
        (DataType::Dictionary(key, _), 0) => key.primitive_width().map(|w| w * len),
        (other, 0) => other.primitive_width().map(|w| w * len),
        _ => None,
    }
}

/// Checks that columns of `data_type` can be stored and read back: the one definition of
/// the types a table may have, used by the writer (a schema is refused before a table is
/// created: `Error::InvalidInput`) and by the reader ([`rebuild`]: `Error::Corrupted`), so the
/// two cannot disagree. A type may nest at most [`TYPE_DEPTH_MAX`] deep, and every node must
/// have the children `child_types` lists: union, run-end-encoded and list-view arrays carry
/// children or buffers the layout does not describe, so they are refused. The reason if not.
pub fn check_type(data_type: &DataType) -> std::result::Result<(), String> {
    check_type_at(data_type, 0)
}

fn check_type_at(data_type: &DataType, depth: usize) -> std::result::Result<(), String> {
    if depth > TYPE_DEPTH_MAX {
        return Err(format!("type nests deeper than {TYPE_DEPTH_MAX}"));
    }
    match data_type {
        DataType::Union(_, _)
        | DataType::RunEndEncoded(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => {
            return Err(format!("columns of type {data_type} cannot be stored"))
        }
        _ => {}
    }
    for child in child_types(data_type) {
        check_type_at(&child, depth + 1)?;
    }
    Ok(())
}

/// The child types an array of `data_type` carries in its `child_data`.
pub(crate) fn child_types(data_type: &DataType) -> Vec<DataType> {
    match data_type {
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::FixedSizeList(field, _)
        | DataType::Map(field, _) => vec![field.data_type().clone()],
        DataType::Struct(fields) => fields.iter().map(|f| f.data_type().clone()).collect(),
        DataType::Dictionary(_, values) => vec![values.as_ref().clone()],
        _ => Vec::new(),
    }
}

/// Rebuilds one array of `data_type` from `nodes[*cursor..]`, advancing the cursor past its
/// subtree; `buffer_of` turns a ref into a buffer (zero-copy or from a blob). `what` names the
/// column in errors.
pub fn rebuild(
    data_type: &DataType,
    nodes: &[NodeRecord],
    cursor: &mut usize,
    buffer_of: &mut dyn FnMut(&SegmentRef) -> Result<Buffer>,
    what: &str,
) -> Result<ArrayRef> {
    let data = rebuild_data(data_type, nodes, cursor, buffer_of, what, 0)?;
    Ok(make_array(data))
}

fn rebuild_data(
    data_type: &DataType,
    nodes: &[NodeRecord],
    cursor: &mut usize,
    buffer_of: &mut dyn FnMut(&SegmentRef) -> Result<Buffer>,
    what: &str,
    depth: usize,
) -> Result<ArrayData> {
    let corrupted = |reason: String| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{what}: {reason}"),
    };
    if depth == 0 {
        check_type(data_type).map_err(&corrupted)?;
    }
    let (node, child_types, len) = take_node(data_type, nodes, cursor, &corrupted)?;
    let mut children = Vec::with_capacity(child_types.len());
    for child_type in &child_types {
        children.push(rebuild_data(
            child_type,
            nodes,
            cursor,
            buffer_of,
            what,
            depth + 1,
        )?);
    }
    let mut buffers = Vec::with_capacity(node.buffers.len());
    for segment in &node.buffers {
        buffers.push(buffer_of(segment)?);
    }
    let validity = node.validity.as_ref().map(&mut *buffer_of).transpose()?;
    ArrayData::builder(data_type.clone())
        .len(len)
        .null_bit_buffer(validity)
        .buffers(buffers)
        .child_data(children)
        .build()
        .map_err(|e| corrupted(format!("array fails validation: {e}")))
}

/// The node at `*cursor` for an array of `data_type`, advancing the cursor: it must exist and
/// have the children the type has. Returns it with the child types and its length.
fn take_node<'a>(
    data_type: &DataType,
    nodes: &'a [NodeRecord],
    cursor: &mut usize,
    corrupted: &dyn Fn(String) -> Error,
) -> Result<(&'a NodeRecord, Vec<DataType>, usize)> {
    let node = nodes
        .get(*cursor)
        .ok_or_else(|| corrupted("missing array node".into()))?;
    *cursor += 1;
    let child_types = child_types(data_type);
    if node.child_count as usize != child_types.len() {
        return Err(corrupted(format!(
            "node has {} children, type {data_type} has {}",
            node.child_count,
            child_types.len()
        )));
    }
    let len = usize::try_from(node.len).map_err(|_| corrupted("length overflows".into()))?;
    Ok((node, child_types, len))
}

/// Checks, without reading any buffer, that `nodes[*cursor..]` hold the subtree an array of
/// `data_type` needs, as [`rebuild`] would find it: no deeper than [`TYPE_DEPTH_MAX`], every
/// node present with the children its type has, and every buffer whose size the type fixes
/// (offsets, fixed-width values, validity) at least that long. Advances the cursor past the
/// subtree. A check that reads only the catalog (`runstore merge`'s, before copying) uses it
/// so that a table no reader can rebuild is refused without reading column data.
pub(crate) fn check_nodes(
    data_type: &DataType,
    nodes: &[NodeRecord],
    cursor: &mut usize,
    what: &str,
    depth: usize,
) -> Result<()> {
    let corrupted = |reason: String| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{what}: {reason}"),
    };
    if depth == 0 {
        check_type(data_type).map_err(&corrupted)?;
    }
    if depth > TYPE_DEPTH_MAX {
        return Err(corrupted(format!(
            "type nests deeper than {TYPE_DEPTH_MAX}"
        )));
    }
    let (node, child_types, len) = take_node(data_type, nodes, cursor, &corrupted)?;
    let layout = arrow_data::layout(data_type);
    let buffers_ok = if layout.variadic {
        node.buffers.len() >= layout.buffers.len()
    } else {
        node.buffers.len() == layout.buffers.len()
    };
    if !buffers_ok {
        return Err(corrupted(format!(
            "node has {} buffers, type {data_type} has {}",
            node.buffers.len(),
            layout.buffers.len()
        )));
    }
    for (index, segment) in node.buffers.iter().enumerate() {
        let needed = if len == 0 {
            0
        } else {
            needed_bytes(data_type, index, len).unwrap_or(0)
        };
        if (segment.len as u128) < needed as u128 {
            return Err(corrupted(format!(
                "buffer {index} holds {} bytes, {len} slots need {needed}",
                segment.len
            )));
        }
    }
    if let Some(validity) = &node.validity {
        if validity.len < node.len.div_ceil(8) {
            return Err(corrupted(format!(
                "validity bitmap holds {} bytes, {len} slots need {}",
                validity.len,
                node.len.div_ceil(8)
            )));
        }
    }
    for child_type in &child_types {
        check_nodes(child_type, nodes, cursor, what, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, StringDictionaryBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{
        BooleanArray, Float64Array, Int32Array, Int64Array, LargeBinaryArray, StringArray,
        TimestampMicrosecondArray, UInt8Array,
    };

    use super::*;

    /// Flattens into one blob and rebuilds from it, as a tail entry does.
    fn check(array: ArrayRef) {
        let array_unsliced = unsliced(&array).unwrap();
        let mut blob = Vec::new();
        let mut nodes = Vec::new();
        flatten(
            &array_unsliced.to_data(),
            &mut |bytes| Ok(append_aligned(&mut blob, bytes)),
            &mut nodes,
        )
        .unwrap();
        let mut cursor = 0;
        let rebuilt = rebuild(
            array.data_type(),
            &nodes,
            &mut cursor,
            &mut |segment| {
                let start = segment.offset as usize;
                Ok(Buffer::from_slice_ref(
                    &blob[start..start + segment.len as usize],
                ))
            },
            "test",
        )
        .unwrap();
        assert_eq!(cursor, nodes.len());
        assert_eq!(rebuilt.as_ref(), array.as_ref());
    }

    #[test]
    fn layout_round_trips_every_type_with_nulls() {
        check(Arc::new(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
        ])));
        check(Arc::new(Int32Array::from(vec![Some(1), None, Some(-3)])));
        check(Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])));
        check(Arc::new(UInt8Array::from(vec![Some(255), None])));
        check(Arc::new(Float64Array::from(vec![
            Some(1.5),
            None,
            Some(f64::NAN),
        ])));
        check(Arc::new(StringArray::from(vec![
            Some("a"),
            None,
            Some("ccc"),
        ])));
        check(Arc::new(LargeBinaryArray::from_opt_vec(vec![
            Some(b"xy".as_slice()),
            None,
            Some(b"".as_slice()),
        ])));
        check(Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1), None]).with_timezone("UTC"),
        ));
        let mut dictionary = StringDictionaryBuilder::<Int32Type>::new();
        dictionary.append_value("cat");
        dictionary.append_null();
        dictionary.append_value("dog");
        dictionary.append_value("cat");
        check(Arc::new(dictionary.finish()));
        let mut list = FixedSizeListBuilder::new(Float32Builder::new(), 4);
        for row in 0..5 {
            if row == 2 {
                list.values().append_slice(&[0.0; 4]);
                list.append(false);
            } else {
                list.values().append_slice(&[row as f32, 1.0, 2.0, 3.0]);
                list.append(true);
            }
        }
        check(Arc::new(list.finish()));
    }

    #[test]
    fn layout_copies_sliced_arrays() {
        let array: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3), Some(4)]));
        check(array.slice(1, 3));
        let strings: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "ccc"]));
        check(strings.slice(1, 2));
    }

    #[test]
    fn rebuild_rejects_short_buffers_and_wrong_shapes() {
        let node = NodeRecord {
            len: 100,
            null_count: 0,
            validity: None,
            buffers: vec![SegmentRef {
                offset: 0,
                len: 8,
                crc32: 0,
            }],
            child_count: 0,
        };
        let mut cursor = 0;
        let error = rebuild(
            &DataType::Int32,
            std::slice::from_ref(&node),
            &mut cursor,
            &mut |_| Ok(Buffer::from_slice_ref([0u8; 8])),
            "t.c",
        )
        .unwrap_err();
        assert!(matches!(error, Error::Corrupted { .. }));
        let mut cursor = 0;
        let error = rebuild(
            &DataType::Utf8,
            &[],
            &mut cursor,
            &mut |_| Ok(Buffer::from_slice_ref([0u8; 8])),
            "t.c",
        )
        .unwrap_err();
        assert!(matches!(error, Error::Corrupted { .. }));
    }
}
