//! Finding runs: a filter, sort keys, limit and offset evaluated over one snapshot of the
//! catalog, loading only what the query reads.
//!
//! Parameters are decoded only when the query names a parameter, outputs only when it names
//! an output; attributes come from the run record. The result is `Run` handles in query order.

use std::cmp::Ordering;

use redb::ReadableTable;

use super::filter::{self, Attribute, Expr, Operand, OrderKey, Query, Subject};
use crate::catalog::{self, records::RunRecord, Reader};
use crate::error::{Error, Result};
use crate::run::{run_url, Run, RunStatus};
use crate::store::Store;
use crate::value::Value;

/// A run as the filter sees it, holding only what the query reads: the record when an
/// attribute is read, the referenced parameter paths (decoded in place, not the whole map),
/// and the output values (all of them, or for a query that reads only latest values, the
/// latest output holding each path, found by walking the outputs backwards).
struct RunSubject {
    id: u64,
    project: String,
    name: String,
    record: Option<RunRecord>,
    params: Vec<(Vec<String>, Value)>,
    outputs: Vec<Value>,
}

impl Subject for RunSubject {
    fn attribute(&self, attribute: Attribute) -> Value {
        let Some(record) = &self.record else {
            // Loaded whenever the query names an attribute; project and name come from the
            // name index either way.
            return match attribute {
                Attribute::Project => Value::Str(self.project.clone()),
                Attribute::Name => Value::Str(self.name.clone()),
                Attribute::Url => Value::Str(run_url(&self.project, &self.name)),
                _ => Value::Null,
            };
        };
        match attribute {
            Attribute::Name => Value::Str(record.name.clone()),
            Attribute::Status => RunStatus::from_code(f64::from(record.status))
                .map(|status| Value::Str(status.name().to_string()))
                .unwrap_or(Value::Null),
            Attribute::Created => Value::Int(record.created_us),
            Attribute::LastModified => Value::Int(record.last_modified_us),
            Attribute::Description => Value::Str(record.description.clone()),
            Attribute::Project => Value::Str(record.project.clone()),
            Attribute::Url => Value::Str(run_url(&record.project, &record.name)),
        }
    }

    fn param(&self, path: &[String]) -> Option<&Value> {
        self.params
            .iter()
            .find(|(p, _)| p.as_slice() == path)
            .map(|(_, value)| value)
    }

    fn outputs(&self) -> &[Value] {
        &self.outputs
    }
}

/// A map holding `value` at `path` (the value itself for an empty path).
fn nest(path: &[String], value: Value) -> Value {
    path.iter()
        .rev()
        .fold(value, |inner, key| Value::map([(key.as_str(), inner)]))
}

/// A query over the runs of a store, built step by step:
/// `store.query_runs().project("p").filter("params.lr < 0.01")?.order_by("outputs.acc DESC")?.limit(10).run()?`.
#[derive(Clone, Debug)]
pub struct RunQuery {
    store: Store,
    project: Option<String>,
    query: Query,
}

fn filter_error(error: filter::FilterError) -> Error {
    Error::InvalidQuery {
        column: error.column,
        message: error.message,
    }
}

impl RunQuery {
    pub(crate) fn new(store: Store) -> RunQuery {
        RunQuery {
            store,
            project: None,
            query: Query::default(),
        }
    }

    /// Only runs of `project`.
    pub fn project(mut self, project: &str) -> RunQuery {
        self.project = Some(project.to_string());
        self
    }

    /// Only runs the filter selects (MLflow's search syntax, made a superset: see
    /// `query::filter`). A blank filter selects every run.
    pub fn filter(mut self, text: &str) -> Result<RunQuery> {
        self.query.filter = filter::parse_filter(text).map_err(filter_error)?;
        Ok(self)
    }

    /// Sort keys: `key [ASC|DESC], ...`; nulls last.
    pub fn order_by(mut self, text: &str) -> Result<RunQuery> {
        self.query.order_by = filter::parse_order_by(text).map_err(filter_error)?;
        Ok(self)
    }

    /// A whole query: `[filter] [ORDER BY ...] [LIMIT n] [OFFSET m]`.
    pub fn query(mut self, text: &str) -> Result<RunQuery> {
        self.query = filter::parse_query(text).map_err(filter_error)?;
        Ok(self)
    }

    /// At most `limit` runs.
    pub fn limit(mut self, limit: u64) -> RunQuery {
        self.query.limit = Some(limit);
        self
    }

    /// Skip the first `offset` runs.
    pub fn offset(mut self, offset: u64) -> RunQuery {
        self.query.offset = offset;
        self
    }

    /// Runs the query on one snapshot and returns the runs in order (by project and name
    /// when no sort key is given).
    pub fn run(&self) -> Result<Vec<Run>> {
        Ok(self
            .select(&[])?
            .into_iter()
            .map(|(run, _)| run)
            .collect())
    }

