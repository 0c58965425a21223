//! Arbitrary text into the run query parsers: never a panic; an error points inside the text
//! (or just past it); a parsed query prints as text that parses back to the same query; and
//! evaluating a parsed filter against a run never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runstore::fuzz::filter::{parse_filter, parse_order_by, parse_query, Attribute, Subject};
use runstore::Value;

struct FuzzRun {
    params: Value,
    outputs: Vec<Value>,
}

impl Subject for FuzzRun {
    fn attribute(&self, attribute: Attribute) -> Value {
        match attribute {
            Attribute::Created | Attribute::LastModified => Value::Int(1_700_000_000_000_000),
            Attribute::Status => Value::Str("RUNNING".into()),
            _ => Value::Str("a_b%".into()),
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

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let run = FuzzRun {
        params: Value::from_json_str(r#"{"lr": 0.01, "a": {"b": "x"}, "n": 2, "t": true}"#)
            .expect("fixed JSON"),
        outputs: vec![
            Value::from_json_str(r#"{"loss": 0.5, "acc": 1}"#).expect("fixed JSON"),
            Value::map([("loss", Value::Float(f64::NAN))]),
        ],
    };
    let chars = text.chars().count();
    match parse_query(text) {
        Ok(query) => {
            if let Some(filter) = &query.filter {
                let _ = filter.matches(&run);
            }
            assert_eq!(parse_query(&query.to_string()), Ok(query));
        }
        Err(error) => assert!(error.column >= 1 && error.column <= chars + 1),
    }
    if let Ok(Some(expr)) = parse_filter(text) {
        assert_eq!(parse_filter(&expr.to_string()), Ok(Some(expr)));
    }
    let _ = parse_order_by(text);
});
