//! Model test: random sequences of catalog operations applied both to a store and to an
//! in-memory model made of plain structs, compared after every operation.
//!
//! Each operation's result (which run it made, or which `Error` variant it failed with) must
//! be the model's, and after every operation the whole store must equal the model: the run
//! urls in order, each run's description, status, parameters, input tables and values,
//! outputs and blobs (names and bytes), the projects with their run counts, the totals of
//! `Store::info`, and the active run. `Reopen` drops the store and opens it again from its
//! path, sometimes read-only first, so everything compared must also survive a clean close;
//! `Reader` compares through a read-only handle kept open beside the writer, `Backup` through
//! a backup, and `Vacuum` after vacuuming.
//!
//! An operation aimed at a run picks an existing one by index (modulo the count; skipped when
//! there is none), or a stale handle of a deleted or overwritten run (its arguments are still
//! validated first, then it fails with `NotFound`), or a url no run ever had. Generated run
//! names are random: the model records the name the store returned. Timestamps are not
//! modelled beyond `created <= last_modified`.
//!
//! `RUNSTORE_MODEL_CASES=N` runs more cases than the default 64; `PROPTEST_RNG_SEED` repeats a
//! run. A shrunk failure becomes a `regression_*` test at the bottom.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use runstore::{
    CopyIfExists, CopyOptions, Error, InitIfExists, InitOptions, Run, RunStatus, Store, Value,
    BLOB_CHUNK_BYTES,
};

use crate::util::temp_store;

/// Projects operations pick from.
const PROJECTS: [&str; 2] = ["vision", "nlp"];
/// Run names operations pick from. `baseline_0000` is what renaming `baseline` produces first,
/// so given names and renames collide.
const RUN_NAMES: [&str; 4] = ["baseline", "lr sweep", "ünïcode", "baseline_0000"];
/// Blob names (folders allowed); the last one is invalid (it climbs out of its folder).
const BLOB_NAMES: [&str; 3] = ["model.ckpt", "ckpt/a b", "bad/../name"];
/// Input table references; the empty one is invalid.
const INPUT_TABLES: [&str; 4] = [
    "vision/tables/train",
    "s3://bucket/val.parquet",
    "/data/test.json",
    "",
];
/// Parameter keys, few enough that merges overwrite often.
const KEYS: [&str; 4] = ["lr", "epochs", "optimizer", "seed"];
/// Handles of deleted runs kept to aim operations at (bounded so a case stays small).
const GRAVEYARD_MAX: usize = 8;

type Key = (String, String);

// ---------------------------------------------------------------------------------------------
// Operations

/// Which run an operation is aimed at.
#[derive(Clone, Debug)]
enum Target {
    /// An existing run, by index (modulo the count) in url order; skipped if there is none.
    Live(usize),
    /// A handle to a run deleted or overwritten earlier (falls back to `Absent` when none).
    Stale(usize),
    /// A url no run ever had: the lookup fails.
    Absent,
}

/// Where `Run::copy` puts the copy.
#[derive(Clone, Debug)]
enum Destination {
    /// Nothing set: next to the source, renamed to be free.
    Default,
    /// Names (either may be absent, then the source's is used).
    Names {
        project: Option<usize>,
        name: Option<usize>,
    },
    /// A destination url.
    Url { project: usize, name: usize },
    /// A url and a name at once, which is rejected.
    UrlAndName,
}

/// A blob's length and the seed of its bytes (so a 4 MiB blob costs nothing to generate or
/// shrink).
#[derive(Clone, Debug)]
struct BlobSpec {
    len: usize,
    seed: u8,
}

impl BlobSpec {
    fn bytes(&self) -> Vec<u8> {
        let mut state = u32::from(self.seed).wrapping_mul(2_654_435_761) | 1;
        (0..self.len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Init {
        project: usize,
        name: Option<usize>,
        if_exists: InitIfExists,
        description: Option<String>,
        parameters: Option<Value>,
    },
    SetParameters {
        target: Target,
        parameters: Value,
    },
    SetDescription {
        target: Target,
        description: String,
    },
    AddInputTable {
        target: Target,
        table: usize,
    },
    AddInputValue {
        target: Target,
        value: Value,
    },
    AddOutputValue {
        target: Target,
        value: Value,
    },
    SetStatus {
        target: Target,
        status: RunStatus,
    },
    Copy {
        target: Target,
        destination: Destination,
        if_exists: CopyIfExists,
    },
    Delete {
        target: Target,
    },
    PutBulk {
        target: Target,
        name: usize,
        blob: BlobSpec,
    },
    DeleteBulk {
        target: Target,
        name: usize,
    },
    Reopen {
        read_only_first: bool,
    },
    /// Compare through a read-only handle opened beside the writer and kept open across later
    /// operations, so it must follow the writer's commits and file growth.
    Reader,
    /// `Store::backup_to`, then compare the backup opened read-only.
    Backup,
    /// Close the store, `Store::vacuum` it, and open it again.
    Vacuum,
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(Value::Int),
        // 0.0 and -0.0 are equal but encode differently; NaN is unequal to itself. Both test
        // that identical inputs are recognised by their bytes.
        select(vec![0.0, -0.0, 0.5, 1e300, f64::INFINITY, f64::NAN]).prop_map(Value::Float),
        select(vec!["", "adam", "sgd", "ü"]).prop_map(|s| Value::Str(s.to_string())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    select(KEYS.to_vec()).prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::List),
            btree_map(key(), inner, 0..3).prop_map(Value::Map),
        ]
    })
}

