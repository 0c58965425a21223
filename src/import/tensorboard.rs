//! TensorBoard log folders: every folder under SRC that holds event files (`*tfevents*`) is
//! one run, named by its path relative to SRC. Its event files are read in name order (their
//! names start with the time they were opened), each record's CRCs checked
//! ([`super::tfrecord`]) and each event decoded with prost ([`super::proto`]).
//!
//! What a run becomes:
//! - scalars (`simple_value`, or a one-element tensor of the `scalars` plugin) go to two
//!   tables: `scalars` keeps every event as written (`tag`, `step`, `wall_time`, `value`,
//!   repeats and each tag's own wall time included), and `steps_0000` is the run's step table
//!   (`step`, `wall_time`, one Float64 column per tag), the layout `Run::history` and the
//!   viewer read. One step table, not one per tag where steps differ: a tag not logged at a
//!   step is null there, which is what `history` means by "not logged", and a tag logged at
//!   different steps (a learning rate every 10 steps) costs only its nulls. Its `wall_time` is
//!   the earliest of the step's events, and a tag logged twice at one step keeps its last value
//!   there (both stay in `scalars`).
//! - the last value of every scalar tag is the run's last output value (with `step`, the last
//!   step); text summaries (the `text` plugin) are output values before it
//!   (`{"step", "wall_time", <tag>: text}`).
//! - hparams (the `hparams` plugin's session start) are the parameters; its session end's
//!   status the run's status (SUCCESS completed, FAILURE cancelled, RUNNING running; completed
//!   when there is none: a log folder is a finished record).
//! - histograms (`HistogramProto`) go to the table `histograms`, one row per event.
//! - projector embeddings (`projector_config.pbtxt` in the run's folder, with its
//!   `tensors.tsv` and `metadata.tsv`) become a table `projector_<tensor name>`: an
//!   `embedding` column (fixed-size list of Float32, with the embedding role, so `reduce`
//!   finds it) and the metadata's columns.
//! - the log folder and event file names are an input value; the first event's wall time is
//!   the creation time.
//!
//! Everything else (images, audio, graphs, run metadata, tensors of other plugins) is counted
//! by kind and tag in the run's notes, as are damaged records: a truncated or corrupt event
//! file gives what is intact, and the notes say where reading stopped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use prost::Message;

use super::proto::{self, event, hparams_plugin_data, proto_value, summary_value};
use super::tables::{batch, step_table_fits};
use super::tfrecord;
use super::{ImportedRun, Plan, Planned, Reader};
use crate::error::{Error, Result};
use crate::names::escape_name;
use crate::status::RunStatus;
use crate::value::Value;

/// Whether TensorBoard counts `name` as an event file (it does for any name containing
/// `tfevents`).
fn is_event_file(name: &str) -> bool {
    name.contains("tfevents")
}

/// Reads a TensorBoard log folder.
pub(crate) struct TensorboardReader {
    root: PathBuf,
    /// Run folders relative to `root` ("" for `root` itself), in `plan` order.
    runs: Vec<PathBuf>,
}

impl TensorboardReader {
    pub(crate) fn open(src: &Path) -> Result<TensorboardReader> {
        let meta = std::fs::metadata(src).map_err(|source| Error::Io {
            op: "read the TensorBoard log folder",
            path: src.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(Error::InvalidInput {
                reason: format!("{} is not a folder (a TensorBoard log dir)", src.display()),
            });
        }
        Ok(TensorboardReader {
            root: src.to_path_buf(),
            runs: Vec::new(),
        })
    }
}

/// Every folder under `root` (itself included) that holds an event file, relative to `root`,
/// sorted. Symbolic links to folders are followed once each (a link back up is not a loop).
fn run_folders(root: &Path, notes: &mut Vec<String>) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        if let Ok(canonical) = dir.canonicalize() {
            if !seen.insert(canonical) {
                continue;
            }
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if rel.as_os_str().is_empty() => {
                return Err(Error::Io {
                    op: "list the TensorBoard log folder",
                    path: dir,
                    source: error,
                })
            }
            Err(error) => {
                notes.push(format!("{} could not be listed: {error}", dir.display()));
                continue;
            }
        };
        let mut has_events = false;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(rel.join(&name));
            } else if meta.is_file() && is_event_file(&name.to_string_lossy()) {
                has_events = true;
            }
        }
        if has_events {
            found.push(rel);
        }
    }
    found.sort();
    Ok(found)
}

