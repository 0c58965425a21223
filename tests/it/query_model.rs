//! `Store::query_runs` against a naive evaluation: random runs written to a store, random
//! queries run through the store (which loads only what a query reads, walks outputs
//! backwards for latest values and decodes parameter paths in place) and through the filter
//! module over fully decoded runs; both must select the same runs in the same order.

use proptest::prelude::*;
use runstore::fuzz::filter::{self, Attribute, Subject};
use runstore::{Store, Value};

use crate::util::temp_store;

/// A fully decoded run, as the naive side sees it.
#[derive(Debug)]
pub(crate) struct FullRun {
    url: String,
    project: String,
    name: String,
    status: String,
    params: Value,
    outputs: Vec<Value>,
}

impl FullRun {
    /// Reads everything of `run`.
    pub(crate) fn read(run: &runstore::Run) -> FullRun {
        FullRun {
            url: run.url(),
            project: run.project().to_string(),
            name: run.name().to_string(),
            status: run.status().unwrap().name().to_string(),
            params: run.parameters().unwrap(),
            outputs: run.output_values().unwrap(),
        }
    }
}

impl Subject for FullRun {
    fn attribute(&self, attribute: Attribute) -> Value {
        match attribute {
            Attribute::Name => Value::Str(self.name.clone()),
            Attribute::Status => Value::Str(self.status.clone()),
            Attribute::Project => Value::Str(self.project.clone()),
            Attribute::Url => Value::Str(self.url.clone()),
            // Times differ run to run and are not generated in queries.
            _ => Value::Null,
        }
    }

    fn param(&self, path: &[String]) -> Option<&Value> {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        self.params.get_path(&keys)
    }

    fn outputs(&self) -> &[Value] {
        &self.outputs
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (-3i64..4).prop_map(Value::Int),
        (-2.0f64..2.0).prop_map(|f| Value::Float((f * 4.0).round() / 4.0)),
        Just(Value::Float(f64::NAN)),
        prop::sample::select(vec!["a", "b", "2"]).prop_map(|s| Value::Str(s.into())),
        any::<bool>().prop_map(Value::Bool),
    ]
}

/// A map over keys `a`, `b`, `m` (itself a map over `a`, `b`, or a scalar).
fn record() -> impl Strategy<Value = Value> {
    let inner = prop::collection::btree_map(
        prop::sample::select(vec!["a".to_string(), "b".to_string()]),
        scalar(),
        0..3,
    )
    .prop_map(Value::Map);
    prop::collection::btree_map(
        prop::sample::select(vec!["a".to_string(), "b".to_string(), "m".to_string()]),
        prop_oneof![3 => scalar(), 1 => inner],
        0..4,
    )
    .prop_map(Value::Map)
}

fn run() -> impl Strategy<Value = (Value, Vec<Value>, bool, &'static str)> {
    (
        record(),
        prop::collection::vec(record(), 0..5),
        any::<bool>(),
        prop::sample::select(vec!["p", "q"]),
    )
}

fn operand() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "params.a",
        "params.b",
        "params.m",
        "params.m.a",
        "outputs.a",
        "outputs.b",
        "outputs.m",
        "outputs.m.a",
        "outputs.m.b",
        "outputs.a.min",
        "outputs.a.max",
        "outputs.a.count",
        "outputs.a.first",
        "outputs.a.last",
        "outputs.m.a.mean",
        "name",
        "status",
    ])
    .prop_map(String::from)
}

fn comparison() -> impl Strategy<Value = String> {
    (
        operand(),
        prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
        prop::sample::select(vec!["0", "1", "-1.5", "'a'", "'2'", "TRUE"]),
    )
        .prop_map(|(operand, op, value)| {
            // Statuses compare by name only.
            if operand == "status" {
                format!("status {} 'RUNNING'", if op == "=" { "=" } else { "!=" })
            } else {
                format!("{operand} {op} {value}")
            }
        })
        .boxed()
        .prop_union(operand().prop_map(|o| format!("{o} IS NULL")).boxed())
        .or(operand().prop_map(|o| format!("{o} IS NOT NULL")).boxed())
}

