//! Finding runs: a filter, sort keys, limit and offset evaluated over one snapshot of the
//! catalog, loading only what the query reads.
//!
//! Parameters are decoded only when the query names a parameter, outputs only when it names
//! an output; attributes come from the run record. The result is `Run` handles in query order.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use redb::ReadTransaction;

use super::filter::{
    self, Attribute, Expr, Operand, OrderKey, OutputReduction as Aggregate, Query, Subject,
};
use crate::catalog::index::{self, OutputStats, Slot};
use crate::catalog::lookup::{
    OutputIndex, OutputOrder, ParamIndex, RunNameIndex, RunRecords, RunRows,
};
use crate::catalog::{self, records::RunRecord};
use crate::error::{Error, Location, Result};
use crate::run::{run_url, Run};
use crate::status::RunStatus;
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
        record_attribute(record, attribute)
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

/// The value of an attribute read from a run record.
fn record_attribute(record: &RunRecord, attribute: Attribute) -> Value {
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

/// A map holding `value` at `path` (the value itself for an empty path).
fn nest(path: &[String], value: Value) -> Value {
    path.iter()
        .rev()
        .fold(value, |inner, key| Value::map([(key.as_str(), inner)]))
}

/// Most order index entries an ordered walk (`RunQuery::select_ordered`) meets before it gives
/// up for evaluating every run: a few milliseconds of point reads, against a few tens of
/// milliseconds for reading whole columns of 100,000 runs.
const ORDERED_WALK_MAX: usize = 4096;

/// Most runs a walk in name order (`RunQuery::select_in_name_order`) evaluates before it gives
/// up for evaluating every run from the key index.
const NAME_WALK_MAX: usize = 4096;

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
    /// `query::filter`). A blank filter selects every run. Keys are checked when the query
    /// runs ([`RunQuery::run`]'s [`Error::UnknownKey`]); this checks the syntax.
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
    ///
    /// # Errors
    ///
    /// [`Error::UnknownKey`] when the filter or a sort key names a parameter or output key
    /// that no run of the store holds (checked here, at run time, against the key index, not
    /// when the text is parsed: `filter` and `order_by` only parse); a key some runs hold is
    /// fine, and a run without it reads as null.
    pub fn run(&self) -> Result<Vec<Run>> {
        Ok(self.select(&[])?.into_iter().map(|(run, _)| run).collect())
    }

    /// How many runs the filter selects (of the project), before the offset and the limit: the
    /// `total` beside a page of [`RunQuery::run`]. Reads one snapshot, which a writer's commit
    /// between the two calls may make differ from the page's. Errors as [`RunQuery::run`].
    pub fn count(&self) -> Result<u64> {
        if self.query.filter.is_none() {
            return self.store.read(|txn| match &self.project {
                // A store's only project holds every run.
                Some(project)
                    if catalog::count_rows(txn, catalog::PROJECTS)? == 1
                        && catalog::runs::project_exists(txn, project)? =>
                {
                    catalog::count_rows(txn, catalog::RUNS)
                }
                Some(project) => catalog::runs::project_run_count(txn, project),
                None => catalog::count_rows(txn, catalog::RUNS),
            });
        }
        let mut query = self.query.clone();
        query.order_by.clear();
        query.limit = None;
        query.offset = 0;
        let counting = RunQuery {
            store: self.store.clone(),
            project: self.project.clone(),
            query,
        };
        let plan = Plan::new(&counting.query, &[]);
        let selected = self.store.read(|txn| {
            check_keys(txn, &counting.query, &[])?;
            if plan.indexable && catalog::has_index(txn)? {
                counting.select_indexed(txn, &plan)
            } else {
                counting.select_scanning(txn, &plan)
            }
        })?;
        Ok(selected.len() as u64)
    }

    /// Runs the query on one snapshot and returns the runs in order, each with the value of
    /// every operand in `columns` (in the same snapshot; [`Value::Null`] where absent).
    pub(crate) fn select(&self, columns: &[Operand]) -> Result<Vec<(Run, Vec<Value>)>> {
        // A page (at most NAME_WALK_MAX runs) reads its columns after the selection, from the
        // rows of the runs returned; a larger result reads them with the selection, from the
        // key index, where reading whole columns beats a point read per run.
        let page = self
            .query
            .limit
            .is_some_and(|limit| self.query.offset.saturating_add(limit) <= NAME_WALK_MAX as u64);
        let (plan, page_columns) = if page && !columns.is_empty() {
            (
                Plan::new(&self.query, &[]),
                Some(Plan::new(&Query::default(), columns)),
            )
        } else {
            (Plan::new(&self.query, columns), None)
        };
        let selected = self.store.read(|txn| {
            check_keys(txn, &self.query, columns)?;
            let mut selected = match self.select_in_name_order(txn, &plan)? {
                Some(selected) => self.finish(txn, selected, true)?,
                None => {
                    let (selected, name_ordered) = if plan.indexable && catalog::has_index(txn)? {
                        match self.select_ordered(txn, &plan)? {
                            Some(selected) => (selected, false),
                            None => (self.select_indexed(txn, &plan)?, false),
                        }
                    } else {
                        (self.select_scanning(txn, &plan)?, true)
                    };
                    self.finish(txn, selected, name_ordered)?
                }
            };
            if let Some(column_plan) = &page_columns {
                let tables = Tables::open(txn)?;
                for hit in &mut selected {
                    let (project, name) = hit.names.clone().unwrap_or_default();
                    let subject = tables.load(hit.id, &project, &name, column_plan)?;
                    hit.columns = columns
                        .iter()
                        .map(|operand| operand.evaluate(&subject).into_owned())
                        .collect();
                }
            }
            Ok(selected)
        })?;
        Ok(selected
            .into_iter()
            .map(|selected| {
                let (project, name) = selected.names.unwrap_or_default();
                let run = Run::new(self.store.clone(), selected.id, project, name);
                (run, selected.columns)
            })
            .collect())
    }

    /// For a page in (project, name) order (no sort key, a limit): walks the name index (of
    /// the project) from the start and evaluates the filter on each run met, loading what it
    /// reads from the run's own rows, until `offset + limit` runs match; without a filter the
    /// runs before the offset are passed over unread. This reads a page's worth of runs where
    /// evaluating every run would read them all.
    ///
    /// `None` when the query is not of that shape, or when the walk evaluates more than
    /// [`NAME_WALK_MAX`] runs (a selective filter, or a deep page of a filtered query): the
    /// caller then evaluates every run from the key index.
    fn select_in_name_order(
        &self,
        txn: &ReadTransaction,
        plan: &Plan,
    ) -> Result<Option<Vec<Selected>>> {
        let op = "query runs";
        let (true, Some(limit)) = (self.query.order_by.is_empty(), self.query.limit) else {
            return Ok(None);
        };
        let offset = usize::try_from(self.query.offset).unwrap_or(usize::MAX);
        let need = offset.saturating_add(usize::try_from(limit).unwrap_or(usize::MAX));
        let tables = Tables::open(txn)?;
        let names = RunNameIndex::open(txn)?;
        let mut selected = Vec::new();
        let mut evaluated = 0usize;
        for entry in names.runs(self.project.as_deref(), op)? {
            if selected.len() >= need {
                break;
            }
            let entry = entry?;
            let id = entry.id();
            if self.query.filter.is_none() && selected.len() < offset {
                // Matches, and `finish` skips it: no need to read or name it.
                selected.push(Selected {
                    id,
                    names: None,
                    keys: Vec::new(),
                    columns: Vec::new(),
                });
                continue;
            }
            evaluated += 1;
            if evaluated > NAME_WALK_MAX {
                return Ok(None);
            }
            let (project, name) = entry.names();
            let subject = tables.load(id, project, name, plan)?;
            if let Some(mut hit) = self.evaluate(&subject, id, plan) {
                hit.names = Some((subject.project, subject.name));
                selected.push(hit);
            }
        }
        Ok(Some(selected))
    }

    /// Evaluates the filter on every run (of the project), loading each run's referenced
    /// parameters and outputs from its own rows: for stores without the key index, and
    /// queries naming a path the index does not hold. Returns the matches in name order.
    fn select_scanning(&self, txn: &ReadTransaction, plan: &Plan) -> Result<Vec<Selected>> {
        let tables = Tables::open(txn)?;
        let names = RunNameIndex::open(txn)?;
        let mut selected = Vec::new();
        for entry in names.runs(self.project.as_deref(), "query runs")? {
            let entry = entry?;
            let (project, name) = entry.names();
            let id = entry.id();
            let subject = tables.load(id, project, name, plan)?;
            if let Some(mut hit) = self.evaluate(&subject, subject.id, plan) {
                hit.names = Some((subject.project, subject.name));
                selected.push(hit);
            }
        }
        Ok(selected)
    }

    /// Evaluates the filter from the key index: one range read per parameter or output path
    /// the query names, the candidates narrowed to the runs holding every path the filter
    /// cannot do without. Returns the matches in run id order, mostly without names.
    fn select_indexed(&self, txn: &ReadTransaction, plan: &Plan) -> Result<Vec<Selected>> {
        let op = "query runs";
        let params: Vec<Vec<(u64, Slot)>> = {
            let table = ParamIndex::open(txn)?;
            plan.param_paths
                .iter()
                .map(|path| table.column(&index::encode_path(path), op))
                .collect::<Result<_>>()?
        };
        let outputs: Vec<Vec<(u64, OutputStats)>> = {
            let table = OutputIndex::open(txn)?;
            plan.output_paths
                .iter()
                .map(|path| table.column(&index::encode_path(path), plan.parts(path), op))
                .collect::<Result<_>>()?
        };

        // Candidates: the runs holding every required path, within the project.
        let mut candidates: Option<Vec<u64>> = None;
        let mut narrow = |ids: Vec<u64>| {
            candidates = Some(match candidates.take() {
                None => ids,
                Some(current) => intersect(&current, &ids),
            });
        };
        if let Some(filter) = &self.query.filter {
            for operand in required_operands(filter) {
                match operand {
                    Operand::Param(path) => {
                        let i = plan.param_index(path);
                        narrow(params[i].iter().map(|(id, _)| *id).collect());
                    }
                    Operand::Output { key, .. } => {
                        let i = plan.output_index(key);
                        narrow(outputs[i].iter().map(|(id, _)| *id).collect());
                    }
                    _ => {}
                }
            }
        }
        let mut project_names: Vec<(u64, String)> = Vec::new();
        // A store's only project holds every run: no narrowing needed (the runs returned are
        // named later, by `finish`).
        let only_project = match &self.project {
            Some(project) => {
                catalog::count_rows(txn, catalog::PROJECTS)? == 1
                    && catalog::runs::project_exists(txn, project)?
            }
            None => false,
        };
        if let Some(project) = self.project.as_ref().filter(|_| !only_project) {
            let names = RunNameIndex::open(txn)?;
            for entry in names.runs(Some(project), op)? {
                let entry = entry?;
                let (_, name) = entry.names();
                project_names.push((entry.id(), name.to_string()));
            }
            project_names.sort_unstable_by_key(|(id, _)| *id);
            narrow(project_names.iter().map(|(id, _)| *id).collect());
        }
        let candidates = match candidates {
            Some(candidates) => candidates,
            None => catalog::runs::run_ids(txn, op)?,
        };

        let tables = Tables::open(txn)?;
        let mut param_cursors = vec![0usize; params.len()];
        let mut output_cursors = vec![0usize; outputs.len()];
        let mut selected = Vec::new();
        // Reused for every candidate: the query touches each run for a few hundred
        // nanoseconds, so allocations would show.
        let mut subject_params: Vec<Option<&Value>> = Vec::with_capacity(params.len());
        let mut subject_outputs: Vec<Option<&OutputStats>> = Vec::with_capacity(outputs.len());
        for id in candidates {
            let mut deferred = false;
            subject_params.clear();
            subject_params.extend(
                params
                    .iter()
                    .zip(&mut param_cursors)
                    .map(|(column, cursor)| match seek(column, cursor, id) {
                        Some(Slot::Value(value)) => Some(value),
                        Some(Slot::Deferred) => {
                            deferred = true;
                            None
                        }
                        None => None,
                    }),
            );
            subject_outputs.clear();
            subject_outputs.extend(
                outputs
                    .iter()
                    .zip(&mut output_cursors)
                    .map(|(column, cursor)| seek(column, cursor, id)),
            );
            for (path, aggregate) in &plan.output_aggregates {
                let stats = subject_outputs
                    .get(plan.output_index(path))
                    .copied()
                    .flatten();
                let slot = match (stats, aggregate) {
                    (Some(stats), Aggregate::First) => &stats.first,
                    (Some(stats), Aggregate::Last) => &stats.last,
                    _ => continue,
                };
                deferred |= matches!(slot, Slot::Deferred);
            }
            let hit = if deferred {
                // A map or a large value: read this run the long way.
                let subject = tables.load(id, "", "", plan)?;
                self.evaluate(&subject, id, plan)
            } else {
                let record = if plan.wants_record {
                    Some(tables.record(id)?)
                } else {
                    None
                };
                let subject = IndexedSubject {
                    plan,
                    record,
                    params: &subject_params,
                    outputs: &subject_outputs,
                };
                self.evaluate(&subject, id, plan)
            };
            if let Some(mut hit) = hit {
                if let Some(project) = self.project.as_ref().filter(|_| !only_project) {
                    if let Ok(at) = project_names.binary_search_by_key(&id, |(id, _)| *id) {
                        hit.names = Some((project.clone(), project_names[at].1.clone()));
                    }
                }
                selected.push(hit);
            }
        }
        Ok(selected)
    }

    /// For `ORDER BY outputs.<key> ... LIMIT n [OFFSET m]`: walks the order index of that key
    /// from the end the sort starts at, evaluates the filter on each run met (point reads of
    /// the key index), and stops once `n + m` runs match and the next entry's [`index::SortKey`]
    /// differs from that of the last of them. Every run not met sorts strictly after every
    /// match met (the sort key only coarsens the order), so `finish` gives from these matches
    /// exactly what it gives from all of them, ties settled by project and name as always.
    ///
    /// `None` when the query is not of that shape, when the walk runs out before `n + m` runs
    /// match (the rest would come from the runs whose value is null or NaN, which the order
    /// index leaves out), or when it meets more than [`ORDERED_WALK_MAX`] entries (a filter
    /// too selective for the walk to beat reading whole columns): the caller then evaluates
    /// every run.
    fn select_ordered(&self, txn: &ReadTransaction, plan: &Plan) -> Result<Option<Vec<Selected>>> {
        let op = "query runs";
        let (Some(limit), Some(first)) = (self.query.limit, self.query.order_by.first()) else {
            return Ok(None);
        };
        let Operand::Output {
            key,
            aggregate: Aggregate::Last,
        } = &first.operand
        else {
            return Ok(None);
        };
        let need = usize::try_from(self.query.offset.saturating_add(limit)).unwrap_or(usize::MAX);
        if need == 0 {
            return Ok(Some(Vec::new()));
        }
        let path = index::encode_path(key);
        let order = OutputOrder::open(txn)?;
        let mut entries = order.walk(&path, first.descending, op)?;
        let param_index = ParamIndex::open(txn)?;
        let output_index = OutputIndex::open(txn)?;
        let param_keys: Vec<Vec<&str>> = plan
            .param_paths
            .iter()
            .map(|path| path.iter().map(String::as_str).collect())
            .collect();
        let output_paths: Vec<Vec<u8>> = plan
            .output_paths
            .iter()
            .map(|p| index::encode_path(p))
            .collect();
        let tables = Tables::open(txn)?;
        let mut selected: Vec<Selected> = Vec::new();
        let mut boundary: Option<(u8, u64)> = None;
        let mut walked = 0usize;
        let mut params: Vec<Option<Slot>> = Vec::with_capacity(param_keys.len());
        let mut outputs: Vec<Option<OutputStats>> = Vec::with_capacity(output_paths.len());
        loop {
            let Some(entry) = entries.next() else {
                // Ran out: the remaining matches sort with null.
                return Ok(boundary.map(|_| selected));
            };
            let (rank, bits, id) = entry?;
            if let Some(boundary) = boundary {
                if (rank, bits) != boundary {
                    return Ok(Some(selected));
                }
            }
            walked += 1;
            if walked > ORDERED_WALK_MAX {
                return Ok(None);
            }
            let mut deferred = false;
            params.clear();
            for keys in &param_keys {
                let slot = param_index.get(keys, id)?;
                deferred |= matches!(slot, Some(Slot::Deferred));
                params.push(slot);
            }
            outputs.clear();
            for (path, keys) in output_paths.iter().zip(&plan.output_paths) {
                let stats = output_index.get(path, id, plan.parts(keys))?;
                outputs.push(stats);
            }
            for (path, aggregate) in &plan.output_aggregates {
                let stats = outputs
                    .get(plan.output_index(path))
                    .and_then(Option::as_ref);
                let slot = match (stats, aggregate) {
                    (Some(stats), Aggregate::First) => &stats.first,
                    (Some(stats), Aggregate::Last) => &stats.last,
                    _ => continue,
                };
                deferred |= matches!(slot, Slot::Deferred);
            }
            let record = if plan.wants_record || self.project.is_some() {
                Some(tables.record(id)?)
            } else {
                None
            };
            if let (Some(project), Some(record)) = (&self.project, &record) {
                if record.project != *project {
                    continue;
                }
            }
            let names = record
                .as_ref()
                .map(|record| (record.project.clone(), record.name.clone()));
            let hit = if deferred {
                // A map or a large value: read this run the long way.
                let subject = tables.load(id, "", "", plan)?;
                self.evaluate(&subject, id, plan)
            } else {
                let subject_params: Vec<Option<&Value>> = params
                    .iter()
                    .map(|slot| match slot {
                        Some(Slot::Value(value)) => Some(value),
                        _ => None,
                    })
                    .collect();
                let subject_outputs: Vec<Option<&OutputStats>> =
                    outputs.iter().map(Option::as_ref).collect();
                let subject = IndexedSubject {
                    plan,
                    record: if plan.wants_record { record } else { None },
                    params: &subject_params,
                    outputs: &subject_outputs,
                };
                self.evaluate(&subject, id, plan)
            };
            if let Some(mut hit) = hit {
                hit.names = names;
                selected.push(hit);
                if selected.len() == need {
                    boundary = Some((rank, bits));
                }
            }
        }
    }

    /// The filter's verdict on one run, and if it matches, its sort keys and column values.
    fn evaluate<S: Subject>(&self, subject: &S, id: u64, plan: &Plan) -> Option<Selected> {
        if !self
            .query
            .filter
            .as_ref()
            .is_none_or(|expr: &Expr| expr.matches(subject))
        {
            return None;
        }
        let value = |operand: &Operand| operand.evaluate(subject).into_owned();
        Some(Selected {
            id,
            names: None,
            keys: self
                .query
                .order_by
                .iter()
                .map(|key| value(&key.operand))
                .collect(),
            columns: plan.columns.iter().map(value).collect(),
        })
    }

    /// Orders the matches, applies offset and limit, and names the runs returned. Sorting
    /// uses the keys first and the run id to break ties; the ties that straddle the limit are
    /// then settled by project and name like every other tie, so the result is the same as
    /// sorting every match by (keys, project, name) while naming only the runs returned.
    fn finish(
        &self,
        txn: &ReadTransaction,
        mut selected: Vec<Selected>,
        name_ordered: bool,
    ) -> Result<Vec<Selected>> {
        let offset = usize::try_from(self.query.offset).unwrap_or(usize::MAX);
        let limit = self
            .query
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        let end = offset.saturating_add(limit).min(selected.len());
        let order_by = &self.query.order_by;
        if order_by.is_empty() {
            if !name_ordered {
                selected = self.in_name_order(txn, selected, end)?;
            }
        } else {
            let order = |a: &Selected, b: &Selected| {
                compare_keys(order_by, &a.keys, &b.keys).then(a.id.cmp(&b.id))
            };
            // Only the first `end` need sorting: select them (the order is total, so the
            // selection is exact), keeping the runs tied with the last of them on the keys,
            // whose order is settled by name below.
            if end < selected.len() {
                if end == 0 {
                    return Ok(Vec::new());
                }
                selected.select_nth_unstable_by(end - 1, order);
                let tail = selected.split_off(end);
                let boundary = &selected[end - 1].keys;
                let ties: Vec<Selected> = tail
                    .into_iter()
                    .filter(|hit| compare_keys(order_by, &hit.keys, boundary) == Ordering::Equal)
                    .collect();
                selected.extend(ties);
            }
            selected.sort_by(order);
            let mut cut = end;
            while cut > 0
                && cut < selected.len()
                && compare_keys(order_by, &selected[cut - 1].keys, &selected[cut].keys)
                    == Ordering::Equal
            {
                cut += 1;
            }
            selected.truncate(cut);
            let runs = RunRecords::open(txn)?;
            for hit in &mut selected {
                if hit.names.is_none() {
                    let record = runs.get(hit.id)?;
                    hit.names = Some((record.project, record.name));
                }
            }
            selected.sort_by(|a, b| {
                compare_keys(order_by, &a.keys, &b.keys).then_with(|| a.names.cmp(&b.names))
            });
        }
        Ok(selected.into_iter().skip(offset).take(limit).collect())
    }

    /// The first `count` of `selected` in (project, name) order, named, found by walking the
    /// name index (of the project) until that many are seen.
    fn in_name_order(
        &self,
        txn: &ReadTransaction,
        selected: Vec<Selected>,
        count: usize,
    ) -> Result<Vec<Selected>> {
        let op = "query runs";
        let mut by_id: HashMap<u64, Selected> =
            selected.into_iter().map(|hit| (hit.id, hit)).collect();
        let mut ordered = Vec::with_capacity(count.min(by_id.len()));
        let names = RunNameIndex::open(txn)?;
        let mut entries = names.runs(self.project.as_deref(), op)?;
        loop {
            if ordered.len() >= count {
                break;
            }
            let Some(entry) = entries.next() else {
                break;
            };
            let entry = entry?;
            let (project, name) = entry.names();
            let id = entry.id();
            if let Some(mut hit) = by_id.remove(&id) {
                hit.names = Some((project.to_string(), name.to_string()));
                ordered.push(hit);
            }
        }
        Ok(ordered)
    }
}

