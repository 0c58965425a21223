//! The protobuf messages of TensorBoard's event files that the importer reads, declared with
//! prost's derive (field numbers from TensorFlow's `event.proto`, `summary.proto`,
//! `tensor.proto`, `tensor_shape.proto`, TensorBoard's hparams plugin `plugin_data.proto` and
//! protobuf's `struct.proto`). Fields the importer never reads are left out: prost skips
//! unknown fields, and a message it does not look into is kept as bytes.
//!
//! prost's decoder bounds nesting (a recursion limit of 100), so a hostile `Value` nested
//! without end is an error, not a stack overflow.

#![allow(missing_docs)]

use std::collections::BTreeMap;

/// One record of an event file (`tensorflow.Event`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "event::What", tags = "3, 4, 5, 6, 7, 8, 9")]
    pub what: Option<event::What>,
}

pub mod event {
    #![allow(missing_docs)]
    /// What one event carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        #[prost(string, tag = "3")]
        FileVersion(String),
        #[prost(bytes, tag = "4")]
        GraphDef(Vec<u8>),
        #[prost(message, tag = "5")]
        Summary(super::Summary),
        #[prost(bytes, tag = "6")]
        LogMessage(Vec<u8>),
        #[prost(message, tag = "7")]
        SessionLog(super::SessionLog),
        #[prost(bytes, tag = "8")]
        TaggedRunMetadata(Vec<u8>),
        #[prost(bytes, tag = "9")]
        MetaGraphDef(Vec<u8>),
    }
}

/// `tensorflow.SessionLog`: START (1), STOP (2), CHECKPOINT (3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLog {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub checkpoint_path: String,
    #[prost(string, tag = "3")]
    pub msg: String,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "7")]
    pub node_name: String,
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    #[prost(oneof = "summary_value::Value", tags = "2, 3, 4, 5, 6, 8")]
    pub value: Option<summary_value::Value>,
}

pub mod summary_value {
    #![allow(missing_docs)]
    /// The value of one summary.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        #[prost(bytes, tag = "3")]
        ObsoleteOldStyleHistogram(Vec<u8>),
        #[prost(bytes, tag = "4")]
        Image(Vec<u8>),
        #[prost(message, tag = "5")]
        Histo(super::HistogramProto),
        #[prost(bytes, tag = "6")]
        Audio(Vec<u8>),
        #[prost(message, tag = "8")]
        Tensor(super::TensorProto),
    }
}

/// `tensorflow.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(string, tag = "3")]
    pub summary_description: String,
}

/// `tensorflow.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(bytes, tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorflow.HistogramProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// `tensorflow.TensorProto` (the value kinds a summary uses).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    #[prost(bytes, tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(bytes, repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
}

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<TensorShapeDim>,
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

/// TensorFlow's `DataType` codes the importer reads.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const DOUBLE: i32 = 2;
    pub const INT32: i32 = 3;
    pub const STRING: i32 = 7;
    pub const INT64: i32 = 9;
    pub const BOOL: i32 = 10;
    pub const HALF: i32 = 19;
}

/// `tensorboard.hparams.HParamsPluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(oneof = "hparams_plugin_data::Data", tags = "2, 3, 4")]
    pub data: Option<hparams_plugin_data::Data>,
}

pub mod hparams_plugin_data {
    #![allow(missing_docs)]
    /// One hparams summary's content.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(bytes, tag = "2")]
        Experiment(Vec<u8>),
        #[prost(message, tag = "3")]
        SessionStartInfo(super::SessionStartInfo),
        #[prost(message, tag = "4")]
        SessionEndInfo(super::SessionEndInfo),
    }
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, ProtoValue>,
    #[prost(string, tag = "2")]
    pub model_uri: String,
    #[prost(string, tag = "3")]
    pub monitor_url: String,
    #[prost(string, tag = "4")]
    pub group_name: String,
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`: status UNKNOWN (0), SUCCESS (1), FAILURE (2),
/// RUNNING (3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    #[prost(int32, tag = "1")]
    pub status: i32,
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    #[prost(oneof = "proto_value::Kind", tags = "1, 2, 3, 4, 5, 6")]
    pub kind: Option<proto_value::Kind>,
}

pub mod proto_value {
    #![allow(missing_docs)]
    /// One JSON-like value.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(int32, tag = "1")]
        NullValue(i32),
        #[prost(double, tag = "2")]
        NumberValue(f64),
        #[prost(string, tag = "3")]
        StringValue(String),
        #[prost(bool, tag = "4")]
        BoolValue(bool),
        #[prost(message, tag = "5")]
        StructValue(super::ProtoStruct),
        #[prost(message, tag = "6")]
        ListValue(super::ProtoList),
    }
}

/// `google.protobuf.Struct`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoStruct {
    #[prost(btree_map = "string, message", tag = "1")]
    pub fields: BTreeMap<String, ProtoValue>,
}

/// `google.protobuf.ListValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<ProtoValue>,
}