fn query() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(comparison(), 1..4),
        prop::sample::select(vec![" AND ", " OR "]),
        prop::option::of((operand(), any::<bool>(), any::<bool>())),
        prop::option::of(0u64..4),
        prop::option::of(0u64..3),
    )
        .prop_map(|(comparisons, glue, order, limit, offset)| {
            let mut text = comparisons.join(glue);
            if let Some((key, descending, by_name)) = order {
                let key = if key == "status" {
                    "name".to_string()
                } else {
                    key
                };
                // Without `, name` ties fall back to project and name.
                text.push_str(&format!(
                    " ORDER BY {key} {}{}",
                    if descending { "DESC" } else { "ASC" },
                    if by_name { ", name" } else { "" }
                ));
            }
            if let Some(limit) = limit {
                text.push_str(&format!(" LIMIT {limit}"));
                if let Some(offset) = offset {
                    text.push_str(&format!(" OFFSET {offset}"));
                }
            }
            text
        })
}

/// Whether any of `runs` holds the parameter (`kind` "parameter") or output key `key` (its
/// path joined by `.`), with any value, null included: a query naming a key none holds is
/// refused with `Error::UnknownKey`, so the model accepts that answer only then.
pub(crate) fn holds_key(runs: &[FullRun], kind: &str, key: &str) -> bool {
    let path: Vec<&str> = key.split('.').collect();
    runs.iter().any(|run| match kind {
        "parameter" => run.params.get_path(&path).is_some(),
        _ => run
            .outputs
            .iter()
            .any(|output| output.get_path(&path).is_some()),
    })
}

/// The store's answer to `query`: the urls it selects, or `None` when it refuses a key no run
/// in `runs` holds (anything else is a failure).
fn store_urls(runs: &[FullRun], query: &runstore::RunQuery, text: &str) -> Option<Vec<String>> {
    match query.run() {
        Ok(selected) => Some(selected.iter().map(|run| run.url()).collect()),
        Err(runstore::Error::UnknownKey { kind, key, .. }) => {
            assert!(
                !holds_key(runs, kind, &key),
                "{text}: {kind} '{key}' refused but held"
            );
            None
        }
        Err(error) => panic!("{text}: {error}"),
    }
}

/// The runs (sorted by project and name) the query selects, in `project` if given.
pub(crate) fn naive(runs: &[FullRun], text: &str, project: Option<&str>) -> Vec<String> {
    let query = filter::parse_query(text).expect("generated queries parse");
    let mut selected: Vec<&FullRun> = runs
        .iter()
        .filter(|run| project.is_none_or(|p| p == run.project))
        .filter(|run| query.filter.as_ref().is_none_or(|f| f.matches(*run)))
        .collect();
    if !query.order_by.is_empty() {
        selected.sort_by(|a, b| filter::compare(&query.order_by, *a, *b));
    }
    selected
        .into_iter()
        .skip(query.offset as usize)
        .take(query.limit.map_or(usize::MAX, |l| l as usize))
        .map(|run| run.url.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn store_queries_agree_with_a_naive_evaluation_over_decoded_runs(
        runs in prop::collection::vec(run(), 1..7),
        queries in prop::collection::vec(query(), 1..12),
    ) {
        let (_dir, path) = temp_store();
        let store = Store::create(&path).unwrap();
        let mut full = Vec::new();
        for (i, (params, outputs, running, project)) in runs.into_iter().enumerate() {
            let name = format!("r{i}");
            let run = store.init(project, Some(&name)).unwrap();
            run.set_parameters(&params).unwrap();
            for output in &outputs {
                run.add_output_value(output).unwrap();
            }
            if running {
                run.set_status_running().unwrap();
            }
            full.push(FullRun {
                url: run.url(),
                project: project.to_string(),
                name,
                status: run.status().unwrap().name().to_string(),
                params: run.parameters().unwrap(),
                outputs: run.output_values().unwrap(),
            });
        }
        // Run ids follow creation, names and projects do not: sort as the store's name
        // index does.
        full.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
        for (i, text) in queries.iter().enumerate() {
            let project = [None, Some("p"), Some("q")][i % 3];
            let mut query = store.query_runs();
            if let Some(project) = project {
                query = query.project(project);
            }
            let query = query.query(text).unwrap();
            if let Some(got) = store_urls(&full, &query, text) {
                prop_assert_eq!(got, naive(&full, text, project), "{} in {:?}", text, project);
            }
        }
    }
}

/// Values an ordered walk must place exactly: numbers (with integers past 2^53, which share a
/// float, and -0), NaN and null (sorted last), strings sharing an 8-byte prefix, flags,
/// lists and maps (sorted ahead of numbers when descending) and a string too large for the
/// index (deferred).
fn sort_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (-3i64..4).prop_map(Value::Int),
        (-2.0f64..2.0).prop_map(|f| Value::Float((f * 4.0).round() / 4.0)),
        Just(Value::Float(-0.0)),
        Just(Value::Float(f64::NAN)),
        Just(Value::Int(9_007_199_254_740_993)),
        Just(Value::Int(9_007_199_254_740_992)),
        Just(Value::Float(9_007_199_254_740_992.0)),
        prop::sample::select(vec!["a", "b", "abcdefgh", "abcdefgh1", "abcdefgh2"])
            .prop_map(|s| Value::Str(s.into())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::List(vec![Value::Int(1)])),
        Just(Value::map([("x", Value::Int(1))])),
        Just(Value::Str("y".repeat(1100))),
    ]
}

