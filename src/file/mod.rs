//! Everything that touches the bytes of the file: the superblock slots, the extent directory,
//! the redb backend, and the column segment writer and reader.
//!
//! Nothing outside this module reads or writes the file except through redb (which runs on
//! [`RedbBackend`]) and the column calls of [`PhysicalFile`].

pub mod backend;
pub mod mmap;
pub mod superblock;

pub use backend::{PhysicalFile, RedbBackend, SEGMENT_ALIGN};
pub use superblock::{Extent, ExtentKind, Superblock, FORMAT_VERSION};