/// What a query reads: the parameter and output paths and aggregates its filter, sort keys
/// and extra columns name, and whether the key index can answer it.
struct Plan {
    param_paths: Vec<Vec<String>>,
    output_paths: Vec<Vec<String>>,
    output_aggregates: Vec<(Vec<String>, Aggregate)>,
    wants_record: bool,
    latest_only: bool,
    indexable: bool,
    columns: Vec<Operand>,
}

impl Plan {
    fn new(query: &Query, columns: &[Operand]) -> Plan {
        let mut query = query.clone();
        // The extra columns join the sort keys only so that the walks below see them.
        query
            .order_by
            .extend(columns.iter().map(|operand| OrderKey {
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
        let mut output_aggregates = Vec::new();
        for key in &query.order_by {
            collect_output_aggregate(&key.operand, &mut output_aggregates);
        }
        if let Some(filter) = &query.filter {
            for operand in filter.operands() {
                collect_output_aggregate(operand, &mut output_aggregates);
            }
        }
        let indexable = param_paths
            .iter()
            .chain(&output_paths)
            .all(|path| index::is_indexable(path));
        Plan {
            wants_record: !query.referenced_attributes().is_empty(),
            latest_only: query.reads_only_latest_outputs(),
            param_paths,
            output_paths,
            output_aggregates,
            indexable,
            columns: columns.to_vec(),
        }
    }

    /// The parts of an output path's stats the query's aggregates read.
    fn parts(&self, path: &[String]) -> index::Parts {
        let mut parts = index::Parts::default();
        for (key, aggregate) in &self.output_aggregates {
            if key.as_slice() == path {
                match aggregate {
                    Aggregate::First => parts.first = true,
                    Aggregate::Last => parts.last = true,
                    Aggregate::Min => parts.min = true,
                    Aggregate::Max => parts.max = true,
                    Aggregate::Mean | Aggregate::Count => {}
                }
            }
        }
        parts
    }

    fn param_index(&self, path: &[String]) -> usize {
        self.param_paths
            .iter()
            .position(|p| p.as_slice() == path)
            .unwrap_or(usize::MAX)
    }

    fn output_index(&self, path: &[String]) -> usize {
        self.output_paths
            .iter()
            .position(|p| p.as_slice() == path)
            .unwrap_or(usize::MAX)
    }
}

fn collect_output_aggregate(operand: &Operand, into: &mut Vec<(Vec<String>, Aggregate)>) {
    if let Operand::Output { key, aggregate } = operand {
        if !into.iter().any(|(k, a)| k == key && a == aggregate) {
            into.push((key.clone(), *aggregate));
        }
    }
}

/// A run the filter selected: its sort keys and extra column values, and its project and
/// name once known.
struct Selected {
    id: u64,
    names: Option<(String, String)>,
    keys: Vec<Value>,
    columns: Vec<Value>,
}

/// The catalog rows a run is loaded from, opened once per query.
struct Tables {
    rows: RunRows,
}

impl Tables {
    fn open(txn: &ReadTransaction) -> Result<Tables> {
        Ok(Tables {
            rows: RunRows::open(txn)?,
        })
    }

    fn record(&self, id: u64) -> Result<RunRecord> {
        self.rows.record(id)
    }

    /// Loads what `plan` reads of run `id` from its own rows.
    fn load(&self, id: u64, project: &str, name: &str, plan: &Plan) -> Result<RunSubject> {
        let op = "query runs";
        let record = if plan.wants_record {
            Some(self.record(id)?)
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
        if !plan.param_paths.is_empty() {
            if let Some(bytes) = self.rows.params(id)? {
                for path in &plan.param_paths {
                    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                    if let Some(value) = decode_path(&bytes, &keys, "parameters")? {
                        subject.params.push((path.clone(), value));
                    }
                }
            }
        }
        if !plan.output_paths.is_empty() {
            let range = self.rows.outputs(id, op)?;
            if plan.latest_only {
                // Newest first; stop once every path has its latest holder.
                let mut missing: Vec<&Vec<String>> = plan.output_paths.iter().collect();
                for entry in range.rev() {
                    if missing.is_empty() {
                        break;
                    }
                    let row = entry?;
                    let bytes = row.payload()?;
                    let mut still_missing = Vec::with_capacity(missing.len());
                    for path in missing {
                        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                        match decode_path(bytes, &keys, "output value")? {
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
                    let row = entry?;
                    let bytes = row.payload()?;
                    subject.outputs.push(decode(bytes, "output value")?);
                }
            }
        }
        Ok(subject)
    }
}

/// A run as the key index describes it: the referenced parameters (in the plan's order) and
/// the referenced outputs' aggregates, with the record when an attribute is read.
struct IndexedSubject<'a> {
    plan: &'a Plan,
    record: Option<RunRecord>,
    params: &'a [Option<&'a Value>],
    outputs: &'a [Option<&'a OutputStats>],
}

impl Subject for IndexedSubject<'_> {
    fn attribute(&self, attribute: Attribute) -> Value {
        match &self.record {
            Some(record) => record_attribute(record, attribute),
            None => Value::Null,
        }
    }

    fn param(&self, path: &[String]) -> Option<&Value> {
        self.params
            .get(self.plan.param_index(path))
            .copied()
            .flatten()
    }

    fn outputs(&self) -> &[Value] {
        // Every aggregate comes from `output`; there is no history here.
        &[]
    }

    fn output(&self, key: &[String], aggregate: Aggregate) -> Cow<'_, Value> {
        let stats = self
            .outputs
            .get(self.plan.output_index(key))
            .copied()
            .flatten();
        let Some(stats) = stats else {
            return Cow::Owned(match aggregate {
                Aggregate::Count => Value::Int(0),
                _ => Value::Null,
            });
        };
        let slot = |slot: &'_ Slot| match slot {
            Slot::Value(value) => value.clone(),
            // Runs with a deferred slot are evaluated from their rows instead.
            Slot::Deferred => Value::Null,
        };
        Cow::Owned(match aggregate {
            Aggregate::Last => slot(&stats.last),
            Aggregate::First => slot(&stats.first),
            Aggregate::Count => Value::Int(i64::try_from(stats.count).unwrap_or(i64::MAX)),
            Aggregate::Min => stats.min.clone().unwrap_or(Value::Null),
            Aggregate::Max => stats.max.clone().unwrap_or(Value::Null),
            Aggregate::Mean => {
                if stats.numbers == 0 {
                    Value::Null
                } else {
                    Value::Float(stats.sum / stats.numbers as f64)
                }
            }
        })
    }
}

