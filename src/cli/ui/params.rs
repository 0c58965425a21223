//! Query strings of the viewer's routes: `application/x-www-form-urlencoded` pairs (`+` is a
//! space, `%XX` a byte), decoded to UTF-8 and looked up by name, with the errors a script
//! needs to fix its request.

use super::api::ApiError;

/// The decoded parameters of one request, in order (a repeated name: the first counts).
pub(super) struct Params {
    pairs: Vec<(String, String)>,
}

/// Longest parameter value accepted (a filter, a list of columns or run urls).
const VALUE_BYTES_MAX: usize = 16 * 1024;

impl Params {
    /// Decodes `query` (the part of the URI after `?`; `None` for none).
    ///
    /// # Errors
    ///
    /// A malformed escape, a name or value that is not UTF-8 once decoded, or a value longer
    /// than [`VALUE_BYTES_MAX`].
    pub(super) fn parse(query: Option<&str>) -> Result<Params, ApiError> {
        let mut pairs = Vec::new();
        for part in query.unwrap_or_default().split('&') {
            if part.is_empty() {
                continue;
            }
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            if value.len() > VALUE_BYTES_MAX {
                return Err(ApiError::bad(format!(
                    "parameter {name}: {} bytes; at most {VALUE_BYTES_MAX}",
                    value.len()
                )));
            }
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    /// The first value of `name`, if given.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, which the route needs.
    pub(super) fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(ApiError::bad(format!("missing parameter {name}"))),
        }
    }

    /// The first value of `name` as a whole number from 0 to `max`; `default` when absent or
    /// empty.
    pub(super) fn number(&self, name: &str, default: u64, max: u64) -> Result<u64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad(format!(
                    "parameter {name}={text}: give a whole number from 0 to {max}"
                ))),
            },
        }
    }

    /// The first value of `name` as a finite number, if given and not empty.
    pub(super) fn float(&self, name: &str) -> Result<Option<f64>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => match text.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(ApiError::bad(format!(
                    "parameter {name}={text}: give a finite number"
                ))),
            },
        }
    }
}

/// One name or value, `+` and `%XX` decoded.
fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad("malformed %-escape in the query string".to_string())
                    })?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad("the query string is not UTF-8 once decoded".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_plus_and_repeats() {
        let params = Params::parse(Some("a=1+2&b=%3Cx%3E&run=p%2Fruns%2Fr&run=q&flag")).unwrap();
        assert_eq!(params.get("a"), Some("1 2"));
        assert_eq!(params.get("b"), Some("<x>"));
        assert_eq!(params.get("run"), Some("p/runs/r"));
        assert_eq!(params.get("flag"), Some(""));
        assert_eq!(params.get("none"), None);
    }

    #[test]
    fn refuses_bad_escapes_and_bad_utf8() {
        assert!(Params::parse(Some("a=%zz")).is_err());
        assert!(Params::parse(Some("a=%4")).is_err());
        assert!(Params::parse(Some("a=%ff")).is_err());
    }

    #[test]
    fn numbers_are_checked_against_their_range() {
        let params = Params::parse(Some("n=10&m=-1&big=99999&x=inf&y=1.5")).unwrap();
        assert_eq!(params.number("n", 0, 100).unwrap(), 10);
        assert_eq!(params.number("absent", 7, 100).unwrap(), 7);
        assert!(params.number("m", 0, 100).is_err());
        assert!(params.number("big", 0, 100).is_err());
        assert!(params.float("x").is_err());
        assert_eq!(params.float("y").unwrap(), Some(1.5));
    }
}
