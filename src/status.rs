//! A run's status: 3LC's seven codes and their names, parsed in one place.
//!
//! A leaf module (it imports only `error`): the catalog stores the code, the query language
//! and the CLI parse the names, and none of them need the `Run` API to do so.

use crate::error::{Error, Result};

/// A run's status, with 3LC's codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RunStatus {
    /// Finished (3LC: 1.0).
    Completed = 1,
    /// Nothing has happened yet; every new run starts here (3LC: 2.0).
    Empty = 2,
    /// Training or otherwise working (3LC: 3.0).
    Running = 3,
    /// Collecting metrics (3LC: 4.0).
    Collecting = 4,
    /// Post-processing, e.g. reducing embeddings (3LC: 5.0).
    PostProcessing = 5,
    /// Paused (3LC: 6.0).
    Paused = 6,
    /// Cancelled (3LC: 7.0).
    Cancelled = 7,
}

impl RunStatus {
    /// All seven statuses, by code.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Completed,
        RunStatus::Empty,
        RunStatus::Running,
        RunStatus::Collecting,
        RunStatus::PostProcessing,
        RunStatus::Paused,
        RunStatus::Cancelled,
    ];

    /// 3LC's numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status with 3LC's `code` (1 to 7; 3LC stores it as a float, so `3.0` is accepted).
    pub fn from_code(code: f64) -> Result<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| f64::from(status.code()) == code)
            .ok_or(Error::InvalidStatus { code })
    }

    /// Upper-case name, as 3LC spells it: `COMPLETED`, `POST_PROCESSING`, ...
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Completed => "COMPLETED",
            RunStatus::Empty => "EMPTY",
            RunStatus::Running => "RUNNING",
            RunStatus::Collecting => "COLLECTING",
            RunStatus::PostProcessing => "POST_PROCESSING",
            RunStatus::Paused => "PAUSED",
            RunStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses a name (any case, `-` or `_`) or a numeric code.
    pub fn parse(text: &str) -> Result<RunStatus> {
        match RunStatus::lookup(text, &['-']) {
            Ok(status) => Ok(status),
            Err(Some(code)) => RunStatus::from_code(code),
            Err(None) => Err(Error::InvalidInput {
                reason: format!(
                    "unknown status {text:?}; expected one of {} or a code 1-7",
                    RunStatus::names().join(", ")
                ),
            }),
        }
    }

    /// Reads `text` as a status name or code: trimmed, upper-cased, each of `separators` read
    /// as `_`, then matched against the names. `Err(Some(code))` when it is instead a number
    /// (which may or may not be a code), `Err(None)` when it is neither. The one place status
    /// text is read: [`RunStatus::parse`] accepts `-` for `_`, the run filter a space too.
    pub(crate) fn lookup(
        text: &str,
        separators: &[char],
    ) -> std::result::Result<RunStatus, Option<f64>> {
        let normalized = text.trim().to_ascii_uppercase().replace(separators, "_");
        if let Some(status) = RunStatus::ALL.into_iter().find(|s| s.name() == normalized) {
            return Ok(status);
        }
        Err(normalized.parse::<f64>().ok())
    }

    /// The names of [`RunStatus::ALL`], in code order.
    pub(crate) fn names() -> [&'static str; 7] {
        RunStatus::ALL.map(RunStatus::name)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