/// The event files of one run folder, in name order.
fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io {
            op: "list a TensorBoard run folder",
            path: dir.to_path_buf(),
            source,
        })?
        .flatten()
        .filter(|e| is_event_file(&e.file_name().to_string_lossy()))
        .filter(|e| std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

impl Reader for TensorboardReader {
    fn plan(&mut self) -> Result<Plan> {
        let mut plan = Plan::default();
        self.runs = run_folders(&self.root, &mut plan.notes)?;
        let root_name = self
            .root
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tensorboard".to_string());
        if self.runs.is_empty() {
            return Err(Error::InvalidInput {
                reason: format!(
                    "{} holds no TensorBoard event files (no file named *tfevents*)",
                    self.root.display()
                ),
            });
        }
        for (key, rel) in self.runs.iter().enumerate() {
            let rel_text = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let name = if rel_text.is_empty() {
                escape_name(&root_name)
            } else {
                escape_name(&rel_text)
            };
            plan.runs.push(Planned {
                source: self.root.join(rel).display().to_string(),
                project: escape_name(&root_name),
                name,
                unique: format!("{key}"),
                key,
            });
        }
        Ok(plan)
    }

    fn load(&mut self, planned: &Planned) -> Result<ImportedRun> {
        let rel = self.runs[planned.key].clone();
        let dir = self.root.join(&rel);
        let mut log = EventLog::default();
        let files = event_files(&dir)?;
        let mut names = Vec::new();
        for file in &files {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(file).map_err(|source| Error::Io {
                op: "read an event file",
                path: file.clone(),
                source,
            })?;
            log.read_file(&bytes, &name);
            names.push(Value::from(name));
        }
        let mut run = log.into_run();
        let rel_text = rel.to_string_lossy().into_owned();
        run.input_values.push(Value::map([(
            "tensorboard",
            Value::map([
                ("log_dir", Value::from(rel_text)),
                ("event_files", Value::List(names)),
            ]),
        )]));
        read_projector(&dir, &mut run);
        Ok(run)
    }
}

/// Everything read from one run's event files.
#[derive(Debug, Default)]
pub struct EventLog {
    /// Scalar tags in the order first seen.
    tags: Vec<String>,
    tag_index: HashMap<String, usize>,
    /// (tag index, step, wall time, value), in file order.
    scalars: Vec<(usize, i64, f64, f64)>,
    /// (tag, step, wall time, text).
    texts: Vec<(String, i64, f64, String)>,
    /// (tag, step, wall time, histogram).
    histograms: Vec<(String, i64, f64, proto::HistogramProto)>,
    hparams: BTreeMap<String, Value>,
    session_end: Option<i32>,
    /// The plugin of each tag, from the first event that named one (TensorFlow 2 writes the
    /// metadata only with a tag's first value).
    plugin_of_tag: HashMap<String, String>,
    /// Kind -> tags (or "" when the kind has none) of what was read but not imported.
    not_imported: BTreeMap<String, (u64, BTreeSet<String>)>,
    /// Damaged records and undecodable events, as sentences.
    problems: Vec<String>,
    first_wall_time: Option<f64>,
    events: u64,
}

/// Decodes one event file's bytes (for the fuzz target and tests): never panics; damage goes
/// to the log's problems.
pub fn decode_event_file(bytes: &[u8]) -> EventLog {
    let mut log = EventLog::default();
    log.read_file(bytes, "events");
    log
}

impl EventLog {
    /// Events decoded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Scalar values decoded.
    pub fn scalars(&self) -> usize {
        self.scalars.len()
    }

    /// Damaged records and undecodable events, as sentences.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Builds every table and value of the run (what an import writes), to check that any
    /// decoded log becomes valid tables. The number of tables.
    pub fn build_tables(self) -> usize {
        self.into_run().tables.len()
    }

    fn not_imported(&mut self, kind: &str, tag: &str) {
        let entry = self.not_imported.entry(kind.to_string()).or_default();
        entry.0 += 1;
        if entry.1.len() < 10 {
            entry.1.insert(tag.to_string());
        }
    }

    fn read_file(&mut self, bytes: &[u8], file: &str) {
        let records = tfrecord::read_records(bytes);
        for (offset, data) in records.records {
            match proto::Event::decode(data) {
                Ok(event) => self.add_event(event),
                Err(error) => self.problems.push(format!(
                    "{file}: the record at byte {offset} is not an event ({error}); skipped"
                )),
            }
        }
        for problem in records.problems {
            let what = if problem.skipped_only {
                "skipped"
            } else {
                "reading stopped there; what follows is not imported"
            };
            self.problems.push(format!(
                "{file}: at byte {}: {}; {what}",
                problem.offset, problem.reason
            ));
        }
    }

    fn add_event(&mut self, event: proto::Event) {
        self.events += 1;
        let wall = event.wall_time;
        if wall.is_finite() && wall > 0.0 {
            self.first_wall_time = Some(self.first_wall_time.map_or(wall, |w| w.min(wall)));
        }
        match event.what {
            None | Some(event::What::FileVersion(_)) => {}
            Some(event::What::Summary(summary)) => {
                for value in summary.value {
                    self.add_summary_value(value, event.step, wall);
                }
            }
            Some(event::What::GraphDef(_)) | Some(event::What::MetaGraphDef(_)) => {
                self.not_imported("graph", "")
            }
            Some(event::What::TaggedRunMetadata(_)) => self.not_imported("run metadata", ""),
            Some(event::What::LogMessage(_)) => self.not_imported("log message", ""),
            Some(event::What::SessionLog(_)) => self.not_imported("session log", ""),
        }
    }

    fn add_summary_value(&mut self, value: proto::SummaryValue, step: i64, wall: f64) {
        let tag = if value.tag.is_empty() {
            value.node_name.clone()
        } else {
            value.tag.clone()
        };
        let plugin = match value.metadata.as_ref().and_then(|m| m.plugin_data.as_ref()) {
            Some(data) if !data.plugin_name.is_empty() => {
                self.plugin_of_tag
                    .entry(tag.clone())
                    .or_insert_with(|| data.plugin_name.clone());
                Some(data.plugin_name.clone())
            }
            _ => self.plugin_of_tag.get(&tag).cloned(),
        };
        if plugin.as_deref() == Some("hparams") {
            let content = value
                .metadata
                .as_ref()
                .and_then(|m| m.plugin_data.as_ref())
                .map(|d| d.content.as_slice())
                .unwrap_or_default();
            self.add_hparams(content, &tag);
            return;
        }
        match value.value {
            Some(summary_value::Value::SimpleValue(v)) => {
                self.add_scalar(&tag, step, wall, v.into())
            }
            Some(summary_value::Value::Histo(histogram)) => {
                self.histograms.push((tag, step, wall, histogram))
            }
            Some(summary_value::Value::Tensor(tensor)) => match plugin.as_deref() {
                Some("scalars") | None if scalar_of(&tensor).is_some() => {
                    if let Some(v) = scalar_of(&tensor) {
                        self.add_scalar(&tag, step, wall, v);
                    }
                }
                Some("text") => match text_of(&tensor) {
                    Some(text) => self.texts.push((tag, step, wall, text)),
                    None => self.not_imported("text that is not a string tensor", &tag),
                },
                Some(other) => {
                    let kind = format!("{other} plugin tensors");
                    self.not_imported(&kind, &tag)
                }
                None => self.not_imported("tensors of no plugin", &tag),
            },
            Some(summary_value::Value::Image(_)) => self.not_imported("images", &tag),
            Some(summary_value::Value::Audio(_)) => self.not_imported("audio", &tag),
            Some(summary_value::Value::ObsoleteOldStyleHistogram(_)) => {
                self.not_imported("old-style histograms", &tag)
            }
            None => self.not_imported("summaries with no value", &tag),
        }
    }

    fn add_scalar(&mut self, tag: &str, step: i64, wall: f64, value: f64) {
        let index = match self.tag_index.get(tag) {
            Some(&index) => index,
            None => {
                self.tags.push(tag.to_string());
                self.tag_index.insert(tag.to_string(), self.tags.len() - 1);
                self.tags.len() - 1
            }
        };
        self.scalars.push((index, step, wall, value));
    }

    fn add_hparams(&mut self, content: &[u8], tag: &str) {
        let data = match proto::HParamsPluginData::decode(content) {
            Ok(data) => data,
            Err(error) => {
                self.problems.push(format!(
                    "the hparams summary {tag:?} does not decode ({error})"
                ));
                return;
            }
        };
        match data.data {
            Some(hparams_plugin_data::Data::SessionStartInfo(start)) => {
                for (name, value) in start.hparams {
                    self.hparams.insert(name, value_of(value));
                }
            }
            Some(hparams_plugin_data::Data::SessionEndInfo(end)) => {
                self.session_end = Some(end.status)
            }
            // The experiment lists each hparam's domain and the metrics to show: a view of
            // the sessions, which carry the values themselves.
            Some(hparams_plugin_data::Data::Experiment(_)) => {
                self.not_imported("hparams experiment configuration (domains)", "")
            }
            None => {}
        }
    }

    /// The run this log makes (without the input value and projector, which need the folder).
    fn into_run(mut self) -> ImportedRun {
        let mut run = ImportedRun {
            created_us: self
                .first_wall_time
                .map(|w| (w * 1_000_000.0).round() as i64),
            status: Some(match self.session_end {
                Some(2) => RunStatus::Cancelled,
                Some(3) => RunStatus::Running,
                _ => RunStatus::Completed,
            }),
            parameters: std::mem::take(&mut self.hparams),
            ..ImportedRun::default()
        };
        for (tag, step, wall, text) in &self.texts {
            run.output_values.push(Value::map([
                ("step", Value::Int(*step)),
                ("wall_time", Value::Float(*wall)),
                (tag.as_str(), Value::from(text.as_str())),
            ]));
        }
        if !self.scalars.is_empty() {
            let mut last: Vec<Option<f64>> = vec![None; self.tags.len()];
            let mut last_step = i64::MIN;
            for &(tag, step, _, value) in &self.scalars {
                last[tag] = Some(value);
                last_step = last_step.max(step);
            }
            let mut summary = BTreeMap::new();
            for (tag, value) in self.tags.iter().zip(&last) {
                if let Some(value) = value {
                    summary.insert(tag.clone(), Value::Float(*value));
                }
            }
            if !summary.contains_key("step") {
                summary.insert("step".into(), Value::Int(last_step));
            }
            run.output_values.push(Value::Map(summary));
            run.tables.push(("scalars".into(), self.scalars_table()));
            if let Some(table) = self.steps_table(&mut run.notes) {
                run.tables.push(("steps_0000".into(), table));
            }
        }
        if !self.histograms.is_empty() {
            run.tables
                .push(("histograms".into(), self.histograms_table()));
        }
        for (kind, (count, tags)) in &self.not_imported {
            let tags: Vec<&str> = tags
                .iter()
                .map(String::as_str)
                .filter(|t| !t.is_empty())
                .collect();
            let tags = if tags.is_empty() {
                String::new()
            } else {
                format!(" (tags {})", tags.join(", "))
            };
            run.notes
                .push(format!("not imported: {count} {kind}{tags}"));
        }
        run.notes.append(&mut self.problems);
        run
    }

    fn scalars_table(&self) -> RecordBatch {
        let mut tag = StringBuilder::new();
        let mut step = Int64Builder::with_capacity(self.scalars.len());
        let mut wall = Float64Builder::with_capacity(self.scalars.len());
        let mut value = Float64Builder::with_capacity(self.scalars.len());
        for &(t, s, w, v) in &self.scalars {
            tag.append_value(&self.tags[t]);
            step.append_value(s);
            wall.append_value(w);
            value.append_value(v);
        }
        batch(vec![
            ("tag", Arc::new(tag.finish()) as ArrayRef),
            ("step", Arc::new(step.finish())),
            ("wall_time", Arc::new(wall.finish())),
            ("value", Arc::new(value.finish())),
        ])
    }

    /// One row per step, ascending: the earliest wall time, each tag's last value there.
    /// `None` (and a note) when tags x steps is too many cells to build
    /// ([`super::tables::STEP_TABLE_CELLS_MAX`]).
    fn steps_table(&self, notes: &mut Vec<String>) -> Option<RecordBatch> {
        let mut steps: BTreeMap<i64, usize> = BTreeMap::new();
        for &(_, step, _, _) in &self.scalars {
            steps.insert(step, 0);
        }
        for (row, slot) in steps.values_mut().enumerate() {
            *slot = row;
        }
        let rows = steps.len();
        if !step_table_fits(self.tags.len(), rows, "scalars", notes) {
            return None;
        }
        let mut wall = vec![f64::INFINITY; rows];
        let mut columns: Vec<Vec<Option<f64>>> = vec![vec![None; rows]; self.tags.len()];
        for &(tag, step, w, v) in &self.scalars {
            let row = steps[&step];
            if w < wall[row] {
                wall[row] = w;
            }
            columns[tag][row] = Some(v);
        }
        let mut fields: Vec<(String, ArrayRef)> = vec![
            (
                "step".into(),
                Arc::new(Int64Array::from(steps.keys().copied().collect::<Vec<_>>())),
            ),
            ("wall_time".into(), Arc::new(Float64Array::from(wall))),
        ];
        for (tag, values) in self.tags.iter().zip(columns) {
            let mut name = tag.clone();
            if name == "step"
                || name == "wall_time"
                || crate::names::validate_column_name(&name).is_err()
            {
                let renamed = format!("tag:{}", escape_name(tag));
                notes.push(format!(
                    "the scalar tag {tag:?} is the column {renamed:?} of steps_0000"
                ));
                name = renamed;
            }
            fields.push((name, Arc::new(Float64Array::from(values))));
        }
        Some(batch(
            fields
                .iter()
                .map(|(name, array)| (name.as_str(), array.clone()))
                .collect(),
        ))
    }

    fn histograms_table(&self) -> RecordBatch {
        let mut tag = StringBuilder::new();
        let mut step = Int64Builder::new();
        let mut wall = Float64Builder::new();
        let mut stats: [Float64Builder; 5] = Default::default();
        let mut limits = ListBuilder::new(Float64Builder::new());
        let mut buckets = ListBuilder::new(Float64Builder::new());
        for (t, s, w, h) in &self.histograms {
            tag.append_value(t);
            step.append_value(*s);
            wall.append_value(*w);
            for (builder, v) in stats
                .iter_mut()
                .zip([h.min, h.max, h.num, h.sum, h.sum_squares])
            {
                builder.append_value(v);
            }
            limits.values().append_slice(&h.bucket_limit);
            limits.append(true);
            buckets.values().append_slice(&h.bucket);
            buckets.append(true);
        }
        let [min, max, num, sum, sum_squares] = stats.map(|mut b| Arc::new(b.finish()) as ArrayRef);
        batch(vec![
            ("tag", Arc::new(tag.finish()) as ArrayRef),
            ("step", Arc::new(step.finish())),
            ("wall_time", Arc::new(wall.finish())),
            ("min", min),
            ("max", max),
            ("num", num),
            ("sum", sum),
            ("sum_squares", sum_squares),
            ("bucket_limit", Arc::new(limits.finish())),
            ("bucket", Arc::new(buckets.finish())),
        ])
    }
}

/// The one number of a scalar tensor, if it is one.
fn scalar_of(tensor: &proto::TensorProto) -> Option<f64> {
    let elements: i64 = tensor
        .tensor_shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.size).product())
        .unwrap_or(1);
    if elements != 1 {
        return None;
    }
    let content = tensor.tensor_content.as_slice();
    let fixed = |n: usize| -> Option<&[u8]> { (content.len() == n).then_some(content) };
    match tensor.dtype {
        proto::dtype::FLOAT => {
            tensor.float_val.first().map(|&v| f64::from(v)).or_else(|| {
                fixed(4).map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            })
        }
        proto::dtype::DOUBLE => tensor
            .double_val
            .first()
            .copied()
            .or_else(|| fixed(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))),
        proto::dtype::INT32 => {
            tensor.int_val.first().map(|&v| f64::from(v)).or_else(|| {
                fixed(4).map(|b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            })
        }
        proto::dtype::INT64 => tensor.int64_val.first().map(|&v| v as f64).or_else(|| {
            fixed(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f64)
        }),
        proto::dtype::HALF => tensor
            .half_val
            .first()
            .map(|&bits| half_to_f64(bits as u16))
            .or_else(|| fixed(2).map(|b| half_to_f64(u16::from_le_bytes([b[0], b[1]])))),
        proto::dtype::BOOL => tensor
            .bool_val
            .first()
            .map(|&b| f64::from(u8::from(b)))
            .or_else(|| fixed(1).map(|b| f64::from(u8::from(b[0] != 0)))),
        _ => None,
    }
}

