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
use std::path::{Path, PathBuf};
use std::time::Duration;

use runstore::time::now_us;
use runstore::{
    check, parse_run_url, run_url, BulkInfo, CopyIfExists, CopyOptions, Error, InitIfExists,
    InitOptions, Run, RunInfo, RunStatus, Store, Value, BLOB_CHUNK_BYTES,
};

use crate::util::{temp_store, Rng};

const MIB: usize = 1 << 20;

/// Microseconds since the epoch of 2020-01-01 and 2100-01-01: a timestamp between them is in
/// microseconds (milliseconds would be 1000 times smaller, nanoseconds 1000 times larger).
const US_2020: i64 = 1_577_836_800_000_000;
const US_2100: i64 = 4_102_444_800_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A fresh store in a fresh directory.
fn new_store() -> (tempfile::TempDir, PathBuf, Store) {
    let (dir, path) = temp_store();
    let store = Store::create(&path).expect("create store");
    (dir, path, store)
}

fn json(text: &str) -> Value {
    Value::from_json_str(text).expect("valid json")
}

fn empty_map() -> Value {
    Value::Map(Default::default())
}

/// The names in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
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

// ---------------------------------------------------------------------------------------------
// Store: create, open, read-only, probe, format checks
// ---------------------------------------------------------------------------------------------