fn map_value() -> impl Strategy<Value = Value> {
    btree_map(key(), value(), 0..4).prop_map(Value::Map)
}

/// Mostly maps; sometimes a scalar, which every map-taking call must reject.
fn map_or_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![9 => map_value(), 1 => scalar()]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        16 => (0usize..1000).prop_map(Target::Live),
        2 => (0usize..1000).prop_map(Target::Stale),
        1 => Just(Target::Absent),
    ]
}

fn init_if_exists() -> impl Strategy<Value = InitIfExists> {
    select(vec![
        InitIfExists::Raise,
        InitIfExists::Rename,
        InitIfExists::Overwrite,
        InitIfExists::Reuse,
    ])
}

fn copy_if_exists() -> impl Strategy<Value = CopyIfExists> {
    select(vec![
        CopyIfExists::Raise,
        CopyIfExists::Rename,
        CopyIfExists::Overwrite,
    ])
}

fn status() -> impl Strategy<Value = RunStatus> {
    select(RunStatus::ALL.to_vec())
}

fn description() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["", "first try", "ünïcode ✓"]).prop_map(str::to_string),
        "[a-z ]{0,12}",
    ]
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        2 => Just(Destination::Default),
        4 => (
            proptest::option::of(0..PROJECTS.len()),
            proptest::option::of(0..RUN_NAMES.len())
        )
            .prop_map(|(project, name)| Destination::Names { project, name }),
        2 => (0..PROJECTS.len(), 0..RUN_NAMES.len())
            .prop_map(|(project, name)| Destination::Url { project, name }),
        1 => Just(Destination::UrlAndName),
    ]
}

/// A blob name, valid nine times in ten.
fn blob_name() -> impl Strategy<Value = usize> {
    prop_oneof![9 => 0..BLOB_NAMES.len() - 1, 1 => Just(BLOB_NAMES.len() - 1)]
}