/// An IEEE 754 half-precision float's value.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1F);
    let fraction = f64::from(bits & 0x3FF);
    match exponent {
        0 => sign * fraction * 2f64.powi(-24),
        0x1F if fraction == 0.0 => sign * f64::INFINITY,
        0x1F => f64::NAN,
        _ => sign * (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    }
}

/// The text of a string tensor (elements joined by newlines).
fn text_of(tensor: &proto::TensorProto) -> Option<String> {
    if tensor.dtype != proto::dtype::STRING {
        return None;
    }
    let parts: Vec<String> = tensor
        .string_val
        .iter()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .collect();
    Some(parts.join("\n"))
}

/// A `google.protobuf.Value` as a runstore value.
fn value_of(value: proto::ProtoValue) -> Value {
    match value.kind {
        None | Some(proto_value::Kind::NullValue(_)) => Value::Null,
        // hparams carry every number as a double, and so does the run: TensorBoard's own
        // reader shows `32.0` for a batch size logged as 32.
        Some(proto_value::Kind::NumberValue(n)) => Value::Float(n),
        Some(proto_value::Kind::StringValue(s)) => Value::Str(s),
        Some(proto_value::Kind::BoolValue(b)) => Value::Bool(b),
        Some(proto_value::Kind::StructValue(s)) => Value::Map(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, value_of(v)))
                .collect(),
        ),
        Some(proto_value::Kind::ListValue(l)) => {
            Value::List(l.values.into_iter().map(value_of).collect())
        }
    }
}

