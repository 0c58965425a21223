//! Finding runs: a filter, sort keys, limit and offset evaluated over one snapshot of the
//! catalog, loading only what the query reads.
//!
//! Parameters are decoded only when the query names a parameter, outputs only when it names
//! an output; attributes come from the run record. The result is `Run` handles in query order.

use std::cmp::Ordering;

use redb::ReadableTable;

use super::filter::{self, Attribute, Expr, OrderKey, Query, Subject};
use crate::catalog::{self, records::RunRecord, Reader};
use crate::error::{Error, Result};
use crate::run::{run_url, Run, RunStatus};
use crate::store::Store;
use crate::value::Value;

/// A run as the filter sees it.
struct RunSubject {
    id: u64,
    record: RunRecord,
    params: Value,
    outputs: Vec<Value>,
}

impl Subject for RunSubject {
    fn attribute(&self, attribute: Attribute) -> Value {
        match attribute {
            Attribute::Name => Value::Str(self.record.name.clone()),
            Attribute::Status => RunStatus::from_code(f64::from(self.record.status))
                .map(|status| Value::Str(status.name().to_string()))
                .unwrap_or(Value::Null),
            Attribute::Created => Value::Int(self.record.created_us),
            Attribute::LastModified => Value::Int(self.record.last_modified_us),
            Attribute::Description => Value::Str(self.record.description.clone()),
            Attribute::Project => Value::Str(self.record.project.clone()),
            Attribute::Url => Value::Str(run_url(&self.record.project, &self.record.name)),
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
        let wants_params = !self.query.referenced_params().is_empty();
        let wants_outputs = !self.query.referenced_outputs().is_empty();
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
                if self.project.as_deref().is_some_and(|p| p != key.value().0) {
                    break;
                }
                let id = id.value();
                let bytes = runs
                    .get(id)
                    .map_err(|e| Error::db("query runs", e))?
                    .ok_or_else(|| Error::Corrupted {
                        offset: 0,
                        reason: format!("run #{id} is named but has no record"),
                    })?;
                let record: RunRecord = catalog::records::decode(bytes.value(), "run record")?;
                let mut subject = RunSubject {
                    id,
                    record,
                    params: Value::Null,
                    outputs: Vec::new(),
                };
                if wants_params {
                    if let Some(bytes) = params.get(id).map_err(|e| Error::db("query runs", e))? {
                        subject.params = decode(bytes.value(), "parameters")?;
                    }
                }
                if wants_outputs {
                    for entry in outputs
                        .range((id, 0)..=(id, u64::MAX))
                        .map_err(|e| Error::db("query runs", e))?
                    {
                        let (_, bytes) = entry.map_err(|e| Error::db("query runs", e))?;
                        subject.outputs.push(decode(bytes.value(), "output value")?);
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
                Run::new(
                    self.store.clone(),
                    subject.id,
                    subject.record.project,
                    subject.record.name,
                )
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
