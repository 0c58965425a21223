//! Arbitrary bytes as a TensorBoard event file (`runstore import tensorboard`): the TFRecord
//! framing with its masked CRC-32Cs, then each record's protobuf `Event` and what it carries
//! (hparams plugin data, tensors, histograms), then the tables an import would write. Never a
//! panic; every record the framing accepts is either decoded or reported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::import::{tensorboard, tfrecord};

fuzz_target!(|data: &[u8]| {
    let records = tfrecord::read_records(data);
    let framed = records.records.len() as u64;
    let log = tensorboard::decode_event_file(data);
    // Each framed record is an event or a problem; framing damage is a problem too.
    assert!(log.events() <= framed);
    assert!(log.events() + log.problems().len() as u64 >= framed);
    log.build_tables();
    // Any payload framed again reads back as itself.
    let again = tfrecord::frame(data);
    let read = tfrecord::read_records(&again);
    assert_eq!(read.records.len(), 1);
    assert_eq!(read.records[0].1, data);
});