/// The entry of run `id` in a column sorted by run id, moving `cursor` forward (ids are
/// visited in increasing order).
fn seek<'a, T>(column: &'a [(u64, T)], cursor: &mut usize, id: u64) -> Option<&'a T> {
    while *cursor < column.len() && column[*cursor].0 < id {
        *cursor += 1;
    }
    match column.get(*cursor) {
        Some((found, value)) if *found == id => Some(value),
        _ => None,
    }
}

/// The ids in both sorted lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Most parameter and output rows [`check_keys`] reads to confirm that a key the index lacks
/// is held nowhere (a key whose every value is null is not indexed): a few tens of
/// milliseconds. Past it the key gets the benefit of the doubt and the query runs.
const KEY_CONFIRM_ROWS_MAX: usize = 100_000;

/// Refuses a query naming a parameter or output path that no run of the store holds (a
/// typo: `params.LR` where runs have `lr`, `outputs.val_acc` for `val_accuracy`), with the
/// closest key of the same kind as a suggestion: the answer would otherwise be silently empty
/// or all null. A path some run holds passes, whatever the project (a filter on a key only some
/// runs have is a real question), and so does a path named only in a comparison that holds
/// for a run without it (`params.x IS NULL`, `outputs.loss.count = 0`: absence is the
/// question). Answered from the key index, one seek per path named, confirmed from the runs'
/// rows before refusing (a key holding only nulls is not indexed); a store without the index
/// (a read-only open of a catalog version 1 store), a store without runs and a path too long
/// to index are not checked.
fn check_keys(txn: &ReadTransaction, query: &Query, columns: &[Operand]) -> Result<()> {
    let op = "check query keys";
    let mut operands: Vec<&Operand> = Vec::new();
    if let Some(filter) = &query.filter {
        collect_asserted(filter, &mut operands);
    }
    operands.extend(query.order_by.iter().map(|key| &key.operand));
    operands.extend(columns);
    let mut params: Vec<&[String]> = Vec::new();
    let mut outputs: Vec<&[String]> = Vec::new();
    for operand in operands {
        match operand {
            Operand::Param(path) if index::is_indexable(path) => params.push(path),
            Operand::Output { key, .. } if index::is_indexable(key) => outputs.push(key),
            _ => {}
        }
    }
    if params.is_empty() && outputs.is_empty() {
        return Ok(());
    }
    if !catalog::has_index(txn)? || catalog::count_rows(txn, catalog::RUNS)? == 0 {
        return Ok(());
    }
    let unknown = |kind: &'static str, path: &[String], known: Vec<Vec<String>>| {
        let key = path.join(".");
        let known: Vec<String> = known.iter().map(|path| path.join(".")).collect();
        let suggestion =
            filter::suggest_key(&key, known.iter().map(String::as_str)).map(str::to_owned);
        Error::UnknownKey {
            kind,
            key,
            suggestion,
        }
    };
    let param_index = ParamIndex::open(txn)?;
    for path in params {
        if !param_index.holds(&index::encode_path(path), op)? && !held_in_rows(txn, path, true)? {
            return Err(unknown("parameter", path, param_index.paths(op)?));
        }
    }
    let output_index = OutputIndex::open(txn)?;
    for path in outputs {
        if !output_index.holds(&index::encode_path(path), op)? && !held_in_rows(txn, path, false)? {
            return Err(unknown("output", path, output_index.paths(op)?));
        }
    }
    Ok(())
}