/// One `embeddings { ... }` entry of a projector config.
#[derive(Debug, Default, PartialEq)]
struct ProjectorEmbedding {
    tensor_name: String,
    tensor_path: String,
    metadata_path: String,
    /// Nested blocks (a sprite) and other fields, not imported.
    other: Vec<String>,
}

/// Parses the `embeddings` entries of a `projector_config.pbtxt` (protobuf text format: the
/// fields the projector writes, `key: "value"` lines inside `embeddings { }` blocks).
fn parse_projector_config(text: &str) -> Vec<ProjectorEmbedding> {
    let mut out = Vec::new();
    let mut current: Option<ProjectorEmbedding> = None;
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.ends_with('{') {
            let name = line
                .trim_end_matches('{')
                .trim()
                .trim_end_matches(':')
                .trim();
            if depth == 0 && name == "embeddings" {
                current = Some(ProjectorEmbedding::default());
            } else if let Some(embedding) = current.as_mut() {
                if depth == 1 {
                    embedding.other.push(name.to_string());
                }
            }
            depth += 1;
            continue;
        }
        if line == "}" {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                out.extend(current.take());
            }
            continue;
        }
        if depth != 1 {
            continue;
        }
        let Some(embedding) = current.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "tensor_name" => embedding.tensor_name = value,
            "tensor_path" => embedding.tensor_path = value,
            "metadata_path" => embedding.metadata_path = value,
            other => embedding.other.push(other.to_string()),
        }
    }
    out
}