fn sort_record() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop::sample::select(vec!["acc".to_string(), "loss".to_string()]),
        sort_scalar(),
        0..3,
    )
    .prop_map(Value::Map)
}

fn ordered_query() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "",
            "params.lr < 1",
            "outputs.acc > 0",
            "outputs.loss IS NOT NULL",
            "name != 'r3' AND params.lr >= 0",
            "outputs.acc != 'a'",
        ]),
        prop::sample::select(vec!["outputs.acc", "outputs.acc.last", "outputs.loss"]),
        any::<bool>(),
        any::<bool>(),
        0u64..6,
        prop::option::of(0u64..4),
    )
        .prop_map(|(filter, key, descending, by_name, limit, offset)| {
            let mut text = format!(
                "{filter} ORDER BY {key} {}{} LIMIT {limit}",
                if descending { "DESC" } else { "ASC" },
                if by_name { ", name DESC" } else { "" }
            );
            if let Some(offset) = offset {
                text.push_str(&format!(" OFFSET {offset}"));
            }
            text
        })
}

fn urls_of(
    store: &Store,
    full: &[FullRun],
    text: &str,
    project: Option<&str>,
) -> Option<Vec<String>> {
    let mut query = store.query_runs();
    if let Some(project) = project {
        query = query.project(project);
    }
    store_urls(full, &query.query(text).unwrap(), text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// `ORDER BY outputs.<key> ... LIMIT` walks the order index: the same runs in the same
    /// order as sorting every match, before and after more outputs change the latest values.
    #[test]
    fn ordered_walks_agree_with_a_naive_evaluation(
        runs in prop::collection::vec(
            (sort_scalar(), prop::collection::vec(sort_record(), 0..4),
             prop::collection::vec(sort_record(), 0..3), prop::sample::select(vec!["p", "q"])),
            1..30,
        ),
        queries in prop::collection::vec(ordered_query(), 1..10),
    ) {
        let (_dir, path) = temp_store();
        let store = Store::create(&path).unwrap();
        let mut handles = Vec::new();
        for (i, (lr, outputs, later, project)) in runs.into_iter().enumerate() {
            let name = format!("r{i}");
            let run = store.init(project, Some(&name)).unwrap();
            run.set_parameters(&Value::map([("lr", lr)])).unwrap();
            for output in &outputs {
                run.add_output_value(output).unwrap();
            }
            handles.push((run, later));
        }
        for phase in 0..2 {
            if phase == 1 {
                for (run, later) in &handles {
                    if !later.is_empty() {
                        run.add_output_values(later).unwrap();
                    }
                }
            }
            let mut full: Vec<FullRun> = handles.iter().map(|(run, _)| FullRun::read(run)).collect();
            full.sort_by(|a, b| (&a.project, &a.name).cmp(&(&b.project, &b.name)));
            for (i, text) in queries.iter().enumerate() {
                let project = [None, Some("p"), Some("q")][i % 3];
                if let Some(got) = urls_of(&store, &full, text, project) {
                    prop_assert_eq!(
                        got,
                        naive(&full, text, project),
                        "{} in {:?} (phase {})", text, project, phase
                    );
                }
            }
        }
        drop(handles);
        drop(store);
        let report = runstore::check(&path).unwrap();
        prop_assert!(report.is_ok(), "{:?}", report.problems);
    }
}
