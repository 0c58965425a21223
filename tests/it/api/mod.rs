//! The public API, method by method: `Store` (create, open, read-only, probe, init, the active
//! run, listing, delete, info, vacuum, backup), `Run` (lookup, metadata, parameters, inputs,
//! outputs, statuses, blobs, copy, delete), `RunStatus` and `check`.
//!
//! Every test asserts exact results, and every rejection asserts the exact `Error` variant. A
//! call that fails must change nothing, so failing calls are followed by a look at the state
//! they would have changed. Crash consistency lives in `crash.rs`, op sequences against a model
//! in `model.rs`.

use std::collections::HashSet;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use runstore::time::now_us;
use runstore::{
    check, parse_run_url, run_url, BulkInfo, CopyIfExists, CopyOptions, Error, InitIfExists,
    InitOptions, Run, RunInfo, RunStatus, Store, Value, BLOB_CHUNK_BYTES,
};

use crate::util::{file_len, file_names, new_store, temp_store, Rng};

mod active_run;
mod bulk;
mod copy;
mod delete;
mod failed_calls;
mod init;
mod inputs_outputs;
mod lookup;
mod maintenance;
mod metadata;
mod parameters;
mod status;
mod store;

const MIB: usize = 1 << 20;

/// Microseconds since the epoch of 2020-01-01 and 2100-01-01: a timestamp between them is in
/// microseconds (milliseconds would be 1000 times smaller, nanoseconds 1000 times larger).
const US_2020: i64 = 1_577_836_800_000_000;
const US_2100: i64 = 4_102_444_800_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn json(text: &str) -> Value {
    Value::from_json_str(text).expect("valid json")
}

fn empty_map() -> Value {
    Value::Map(Default::default())
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Compares two byte strings without printing megabytes on failure.
fn assert_bytes_eq(actual: &[u8], expected: &[u8], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    if let Some(at) = actual.iter().zip(expected).position(|(a, b)| a != b) {
        panic!("{what}: first difference at byte {at}");
    }
}

/// Every offset at which `needle` occurs in `haystack`.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle)
        .map(|(at, _)| at)
        .collect()
}

/// Everything observable about one run, blobs by length and hash.
#[derive(Debug, PartialEq)]
struct RunSnapshot {
    info: RunInfo,
    outputs: Vec<Value>,
    blobs: Vec<(BulkInfo, u64)>,
}

fn run_snapshot(run: &Run) -> RunSnapshot {
    let blobs = run
        .bulk_list()
        .expect("bulk_list")
        .into_iter()
        .map(|blob| {
            let bytes = run.bulk_bytes(&blob.name).expect("bulk_bytes");
            assert_eq!(bytes.len() as u64, blob.len, "blob {} length", blob.name);
            (blob, hash_bytes(&bytes))
        })
        .collect();
    RunSnapshot {
        info: run.info().expect("info"),
        outputs: run.output_values().expect("output_values"),
        blobs,
    }
}

/// Every run of the store, in `runs(None)` order.
fn snapshot(store: &Store) -> Vec<RunSnapshot> {
    store
        .runs(None)
        .expect("runs")
        .iter()
        .map(run_snapshot)
        .collect()
}

/// Asserts that `copy` holds what `source` holds: everything but url, project and name.
fn assert_same_content(copy: &Run, source: &Run) {
    let (a, b) = (run_snapshot(copy), run_snapshot(source));
    assert_eq!(a.info.description, b.info.description);
    assert_eq!(a.info.status, b.info.status);
    assert_eq!(a.info.parameters, b.info.parameters);
    assert_eq!(a.info.input_tables, b.info.input_tables);
    assert_eq!(a.info.input_values, b.info.input_values);
    assert_eq!(a.info.output_count, b.info.output_count);
    assert_eq!(a.info.metrics, b.info.metrics);
    assert_eq!(a.outputs, b.outputs);
    let blobs = |s: &RunSnapshot| -> Vec<(String, u64, u64)> {
        s.blobs
            .iter()
            .map(|(info, hash)| (info.name.clone(), info.len, *hash))
            .collect()
    };
    assert_eq!(blobs(&a), blobs(&b));
}

/// Gives `run` some of everything: description, parameters, inputs, outputs, status, blobs.
fn populate(run: &Run, seed: u64) {
    let mut rng = Rng::new(seed);
    run.set_description(&format!("run with seed {seed}"))
        .unwrap();
    run.set_parameters(&json(&format!(
        r#"{{"lr": 0.001, "epochs": {seed}, "model": {{"name": "resnet", "layers": [1, 2, 3]}}}}"#
    )))
    .unwrap();
    run.add_input_table("data/tables/train").unwrap();
    run.add_input_table(&format!("data/tables/val-{seed}"))
        .unwrap();
    run.add_input_value(&Value::map([("split", "train")]))
        .unwrap();
    let outputs: Vec<Value> = (0..5)
        .map(|epoch| {
            Value::map([
                ("epoch", Value::from(epoch)),
                ("loss", Value::from(1.0 / f64::from(epoch + 1))),
            ])
        })
        .collect();
    run.add_output_values(&outputs).unwrap();
    run.put_bulk("model.bin", &rng.bytes(100_000 + seed as usize))
        .unwrap();
    run.put_bulk("labels.txt", format!("cat\ndog\n{seed}\n").as_bytes())
        .unwrap();
    run.set_status_completed().unwrap();
}

/// Flips one bit inside the only occurrence of `marker` in the closed store at `path`.
fn flip_a_byte_of_marker(path: &Path, marker: &[u8]) {
    let mut bytes = fs::read(path).unwrap();
    let found = find_all(&bytes, marker);
    assert_eq!(found.len(), 1, "the marker should be in the file once");
    bytes[found[0] + 7] ^= 0x01;
    fs::write(path, &bytes).unwrap();
}

/// A reader that hands out `data` in pieces of at most `step` bytes, as a socket would.
struct ChunkyReader {
    data: Vec<u8>,
    position: usize,
    step: usize,
}

impl Read for ChunkyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out
            .len()
            .min(self.step)
            .min(self.data.len() - self.position);
        out[..n].copy_from_slice(&self.data[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// A reader that yields `good` bytes of 0xAB and then fails.
struct FailingReader {
    good: usize,
}

impl Read for FailingReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::other("the source broke"));
        }
        let n = out.len().min(self.good);
        out[..n].fill(0xAB);
        self.good -= n;
        Ok(n)
    }
}