fn blob() -> impl Strategy<Value = BlobSpec> {
    prop_oneof![
        40 => (0usize..3000, any::<u8>()).prop_map(|(len, seed)| BlobSpec { len, seed }),
        // Around the chunk size: one chunk exactly full, and a second chunk of one byte.
        1 => (
            select(vec![BLOB_CHUNK_BYTES - 1, BLOB_CHUNK_BYTES, BLOB_CHUNK_BYTES + 1]),
            any::<u8>()
        )
            .prop_map(|(len, seed)| BlobSpec { len, seed }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            0..PROJECTS.len(),
            proptest::option::weighted(0.8, 0..RUN_NAMES.len()),
            init_if_exists(),
            proptest::option::of(description()),
            proptest::option::weighted(0.3, map_or_scalar()),
        )
            .prop_map(|(project, name, if_exists, description, parameters)| Op::Init {
                project,
                name,
                if_exists,
                description,
                parameters,
            }),
        3 => (target(), map_or_scalar())
            .prop_map(|(target, parameters)| Op::SetParameters { target, parameters }),
        2 => (target(), description())
            .prop_map(|(target, description)| Op::SetDescription { target, description }),
        2 => (target(), 0..INPUT_TABLES.len())
            .prop_map(|(target, table)| Op::AddInputTable { target, table }),
        2 => (target(), prop_oneof![3 => select(vec![
                Value::map([("split", "train")]),
                Value::map([("x", Value::Float(0.0))]),
                Value::map([("x", Value::Float(-0.0))]),
            ]), 2 => map_or_scalar()])
            .prop_map(|(target, value)| Op::AddInputValue { target, value }),
        3 => (target(), map_or_scalar())
            .prop_map(|(target, value)| Op::AddOutputValue { target, value }),
        2 => (target(), status()).prop_map(|(target, status)| Op::SetStatus { target, status }),
        3 => (target(), destination(), copy_if_exists()).prop_map(
            |(target, destination, if_exists)| Op::Copy {
                target,
                destination,
                if_exists,
            }
        ),
        2 => target().prop_map(|target| Op::Delete { target }),
        3 => (target(), blob_name(), blob())
            .prop_map(|(target, name, blob)| Op::PutBulk { target, name, blob }),
        2 => (target(), blob_name())
            .prop_map(|(target, name)| Op::DeleteBulk { target, name }),
        1 => any::<bool>().prop_map(|read_only_first| Op::Reopen { read_only_first }),
        1 => Just(Op::Reader),
        1 => Just(Op::Backup),
        1 => Just(Op::Vacuum),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model

#[derive(Clone, Debug)]
struct RunModel {
    /// Identifies this incarnation of the run: an overwritten run of the same name is another
    /// run (the store gives it a new id), and handles to the old one see it gone.
    uid: u64,
    description: String,
    status: RunStatus,
    parameters: BTreeMap<String, Value>,
    input_tables: Vec<String>,
    input_values: Vec<Value>,
    outputs: Vec<Value>,
    blobs: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Default)]
struct Model {
    runs: BTreeMap<Key, RunModel>,
    /// Projects are created on first use and never removed.
    projects: BTreeSet<String>,
    /// The uid of the store handle's active run.
    active: Option<u64>,
    next_uid: u64,
}

/// An error variant's name, for comparing expected and actual failures.
type Kind = &'static str;

fn kind(error: &Error) -> Kind {
    match error {
        Error::NotFound { .. } => "NotFound",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::InvalidInput { .. } => "InvalidInput",
        Error::InvalidValue { .. } => "InvalidValue",
        Error::InvalidName { .. } => "InvalidName",
        Error::InvalidUrl { .. } => "InvalidUrl",
        Error::NoActiveRun => "NoActiveRun",
        Error::ReadOnly => "ReadOnly",
        _ => "other",
    }
}

fn is_map(value: &Value) -> bool {
    matches!(value, Value::Map(_))
}

fn same_bytes(a: &Value, b: &Value) -> bool {
    a.encode() == b.encode()
}

fn key_of(project: &str, name: &str) -> Key {
    (project.to_string(), name.to_string())
}

impl Model {
    fn new_run(&mut self, description: String, parameters: BTreeMap<String, Value>) -> RunModel {
        self.next_uid += 1;
        RunModel {
            uid: self.next_uid,
            description,
            status: RunStatus::Empty,
            parameters,
            input_tables: Vec::new(),
            input_values: Vec::new(),
            outputs: Vec::new(),
            blobs: BTreeMap::new(),
        }
    }

    /// The first free `<base>_NNNN` in `project`.
    fn first_free_name(&self, project: &str, base: &str) -> String {
        (0..)
            .map(|n| format!("{base}_{n:04}"))
            .find(|candidate| !self.runs.contains_key(&key_of(project, candidate)))
            .expect("a free name")
    }

    /// `Store::init_with`. `generated` is the name the store chose when none was given.
    fn init(
        &mut self,
        project: &str,
        name: Option<&str>,
        options: &InitOptions,
        generated: Option<&str>,
    ) -> Result<Key, Kind> {
        if options.parameters.as_ref().is_some_and(|p| !is_map(p)) {
            return Err("InvalidValue");
        }
        let name = match name {
            // The caller checked that the generated name is fresh.
            None => generated
                .ok_or("model expects a generated name")?
                .to_string(),
            Some(name) if !self.runs.contains_key(&key_of(project, name)) => name.to_string(),
            Some(name) => match options.if_exists {
                InitIfExists::Raise => return Err("AlreadyExists"),
                InitIfExists::Rename => self.first_free_name(project, name),
                InitIfExists::Overwrite => name.to_string(),
                InitIfExists::Reuse => {
                    let run = self.runs.get_mut(&key_of(project, name)).expect("exists");
                    run.status = RunStatus::Running;
                    self.active = Some(run.uid);
                    return Ok(key_of(project, name));
                }
            },
        };
        let parameters = match &options.parameters {
            Some(Value::Map(map)) => map.clone(),
            _ => BTreeMap::new(),
        };
        let run = self.new_run(options.description.clone().unwrap_or_default(), parameters);
        self.active = Some(run.uid);
        self.projects.insert(project.to_string());
        self.runs.insert(key_of(project, &name), run);
        Ok(key_of(project, &name))
    }

    /// `Run::copy` from the run at `source` (`None`: a stale handle of a deleted run).
    fn copy(
        &mut self,
        source: Option<&Key>,
        stale_default: &Key,
        destination: &Destination,
        if_exists: CopyIfExists,
    ) -> Result<Key, Kind> {
        let (project, name, explicit) =
            copy_destination(source.unwrap_or(stale_default), destination)?;
        let Some(source) = source else {
            return Err("NotFound");
        };
        let dest = key_of(&project, &name);
        let name = match self.runs.get(&dest) {
            None => name,
            Some(_) if !explicit => self.first_free_name(&project, &name),
            Some(_) => match if_exists {
                CopyIfExists::Raise => return Err("AlreadyExists"),
                CopyIfExists::Rename => self.first_free_name(&project, &name),
                CopyIfExists::Overwrite if &dest == source => return Err("InvalidInput"),
                CopyIfExists::Overwrite => name,
            },
        };
        let mut copy = self.runs[source].clone();
        self.next_uid += 1;
        copy.uid = self.next_uid;
        self.projects.insert(project.clone());
        self.runs.insert(key_of(&project, &name), copy);
        Ok(key_of(&project, &name))
    }
}

/// The destination `Run::copy` computes from the source's `(project, name)`: project, name,
/// and whether it was given explicitly (then `if_exists` applies).
fn copy_destination(
    source: &Key,
    destination: &Destination,
) -> Result<(String, String, bool), Kind> {
    Ok(match destination {
        Destination::Default => (source.0.clone(), source.1.clone(), false),
        Destination::Names { project, name } => (
            project.map_or(source.0.clone(), |p| PROJECTS[p].to_string()),
            name.map_or(source.1.clone(), |n| RUN_NAMES[n].to_string()),
            project.is_some() || name.is_some(),
        ),
        Destination::Url { project, name } => (
            PROJECTS[*project].to_string(),
            RUN_NAMES[*name].to_string(),
            true,
        ),
        Destination::UrlAndName => return Err("InvalidInput"),
    })
}

fn copy_options(destination: &Destination, if_exists: CopyIfExists) -> CopyOptions {
    let mut options = CopyOptions {
        if_exists,
        ..CopyOptions::default()
    };
    match destination {
        Destination::Default => {}
        Destination::Names { project, name } => {
            options.project_name = project.map(|p| PROJECTS[p].to_string());
            options.run_name = name.map(|n| RUN_NAMES[n].to_string());
        }
        Destination::Url { project, name } => {
            options.destination_url = Some(runstore::run_url(PROJECTS[*project], RUN_NAMES[*name]));
        }
        Destination::UrlAndName => {
            options.destination_url = Some(runstore::run_url(PROJECTS[0], RUN_NAMES[0]));
            options.run_name = Some(RUN_NAMES[1].to_string());
        }
    }
    options
}

// ---------------------------------------------------------------------------------------------
// The harness: one store, one model, applied in lockstep

struct Harness<'a> {
    path: &'a Path,
    store: Option<Store>,
    model: Model,
    /// Handles of runs that were deleted or overwritten; dropped on reopen (they hold the store).
    graveyard: Vec<Run>,
    /// The read-only handle of `Op::Reader`; dropped on reopen.
    reader: Option<Store>,
    /// Backups made so far, to name the next one.
    backups: u32,
}