    /// Runs the query on one snapshot and returns the runs in order, each with the value of
    /// every operand in `columns` (in the same snapshot; [`Value::Null`] where absent).
    pub(crate) fn select(&self, columns: &[Operand]) -> Result<Vec<(Run, Vec<Value>)>> {
        let mut query = self.query.clone();
        // The extra operands become sort keys after the real ones only so that the loading
        // below sees them; they are not used for ordering.
        let real_keys = query.order_by.len();
        query.order_by.extend(columns.iter().map(|operand| OrderKey {
            operand: operand.clone(),
            descending: false,
        }));
        let param_paths: Vec<Vec<String>> = query
            .referenced_params()
            .into_iter()
            .map(<[String]>::to_vec)
            .collect();
        let output_paths: Vec<Vec<String>> = query
            .referenced_outputs()
            .into_iter()
            .map(<[String]>::to_vec)
            .collect();
        let wants_record = !query.referenced_attributes().is_empty();
        let latest_only = query.reads_only_latest_outputs();
        query.order_by.truncate(real_keys);
        let mut selected = self.store.read(|txn| {
            let names = txn.table(catalog::RUN_NAMES)?;
            let runs = txn.table(catalog::RUNS)?;
            let params = txn.table(catalog::PARAMS)?;
            let outputs = txn.table(catalog::OUTPUTS)?;
            let iter = match &self.project {
                Some(project) => names.range((project.as_str(), "")..),
                None => names.iter(),
            }
            .map_err(|e| Error::db("query runs", e))?;
            let mut selected = Vec::new();
            for entry in iter {
                let (key, id) = entry.map_err(|e| Error::db("query runs", e))?;
                let (project, name) = key.value();
                if self.project.as_deref().is_some_and(|p| p != project) {
                    break;
                }
                let id = id.value();
                let record = if wants_record {
                    let bytes = runs
                        .get(id)
                        .map_err(|e| Error::db("query runs", e))?
                        .ok_or_else(|| Error::Corrupted {
                            offset: 0,
                            reason: format!("run #{id} is named but has no record"),
                        })?;
                    Some(catalog::records::decode::<RunRecord>(
                        bytes.value(),
                        "run record",
                    )?)
                } else {
                    None
                };
                let mut subject = RunSubject {
                    id,
                    project: project.to_string(),
                    name: name.to_string(),
                    record,
                    params: Vec::new(),
                    outputs: Vec::new(),
                };
                if !param_paths.is_empty() {
                    if let Some(bytes) = params.get(id).map_err(|e| Error::db("query runs", e))? {
                        for path in &param_paths {
                            let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                            if let Some(value) = decode_path(bytes.value(), &keys, "parameters")? {
                                subject.params.push((path.clone(), value));
                            }
                        }
                    }
                }
                if !output_paths.is_empty() {
                    let range = outputs
                        .range((id, 0)..=(id, u64::MAX))
                        .map_err(|e| Error::db("query runs", e))?;
                    if latest_only {
                        // Newest first; stop once every path has its latest holder.
                        let mut missing: Vec<&Vec<String>> = output_paths.iter().collect();
                        for entry in range.rev() {
                            if missing.is_empty() {
                                break;
                            }
                            let (_, bytes) = entry.map_err(|e| Error::db("query runs", e))?;
                            let mut still_missing = Vec::with_capacity(missing.len());
                            for path in missing {
                                let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                                match decode_path(bytes.value(), &keys, "output value")? {
                                    Some(value) if !matches!(value, Value::Null) => {
                                        subject.outputs.push(nest(path, value));
                                    }
                                    _ => still_missing.push(path),
                                }
                            }
                            missing = still_missing;
                        }
                    } else {
                        for entry in range {
                            let (_, bytes) = entry.map_err(|e| Error::db("query runs", e))?;
                            subject.outputs.push(decode(bytes.value(), "output value")?);
                        }
                    }
                }
                if self
                    .query
                    .filter
                    .as_ref()
                    .is_none_or(|expr: &Expr| expr.matches(&subject))
                {
                    selected.push(subject);
                }
            }
            Ok(selected)
        })?;
        if !self.query.order_by.is_empty() {
            // Evaluate each key once per run, then sort.
            let keys: Vec<Vec<Value>> = selected
                .iter()
                .map(|subject| {
                    self.query
                        .order_by
                        .iter()
                        .map(|key| key.operand.evaluate(subject).into_owned())
                        .collect()
                })
                .collect();
            let mut order: Vec<usize> = (0..selected.len()).collect();
            order.sort_by(|&a, &b| compare_keys(&self.query.order_by, &keys[a], &keys[b]));
            let mut slots: Vec<Option<RunSubject>> = selected.into_iter().map(Some).collect();
            selected = order
                .into_iter()
                .filter_map(|index| slots[index].take())
                .collect();
        }
        let offset = usize::try_from(self.query.offset).unwrap_or(usize::MAX);
        let limit = self
            .query
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(selected
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|subject| {
                let values = columns
                    .iter()
                    .map(|operand| operand.evaluate(&subject).into_owned())
                    .collect();
                let run = Run::new(
                    self.store.clone(),
                    subject.id,
                    subject.project,
                    subject.name,
                );
                (run, values)
            })
            .collect())
    }
}

fn compare_keys(order_by: &[OrderKey], a: &[Value], b: &[Value]) -> Ordering {
    for ((key, a), b) in order_by.iter().zip(a).zip(b) {
        let ordering = key.compare_values(a, b);
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn decode_path(bytes: &[u8], path: &[&str], what: &str) -> Result<Option<Value>> {
    Value::decode_path(bytes, path).map_err(|error| Error::Corrupted {
        offset: 0,
        reason: format!("{what}: {error}"),
    })
}

fn decode(bytes: &[u8], what: &str) -> Result<Value> {
    Value::decode(bytes).map_err(|error| Error::Corrupted {
        offset: 0,
        reason: format!("{what}: {error}"),
    })
}

impl Store {
    /// A query over this store's runs; see [`RunQuery`].
    pub fn query_runs(&self) -> RunQuery {
        RunQuery::new(self.clone())
    }
}