/// A protobuf text-format string literal's text (`"a\"b"` is `a"b`).
fn unquote(text: &str) -> String {
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or(text);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads the run folder's projector embeddings into tables of `run`.
fn read_projector(dir: &Path, run: &mut ImportedRun) {
    let config = dir.join("projector_config.pbtxt");
    let Ok(text) = std::fs::read_to_string(&config) else {
        return;
    };
    for (n, embedding) in parse_projector_config(&text).into_iter().enumerate() {
        let label = if embedding.tensor_name.is_empty() {
            format!("embedding {n}")
        } else {
            embedding.tensor_name.clone()
        };
        match embedding_table(dir, &embedding) {
            Ok(batch) => {
                let name = format!("projector_{}", escape_name(&label));
                let name = if crate::names::validate_name(&name).is_ok() {
                    name
                } else {
                    format!("projector_{n:04}")
                };
                run.tables.push((name, batch));
                for other in &embedding.other {
                    run.notes.push(format!(
                        "not imported: the projector's {other:?} of embedding {label:?}"
                    ));
                }
            }
            Err(reason) => run.notes.push(format!(
                "the projector embedding {label:?} is not imported: {reason}"
            )),
        }
    }
}

/// Resolves a projector path (relative to the run folder, as TensorBoard does) inside `dir`.
fn projector_path(dir: &Path, path: &str) -> std::result::Result<PathBuf, String> {
    let rel = Path::new(path);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("its path {path:?} leaves the run folder"));
    }
    Ok(dir.join(rel))
}

