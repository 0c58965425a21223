//! JSON given on the command line (`--param key=value`, `--output '{...}'`): what the store
//! cannot hold as written is an error worded as the store words it, never a string.

use anyhow::Result;
use runstore::value::JsonError;
use runstore::Value;

use super::text::echo;

/// Parameters from `key=value` arguments: the value is JSON when it parses as JSON, else a
/// string. Dotted keys stay single keys (`--param a.b=1` sets the key `a.b`).
pub(super) fn parse_params(params: &[String]) -> Result<Value> {
    let mut map = std::collections::BTreeMap::new();
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            anyhow::bail!("--param {} is not key=value", echo(param));
        };
        if key.is_empty() {
            anyhow::bail!("--param {} has an empty key", echo(param));
        }
        // Text that is not JSON is a string; JSON the store cannot hold as written is an error,
        // never a string.
        let value = match Value::parse_json(value) {
            Ok(value) => value,
            Err(JsonError::Syntax(_)) => Value::from(value),
            Err(error) => {
                return Err(unstorable_json(
                    error,
                    "parameters",
                    &format!("--param {key}"),
                ))
            }
        };
        map.insert(key.to_string(), value);
    }
    Ok(Value::Map(map))
}

/// The error for JSON text the store cannot hold as written (`--param`, `--output`): nesting
/// past the limit worded as the store words it for `what` ("parameters nest deeper than 64
/// levels"), an integer outside `i64` or a number beyond `f64` as the parser says it; all
/// `Error::InvalidValue`, led by the argument (`--param seed`).
pub(super) fn unstorable_json(error: JsonError, what: &str, argument: &str) -> anyhow::Error {
    let reason = match error {
        JsonError::TooDeep { .. } => format!(
            "{argument}: {what} nest deeper than {} levels",
            runstore::value::VALUE_DEPTH_MAX
        ),
        other => format!("{argument}: {other}"),
    };
    runstore::Error::InvalidValue { reason }.into()
}