#[test]
fn create_makes_an_empty_store_and_leaves_no_temp_file() {
    let (dir, path) = temp_store();
    let before = now_us();
    let store = Store::create(&path).unwrap();
    assert_eq!(store.path(), path.as_path());
    assert!(!store.is_read_only());
    let info = store.info().unwrap();
    assert_eq!(info.path, path);
    assert_eq!(info.format_version, 1);
    assert_eq!(info.catalog_version, 3);
    assert_eq!(info.projects, 0);
    assert_eq!(info.runs, 0);
    assert_eq!(info.outputs, 0);
    assert_eq!(info.inputs, 0);
    assert_eq!(info.blobs, 0);
    assert_eq!(info.column_used_bytes, 0);
    assert_eq!(info.file_bytes, file_len(&path));
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
    assert!(store.runs(None).unwrap().is_empty());
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
    Store::probe(&path).unwrap();
    // The new store is usable at once.
    let run = store.init("p", Some("r")).unwrap();
    assert!(run.created().unwrap() >= before);
    drop((run, store));
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn create_on_an_existing_file_is_already_exists_and_leaves_it_untouched() {
    let (dir, path) = temp_store();
    fs::write(&path, b"precious bytes that are not a store").unwrap();
    let err = Store::create(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"precious bytes that are not a store"
    );
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn create_on_an_existing_store_is_already_exists_and_keeps_its_runs() {
    let (dir, path, store) = new_store();
    populate(&store.init("p", Some("r")).unwrap(), 1);
    drop(store);
    let bytes = fs::read(&path).unwrap();
    let err = Store::create(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert!(fs::read(&path).unwrap() == bytes, "the store file changed");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.run("p/runs/r").unwrap().output_count().unwrap(), 5);
}

#[test]
fn create_replacing_puts_an_empty_store_over_an_existing_one() {
    let (dir, path, store) = new_store();
    populate(&store.init("p", Some("r")).unwrap(), 1);
    drop(store);
    let store = Store::create_replacing(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn open_reads_back_what_a_closed_writer_committed() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    populate(&run, 7);
    let expected = snapshot(&store);
    drop((run, store));
    let store = Store::open(&path).unwrap();
    assert!(!store.is_read_only());
    assert_eq!(snapshot(&store), expected);
    // Still writable.
    store.init("p", Some("s")).unwrap();
    assert_eq!(store.run_count().unwrap(), 2);
}

#[test]
fn open_or_create_creates_a_missing_store_then_opens_it() {
    let (dir, path) = temp_store();
    let store = Store::open_or_create(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 0);
    store.init("p", Some("r")).unwrap();
    drop(store);
    let store = Store::open_or_create(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 1);
    assert_eq!(store.runs(None).unwrap()[0].url(), "p/runs/r");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn open_of_a_missing_path_is_not_found() {
    let (dir, path) = temp_store();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Store::probe(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = check(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // Nothing was created by the failed opens.
    assert!(file_names(dir.path()).is_empty());
}

#[test]
fn open_read_only_rejects_every_write_with_read_only() {
    let (dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    populate(&run, 3);
    let expected = snapshot(&store);
    drop((run, store));
    let bytes = fs::read(&path).unwrap();

    let store = Store::open_read_only(&path).unwrap();
    assert!(store.is_read_only());
    let run = store.run("p/runs/r").unwrap();
    let map = Value::map([("a", 1)]);
    let errors = [
        store.init("p", Some("new")).map(|_| ()).unwrap_err(),
        store
            .init_with("p", None, &InitOptions::default())
            .map(|_| ())
            .unwrap_err(),
        run.set_description("x").unwrap_err(),
        run.set_parameters(&map).unwrap_err(),
        run.add_input_table("t").unwrap_err(),
        run.add_input_value(&map).unwrap_err(),
        run.add_output_value(&map).unwrap_err(),
        run.add_output_values(std::slice::from_ref(&map))
            .unwrap_err(),
        run.set_status_running().unwrap_err(),
        run.set_status(RunStatus::Paused).unwrap_err(),
        run.put_bulk("b", b"bytes").map(|_| ()).unwrap_err(),
        run.put_bulk_from("b", &mut &b"bytes"[..])
            .map(|_| ())
            .unwrap_err(),
        run.delete_bulk("model.bin").unwrap_err(),
        run.copy(&CopyOptions::default()).map(|_| ()).unwrap_err(),
        run.delete().unwrap_err(),
        store.delete_run("p/runs/r").unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::ReadOnly), "{err:?}");
    }
    // A backup reads: from a read-only handle it copies one snapshot into a new store.
    let elsewhere = tempfile::tempdir().unwrap();
    store
        .backup_to(elsewhere.path().join("backup.runs"))
        .unwrap();
    let copy = Store::open_read_only(elsewhere.path().join("backup.runs")).unwrap();
    assert_eq!(snapshot(&copy), expected);
    drop(copy);
    // Reads work, and nothing changed, in the store or in the file.
    assert_eq!(snapshot(&store), expected);
    assert_eq!(store.info().unwrap().runs, 1);
    drop((run, store));
    assert!(fs::read(&path).unwrap() == bytes, "the store file changed");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

#[test]
fn open_read_only_follows_commits_of_a_writer_in_the_same_process() {
    let (_dir, path, writer) = new_store();
    writer.init("p", Some("a")).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    let reader_a = reader.run("p/runs/a").unwrap();
    assert_eq!(reader.run_count().unwrap(), 1);

    // Commits made after the reader opened, including one that grows the file by a new column
    // extent (a superblock change the reader must pick up).
    let writer_a = writer.run("p/runs/a").unwrap();
    writer_a.set_description("changed").unwrap();
    writer_a
        .add_output_value(&Value::map([("epoch", 1)]))
        .unwrap();
    let blob = Rng::new(11).bytes(5 * MIB + 17);
    writer_a.put_bulk("weights", &blob).unwrap();
    let writer_b = writer.init("q", Some("b")).unwrap();
    writer_b.set_parameters(&json(r#"{"lr": 0.5}"#)).unwrap();

    assert_eq!(reader_a.description().unwrap(), "changed");
    assert_eq!(
        reader_a.output_values().unwrap(),
        vec![Value::map([("epoch", 1)])]
    );
    assert_bytes_eq(
        &reader_a.bulk_bytes("weights").unwrap(),
        &blob,
        "blob seen by the reader",
    );
    assert_eq!(reader.run_count().unwrap(), 2);
    let reader_b = reader.run("q/runs/b").unwrap();
    assert_eq!(reader_b.parameters().unwrap(), json(r#"{"lr": 0.5}"#));
    assert_eq!(snapshot(&reader), snapshot(&writer));
}

#[test]
fn open_for_writing_twice_in_one_process_is_already_open() {
    let (_dir, path, store) = new_store();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    // The first handle is unaffected.
    store.init("p", Some("r")).unwrap();
    drop(store);
    Store::open(&path).unwrap();
}

#[test]
fn probe_and_open_reject_files_that_are_not_stores_with_not_a_store() {
    let (dir, _) = temp_store();
    let random = dir.path().join("random.bin");
    fs::write(&random, Rng::new(5).bytes(256 * 1024)).unwrap();
    let sqlite = dir.path().join("sqlite.db");
    let mut sqlite_bytes = b"SQLite format 3\0".to_vec();
    sqlite_bytes.extend_from_slice(&[0x10, 0x00, 0x01, 0x01, 0x00, 0x40, 0x20, 0x20]);
    sqlite_bytes.resize(200 * 1024, 0);
    fs::write(&sqlite, &sqlite_bytes).unwrap();
    let empty = dir.path().join("empty.runs");
    fs::write(&empty, b"").unwrap();

    for path in [&random, &sqlite, &empty] {
        let bytes = fs::read(path).unwrap();
        let is_not_a_store = |err: &Error| matches!(err, Error::NotAStore { path: p } if p == path);
        let err = Store::probe(path).unwrap_err();
        assert!(is_not_a_store(&err), "probe {path:?}: {err:?}");
        let err = Store::open(path).unwrap_err();
        assert!(is_not_a_store(&err), "open {path:?}: {err:?}");
        let err = Store::open_read_only(path).unwrap_err();
        assert!(is_not_a_store(&err), "open_read_only {path:?}: {err:?}");
        let err = Store::open_or_create(path).unwrap_err();
        assert!(is_not_a_store(&err), "open_or_create {path:?}: {err:?}");
        let err = check(path).unwrap_err();
        assert!(is_not_a_store(&err), "check {path:?}: {err:?}");
        let err = Store::vacuum(path).unwrap_err();
        assert!(is_not_a_store(&err), "vacuum {path:?}: {err:?}");
        assert!(fs::read(path).unwrap() == bytes, "{path:?} changed");
    }
}

/// Applies `patch` to the 64-byte header of both superblock slots of the closed store at `path`.
fn patch_both_slots(path: &Path, patch: impl Fn(&mut [u8])) {
    const SLOT_BYTES: usize = 64 * 1024;
    let mut bytes = fs::read(path).unwrap();
    for slot in 0..2 {
        let start = slot * SLOT_BYTES;
        assert_eq!(&bytes[start..start + 8], b"RUNSTORE", "slot {slot} magic");
        patch(&mut bytes[start..start + 64]);
    }
    fs::write(path, bytes).unwrap();
}

#[test]
fn open_of_a_store_with_version_99_is_unsupported_version() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    drop(store);
    // The CRC is left stale on purpose: the version is checked first.
    patch_both_slots(&path, |header| {
        header[8..12].copy_from_slice(&99u32.to_le_bytes());
    });
    let is_unsupported = |err: &Error| matches!(err, Error::UnsupportedVersion { path: p, found: 99, supported: 1 } if p == &path);
    let err = Store::probe(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
    let err = Store::open(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
    let err = Store::open_or_create(&path).unwrap_err();
    assert!(is_unsupported(&err), "{err:?}");
}

#[test]
fn open_of_a_store_with_both_superblock_crcs_damaged_is_corrupted() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    drop(store);
    patch_both_slots(&path, |header| {
        for byte in &mut header[60..64] {
            *byte ^= 0xFF;
        }
    });
    let err = Store::probe(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let err = Store::open_read_only(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let err = check(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// init and names
// ---------------------------------------------------------------------------------------------

#[test]
fn init_with_a_name_creates_an_empty_run() {
    let (_dir, _path, store) = new_store();
    let before = now_us();
    let run = store.init("mnist", Some("baseline")).unwrap();
    let after = now_us();
    assert_eq!(run.name(), "baseline");
    assert_eq!(run.project(), "mnist");
    assert_eq!(run.url(), "mnist/runs/baseline");
    assert_eq!(run.bulk_data_url(), "mnist/runs/baseline/bulk_data");
    assert_eq!(run.store().path(), store.path());
    let info = run.info().unwrap();
    assert_eq!(info.url, "mnist/runs/baseline");
    assert_eq!(info.project, "mnist");
    assert_eq!(info.name, "baseline");
    assert_eq!(info.description, "");
    assert_eq!(info.status, RunStatus::Empty);
    assert_eq!(info.parameters, empty_map());
    assert!(info.input_tables.is_empty());
    assert!(info.input_values.is_empty());
    assert_eq!(info.output_count, 0);
    assert!(info.metrics.is_empty());
    assert_eq!(info.created_us, info.last_modified_us);
    assert!(before <= info.created_us && info.created_us <= after);
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
    assert_eq!(run.description().unwrap(), "");
    assert_eq!(run.parameters().unwrap(), empty_map());
    assert!(run.input_tables().unwrap().is_empty());
    assert!(run.input_values().unwrap().is_empty());
    assert!(run.output_values().unwrap().is_empty());
    assert_eq!(run.output_count().unwrap(), 0);
    assert_eq!(run.last_output().unwrap(), None);
    assert!(run.metrics_tables().unwrap().is_empty());
    assert!(run.bulk_list().unwrap().is_empty());
    let projects = store.projects().unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].name, "mnist");
    assert_eq!(projects[0].run_count, 1);
    assert!(before <= projects[0].created_us && projects[0].created_us <= after);
}

#[test]
fn init_without_a_name_generates_unique_adjective_noun_names() {
    let (_dir, _path, store) = new_store();
    let mut names = HashSet::new();
    for _ in 0..200 {
        let run = store.init("p", None).unwrap();
        let name = run.name().to_string();
        let (adjective, noun) = name
            .split_once('-')
            .unwrap_or_else(|| panic!("{name:?} is not adjective-noun"));
        for word in [adjective, noun] {
            assert!(
                !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()),
                "{name:?} is not adjective-noun"
            );
        }
        assert_eq!(run.status().unwrap(), RunStatus::Empty);
        assert!(names.insert(name.clone()), "{name:?} was generated twice");
    }
    assert_eq!(store.run_count().unwrap(), 200);
    let listed: HashSet<String> = store
        .runs(Some("p"))
        .unwrap()
        .iter()
        .map(|run| run.name().to_string())
        .collect();
    assert_eq!(listed, names);
}

#[test]
fn init_rejects_invalid_project_and_run_names_with_invalid_name() {
    let (_dir, _path, store) = new_store();
    let too_long = "x".repeat(257);
    for bad in ["", too_long.as_str(), "a/b", "a\nb"] {
        let is_invalid =
            |err: &Error| matches!(err, Error::InvalidName { name, .. } if name == bad);
        let err = store.init(bad, Some("r")).unwrap_err();
        assert!(is_invalid(&err), "project {bad:?}: {err:?}");
        let err = store.init(bad, None).unwrap_err();
        assert!(is_invalid(&err), "project {bad:?}: {err:?}");
        let err = store.init("p", Some(bad)).unwrap_err();
        assert!(is_invalid(&err), "run {bad:?}: {err:?}");
        for if_exists in [
            InitIfExists::Raise,
            InitIfExists::Rename,
            InitIfExists::Overwrite,
            InitIfExists::Reuse,
        ] {
            let options = InitOptions {
                if_exists,
                ..InitOptions::default()
            };
            let err = store.init_with("p", Some(bad), &options).unwrap_err();
            assert!(is_invalid(&err), "run {bad:?}: {err:?}");
            let err = store.init_with(bad, Some("r"), &options).unwrap_err();
            assert!(is_invalid(&err), "project {bad:?}: {err:?}");
        }
    }
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");

    // 256 bytes is the limit, for both.
    let longest = "y".repeat(256);
    let run = store.init(&longest, Some(&longest)).unwrap();
    assert_eq!(run.name(), longest);
    assert_eq!(run.project(), longest);
    assert_eq!(store.run(&run.url()).unwrap(), run);
    assert_eq!(Run::from_names(&store, &longest, &longest).unwrap(), run);
}

#[test]
fn init_with_rename_of_a_taken_256_byte_name_is_invalid_name() {
    let (_dir, _path, store) = new_store();
    let longest = "z".repeat(256);
    store.init("p", Some(&longest)).unwrap();
    let err = store.init("p", Some(&longest)).unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn init_with_sets_description_and_parameters() {
    let (_dir, _path, store) = new_store();
    let parameters = json(r#"{"lr": 0.01, "epochs": 2, "model": {"depth": 50}}"#);
    let options = InitOptions {
        description: Some("first try".into()),
        parameters: Some(parameters.clone()),
        if_exists: InitIfExists::Raise,
    };
    let run = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(run.description().unwrap(), "first try");
    assert_eq!(run.parameters().unwrap(), parameters);
    assert_eq!(run.status().unwrap(), RunStatus::Empty);
    assert_eq!(store.active_run().unwrap(), run);
}

#[test]
fn init_with_non_map_parameters_is_invalid_value_and_creates_nothing() {
    let (_dir, _path, store) = new_store();
    for parameters in [
        Value::from(1),
        Value::from("lr=0.1"),
        Value::List(vec![Value::from(1)]),
        Value::Null,
    ] {
        let options = InitOptions {
            parameters: Some(parameters),
            ..InitOptions::default()
        };
        let err = store.init_with("p", Some("r"), &options).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 0);
    assert!(store.projects().unwrap().is_empty());
}

#[test]
fn init_with_raise_on_a_taken_name_is_already_exists() {
    let (_dir, _path, store) = new_store();
    let first = store.init("p", Some("r")).unwrap();
    populate(&first, 2);
    let expected = snapshot(&store);
    let options = InitOptions {
        if_exists: InitIfExists::Raise,
        ..InitOptions::default()
    };
    let err = store.init_with("p", Some("r"), &options).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(snapshot(&store), expected);
    // The same name in another project is free.
    let other = store.init_with("q", Some("r"), &options).unwrap();
    assert_eq!(other.url(), "q/runs/r");
}

#[test]
fn init_with_rename_picks_the_first_free_suffix() {
    let (_dir, _path, store) = new_store();
    let rename = InitOptions {
        if_exists: InitIfExists::Rename,
        ..InitOptions::default()
    };
    assert_eq!(InitOptions::default().if_exists, InitIfExists::Rename);
    let first = store.init("p", Some("r")).unwrap();
    populate(&first, 4);
    let expected_first = run_snapshot(&first);
    let second = store.init_with("p", Some("r"), &rename).unwrap();
    assert_eq!(second.name(), "r_0000");
    let third = store.init("p", Some("r")).unwrap();
    assert_eq!(third.name(), "r_0001");
    assert_eq!(third.status().unwrap(), RunStatus::Empty);
    assert_eq!(third.output_count().unwrap(), 0);
    assert_eq!(run_snapshot(&first), expected_first);
    let names: Vec<String> = store
        .runs(Some("p"))
        .unwrap()
        .iter()
        .map(|run| run.name().to_string())
        .collect();
    assert_eq!(names, ["r", "r_0000", "r_0001"]);
}

#[test]

fn init_with_rename_reuses_a_freed_suffix() {
    let (_dir, _path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    let second = store.init("p", Some("r")).unwrap();
    let third = store.init("p", Some("r")).unwrap();
    assert_eq!(third.name(), "r_0001");
    second.delete().unwrap();
    let fourth = store.init("p", Some("r")).unwrap();
    assert_eq!(fourth.name(), "r_0000");
    assert_ne!(fourth.id(), second.id());
}

#[test]

fn init_with_overwrite_replaces_the_old_run() {
    let (_dir, _path, store) = new_store();
    let old = store.init("p", Some("r")).unwrap();
    populate(&old, 5);
    let bystander = store.init("p", Some("other")).unwrap();
    populate(&bystander, 6);
    let expected_bystander = run_snapshot(&bystander);
    let options = InitOptions {
        if_exists: InitIfExists::Overwrite,
        ..InitOptions::default()
    };
    let new = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(new.url(), "p/runs/r");
    assert_ne!(new.id(), old.id());
    assert_eq!(new.status().unwrap(), RunStatus::Empty);
    assert_eq!(new.description().unwrap(), "");
    assert_eq!(new.parameters().unwrap(), empty_map());
    assert!(new.input_tables().unwrap().is_empty());
    assert!(new.input_values().unwrap().is_empty());
    assert_eq!(new.output_count().unwrap(), 0);
    assert!(new.output_values().unwrap().is_empty());
    assert!(new.bulk_list().unwrap().is_empty());
    let err = new.bulk_bytes("model.bin").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    // The old handle points at a run that is gone.
    let err = old.info().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 2);
    let info = store.info().unwrap();
    assert_eq!(info.outputs, 5);
    assert_eq!(info.inputs, 1);
    assert_eq!(info.blobs, 2);
    assert_eq!(run_snapshot(&bystander), expected_bystander);
    assert_eq!(store.active_run().unwrap(), new);
}

#[test]
fn init_with_reuse_returns_the_same_run_with_status_running() {
    let (_dir, _path, store) = new_store();
    let first = store.init("p", Some("r")).unwrap();
    populate(&first, 8);
    let before = run_snapshot(&first);
    assert_eq!(before.info.status, RunStatus::Completed);
    store.init("p", Some("other")).unwrap();
    let options = InitOptions {
        if_exists: InitIfExists::Reuse,
        ..InitOptions::default()
    };
    let reused = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(reused, first);
    assert_eq!(reused.id(), first.id());
    assert_eq!(reused.url(), "p/runs/r");
    let after = run_snapshot(&reused);
    assert_eq!(after.info.status, RunStatus::Running);
    assert_eq!(after.info.created_us, before.info.created_us);
    assert!(after.info.last_modified_us >= before.info.last_modified_us);
    assert_eq!(after.info.parameters, before.info.parameters);
    assert_eq!(after.info.input_values, before.info.input_values);
    assert_eq!(after.outputs, before.outputs);
    assert_eq!(after.blobs, before.blobs);
    assert_eq!(store.run_count().unwrap(), 2);
    assert_eq!(store.active_run().unwrap(), first);
}

#[test]
fn init_with_reuse_of_a_free_name_creates_the_run() {
    let (_dir, _path, store) = new_store();
    let options = InitOptions {
        if_exists: InitIfExists::Reuse,
        ..InitOptions::default()
    };
    let run = store.init_with("p", Some("r"), &options).unwrap();
    assert_eq!(run.url(), "p/runs/r");
    assert_eq!(store.run_count().unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// The active run
// ---------------------------------------------------------------------------------------------

#[test]
fn active_run_with_none_set_is_no_active_run() {
    let (_dir, path, store) = new_store();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");
    store.init("p", Some("r")).unwrap();
    drop(store);
    // The active run belongs to a handle, not to the file.
    let store = Store::open(&path).unwrap();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");
}

#[test]
fn init_makes_the_new_run_active_for_every_clone_of_the_handle() {
    let (_dir, _path, store) = new_store();
    let clone = store.clone();
    let a = store.init("p", Some("a")).unwrap();
    assert_eq!(store.active_run().unwrap(), a);
    assert_eq!(clone.active_run().unwrap(), a);
    let b = clone.init("p", Some("b")).unwrap();
    assert_eq!(store.active_run().unwrap(), b);
    assert_eq!(store.active_run().unwrap().url(), "p/runs/b");
    // Looking a run up does not change the active run.
    Run::from_url(&store, "p/runs/a").unwrap();
    Run::from_names(&store, "a", "p").unwrap();
    store.run("p/runs/a").unwrap();
    assert_eq!(store.active_run().unwrap(), b);
}

#[test]
fn set_active_run_and_set_active_run_url_switch_the_active_run() {
    let (_dir, _path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    let b = store.init("p", Some("b")).unwrap();
    store.set_active_run(&a).unwrap();
    assert_eq!(store.active_run().unwrap(), a);
    store.set_active_run_url("p/runs/b").unwrap();
    assert_eq!(store.active_run().unwrap(), b);

    // Failures leave the active run as it was.
    let err = store.set_active_run_url("p/run/a").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    let err = store.set_active_run_url("p/runs/missing").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let (_other_dir, _other_path, other) = new_store();
    let foreign = other.init("p", Some("a")).unwrap();
    let err = store.set_active_run(&foreign).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(store.active_run().unwrap(), b);
    assert_eq!(other.active_run().unwrap(), foreign);
}

#[test]

fn set_active_run_of_a_deleted_run_is_not_found() {
    let (_dir, _path, store) = new_store();
    let doomed = store.init("p", Some("doomed")).unwrap();
    let b = store.init("p", Some("b")).unwrap();
    doomed.delete().unwrap();
    let err = store.set_active_run(&doomed).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store.set_active_run_url("p/runs/doomed").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.active_run().unwrap(), b);
}

#[test]

fn active_run_deleted_is_no_active_run() {
    let (_dir, _path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    a.delete().unwrap();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");

    store.init("p", Some("b")).unwrap();
    store.delete_run("p/runs/b").unwrap();
    let err = store.active_run().unwrap_err();
    assert!(matches!(err, Error::NoActiveRun), "{err:?}");

    // A new run of the deleted run's name is a new run, and the active one.
    let again = store.init("p", Some("a")).unwrap();
    assert_ne!(again.id(), a.id());
    assert_eq!(store.active_run().unwrap(), again);
}

// ---------------------------------------------------------------------------------------------
// Looking runs up
// ---------------------------------------------------------------------------------------------

#[test]
fn run_from_url_from_names_and_store_run_find_the_same_run() {
    let (_dir, _path, store) = new_store();
    let run = store.init("proj", Some("r1")).unwrap();
    store.init("proj", Some("r2")).unwrap();
    let by_url = Run::from_url(&store, "proj/runs/r1").unwrap();
    let by_names = Run::from_names(&store, "r1", "proj").unwrap();
    let by_store = store.run("proj/runs/r1").unwrap();
    for found in [&by_url, &by_names, &by_store] {
        assert_eq!(found, &run);
        assert_eq!(found.id(), run.id());
        assert_eq!(found.name(), "r1");
        assert_eq!(found.project(), "proj");
        assert_eq!(found.url(), "proj/runs/r1");
        assert_eq!(found.bulk_data_url(), "proj/runs/r1/bulk_data");
    }
    assert_ne!(store.run("proj/runs/r2").unwrap().id(), run.id());
    assert_eq!(run_url("proj", "r1"), "proj/runs/r1");
    assert_eq!(
        parse_run_url("proj/runs/r1").unwrap(),
        ("proj".to_string(), "r1".to_string())
    );
    // A run handle reads the latest commit, whichever handle made it.
    by_url.set_description("via url").unwrap();
    assert_eq!(by_names.description().unwrap(), "via url");
}

#[test]
fn run_from_url_rejects_malformed_urls_with_invalid_url() {
    let (_dir, _path, store) = new_store();
    store.init("p", Some("x")).unwrap();
    for bad in [
        "p/run/x",
        "p/runs",
        "p/runs/x/y",
        "/runs/x",
        "p/runs/",
        "",
        "p",
        "p/runs/x/",
        "p/tables/x",
    ] {
        let is_invalid = |err: &Error| matches!(err, Error::InvalidUrl { url, .. } if url == bad);
        let err = Run::from_url(&store, bad).unwrap_err();
        assert!(is_invalid(&err), "from_url {bad:?}: {err:?}");
        let err = store.run(bad).unwrap_err();
        assert!(is_invalid(&err), "run {bad:?}: {err:?}");
        let err = parse_run_url(bad).unwrap_err();
        assert!(is_invalid(&err), "parse_run_url {bad:?}: {err:?}");
        let err = store.delete_run(bad).unwrap_err();
        assert!(is_invalid(&err), "delete_run {bad:?}: {err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn run_from_url_of_a_missing_run_is_not_found() {
    let (_dir, _path, store) = new_store();
    store.init("p", Some("x")).unwrap();
    for (project, name) in [("p", "y"), ("q", "x"), ("p", "X")] {
        let url = run_url(project, name);
        let err = Run::from_url(&store, &url).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = store.run(&url).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = Run::from_names(&store, name, project).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
        let err = store.run_by_names(name, project).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{url}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Description and times
// ---------------------------------------------------------------------------------------------

#[test]
fn set_description_round_trips_any_text() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    for text in ["a first try", "ünïcode ✓ and\nnewlines\ttoo", "", "final"] {
        run.set_description(text).unwrap();
        assert_eq!(run.description().unwrap(), text);
        assert_eq!(run.info().unwrap().description, text);
    }
    drop((run, store));
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.run("p/runs/r").unwrap().description().unwrap(),
        "final"
    );
}

/// One change to a run, named by the method it calls.
type Change<'a> = Box<dyn Fn(&Run) + 'a>;

#[test]
fn run_times_are_utc_microseconds_and_last_modified_moves_forward_on_each_change() {
    let (_dir, _path, store) = new_store();
    let before = now_us();
    let run = store.init("p", Some("r")).unwrap();
    let created = run.created().unwrap();
    assert!(
        (US_2020..US_2100).contains(&created),
        "{created} is not microseconds"
    );
    assert!(before <= created && created <= now_us());
    assert_eq!(run.last_modified().unwrap(), created);

    let map = Value::map([("k", 1)]);
    let changes: Vec<(&str, Change)> = vec![
        (
            "set_description",
            Box::new(|r| r.set_description("d").unwrap()),
        ),
        (
            "set_parameters",
            Box::new(|r| r.set_parameters(&Value::map([("lr", 0.1)])).unwrap()),
        ),
        (
            "add_input_table",
            Box::new(|r| r.add_input_table("t").unwrap()),
        ),
        (
            "add_input_value",
            Box::new(|r| r.add_input_value(&map).unwrap()),
        ),
        (
            "add_output_value",
            Box::new(|r| r.add_output_value(&map).unwrap()),
        ),
        (
            "add_output_values",
            Box::new(|r| r.add_output_values(&[map.clone(), map.clone()]).unwrap()),
        ),
        (
            "set_status_running",
            Box::new(|r| r.set_status_running().unwrap()),
        ),
        (
            "set_status",
            Box::new(|r| r.set_status(RunStatus::Paused).unwrap()),
        ),
        (
            "put_bulk",
            Box::new(|r| {
                r.put_bulk("b", b"x").unwrap();
            }),
        ),
        ("delete_bulk", Box::new(|r| r.delete_bulk("b").unwrap())),
    ];
    let mut previous = created;
    for (what, change) in &changes {
        std::thread::sleep(Duration::from_millis(1));
        let earliest = now_us();
        change(&run);
        let latest = now_us();
        let modified = run.last_modified().unwrap();
        assert!(modified > previous, "{what}: {modified} <= {previous}");
        assert!(
            earliest <= modified && modified <= latest,
            "{what}: {modified} outside [{earliest}, {latest}]"
        );
        assert_eq!(run.created().unwrap(), created, "{what} moved created");
        assert_eq!(run.info().unwrap().last_modified_us, modified);
        previous = modified;
    }
    // Reading changes nothing.
    run.info().unwrap();
    run.output_values().unwrap();
    assert_eq!(run.last_modified().unwrap(), previous);
}

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

#[test]
fn set_parameters_merges_top_level_keys_like_dict_update() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.set_parameters(&json(
        r#"{"lr": 0.1, "epochs": 10, "model": {"depth": 50, "width": 2}}"#,
    ))
    .unwrap();
    run.set_parameters(&json(
        r#"{"epochs": 20, "model": {"depth": 101}, "seed": 7}"#,
    ))
    .unwrap();
    // Top-level keys overwrite; a nested map is replaced whole, not merged.
    assert_eq!(
        run.parameters().unwrap(),
        json(r#"{"lr": 0.1, "epochs": 20, "model": {"depth": 101}, "seed": 7}"#)
    );
    // An empty map changes nothing.
    run.set_parameters(&empty_map()).unwrap();
    assert_eq!(
        run.info().unwrap().parameters,
        json(r#"{"lr": 0.1, "epochs": 20, "model": {"depth": 101}, "seed": 7}"#)
    );
    // A key can be set to null.
    run.set_parameters(&json(r#"{"seed": null}"#)).unwrap();
    assert_eq!(run.parameters().unwrap().get("seed"), Some(&Value::Null));
}

#[test]
fn set_parameters_round_trips_nested_values_of_every_kind() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut inner = std::collections::BTreeMap::new();
    inner.insert("empty_list".to_string(), Value::List(vec![]));
    inner.insert("empty_map".to_string(), empty_map());
    inner.insert(
        "deep".to_string(),
        json(r#"{"a": {"b": {"c": {"d": [1, [2, [3, {"e": "f"}]]]}}}}"#),
    );
    let parameters = Value::map([
        ("null", Value::Null),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("int_min", Value::Int(i64::MIN)),
        ("int_max", Value::Int(i64::MAX)),
        ("float", Value::Float(-1.5e-300)),
        ("negative_zero", Value::Float(-0.0)),
        ("infinity", Value::Float(f64::INFINITY)),
        ("text", Value::from("ünïcode ✓ \"quoted\"\n")),
        ("", Value::from("empty key")),
        (
            "list",
            Value::List(vec![Value::from(1), Value::from("two"), Value::Null]),
        ),
        ("nested", Value::Map(inner)),
    ]);
    run.set_parameters(&parameters).unwrap();
    assert_eq!(run.parameters().unwrap(), parameters);
    let stored = run.parameters().unwrap();
    let zero = stored.get("negative_zero").unwrap().as_f64().unwrap();
    assert!(zero == 0.0 && zero.is_sign_negative(), "-0.0 lost its sign");
    drop((run, store));
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.run("p/runs/r").unwrap().parameters().unwrap(),
        parameters
    );
}

#[test]
fn set_parameters_round_trips_a_1_mb_config() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut rng = Rng::new(42);
    let parameters = Value::map((0..1000).map(|i| {
        let text: String = (0..1000)
            .map(|_| char::from(b'a' + rng.below(26) as u8))
            .collect();
        (
            format!("key-{i:04}"),
            Value::map([
                ("text", Value::from(text)),
                ("index", Value::from(i)),
                ("weight", Value::from(f64::from(i) * 0.5)),
            ]),
        )
    }));
    assert!(parameters.encode().len() > MIB, "the config is under 1 MB");
    run.set_parameters(&parameters).unwrap();
    assert!(run.parameters().unwrap() == parameters, "parameters differ");
    drop((run, store));
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/r").unwrap();
    assert!(
        run.parameters().unwrap() == parameters,
        "parameters differ after reopening"
    );
}

#[test]
fn set_parameters_of_a_non_map_is_invalid_value_and_changes_nothing() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.set_parameters(&json(r#"{"lr": 0.1}"#)).unwrap();
    let before = run.info().unwrap();
    let mut too_deep = Value::map([("leaf", 1)]);
    for _ in 0..70 {
        too_deep = Value::map([("x", too_deep)]);
    }
    for bad in [
        Value::from(3),
        Value::from("lr=0.1"),
        Value::List(vec![json(r#"{"lr": 0.2}"#)]),
        Value::Null,
        Value::Bool(true),
        Value::Float(0.2),
        too_deep,
    ] {
        let err = run.set_parameters(&bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidValue { .. }),
            "{}: {err:?}",
            bad.type_name()
        );
    }
    assert_eq!(run.info().unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// Inputs and outputs
// ---------------------------------------------------------------------------------------------

#[test]
fn add_input_table_keeps_order_and_does_not_repeat_duplicates() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    for table in [
        "data/tables/train",
        "s3://bucket/val.parquet",
        "data/tables/train",
        "data/tables/test",
        "s3://bucket/val.parquet",
    ] {
        run.add_input_table(table).unwrap();
    }
    let expected = [
        "data/tables/train",
        "s3://bucket/val.parquet",
        "data/tables/test",
    ];
    assert_eq!(run.input_tables().unwrap(), expected);
    assert_eq!(run.info().unwrap().input_tables, expected);
    let before = run.info().unwrap();
    for bad in ["", "a\nb", "tab\there"] {
        let err = run.add_input_table(bad).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidUrl { url, .. } if url == bad),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(run.info().unwrap(), before);
}

#[test]
fn add_input_value_adds_an_identical_map_once() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let a = json(r#"{"split": "train", "size": 100}"#);
    let same_as_a = Value::map([("size", Value::from(100)), ("split", Value::from("train"))]);
    let b = json(r#"{"split": "val", "size": 100}"#);
    run.add_input_value(&a).unwrap();
    run.add_input_value(&same_as_a).unwrap();
    run.add_input_value(&b).unwrap();
    run.add_input_value(&a).unwrap();
    assert_eq!(run.input_values().unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(run.info().unwrap().input_values, vec![a, b]);
    assert_eq!(store.info().unwrap().inputs, 2);
    let before = run.info().unwrap();
    for bad in [
        Value::from(1),
        Value::from("x"),
        Value::List(vec![]),
        Value::Null,
    ] {
        let err = run.add_input_value(&bad).unwrap_err();
        assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    }
    assert_eq!(run.info().unwrap(), before);
}

#[test]
fn add_output_value_appends_in_order() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    assert_eq!(run.last_output().unwrap(), None);
    let outputs: Vec<Value> = (0..10)
        .map(|epoch| {
            Value::map([
                ("epoch", Value::from(epoch)),
                ("average_loss", Value::from(0.1 / f64::from(epoch + 1))),
            ])
        })
        .collect();
    for (i, output) in outputs.iter().enumerate() {
        run.add_output_value(output).unwrap();
        assert_eq!(run.output_count().unwrap(), i as u64 + 1);
        assert_eq!(run.last_output().unwrap().as_ref(), Some(output));
    }
    // The same value twice is two outputs.
    run.add_output_value(&outputs[9]).unwrap();
    let mut expected = outputs.clone();
    expected.push(outputs[9].clone());
    assert_eq!(run.output_values().unwrap(), expected);
    assert_eq!(run.info().unwrap().output_count, 11);
    assert_eq!(run.output_values_range(2, 5).unwrap(), outputs[2..5]);
    assert_eq!(run.output_values_range(0, 1).unwrap(), outputs[0..1]);
    assert_eq!(run.output_values_range(9, 100).unwrap(), expected[9..]);
    assert!(run.output_values_range(5, 5).unwrap().is_empty());
    assert!(run.output_values_range(5, 2).unwrap().is_empty());
    assert!(run.output_values_range(11, u64::MAX).unwrap().is_empty());
    assert_eq!(store.info().unwrap().outputs, 11);
}

#[test]
fn add_output_values_appends_a_batch_in_order() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let other = store.init("p", Some("other")).unwrap();
    run.add_output_value(&Value::map([("step", 0)])).unwrap();
    let batch: Vec<Value> = (1..=100).map(|step| Value::map([("step", step)])).collect();
    run.add_output_values(&batch).unwrap();
    other.add_output_values(&batch[..3]).unwrap();
    run.add_output_values(&[]).unwrap();
    assert_eq!(run.output_count().unwrap(), 101);
    let outputs = run.output_values().unwrap();
    for (step, output) in outputs.iter().enumerate() {
        assert_eq!(output, &Value::map([("step", step as i64)]));
    }
    assert_eq!(
        run.last_output().unwrap(),
        Some(Value::map([("step", 100)]))
    );
    assert_eq!(other.output_values().unwrap(), batch[..3]);
}

#[test]
fn add_output_values_with_one_non_map_adds_none() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.add_output_value(&Value::map([("epoch", 0)])).unwrap();
    let before = run_snapshot(&run);
    let batch = vec![
        Value::map([("epoch", 1)]),
        Value::map([("epoch", 2)]),
        Value::from(3),
        Value::map([("epoch", 4)]),
    ];
    let err = run.add_output_values(&batch).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    let err = run.add_output_value(&Value::from("loss=0.1")).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err:?}");
    assert_eq!(run_snapshot(&run), before);
    assert_eq!(run.output_count().unwrap(), 1);
    assert_eq!(store.info().unwrap().outputs, 1);
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/// A `Run::set_status_*` method.
type StatusSetter = fn(&Run) -> runstore::Result<()>;

#[test]
fn set_status_methods_set_each_status_with_its_3lc_code() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let setters: [(StatusSetter, RunStatus, u8, &str); 7] = [
        (
            Run::set_status_completed,
            RunStatus::Completed,
            1,
            "COMPLETED",
        ),
        (Run::set_status_empty, RunStatus::Empty, 2, "EMPTY"),
        (Run::set_status_running, RunStatus::Running, 3, "RUNNING"),
        (
            Run::set_status_collecting,
            RunStatus::Collecting,
            4,
            "COLLECTING",
        ),
        (
            Run::set_status_post_processing,
            RunStatus::PostProcessing,
            5,
            "POST_PROCESSING",
        ),
        (Run::set_status_paused, RunStatus::Paused, 6, "PAUSED"),
        (
            Run::set_status_cancelled,
            RunStatus::Cancelled,
            7,
            "CANCELLED",
        ),
    ];
    for (set, status, code, name) in setters {
        set(&run).unwrap();
        assert_eq!(run.status().unwrap(), status);
        assert_eq!(run.info().unwrap().status, status);
        assert_eq!(status.code(), code);
        assert_eq!(status.name(), name);
        assert_eq!(status.to_string(), name);
        assert_eq!(RunStatus::from_code(f64::from(code)).unwrap(), status);
    }
    assert_eq!(RunStatus::ALL.map(RunStatus::code), [1, 2, 3, 4, 5, 6, 7]);
    for status in RunStatus::ALL {
        run.set_status(status).unwrap();
        assert_eq!(run.status().unwrap(), status);
    }
}

#[test]
fn run_status_from_code_outside_1_to_7_is_invalid_status() {
    for code in [0.0, 8.0, 2.5, -1.0, 1.000_001, f64::INFINITY] {
        let err = RunStatus::from_code(code).unwrap_err();
        assert!(
            matches!(err, Error::InvalidStatus { code: c } if c == code),
            "{code}: {err:?}"
        );
    }
    let err = RunStatus::from_code(f64::NAN).unwrap_err();
    assert!(
        matches!(err, Error::InvalidStatus { code } if code.is_nan()),
        "{err:?}"
    );
    assert_eq!(RunStatus::from_code(3.0).unwrap(), RunStatus::Running);
}

#[test]
fn run_status_parse_reads_names_and_codes() {
    let cases = [
        ("COMPLETED", RunStatus::Completed),
        ("completed", RunStatus::Completed),
        ("Empty", RunStatus::Empty),
        (" running ", RunStatus::Running),
        ("collecting", RunStatus::Collecting),
        ("POST_PROCESSING", RunStatus::PostProcessing),
        ("post-processing", RunStatus::PostProcessing),
        ("paused", RunStatus::Paused),
        ("CANCELLED", RunStatus::Cancelled),
        ("1", RunStatus::Completed),
        ("3", RunStatus::Running),
        ("5.0", RunStatus::PostProcessing),
        ("7", RunStatus::Cancelled),
    ];
    for (text, status) in cases {
        assert_eq!(RunStatus::parse(text).unwrap(), status, "{text:?}");
    }
    for status in RunStatus::ALL {
        assert_eq!(RunStatus::parse(status.name()).unwrap(), status);
        assert_eq!(
            RunStatus::parse(&status.code().to_string()).unwrap(),
            status
        );
    }
    for text in ["0", "8", "2.5"] {
        let err = RunStatus::parse(text).unwrap_err();
        assert!(
            matches!(err, Error::InvalidStatus { .. }),
            "{text:?}: {err:?}"
        );
    }
    for text in ["done", "", "POSTPROCESSING", "running!"] {
        let err = RunStatus::parse(text).unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. }),
            "{text:?}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk data
// ---------------------------------------------------------------------------------------------

#[test]
fn put_bulk_round_trips_and_bulk_list_lists_blobs_by_name() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let mut rng = Rng::new(3);
    let weights = rng.bytes(300_000);
    let before = now_us();
    assert_eq!(run.put_bulk("weights.bin", &weights).unwrap(), 300_000);
    assert_eq!(run.put_bulk("a-first.txt", b"hello").unwrap(), 5);
    assert_eq!(run.put_bulk("empty", b"").unwrap(), 0);
    let after = now_us();
    assert_bytes_eq(
        &run.bulk_bytes("weights.bin").unwrap(),
        &weights,
        "weights.bin",
    );
    assert_eq!(run.bulk_bytes("a-first.txt").unwrap(), b"hello");
    assert_eq!(run.bulk_bytes("empty").unwrap(), b"");
    let list = run.bulk_list().unwrap();
    let names: Vec<(&str, u64)> = list.iter().map(|b| (b.name.as_str(), b.len)).collect();
    assert_eq!(
        names,
        [("a-first.txt", 5), ("empty", 0), ("weights.bin", 300_000)]
    );
    for blob in &list {
        assert!(
            before <= blob.created_us && blob.created_us <= after,
            "{blob:?}"
        );
    }
    assert_eq!(store.info().unwrap().blobs, 3);
    // Another run's blobs are its own.
    let other = store.init("p", Some("other")).unwrap();
    assert!(other.bulk_list().unwrap().is_empty());
    let err = other.bulk_bytes("a-first.txt").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    drop((run, other, store));
    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/r").unwrap();
    assert_bytes_eq(
        &run.bulk_bytes("weights.bin").unwrap(),
        &weights,
        "weights.bin after reopening",
    );
    assert_eq!(run.bulk_list().unwrap(), list);
}

#[test]
fn put_bulk_from_streams_9_mib_in_three_chunks_and_bulk_streams_it_back() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    assert_eq!(BLOB_CHUNK_BYTES, 4 * MIB);
    let data = Rng::new(9).bytes(9 * MIB);
    let mut reader = ChunkyReader {
        data: data.clone(),
        position: 0,
        step: 65_521,
    };
    assert_eq!(
        run.put_bulk_from("checkpoint", &mut reader).unwrap(),
        9 * MIB as u64
    );
    assert_eq!(run.bulk_list().unwrap()[0].len, 9 * MIB as u64);

    // One read hands out at most one chunk: 4 MiB, 4 MiB, 1 MiB, then the end.
    let mut stream = run.bulk("checkpoint").unwrap();
    let mut buf = vec![0u8; 16 * MIB];
    let mut sizes = Vec::new();
    let mut streamed = Vec::new();
    loop {
        let n = stream.read(&mut buf).unwrap();
        sizes.push(n);
        if n == 0 {
            break;
        }
        streamed.extend_from_slice(&buf[..n]);
    }
    assert_eq!(sizes, [4 * MIB, 4 * MIB, MIB, 0]);
    assert_bytes_eq(&streamed, &data, "streamed back with large reads");
    // A reader holds the store open, as a clone of the handle does.
    drop(stream);

    // Small reads see the same bytes.
    let mut stream = run.bulk("checkpoint").unwrap();
    let mut small = Vec::new();
    let mut piece = [0u8; 1000];
    loop {
        let n = stream.read(&mut piece).unwrap();
        if n == 0 {
            break;
        }
        small.extend_from_slice(&piece[..n]);
    }
    assert_bytes_eq(&small, &data, "streamed back with small reads");
    assert_bytes_eq(&run.bulk_bytes("checkpoint").unwrap(), &data, "bulk_bytes");
    drop((stream, run, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.blobs, 1);
    assert_eq!(report.segment_bytes, 9 * MIB as u64);
}

#[test]
fn put_bulk_of_an_existing_name_replaces_the_blob() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.put_bulk("b", &Rng::new(1).bytes(5 * MIB)).unwrap();
    run.put_bulk("keep", b"kept").unwrap();
    assert_eq!(run.put_bulk("b", b"short").unwrap(), 5);
    assert_eq!(run.bulk_bytes("b").unwrap(), b"short");
    assert_eq!(run.bulk_bytes("keep").unwrap(), b"kept");
    let list = run.bulk_list().unwrap();
    let names: Vec<(&str, u64)> = list.iter().map(|b| (b.name.as_str(), b.len)).collect();
    assert_eq!(names, [("b", 5), ("keep", 4)]);
    assert_eq!(store.info().unwrap().blobs, 2);
}

#[test]
fn delete_bulk_removes_the_blob_and_a_missing_blob_is_not_found() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    run.put_bulk("a", b"aaa").unwrap();
    run.put_bulk("b", b"bbb").unwrap();
    run.delete_bulk("a").unwrap();
    for result in [
        run.bulk("a").map(|_| ()),
        run.bulk_bytes("a").map(|_| ()),
        run.delete_bulk("a"),
        run.delete_bulk("never-there"),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }
    assert_eq!(run.bulk_bytes("b").unwrap(), b"bbb");
    let names: Vec<String> = run
        .bulk_list()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["b"]);
    // The name is free again.
    run.put_bulk("a", b"again").unwrap();
    assert_eq!(run.bulk_bytes("a").unwrap(), b"again");
}

#[test]
fn put_bulk_with_an_invalid_name_is_invalid_name_and_stores_nothing() {
    let (_dir, _path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    let before = run.info().unwrap();
    let too_long = "n".repeat(257);
    for bad in ["", "a/b", "line\nbreak", too_long.as_str()] {
        let is_invalid =
            |err: &Error| matches!(err, Error::InvalidName { name, .. } if name == bad);
        let err = run.put_bulk(bad, b"bytes").unwrap_err();
        assert!(is_invalid(&err), "{bad:?}: {err:?}");
        let err = run.put_bulk_from(bad, &mut &b"bytes"[..]).unwrap_err();
        assert!(is_invalid(&err), "{bad:?}: {err:?}");
    }
    assert!(run.bulk_list().unwrap().is_empty());
    assert_eq!(run.info().unwrap(), before);
    assert_eq!(store.info().unwrap().column_used_bytes, 0);
    let longest = "n".repeat(256);
    run.put_bulk(&longest, b"ok").unwrap();
    assert_eq!(run.bulk_bytes(&longest).unwrap(), b"ok");
}

#[test]
fn bulk_of_a_corrupted_chunk_fails_and_check_reports_it() {
    let (_dir, path, store) = new_store();
    let marker = b"<<api-test corruption marker 5b1f0c7e 91d2a4>>";
    let mut blob = Rng::new(77).bytes(MIB);
    blob[500_000..500_000 + marker.len()].copy_from_slice(marker);
    let healthy = Rng::new(78).bytes(200_000);
    let run = store.init("p", Some("victim")).unwrap();
    run.put_bulk("damaged", &blob).unwrap();
    run.put_bulk("fine", &healthy).unwrap();
    store
        .init("p", Some("bystander"))
        .unwrap()
        .put_bulk("fine", &healthy)
        .unwrap();
    drop((run, store));

    flip_a_byte_of_marker(&path, marker);

    let store = Store::open(&path).unwrap();
    let run = store.run("p/runs/victim").unwrap();
    let err = run.bulk_bytes("damaged").unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    let mut stream = run.bulk("damaged").unwrap();
    let mut out = Vec::new();
    let err = stream.read_to_end(&mut out).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err:?}");
    assert!(
        out.is_empty(),
        "bytes of a chunk failing its CRC were handed out"
    );
    // The rest of the store reads fine.
    assert_bytes_eq(&run.bulk_bytes("fine").unwrap(), &healthy, "fine");
    assert_bytes_eq(
        &store
            .run("p/runs/bystander")
            .unwrap()
            .bulk_bytes("fine")
            .unwrap(),
        &healthy,
        "bystander",
    );
    drop((stream, run, store));

    let report = check(&path).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains("damaged") && report.problems[0].contains("checksum"),
        "{:?}",
        report.problems
    );
    assert_eq!(report.runs, 2);
    assert_eq!(report.blobs, 3);
    // A catalog-only check does not read column data, so it cannot see this damage.
    let catalog_only =
        runstore::check_with(&path, &runstore::CheckOptions { column_data: false }).unwrap();
    assert!(catalog_only.is_ok(), "{:?}", catalog_only.problems);
    assert_eq!(catalog_only.segment_bytes, 0);
    // Vacuum refuses to carry corrupt bytes into a new file, and leaves the store as it was.
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert_eq!(check(&path).unwrap().problems, report.problems);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.run_count().unwrap(), 2);
    let run = store.run("p/runs/victim").unwrap();
    let err = run.bulk_bytes("damaged").unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert_bytes_eq(
        &run.bulk_bytes("fine").unwrap(),
        &healthy,
        "fine after vacuum",
    );
}

#[test]

fn vacuum_that_fails_leaves_no_temp_file() {
    let (dir, path, store) = new_store();
    let marker = b"<<api-test vacuum marker 0c44e1 7d9b>>";
    let mut blob = Rng::new(79).bytes(3 * MIB);
    blob[2 * MIB..2 * MIB + marker.len()].copy_from_slice(marker);
    let run = store.init("p", Some("r")).unwrap();
    run.put_bulk("fine", &Rng::new(80).bytes(MIB)).unwrap();
    run.put_bulk("zz-damaged", &blob).unwrap();
    drop((run, store));
    flip_a_byte_of_marker(&path, marker);
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err:?}");
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// Copy
// ---------------------------------------------------------------------------------------------

#[test]
fn copy_without_options_goes_next_to_the_source_as_name_0000() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 10);
    let expected_source = run_snapshot(&source);
    let first = source.copy(&CopyOptions::default()).unwrap();
    assert_eq!(first.url(), "p/runs/r_0000");
    assert_ne!(first.id(), source.id());
    assert_same_content(&first, &source);
    let second = source.copy(&CopyOptions::default()).unwrap();
    assert_eq!(second.url(), "p/runs/r_0001");
    assert_same_content(&second, &source);
    assert_eq!(run_snapshot(&source), expected_source);
    assert_eq!(store.run("p/runs/r_0000").unwrap(), first);
    assert_eq!(store.run_count().unwrap(), 3);
    let info = store.info().unwrap();
    assert_eq!(info.outputs, 15);
    assert_eq!(info.inputs, 3);
    assert_eq!(info.blobs, 6);
    // Copying does not change the active run.
    assert_eq!(store.active_run().unwrap(), source);
}

#[test]
fn copy_with_run_name_uses_that_name_in_the_source_project() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 11);
    let copy = source
        .copy(&CopyOptions {
            run_name: Some("r-copy".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(copy.url(), "p/runs/r-copy");
    assert_same_content(&copy, &source);
}

#[test]
fn copy_with_project_name_creates_the_project() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 12);
    let before = now_us();
    let copy = source
        .copy(&CopyOptions {
            project_name: Some("archive".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(copy.url(), "archive/runs/r");
    assert_eq!(copy.project(), "archive");
    assert_same_content(&copy, &source);
    let projects = store.projects().unwrap();
    let names: Vec<(&str, u64)> = projects
        .iter()
        .map(|p| (p.name.as_str(), p.run_count))
        .collect();
    assert_eq!(names, [("archive", 1), ("p", 1)]);
    assert!(projects[0].created_us >= before);
    let both = source
        .copy(&CopyOptions {
            run_name: Some("renamed".into()),
            project_name: Some("other".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(both.url(), "other/runs/renamed");
    assert_same_content(&both, &source);
}

#[test]
fn copy_with_destination_url_copies_there() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 13);
    let copy = source
        .copy(&CopyOptions {
            destination_url: Some("q/runs/z".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(copy.url(), "q/runs/z");
    assert_same_content(&copy, &source);
    for bad in ["q/run/z", "q/runs", "q/runs/z/w", "/runs/z"] {
        let err = source
            .copy(&CopyOptions {
                destination_url: Some(bad.into()),
                ..CopyOptions::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidUrl { .. }), "{bad:?}: {err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 2);
}

#[test]
fn copy_with_url_and_names_together_is_invalid_input() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    for options in [
        CopyOptions {
            destination_url: Some("q/runs/z".into()),
            run_name: Some("z".into()),
            ..CopyOptions::default()
        },
        CopyOptions {
            destination_url: Some("q/runs/z".into()),
            project_name: Some("q".into()),
            ..CopyOptions::default()
        },
    ] {
        let err = source.copy(&options).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn copy_with_invalid_names_is_invalid_name() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    for options in [
        CopyOptions {
            run_name: Some("a/b".into()),
            ..CopyOptions::default()
        },
        CopyOptions {
            project_name: Some(String::new()),
            ..CopyOptions::default()
        },
        CopyOptions {
            run_name: Some("x".repeat(257)),
            ..CopyOptions::default()
        },
    ] {
        let err = source.copy(&options).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    }
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn copy_if_exists_raise_and_rename() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 14);
    let target = store.init("p", Some("t")).unwrap();
    populate(&target, 15);
    target.put_bulk("only-in-target", b"old").unwrap();
    let expected_target = run_snapshot(&target);
    let to_t = |if_exists| CopyOptions {
        run_name: Some("t".into()),
        if_exists,
        ..CopyOptions::default()
    };
    assert_eq!(CopyOptions::default().if_exists, CopyIfExists::Raise);

    let err = source.copy(&to_t(CopyIfExists::Raise)).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    let err = source
        .copy(&CopyOptions {
            destination_url: Some("p/runs/t".into()),
            ..CopyOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(run_snapshot(&target), expected_target);

    let renamed = source.copy(&to_t(CopyIfExists::Rename)).unwrap();
    assert_eq!(renamed.url(), "p/runs/t_0000");
    assert_same_content(&renamed, &source);
    let renamed = source.copy(&to_t(CopyIfExists::Rename)).unwrap();
    assert_eq!(renamed.url(), "p/runs/t_0001");
    assert_eq!(run_snapshot(&target), expected_target);
    assert_eq!(store.run_count().unwrap(), 4);
    // With no existing destination, every policy just copies.
    for (i, if_exists) in [
        CopyIfExists::Raise,
        CopyIfExists::Rename,
        CopyIfExists::Overwrite,
    ]
    .into_iter()
    .enumerate()
    {
        let copy = source
            .copy(&CopyOptions {
                run_name: Some(format!("fresh-{i}")),
                if_exists,
                ..CopyOptions::default()
            })
            .unwrap();
        assert_eq!(copy.name(), format!("fresh-{i}"));
        assert_same_content(&copy, &source);
    }
}

#[test]

fn copy_if_exists_overwrite_replaces_the_destination() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 14);
    let target = store.init("p", Some("t")).unwrap();
    populate(&target, 15);
    target.put_bulk("only-in-target", b"old").unwrap();
    let bystander = store.init("p", Some("u")).unwrap();
    populate(&bystander, 16);
    let expected_bystander = run_snapshot(&bystander);
    let overwritten = source
        .copy(&CopyOptions {
            run_name: Some("t".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(overwritten.url(), "p/runs/t");
    assert_ne!(overwritten.id(), target.id());
    assert_same_content(&overwritten, &source);
    let err = overwritten.bulk_bytes("only-in-target").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = target.info().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 3);
    let info = store.info().unwrap();
    assert_eq!(info.outputs, 15);
    assert_eq!(info.blobs, 6);
    assert_eq!(run_snapshot(&bystander), expected_bystander);
    // The same through a destination url.
    let again = source
        .copy(&CopyOptions {
            destination_url: Some("p/runs/u".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        })
        .unwrap();
    assert_eq!(again.url(), "p/runs/u");
    assert_same_content(&again, &source);
    assert_eq!(store.run_count().unwrap(), 3);
}

#[test]
fn copy_overwriting_the_source_itself_is_rejected() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 16);
    let expected = run_snapshot(&source);
    for options in [
        CopyOptions {
            destination_url: Some("p/runs/r".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        },
        CopyOptions {
            run_name: Some("r".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        },
    ] {
        let err = source.copy(&options).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    }
    let err = source
        .copy(&CopyOptions {
            run_name: Some("r".into()),
            ..CopyOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(run_snapshot(&source), expected);
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn copy_and_source_change_independently() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 17);
    let copy = source.copy(&CopyOptions::default()).unwrap();
    let source_before = run_snapshot(&source);

    copy.set_description("the copy").unwrap();
    copy.set_parameters(&json(r#"{"lr": 9.0, "new": true}"#))
        .unwrap();
    copy.add_input_table("other/tables/x").unwrap();
    copy.add_input_value(&Value::map([("split", "test")]))
        .unwrap();
    copy.add_output_value(&Value::map([("epoch", 99)])).unwrap();
    copy.set_status_cancelled().unwrap();
    copy.put_bulk("model.bin", b"replaced in the copy").unwrap();
    copy.delete_bulk("labels.txt").unwrap();
    copy.put_bulk("new.bin", b"new").unwrap();
    assert_eq!(run_snapshot(&source), source_before);

    let copy_before = run_snapshot(&copy);
    source.set_description("the source").unwrap();
    source
        .add_output_value(&Value::map([("epoch", 5)]))
        .unwrap();
    source.put_bulk("labels.txt", b"changed").unwrap();
    source.delete_bulk("model.bin").unwrap();
    assert_eq!(run_snapshot(&copy), copy_before);
}

#[test]

fn copy_survives_deleting_its_source() {
    let (_dir, path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    populate(&source, 17);
    let blob = Rng::new(21).bytes(9 * MIB);
    source.put_bulk("checkpoint", &blob).unwrap();
    let copy = source.copy(&CopyOptions::default()).unwrap();
    let copy_before = run_snapshot(&copy);
    source.delete().unwrap();
    // The shared segments outlive the source.
    assert_eq!(run_snapshot(&copy), copy_before);
    assert_bytes_eq(&copy.bulk_bytes("checkpoint").unwrap(), &blob, "copy");
    drop((source, copy, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, 1);
}

#[test]
fn copy_of_a_run_with_a_20_mib_blob_shares_its_segments() {
    let (_dir, path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    let blob = Rng::new(20).bytes(20 * MIB);
    source.put_bulk("checkpoint", &blob).unwrap();
    let before = store.info().unwrap();
    let copy = source.copy(&CopyOptions::default()).unwrap();
    let after = store.info().unwrap();
    let growth = after.file_bytes - before.file_bytes;
    assert!(
        growth < 2 * MIB as u64,
        "copying grew the file by {growth} bytes"
    );
    assert_eq!(after.column_used_bytes, before.column_used_bytes);
    assert_eq!(after.blobs, 2);
    assert_bytes_eq(&copy.bulk_bytes("checkpoint").unwrap(), &blob, "copy");
    assert_bytes_eq(&source.bulk_bytes("checkpoint").unwrap(), &blob, "source");
    drop((source, copy, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // check verifies each run's segments: the shared 20 MiB once per run.
    assert_eq!(report.segment_bytes, 2 * 20 * MIB as u64);
}

#[test]

fn copy_of_a_deleted_run_is_not_found() {
    let (_dir, _path, store) = new_store();
    let source = store.init("p", Some("r")).unwrap();
    source.delete().unwrap();
    let err = source.copy(&CopyOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Delete and listing
// ---------------------------------------------------------------------------------------------

#[test]

fn delete_removes_the_run_and_frees_its_name() {
    let (_dir, _path, store) = new_store();
    let doomed = store.init("p", Some("r")).unwrap();
    populate(&doomed, 18);
    let other = store.init("p", Some("s")).unwrap();
    populate(&other, 19);
    let elsewhere = store.init("q", Some("r")).unwrap();
    populate(&elsewhere, 20);
    let expected_others = [run_snapshot(&other), run_snapshot(&elsewhere)];

    doomed.delete().unwrap();
    for result in [
        doomed.info().map(|_| ()),
        doomed.description().map(|_| ()),
        doomed.output_values().map(|_| ()),
        doomed.bulk_list().map(|_| ()),
        doomed.bulk("model.bin").map(|_| ()),
        doomed.set_description("x"),
        doomed.add_output_value(&Value::map([("a", 1)])),
        doomed.put_bulk("x", b"x").map(|_| ()),
        doomed.delete(),
        store.run("p/runs/r").map(|_| ()),
        Run::from_names(&store, "r", "p").map(|_| ()),
        store.delete_run("p/runs/r"),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }
    assert_eq!(
        [run_snapshot(&other), run_snapshot(&elsewhere)],
        expected_others
    );
    let counts: Vec<(String, u64)> = store
        .projects()
        .unwrap()
        .into_iter()
        .map(|p| (p.name, p.run_count))
        .collect();
    assert_eq!(counts, [("p".to_string(), 1), ("q".to_string(), 1)]);
    assert_eq!(store.run_count().unwrap(), 2);
    let info = store.info().unwrap();
    assert_eq!(info.runs, 2);
    assert_eq!(info.outputs, 10);
    assert_eq!(info.inputs, 2);
    assert_eq!(info.blobs, 4);

    let reborn = store.init("p", Some("r")).unwrap();
    assert_eq!(reborn.url(), "p/runs/r");
    assert_ne!(reborn.id(), doomed.id());
    assert_eq!(reborn.output_count().unwrap(), 0);
    assert!(reborn.bulk_list().unwrap().is_empty());
    assert_eq!(reborn.parameters().unwrap(), empty_map());
    // The old handle does not reach the new run of the same name.
    let err = doomed.info().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[test]

fn store_delete_run_deletes_by_url() {
    let (_dir, _path, store) = new_store();
    populate(&store.init("p", Some("r")).unwrap(), 21);
    let keep = store.init("p", Some("keep")).unwrap();
    store.delete_run("p/runs/r").unwrap();
    assert_eq!(store.run_count().unwrap(), 1);
    assert_eq!(store.runs(None).unwrap(), vec![keep]);
    let err = store.delete_run("p/runs/r").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store.delete_run("p/run/keep").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn runs_are_listed_by_project_then_name() {
    let (_dir, _path, store) = new_store();
    // Created out of order; "ab" sorts between "a" and "b" and must not leak into "a".
    for (project, name) in [
        ("b", "run-2"),
        ("a", "run-10"),
        ("ab", "x"),
        ("a", "run-2"),
        ("b", "run-1"),
        ("a", "Run-3"),
        ("a", "run-1"),
    ] {
        store.init(project, Some(name)).unwrap();
    }
    let urls = |runs: Vec<Run>| -> Vec<String> { runs.iter().map(Run::url).collect() };
    assert_eq!(
        urls(store.runs(None).unwrap()),
        [
            "a/runs/Run-3",
            "a/runs/run-1",
            "a/runs/run-10",
            "a/runs/run-2",
            "ab/runs/x",
            "b/runs/run-1",
            "b/runs/run-2",
        ]
    );
    assert_eq!(
        urls(store.runs(Some("a")).unwrap()),
        [
            "a/runs/Run-3",
            "a/runs/run-1",
            "a/runs/run-10",
            "a/runs/run-2"
        ]
    );
    assert_eq!(urls(store.runs(Some("ab")).unwrap()), ["ab/runs/x"]);
    assert_eq!(
        urls(store.runs(Some("b")).unwrap()),
        ["b/runs/run-1", "b/runs/run-2"]
    );
    assert!(store.runs(Some("missing")).unwrap().is_empty());
    assert!(store.runs(Some("")).unwrap().is_empty());
    assert_eq!(store.run_count().unwrap(), 7);
    // Listed handles are live runs.
    for run in store.runs(None).unwrap() {
        assert_eq!(run.info().unwrap().url, run.url());
    }
}

#[test]
fn projects_lists_projects_by_name_with_run_counts() {
    let (_dir, _path, store) = new_store();
    let before = now_us();
    for (project, name) in [("zeta", "1"), ("alpha", "1"), ("alpha", "2"), ("mid", "1")] {
        store.init(project, Some(name)).unwrap();
    }
    let after = now_us();
    let counts = |store: &Store| -> Vec<(String, u64)> {
        store
            .projects()
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.run_count))
            .collect()
    };
    assert_eq!(
        counts(&store),
        [
            ("alpha".to_string(), 2),
            ("mid".to_string(), 1),
            ("zeta".to_string(), 1)
        ]
    );
    for project in store.projects().unwrap() {
        assert!(before <= project.created_us && project.created_us <= after);
    }
    let alpha_created = store.projects().unwrap()[0].created_us;
    store.init("alpha", Some("3")).unwrap();
    let projects = store.projects().unwrap();
    assert_eq!(projects[0].run_count, 3);
    assert_eq!(projects[0].created_us, alpha_created);
    assert_eq!(store.info().unwrap().projects, 3);
    assert_eq!(store.info().unwrap().runs, 5);
}

#[test]
fn store_info_counts_projects_runs_inputs_outputs_and_blobs() {
    let (_dir, path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    populate(&a, 22);
    let b = store.init("q", Some("b")).unwrap();
    b.add_output_values(&[Value::map([("x", 1)]), Value::map([("x", 2)])])
        .unwrap();
    b.add_input_value(&Value::map([("y", 1)])).unwrap();
    b.add_input_value(&Value::map([("y", 2)])).unwrap();
    b.put_bulk("blob", &[7u8; 1000]).unwrap();
    store.init("q", Some("c")).unwrap();
    let info = store.info().unwrap();
    assert_eq!(info.path, path);
    assert_eq!(info.projects, 2);
    assert_eq!(info.runs, 3);
    assert_eq!(info.outputs, 7);
    assert_eq!(info.inputs, 3);
    assert_eq!(info.blobs, 3);
    assert_eq!(info.file_bytes, file_len(&path));
    assert!(info.column_used_bytes >= 100_022 + 1000);
    assert!(info.column_used_bytes <= info.column_extent_bytes);
    assert!(info.redb_bytes > 0 && info.redb_bytes < info.file_bytes);
    assert!(info.extent_count >= 2);
    assert_eq!(store.run_count().unwrap(), info.runs);
}

// ---------------------------------------------------------------------------------------------
// Vacuum, backup, check, copying the file
// ---------------------------------------------------------------------------------------------

#[test]
fn vacuum_shrinks_the_file_and_keeps_every_remaining_byte() {
    let (dir, path, store) = new_store();
    let mut rng = Rng::new(23);
    // 12 MiB of garbage: one blob replaced, one deleted.
    let big = store.init("p", Some("big")).unwrap();
    big.put_bulk("weights", &rng.bytes(8 * MIB)).unwrap();
    big.put_bulk("weights", b"small now").unwrap();
    big.put_bulk("optimizer", &rng.bytes(4 * MIB)).unwrap();
    big.delete_bulk("optimizer").unwrap();
    let keep = store.init("p", Some("keep")).unwrap();
    populate(&keep, 24);
    let shared = rng.bytes(6 * MIB);
    keep.put_bulk("checkpoint", &shared).unwrap();
    let copy = keep
        .copy(&CopyOptions {
            project_name: Some("q".into()),
            ..CopyOptions::default()
        })
        .unwrap();
    let expected = snapshot(&store);
    let ids: Vec<u64> = store.runs(None).unwrap().iter().map(Run::id).collect();
    drop((big, keep, copy, store));
    let size_before = file_len(&path);

    let report = Store::vacuum(&path).unwrap();
    let size_after = file_len(&path);
    assert_eq!(report.bytes_before, size_before);
    assert_eq!(report.bytes_after, size_after);
    assert_eq!(report.runs, 3);
    assert!(
        size_after + 10 * MIB as u64 <= size_before,
        "vacuum went from {size_before} to {size_after} bytes"
    );
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);

    let store = Store::open(&path).unwrap();
    assert_eq!(snapshot(&store), expected);
    // The 6 MiB segment shared by the run and its copy was copied once (twice would be 12).
    let info = store.info().unwrap();
    assert!(
        info.column_used_bytes >= 6 * MIB as u64 && info.column_used_bytes < 9 * MIB as u64,
        "{} column bytes",
        info.column_used_bytes
    );
    for url in ["p/runs/keep", "q/runs/keep"] {
        let run = store.run(url).unwrap();
        assert_bytes_eq(&run.bulk_bytes("checkpoint").unwrap(), &shared, url);
    }
    // The vacuumed store keeps working: new blobs land past the copied ones, new ids are new.
    let fresh = store.init("p", Some("fresh")).unwrap();
    assert!(!ids.contains(&fresh.id()));
    let more = rng.bytes(MIB + 3);
    fresh.put_bulk("more", &more).unwrap();
    assert_bytes_eq(&fresh.bulk_bytes("more").unwrap(), &more, "new blob");
    for url in ["p/runs/keep", "q/runs/keep"] {
        let run = store.run(url).unwrap();
        assert_bytes_eq(&run.bulk_bytes("checkpoint").unwrap(), &shared, url);
    }
    drop((fresh, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]

fn vacuum_reclaims_the_space_of_a_deleted_run() {
    let (dir, path, store) = new_store();
    let doomed = store.init("p", Some("doomed")).unwrap();
    doomed
        .put_bulk("weights", &Rng::new(25).bytes(12 * MIB))
        .unwrap();
    let keep = store.init("p", Some("keep")).unwrap();
    populate(&keep, 26);
    doomed.delete().unwrap();
    let expected = snapshot(&store);
    drop((doomed, keep, store));
    let size_before = file_len(&path);
    let report = Store::vacuum(&path).unwrap();
    assert_eq!(report.runs, 1);
    assert_eq!(report.bytes_before, size_before);
    assert_eq!(report.bytes_after, file_len(&path));
    assert!(
        report.bytes_after + 10 * MIB as u64 <= size_before,
        "vacuum went from {size_before} to {} bytes",
        report.bytes_after
    );
    assert_eq!(file_names(dir.path()), vec!["test.runs".to_string()]);
    let store = Store::open(&path).unwrap();
    assert_eq!(snapshot(&store), expected);
    drop(store);
    assert!(check(&path).unwrap().is_ok());
}

#[test]
fn vacuum_of_a_store_open_for_writing_in_this_process_is_already_open() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    let err = Store::vacuum(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err:?}");
    assert_eq!(store.run_count().unwrap(), 1);
}

#[test]
fn backup_to_writes_a_store_equal_to_the_source() {
    let (dir, _path, store) = new_store();
    for (i, (project, name)) in [("p", "a"), ("p", "b"), ("q", "c")].into_iter().enumerate() {
        populate(&store.init(project, Some(name)).unwrap(), 30 + i as u64);
    }
    store
        .run("q/runs/c")
        .unwrap()
        .put_bulk("big", &Rng::new(31).bytes(5 * MIB))
        .unwrap();
    let expected = snapshot(&store);
    let dest = dir.path().join("backup.runs");
    let bytes = store.backup_to(&dest).unwrap();
    assert_eq!(bytes, file_len(&dest));

    // The writer goes on; the backup keeps the state at the time it was taken.
    store
        .run("p/runs/a")
        .unwrap()
        .add_output_value(&Value::map([("after", 1)]))
        .unwrap();
    let err = store.backup_to(&dest).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    let report = check(&dest).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, 3);
    let backup = Store::open(&dest).unwrap();
    assert_eq!(snapshot(&backup), expected);
    assert_eq!(backup.info().unwrap().runs, 3);
    backup.init("p", Some("only-in-backup")).unwrap();
    assert_eq!(store.run_count().unwrap(), 3);
}

#[test]

fn backup_to_writes_a_store_that_opens_read_only() {
    let (dir, _path, store) = new_store();
    populate(&store.init("p", Some("a")).unwrap(), 32);
    let expected = snapshot(&store);
    let dest = dir.path().join("backup.runs");
    store.backup_to(&dest).unwrap();
    let backup = Store::open_read_only(&dest).unwrap();
    assert_eq!(snapshot(&backup), expected);
}

#[test]
fn check_of_a_healthy_store_reports_no_problems() {
    let (_dir, path, store) = new_store();
    let a = store.init("p", Some("a")).unwrap();
    populate(&a, 40);
    a.put_bulk("big", &Rng::new(41).bytes(5 * MIB)).unwrap();
    let b = store.init("q", Some("b")).unwrap();
    populate(&b, 42);
    a.copy(&CopyOptions::default()).unwrap();
    store.init("q", Some("empty")).unwrap();
    b.delete_bulk("labels.txt").unwrap();
    drop((a, b, store));
    assert!(!Store::check_database(&path).unwrap());
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(report.problems.is_empty());
    assert!(!report.redb_repaired);
    assert_eq!(report.runs, 4);
    assert_eq!(report.blobs, 3 + 3 + 1);
    // Each run's segments are verified, so a's shared segments count for a and for its copy.
    let a_bytes = (100_040 + "cat\ndog\n40\n".len() + 5 * MIB) as u64;
    assert_eq!(report.segment_bytes, 2 * a_bytes + 100_042);
}

/// `check` writes nothing, so it runs beside a writer (issue 15, item 9: it was refused with
/// `AlreadyOpen`) and checks the last commit.
#[test]
fn check_of_a_store_open_for_writing_in_this_process_checks_its_last_commit() {
    let (_dir, path, store) = new_store();
    store.init("p", Some("r")).unwrap();
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.runs, 1);
    store.init("p", Some("s")).unwrap();
    assert_eq!(check(&path).unwrap().runs, 2);
    drop(store);
    assert!(check(&path).unwrap().is_ok());
}

#[test]
fn copy_of_the_closed_file_opens_with_identical_content() {
    let (dir, path, store) = new_store();
    for (i, (project, name)) in [("p", "a"), ("p", "b"), ("q", "c"), ("r", "d")]
        .into_iter()
        .enumerate()
    {
        populate(&store.init(project, Some(name)).unwrap(), 50 + i as u64);
    }
    let c = store.run("q/runs/c").unwrap();
    c.put_bulk("big", &Rng::new(51).bytes(6 * MIB)).unwrap();
    c.copy(&CopyOptions::default()).unwrap();
    c.delete_bulk("labels.txt").unwrap();
    let expected = snapshot(&store);
    let expected_info = store.info().unwrap();
    let expected_projects = store.projects().unwrap();
    drop((c, store));

    let copied = dir.path().join("copied.runs");
    fs::copy(&path, &copied).unwrap();
    let store = Store::open(&copied).unwrap();
    assert_eq!(snapshot(&store), expected);
    assert_eq!(store.projects().unwrap(), expected_projects);
    let info = store.info().unwrap();
    assert_eq!(info.path, copied);
    assert_eq!(info.runs, expected_info.runs);
    assert_eq!(info.outputs, expected_info.outputs);
    assert_eq!(info.inputs, expected_info.inputs);
    assert_eq!(info.blobs, expected_info.blobs);
    assert_eq!(info.column_used_bytes, expected_info.column_used_bytes);
    assert_eq!(info.file_bytes, expected_info.file_bytes);
    drop(store);
    let report = check(&copied).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

// ---------------------------------------------------------------------------------------------
// Failed calls change nothing
// ---------------------------------------------------------------------------------------------

#[test]
fn failed_calls_change_nothing() {
    let (_dir, path, store) = new_store();
    let run = store.init("p", Some("r")).unwrap();
    populate(&run, 60);
    let other = store.init("p", Some("other")).unwrap();
    let expected = snapshot(&store);
    let expected_info = store.info().unwrap();
    let map = Value::map([("ok", 1)]);

    let errors: Vec<Error> = vec![
        run.set_parameters(&Value::from(1)).unwrap_err(),
        run.add_input_value(&Value::List(vec![map.clone()]))
            .unwrap_err(),
        run.add_output_values(&[map.clone(), Value::Null, map.clone()])
            .unwrap_err(),
        run.add_input_table("").unwrap_err(),
        run.put_bulk("bad/name", b"x").map(|_| ()).unwrap_err(),
        run.delete_bulk("missing").unwrap_err(),
        run.copy(&CopyOptions {
            run_name: Some("other".into()),
            ..CopyOptions::default()
        })
        .map(|_| ())
        .unwrap_err(),
        run.copy(&CopyOptions {
            destination_url: Some("p/runs/r".into()),
            if_exists: CopyIfExists::Overwrite,
            ..CopyOptions::default()
        })
        .map(|_| ())
        .unwrap_err(),
        store
            .init_with(
                "p",
                Some("r"),
                &InitOptions {
                    if_exists: InitIfExists::Raise,
                    ..InitOptions::default()
                },
            )
            .map(|_| ())
            .unwrap_err(),
        store
            .init_with(
                "p",
                Some("new"),
                &InitOptions {
                    parameters: Some(Value::from("x")),
                    ..InitOptions::default()
                },
            )
            .map(|_| ())
            .unwrap_err(),
        store.delete_run("p/runs/missing").unwrap_err(),
    ];
    assert_eq!(errors.len(), 11);
    assert_eq!(snapshot(&store), expected);
    assert_eq!(store.info().unwrap(), expected_info);
    assert_eq!(store.active_run().unwrap(), other);

    // A source that fails halfway through a multi-chunk blob leaves no blob and no bytes.
    let err = run
        .put_bulk_from("half", &mut FailingReader { good: 6 * MIB })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == io::ErrorKind::Other),
        "{err:?}"
    );
    let err = run.bulk("half").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(snapshot(&store), expected);
    let info = store.info().unwrap();
    assert_eq!(info.column_used_bytes, expected_info.column_used_bytes);
    assert_eq!(info.blobs, expected_info.blobs);
    // The space is reused and the store stays sound.
    let later = Rng::new(61).bytes(5 * MIB);
    run.put_bulk("later", &later).unwrap();
    assert_bytes_eq(&run.bulk_bytes("later").unwrap(), &later, "later");
    assert_bytes_eq(
        &run.bulk_bytes("model.bin").unwrap(),
        &Rng::new(60).bytes(100_060),
        "model.bin",
    );
    drop((run, other, store));
    let report = check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn open_for_writing_removes_temp_files_of_dead_processes() {
    let (_dir, path) = temp_store();
    Store::create(&path).unwrap();
    let dir = path.parent().unwrap();
    // No process has a pid this large (Linux caps pids at 2^22).
    let stale = dir.join(".test.runs.vacuum-999999999-1");
    let live = dir.join(format!(".test.runs.vacuum-{}-1", std::process::id()));
    let other = dir.join(".other.runs.vacuum-999999999-1");
    for file in [&stale, &live, &other] {
        std::fs::write(file, b"partial").unwrap();
    }
    drop(Store::open(&path).unwrap());
    assert!(!stale.exists());
    assert!(live.exists());
    assert!(other.exists());
}

#[test]
fn column_extents_grow_in_place_when_they_end_the_file() {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).unwrap();
    let run = store.init("p", Some("r")).unwrap();
    for i in 0..8u8 {
        run.put_bulk(&format!("b{i}"), &vec![i; 700 * 1024])
            .unwrap();
    }
    let superblock = store.superblock();
    let column_extents = superblock.column_extents().count();
    assert_eq!(column_extents, 1, "{superblock:?}");
    drop(run);
    drop(store);
    let report = runstore::check(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}
