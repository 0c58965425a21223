//! What the fuzz targets (`fuzz/fuzz_targets/`) and the integration tests that check internals
//! reach inside the crate: the decoders of bytes read from disk and the query language's parser
//! and syntax tree, re-exported from the crate-private modules that own them.
//!
//! Not part of the public API: hidden from the docs, with no stability promise; any release
//! may change it. Applications use the crate root.

pub use crate::catalog::index::{decode_param, decode_path, OutputStats};
pub use crate::catalog::records::{decode, BlobRecord, RunRecord, TailRecord};
pub use crate::catalog::seal::{seal, SealedBytes};
pub use crate::file::Superblock;
pub use crate::table::layout::rebuild;

/// The run filter language (`query::filter`): its parser, syntax tree and evaluation.
pub mod filter {
    pub use crate::query::filter::{
        compare, parse_column_filter, parse_filter, parse_order_by, parse_query, Attribute,
        CompareOp, Expr, Operand, Predicate, Subject,
    };
}