/// A resolved target: the model's key and the store's handle, or why there is none.
enum Resolved {
    Live(Key, Run),
    Stale(Run),
    Absent,
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// Compares a store result with the model's expectation.
fn agree<T: std::fmt::Debug + PartialEq>(
    op: &Op,
    actual: Result<T, Error>,
    expected: Result<T, Kind>,
) -> Result<(), TestCaseError> {
    count_outcome(
        op,
        match &actual {
            Ok(_) => "Ok",
            Err(error) => kind(error),
        },
    );
    match (&actual, &expected) {
        (Ok(a), Ok(e)) if a == e => Ok(()),
        (Err(a), Err(e)) if kind(a) == *e => Ok(()),
        _ => Err(fail(format!(
            "{op:?}: the store returned {actual:?}, the model expects {expected:?}"
        ))),
    }
}

impl Harness<'_> {
    fn store(&self) -> &Store {
        self.store.as_ref().expect("store is open")
    }

    fn resolve(&self, target: &Target) -> Result<Option<Resolved>, TestCaseError> {
        Ok(Some(match target {
            Target::Live(index) => {
                if self.model.runs.is_empty() {
                    return Ok(None);
                }
                let key = self
                    .model
                    .runs
                    .keys()
                    .nth(index % self.model.runs.len())
                    .expect("in range")
                    .clone();
                let run = self
                    .store()
                    .run_by_names(&key.1, &key.0)
                    .map_err(|e| fail(format!("run {key:?} is in the model but not found: {e}")))?;
                Resolved::Live(key, run)
            }
            Target::Stale(index) if !self.graveyard.is_empty() => {
                Resolved::Stale(self.graveyard[index % self.graveyard.len()].clone())
            }
            Target::Stale(_) | Target::Absent => Resolved::Absent,
        }))
    }

    /// The handle of the run at `key`, if the model has one, with its uid: an operation that
    /// may replace it sends the handle to the graveyard when it does.
    fn replaceable(&self, key: &Key) -> Option<(u64, Run)> {
        let uid = self.model.runs.get(key)?.uid;
        let run = self.store().run_by_names(&key.1, &key.0).ok()?;
        Some((uid, run))
    }

    fn bury_if_replaced(&mut self, key: &Key, before: Option<(u64, Run)>) {
        if let Some((uid, run)) = before {
            if self.model.runs.get(key).map(|r| r.uid) != Some(uid) {
                self.bury(run);
            }
        }
    }

    fn bury(&mut self, run: Run) {
        if self.graveyard.len() == GRAVEYARD_MAX {
            self.graveyard.remove(0);
        }
        self.graveyard.push(run);
    }