fn embedding_table(
    dir: &Path,
    embedding: &ProjectorEmbedding,
) -> std::result::Result<RecordBatch, String> {
    if embedding.tensor_path.is_empty() {
        return Err("it names no tensor_path".into());
    }
    let tensor_file = projector_path(dir, &embedding.tensor_path)?;
    let text = std::fs::read_to_string(&tensor_file)
        .map_err(|e| format!("{} cannot be read ({e})", tensor_file.display()))?;
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: std::result::Result<Vec<f32>, _> =
            line.split('\t').map(|v| v.trim().parse::<f32>()).collect();
        let row = row.map_err(|_| {
            format!(
                "line {} of {} is not tab-separated numbers",
                line_no + 1,
                embedding.tensor_path
            )
        })?;
        if let Some(first) = rows.first() {
            if first.len() != row.len() {
                return Err(format!(
                    "line {} of {} has {} numbers, the first line {}",
                    line_no + 1,
                    embedding.tensor_path,
                    row.len(),
                    first.len()
                ));
            }
        }
        rows.push(row);
    }
    let dim = rows.first().map_or(0, Vec::len);
    if rows.is_empty() || dim == 0 {
        return Err(format!("{} holds no vectors", embedding.tensor_path));
    }
    let dim_i32 = i32::try_from(dim).map_err(|_| "the vectors are too wide".to_string())?;
    let mut list = FixedSizeListBuilder::with_capacity(Float32Builder::new(), dim_i32, rows.len())
        .with_field(Field::new("item", DataType::Float32, false));
    for row in &rows {
        list.values().append_slice(row);
        list.append(true);
    }
    let mut columns: Vec<(String, ArrayRef)> = vec![("embedding".into(), Arc::new(list.finish()))];
    if !embedding.metadata_path.is_empty() {
        let metadata_file = projector_path(dir, &embedding.metadata_path)?;
        let text = std::fs::read_to_string(&metadata_file)
            .map_err(|e| format!("{} cannot be read ({e})", metadata_file.display()))?;
        let lines: Vec<&str> = text.lines().collect();
        // The projector's rule: one column has no header; more than one has one.
        let multi = lines.first().is_some_and(|l| l.contains('\t'));
        let (header, body): (Vec<String>, &[&str]) = if multi {
            (
                lines[0].split('\t').map(str::to_string).collect(),
                &lines[1..],
            )
        } else {
            (vec!["label".to_string()], &lines[..])
        };
        let body: Vec<&str> = body.to_vec();
        let body = if body.len() == rows.len() + 1 && body.last().is_some_and(|l| l.is_empty()) {
            &body[..rows.len()]
        } else {
            &body[..]
        };
        if body.len() != rows.len() {
            return Err(format!(
                "{} has {} rows for {} vectors",
                embedding.metadata_path,
                body.len(),
                rows.len()
            ));
        }
        let mut builders: Vec<StringBuilder> =
            header.iter().map(|_| StringBuilder::new()).collect();
        for line in body {
            let mut cells = line.split('\t');
            for builder in &mut builders {
                builder.append_value(cells.next().unwrap_or(""));
            }
        }
        for (name, mut builder) in header.into_iter().zip(builders) {
            let mut name = if name.is_empty() {
                "label".to_string()
            } else {
                name
            };
            if name == "embedding" || columns.iter().any(|(n, _)| *n == name) {
                name = format!("metadata:{name}");
            }
            columns.push((name, Arc::new(builder.finish()) as ArrayRef));
        }
    }
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, array)| {
                if matches!(array.data_type(), DataType::FixedSizeList(..)) {
                    // Marked as an embedding, so `reduce` finds it as it finds a logged one.
                    let field = Field::new(name, array.data_type().clone(), false);
                    crate::table::with_role(field, crate::table::ColumnRole::Embedding)
                } else {
                    Field::new(name, array.data_type().clone(), true)
                }
            })
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    fn event(step: i64, wall: f64, what: event::What) -> Vec<u8> {
        tfrecord::frame(
            &proto::Event {
                wall_time: wall,
                step,
                what: Some(what),
            }
            .encode_to_vec(),
        )
    }

    fn scalar(tag: &str, v: f32) -> event::What {
        event::What::Summary(proto::Summary {
            value: vec![proto::SummaryValue {
                tag: tag.into(),
                value: Some(summary_value::Value::SimpleValue(v)),
                ..Default::default()
            }],
        })
    }

    #[test]
    fn scalars_become_a_long_table_and_one_step_table_with_nulls() {
        let mut file = event(0, 1.0, event::What::FileVersion("brain.Event:2".into()));
        file.extend(event(0, 10.0, scalar("loss", 1.0)));
        file.extend(event(0, 10.5, scalar("lr", 0.1)));
        file.extend(event(1, 11.0, scalar("loss", 0.5)));
        file.extend(event(1, 11.2, scalar("loss", 0.25)));
        let log = decode_event_file(&file);
        assert_eq!(log.events(), 5);
        let run = log.into_run();
        assert_eq!(run.created_us, Some(1_000_000));
        let (name, steps) = &run.tables[1];
        assert_eq!(name, "steps_0000");
        let schema = steps.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["step", "wall_time", "loss", "lr"]);
        let loss = steps
            .column(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!((loss.value(0), loss.value(1)), (1.0, 0.25));
        let lr = steps
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!(lr.is_valid(0) && lr.is_null(1));
        let wall = steps
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!((wall.value(0), wall.value(1)), (10.0, 11.0));
        assert_eq!(run.tables[0].1.num_rows(), 4);
        assert_eq!(
            run.output_values.last().unwrap(),
            &Value::map([
                ("loss", Value::Float(0.25)),
                ("lr", Value::Float(0.10000000149011612)),
                ("step", Value::Int(1))
            ])
        );
    }

    #[test]
    fn projector_configs_parse_with_nested_blocks_noted() {
        let text = "embeddings {\n  tensor_name: \"emb:00000\"\n  tensor_path: \"00000/emb/tensors.tsv\"\n  metadata_path: \"00000/emb/metadata.tsv\"\n  sprite {\n    image_path: \"s.png\"\n  }\n}\nembeddings {\n  tensor_name: \"b\"\n  tensor_path: \"b.tsv\"\n}\n";
        let parsed = parse_projector_config(text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].tensor_name, "emb:00000");
        assert_eq!(parsed[0].metadata_path, "00000/emb/metadata.tsv");
        assert_eq!(parsed[0].other, ["sprite"]);
        assert_eq!(parsed[1].tensor_path, "b.tsv");
    }

    #[test]
    fn half_floats_decode() {
        assert_eq!(half_to_f64(0x3C00), 1.0);
        assert_eq!(half_to_f64(0xC000), -2.0);
        assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
        assert!(half_to_f64(0x7E00).is_nan());
    }
}