/// The operands of `expr`'s comparisons that do not hold for a run lacking the key (the
/// value an absent key gives: null, or 0 for a count).
fn collect_asserted<'a>(expr: &'a Expr, into: &mut Vec<&'a Operand>) {
    match expr {
        Expr::Comparison(comparison) => {
            let absent = match &comparison.operand {
                Operand::Output {
                    aggregate: Aggregate::Count,
                    ..
                } => Value::Int(0),
                _ => Value::Null,
            };
            if !comparison.holds_for(&absent) {
                into.push(&comparison.operand);
            }
        }
        Expr::And(parts) | Expr::Or(parts) => {
            for part in parts {
                collect_asserted(part, into);
            }
        }
        Expr::Not(inner) => collect_asserted(inner, into),
    }
}

/// Whether some run's parameters (`params`) or output values hold `path`, with any value,
/// null included, read from the runs' own rows; `true` past [`KEY_CONFIRM_ROWS_MAX`] rows.
fn held_in_rows(txn: &ReadTransaction, path: &[String], params: bool) -> Result<bool> {
    let op = "check query keys";
    let rows = RunRows::open(txn)?;
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    let mut read = 0usize;
    for id in catalog::runs::run_ids(txn, op)? {
        if params {
            read += 1;
            if let Some(bytes) = rows.params(id)? {
                if decode_path(&bytes, &keys, "parameters")?.is_some() {
                    return Ok(true);
                }
            }
        } else {
            for row in rows.outputs(id, op)? {
                read += 1;
                if decode_path(row?.payload()?, &keys, "output value")?.is_some() {
                    return Ok(true);
                }
                if read > KEY_CONFIRM_ROWS_MAX {
                    return Ok(true);
                }
            }
        }
        if read > KEY_CONFIRM_ROWS_MAX {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Parameter and output operands the filter cannot be true without: a run lacking any of them
/// is rejected whatever else it holds. A comparison requires its operand when it fails on the
/// value an absent key gives (null; for a count, 0); `AND` requires what any part requires,
/// `OR` what every part requires, `NOT` nothing.
fn required_operands(expr: &Expr) -> Vec<&Operand> {
    match expr {
        Expr::Comparison(comparison) => {
            let absent = match &comparison.operand {
                Operand::Param(_) => Value::Null,
                Operand::Output { aggregate, .. } => match aggregate {
                    Aggregate::Count => Value::Int(0),
                    _ => Value::Null,
                },
                _ => return Vec::new(),
            };
            if comparison.holds_for(&absent) {
                Vec::new()
            } else {
                vec![&comparison.operand]
            }
        }
        Expr::And(parts) => {
            let mut required: Vec<&Operand> = Vec::new();
            for part in parts {
                for operand in required_operands(part) {
                    if !required.contains(&operand) {
                        required.push(operand);
                    }
                }
            }
            required
        }
        Expr::Or(parts) => {
            let mut parts = parts.iter();
            let Some(first) = parts.next() else {
                return Vec::new();
            };
            let mut required = required_operands(first);
            for part in parts {
                let others = required_operands(part);
                required.retain(|operand| others.contains(operand));
            }
            required
        }
        Expr::Not(_) => Vec::new(),
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
        at: Location::Catalog,
        reason: format!("{what}: {error}"),
    })
}

fn decode(bytes: &[u8], what: &str) -> Result<Value> {
    Value::decode(bytes).map_err(|error| Error::Corrupted {
        at: Location::Catalog,
        reason: format!("{what}: {error}"),
    })
}

impl Store {
    /// A query over this store's runs; see [`RunQuery`].
    pub fn query_runs(&self) -> RunQuery {
        RunQuery::new(self.clone())
    }
}