    /// Applies `op` to the store and the model and compares the results.
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Init {
                project,
                name,
                if_exists,
                description,
                parameters,
            } => {
                let project = PROJECTS[*project];
                let name = name.map(|n| RUN_NAMES[n]);
                let options = InitOptions {
                    description: description.clone(),
                    parameters: parameters.clone(),
                    if_exists: *if_exists,
                };
                let before = name.and_then(|n| self.replaceable(&key_of(project, n)));
                let actual = self.store().init_with(project, name, &options);
                let generated = match (&actual, name) {
                    (Ok(run), None) => {
                        let generated = run.name().to_string();
                        prop_assert!(
                            !self.model.runs.contains_key(&key_of(project, &generated)),
                            "init without a name returned the taken name {generated:?}"
                        );
                        prop_assert!(
                            generated.split_once('-').is_some(),
                            "generated name {generated:?} is not adjective-noun"
                        );
                        Some(generated)
                    }
                    _ => None,
                };
                let expected = self
                    .model
                    .init(project, name, &options, generated.as_deref());
                let actual = actual.map(|run| key_of(run.project(), run.name()));
                agree(op, actual, expected)?;
                if let Some(name) = name {
                    self.bury_if_replaced(&key_of(project, name), before);
                }
            }
            Op::SetParameters { target, parameters } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => {
                        let expected = if is_map(parameters) {
                            Err("NotFound")
                        } else {
                            Err("InvalidValue")
                        };
                        (run.set_parameters(parameters), expected)
                    }
                    Resolved::Live(key, run) => {
                        let actual = run.set_parameters(parameters);
                        let expected = match parameters {
                            Value::Map(map) => {
                                let model = self.model.runs.get_mut(&key).expect("live");
                                for (k, v) in map {
                                    model.parameters.insert(k.clone(), v.clone());
                                }
                                Ok(())
                            }
                            _ => Err("InvalidValue"),
                        };
                        (actual, expected)
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::SetDescription {
                target,
                description,
            } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => (run.set_description(description), Err("NotFound")),
                    Resolved::Live(key, run) => {
                        self.model.runs.get_mut(&key).expect("live").description =
                            description.clone();
                        (run.set_description(description), Ok(()))
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::AddInputTable { target, table } => {
                let table = INPUT_TABLES[*table];
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let invalid = table.is_empty();
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => (
                        run.add_input_table(table),
                        Err(if invalid { "InvalidUrl" } else { "NotFound" }),
                    ),
                    Resolved::Live(key, run) => {
                        let expected = if invalid {
                            Err("InvalidUrl")
                        } else {
                            let tables =
                                &mut self.model.runs.get_mut(&key).expect("live").input_tables;
                            if !tables.iter().any(|t| t == table) {
                                tables.push(table.to_string());
                            }
                            Ok(())
                        };
                        (run.add_input_table(table), expected)
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::AddInputValue { target, value } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => (
                        run.add_input_value(value),
                        Err(if is_map(value) {
                            "NotFound"
                        } else {
                            "InvalidValue"
                        }),
                    ),
                    Resolved::Live(key, run) => {
                        let expected = if is_map(value) {
                            let inputs =
                                &mut self.model.runs.get_mut(&key).expect("live").input_values;
                            if !inputs.iter().any(|v| same_bytes(v, value)) {
                                inputs.push(value.clone());
                            }
                            Ok(())
                        } else {
                            Err("InvalidValue")
                        };
                        (run.add_input_value(value), expected)
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::AddOutputValue { target, value } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => (
                        run.add_output_value(value),
                        Err(if is_map(value) {
                            "NotFound"
                        } else {
                            "InvalidValue"
                        }),
                    ),
                    Resolved::Live(key, run) => {
                        let expected = if is_map(value) {
                            self.model
                                .runs
                                .get_mut(&key)
                                .expect("live")
                                .outputs
                                .push(value.clone());
                            Ok(())
                        } else {
                            Err("InvalidValue")
                        };
                        (run.add_output_value(value), expected)
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::SetStatus { target, status } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => (run.set_status(*status), Err("NotFound")),
                    Resolved::Live(key, run) => {
                        self.model.runs.get_mut(&key).expect("live").status = *status;
                        (run.set_status(*status), Ok(()))
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::Copy {
                target,
                destination,
                if_exists,
            } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let options = copy_options(destination, *if_exists);
                match resolved {
                    Resolved::Absent => {
                        agree(op, absent_lookup(self.store()), Err::<(), _>("NotFound"))?;
                    }
                    Resolved::Stale(run) => {
                        let stale_key = key_of(run.project(), run.name());
                        let actual = run.copy(&options).map(|r| key_of(r.project(), r.name()));
                        let expected = self.model.copy(None, &stale_key, destination, *if_exists);
                        agree(op, actual, expected)?;
                    }
                    Resolved::Live(key, run) => {
                        let dest = copy_destination(&key, destination)
                            .ok()
                            .map(|(project, name, _)| key_of(&project, &name));
                        let before = dest.as_ref().and_then(|dest| self.replaceable(dest));
                        let actual = run.copy(&options).map(|r| key_of(r.project(), r.name()));
                        let expected = self.model.copy(Some(&key), &key, destination, *if_exists);
                        agree(op, actual, expected)?;
                        if let Some(dest) = dest {
                            self.bury_if_replaced(&dest, before);
                        }
                    }
                }
            }
            Op::Delete { target } => {
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                match resolved {
                    Resolved::Absent => agree(op, absent_lookup(self.store()), Err("NotFound"))?,
                    Resolved::Stale(run) => agree(op, run.delete(), Err("NotFound"))?,
                    Resolved::Live(key, run) => {
                        self.model.runs.remove(&key);
                        agree(op, run.delete(), Ok(()))?;
                        self.bury(run);
                    }
                }
            }
            Op::PutBulk { target, name, blob } => {
                let name = BLOB_NAMES[*name];
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let invalid = runstore::names::validate_blob_name(name).is_err();
                let bytes = blob.bytes();
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()).map(|()| 0), Err("NotFound")),
                    Resolved::Stale(run) => (
                        run.put_bulk(name, &bytes),
                        Err(if invalid { "InvalidName" } else { "NotFound" }),
                    ),
                    Resolved::Live(key, run) => {
                        let expected = if invalid {
                            Err("InvalidName")
                        } else {
                            let len = bytes.len() as u64;
                            self.model
                                .runs
                                .get_mut(&key)
                                .expect("live")
                                .blobs
                                .insert(name.to_string(), bytes.clone());
                            Ok(len)
                        };
                        (run.put_bulk(name, &bytes), expected)
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::DeleteBulk { target, name } => {
                let name = BLOB_NAMES[*name];
                let Some(resolved) = self.resolve(target)? else {
                    return Ok(());
                };
                let (actual, expected) = match resolved {
                    Resolved::Absent => (absent_lookup(self.store()), Err("NotFound")),
                    Resolved::Stale(run) => (run.delete_bulk(name), Err("NotFound")),
                    Resolved::Live(key, run) => {
                        let blobs = &mut self.model.runs.get_mut(&key).expect("live").blobs;
                        let expected = match blobs.remove(name) {
                            Some(_) => Ok(()),
                            None => Err("NotFound"),
                        };
                        (run.delete_bulk(name), expected)
                    }
                };
                agree(op, actual, expected)?;
            }
            Op::Reader => {
                if self.reader.is_none() {
                    let reader = Store::open_read_only(self.path)
                        .map_err(|e| fail(format!("read-only open beside the writer: {e}")))?;
                    self.reader = Some(reader);
                }
                compare(self.reader.as_ref().expect("opened"), &self.model)
                    .map_err(|e| fail(format!("through the reader: {e}")))?;
            }
            Op::Backup => {
                self.backups += 1;
                let dest = self.path.with_extension(format!("backup-{}", self.backups));
                self.store()
                    .backup_to(&dest)
                    .map_err(|e| fail(format!("backup: {e}")))?;
                let backup = Store::open_read_only(&dest)
                    .map_err(|e| fail(format!("read-only open of the backup: {e}")))?;
                compare(&backup, &self.model).map_err(|e| fail(format!("the backup: {e}")))?;
                drop(backup);
                let _ = std::fs::remove_file(&dest);
            }
            Op::Vacuum => {
                self.close();
                let report = Store::vacuum(self.path).map_err(|e| fail(format!("vacuum: {e}")))?;
                prop_assert_eq!(
                    report.runs,
                    self.model.runs.len() as u64,
                    "vacuum: runs copied"
                );
                // No assertion that the file shrinks: the column writer only appends past its
                // high-water mark, so a vacuumed small store whose blobs are copied in another
                // order can need an extent more than the original (seen: 6.4 MB to 7.5 MB).
                let file_bytes = std::fs::metadata(self.path).map_or(0, |m| m.len());
                prop_assert_eq!(report.bytes_after, file_bytes, "vacuum: bytes after");
                self.store = Some(
                    Store::open(self.path).map_err(|e| fail(format!("open after vacuum: {e}")))?,
                );
            }
            Op::Reopen { read_only_first } => {
                self.close();
                if *read_only_first {
                    let reader = Store::open_read_only(self.path)
                        .map_err(|e| fail(format!("read-only open after a clean close: {e}")))?;
                    prop_assert!(reader.is_read_only());
                    compare(&reader, &self.model)?;
                    let write = reader.init(PROJECTS[0], None);
                    prop_assert!(
                        matches!(write, Err(Error::ReadOnly)),
                        "init on a read-only store: {write:?}"
                    );
                }
                self.store =
                    Some(Store::open(self.path).map_err(|e| fail(format!("reopen: {e}")))?);
            }
        }
        if matches!(op, Op::Reopen { .. } | Op::Reader | Op::Backup | Op::Vacuum) {
            count_outcome(op, "Ok");
        }
        Ok(())
    }
}

impl Harness<'_> {
    /// Drops every handle of the store, as closing it does.
    fn close(&mut self) {
        self.graveyard.clear();
        self.reader = None;
        self.store = None;
        self.model.active = None;
    }
}

/// The lookup of a url no run ever had (the store's side of `Target::Absent`).
fn absent_lookup(store: &Store) -> Result<(), Error> {
    store
        .run(&runstore::run_url(PROJECTS[0], "never-created"))
        .map(|_| ())
}

/// Compares the whole store with the model; `Err` describes the first difference.
fn compare(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    let err = |what: &str, e: Error| fail(format!("{what}: {e}"));
    let runs = store.runs(None).map_err(|e| err("runs", e))?;
    let urls: Vec<String> = runs.iter().map(Run::url).collect();
    let expected_urls: Vec<String> = model
        .runs
        .keys()
        .map(|(project, name)| runstore::run_url(project, name))
        .collect();
    prop_assert_eq!(&urls, &expected_urls, "run urls (in project, name order)");
    for (run, (key, expected)) in runs.iter().zip(&model.runs) {
        let url = run.url();
        let info = run.info().map_err(|e| err(&url, e))?;
        prop_assert_eq!(&info.url, &url);
        prop_assert_eq!(&info.project, &key.0);
        prop_assert_eq!(&info.name, &key.1);
        prop_assert_eq!(
            &info.description,
            &expected.description,
            "{} description",
            url
        );
        prop_assert_eq!(info.status, expected.status, "{} status", url);
        prop_assert!(
            info.created_us <= info.last_modified_us,
            "{url}: created {} after last modified {}",
            info.created_us,
            info.last_modified_us
        );
        let parameters = Value::Map(expected.parameters.clone());
        prop_assert!(
            same_bytes(&info.parameters, &parameters),
            "{url} parameters: store {:?}, model {:?}",
            info.parameters,
            parameters
        );
        prop_assert_eq!(
            &info.input_tables,
            &expected.input_tables,
            "{} input tables",
            url
        );
        prop_assert!(
            info.input_values.len() == expected.input_values.len()
                && info
                    .input_values
                    .iter()
                    .zip(&expected.input_values)
                    .all(|(a, b)| same_bytes(a, b)),
            "{url} input values: store {:?}, model {:?}",
            info.input_values,
            expected.input_values
        );
        prop_assert_eq!(
            info.output_count,
            expected.outputs.len() as u64,
            "{} output count",
            url
        );
        prop_assert!(info.metrics.is_empty(), "{url} has metrics tables");
        let outputs = run.output_values().map_err(|e| err(&url, e))?;
        prop_assert!(
            outputs.len() == expected.outputs.len()
                && outputs
                    .iter()
                    .zip(&expected.outputs)
                    .all(|(a, b)| same_bytes(a, b)),
            "{url} outputs: store {outputs:?}, model {:?}",
            expected.outputs
        );
        let blobs: Vec<(String, u64)> = run
            .bulk_list()
            .map_err(|e| err(&url, e))?
            .into_iter()
            .map(|b| (b.name, b.len))
            .collect();
        let expected_blobs: Vec<(String, u64)> = expected
            .blobs
            .iter()
            .map(|(name, bytes)| (name.clone(), bytes.len() as u64))
            .collect();
        prop_assert_eq!(&blobs, &expected_blobs, "{} blobs", url);
        for (name, bytes) in &expected.blobs {
            let stored = run.bulk_bytes(name).map_err(|e| err(&url, e))?;
            prop_assert!(&stored == bytes, "{url} blob {name}: bytes differ");
        }
    }
    for project in &model.projects {
        let in_project: Vec<String> = store
            .runs(Some(project))
            .map_err(|e| err("runs of project", e))?
            .iter()
            .map(Run::url)
            .collect();
        let expected: Vec<String> = expected_urls
            .iter()
            .filter(|url| url.starts_with(&format!("{project}/runs/")))
            .cloned()
            .collect();
        prop_assert_eq!(in_project, expected, "runs of project {}", project);
    }
    let projects: Vec<(String, u64)> = store
        .projects()
        .map_err(|e| err("projects", e))?
        .into_iter()
        .map(|p| (p.name, p.run_count))
        .collect();
    let expected_projects: Vec<(String, u64)> = model
        .projects
        .iter()
        .map(|p| {
            (
                p.clone(),
                model.runs.keys().filter(|k| &k.0 == p).count() as u64,
            )
        })
        .collect();
    prop_assert_eq!(projects, expected_projects, "projects and run counts");
    prop_assert_eq!(
        store.run_count().map_err(|e| err("run count", e))?,
        model.runs.len() as u64
    );
    let info = store.info().map_err(|e| err("info", e))?;
    let totals = (
        info.projects,
        info.runs,
        info.inputs,
        info.outputs,
        info.blobs,
    );
    let expected_totals = (
        model.projects.len() as u64,
        model.runs.len() as u64,
        model
            .runs
            .values()
            .map(|r| r.input_values.len() as u64)
            .sum(),
        model.runs.values().map(|r| r.outputs.len() as u64).sum(),
        model.runs.values().map(|r| r.blobs.len() as u64).sum(),
    );
    prop_assert_eq!(
        totals,
        expected_totals,
        "info: projects, runs, inputs, outputs, blobs"
    );
    Ok(())
}

/// Compares the store handle's active run with the model's, clearing the model's when its run
/// is gone (as the store does).
fn compare_active(store: &Store, model: &mut Model) -> Result<(), TestCaseError> {
    let expected = model
        .active
        .and_then(|uid| model.runs.iter().find(|(_, r)| r.uid == uid))
        .map(|((project, name), _)| runstore::run_url(project, name));
    if expected.is_none() {
        model.active = None;
    }
    let actual = store.active_run().map(|run| run.url());
    match (&actual, &expected) {
        (Ok(a), Some(e)) if a == e => Ok(()),
        (Err(Error::NoActiveRun), None) => Ok(()),
        _ => Err(fail(format!(
            "active run: store {actual:?}, model {expected:?}"
        ))),
    }
}

/// Runs `ops` on a fresh store and the model, comparing after every operation.
fn run_ops(ops: &[Op]) -> Result<(), TestCaseError> {
    let (_dir, path) = temp_store();
    let store = Store::create(&path).map_err(|e| fail(format!("create: {e}")))?;
    let mut harness = Harness {
        path: &path,
        store: Some(store),
        model: Model::default(),
        graveyard: Vec::new(),
        reader: None,
        backups: 0,
    };
    compare(harness.store(), &harness.model)?;
    for (step, op) in ops.iter().enumerate() {
        harness
            .apply(op)
            .map_err(|e| fail(format!("step {step}: {e}")))?;
        let store = harness.store.clone().expect("open");
        compare(&store, &harness.model)
            .map_err(|e| fail(format!("after step {step} {op:?}: {e}")))?;
        compare_active(&store, &mut harness.model)
            .map_err(|e| fail(format!("after step {step} {op:?}: {e}")))?;
    }
    // A final clean close and reopen must keep everything.
    harness.apply(&Op::Reopen {
        read_only_first: true,
    })?;
    compare(harness.store(), &harness.model)?;
    drop(harness);
    let report = runstore::check(&path).map_err(|e| fail(format!("check: {e}")))?;
    prop_assert!(report.is_ok(), "check: {:?}", report.problems);
    Ok(())
}

fn config() -> Config {
    let cases = std::env::var("RUNSTORE_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        // Shrunk failures become named regression tests here, not files beside the source.
        failure_persistence: None,
        ..Config::default()
    }
}

thread_local! {
    /// Outcomes seen in this thread's test, by operation and result, printed after the run so
    /// a reader can tell that the cases exercised more than the happy path.
    static OUTCOMES: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
}

fn count_outcome(op: &Op, outcome: &str) {
    let name = format!("{op:?}");
    let name = name
        .split([' ', '{', '('])
        .next()
        .unwrap_or("?")
        .to_string();
    OUTCOMES.with(|outcomes| {
        *outcomes
            .borrow_mut()
            .entry(format!("{name}:{outcome}"))
            .or_default() += 1;
    });
}

/// Runs the configured number of random cases (64 unless `RUNSTORE_MODEL_CASES` says
/// otherwise), printing a summary of what they did.
#[test]
fn model_store_matches_model() {
    let config = config();
    let cases = config.cases;
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&vec(op(), 1..=40), |ops| run_ops(&ops));
    let summary: Vec<String> = OUTCOMES.with(|outcomes| {
        outcomes
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    });
    println!(
        "model: {cases} cases in {:.1?}; outcomes: {}",
        started.elapsed(),
        summary.join(" ")
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}

fn check_ops(ops: &[Op]) {
    if let Err(error) = run_ops(ops) {
        panic!("{error}");
    }
}

/// Regression (found by the model test, shrunk to the first case): every way of deleting a
/// run failed with `Database { op: "open table", source: TableAlreadyOpen("blobs", ..) }` and
/// changed nothing. `catalog::delete_run_rows` held the blobs table open for writing while
/// `run_blobs` opened it again in the same transaction to list the run's blobs. Deleting a
/// run, `init` with `Overwrite` of an existing run, and `copy` with `Overwrite` all go
/// through it.
#[test]
fn regression_delete_run_reopens_blobs_table() {
    let init = |name: usize, if_exists: InitIfExists| Op::Init {
        project: 0,
        name: Some(name),
        if_exists,
        description: None,
        parameters: None,
    };
    // The shrunk case: a run with nothing in it.
    check_ops(&[
        init(0, InitIfExists::Raise),
        Op::Delete {
            target: Target::Live(0),
        },
    ]);
    // A run with a blob: the blob row must go with it.
    check_ops(&[
        init(0, InitIfExists::Raise),
        Op::PutBulk {
            target: Target::Live(0),
            name: 0,
            blob: BlobSpec { len: 100, seed: 1 },
        },
        Op::Delete {
            target: Target::Live(0),
        },
    ]);
    // Overwrite by init, and by copy.
    check_ops(&[
        init(0, InitIfExists::Raise),
        init(0, InitIfExists::Overwrite),
    ]);
    check_ops(&[
        init(0, InitIfExists::Raise),
        init(1, InitIfExists::Raise),
        Op::Copy {
            target: Target::Live(0),
            destination: Destination::Names {
                project: None,
                name: Some(1),
            },
            if_exists: CopyIfExists::Overwrite,
        },
    ]);
}
