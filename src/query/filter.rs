//! The run filter language: MLflow's `search_runs` filter syntax, made a superset.
//!
//! This module owns the text of a run query (a filter, an `ORDER BY` list, `LIMIT` and
//! `OFFSET`), its parse into an [`Expr`], [`OrderKey`]s and a [`Query`], and the meaning of
//! those against one run. It leaves loading runs to the store: a run is seen only through the
//! [`Subject`] trait, and [`Expr::referenced_params`] / [`Expr::referenced_outputs`] tell the
//! store which keys a query needs so that it can load nothing else.
//!
//! The invariant it keeps: parsing is total. Any string, valid UTF-8 of any content, either
//! parses or gives a [`FilterError`] with the 1-based column (in characters) of the offending
//! token; it never panics, and input size ([`FILTER_BYTES_MAX`]) and nesting
//! ([`FILTER_DEPTH_MAX`]) are bounded so that it cannot overflow the stack or take long. A
//! parsed expression prints (`Display`) as canonical text that parses back to an equal
//! expression.
//!
//! An MLflow user knows it on sight:
//!
//! ```text
//! metrics.rmse < 1 and params.model_class = 'LogisticRegression'
//! attributes.run_name = "my run"
//! params.lr < 0.01 AND (outputs.acc.max > 0.9 OR status IN ('RUNNING', 'PAUSED'))
//! created >= '2024-05-01' ORDER BY outputs.acc DESC, name LIMIT 10
//! ```
//!
//! # Grammar
//!
//! Keywords (`AND`, `OR`, `NOT`, `LIKE`, `ILIKE`, `IN`, `IS`, `NULL`, `TRUE`, `FALSE`,
//! `ORDER`, `BY`, `ASC`, `DESC`, `LIMIT`, `OFFSET`) are case-insensitive. Whitespace separates
//! tokens and is otherwise ignored, except that an identifier has none inside it.
//!
//! ```text
//! query       = [ filter ] [ "ORDER" "BY" order_list ] [ "LIMIT" integer ] [ "OFFSET" integer ]
//! filter      = and_expr { "OR" and_expr }
//! and_expr    = not_expr { "AND" not_expr }
//! not_expr    = "NOT" not_expr | "(" filter ")" | comparison
//! comparison  = identifier compare_op value
//!             | identifier [ "NOT" ] ( "LIKE" | "ILIKE" ) string
//!             | identifier [ "NOT" ] "IN" "(" value { "," value } ")"
//!             | identifier "IS" [ "NOT" ] "NULL"
//! compare_op  = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! order_list  = identifier [ "ASC" | "DESC" ] { "," identifier [ "ASC" | "DESC" ] }
//!
//! identifier  = attribute
//!             | ( "attributes" | "attribute" | "attr" | "run" ) "." attribute
//!             | ( "params" | "param" | "parameters" ) "." name { "." name }
//!             | ( "outputs" | "output" | "metrics" | "metric" ) "." name { "." name }
//!               [ "." aggregate ]
//! attribute   = "name" | "run_name" | "run name" | "status" | "created" | "start_time"
//!             | "created_time" | "last_modified" | "description" | "project" | "url"
//! aggregate   = "min" | "max" | "mean" | "first" | "last" | "count"
//! name        = word | "`" { any } "`" | '"' { any } '"'
//! word        = ( letter | digit | "_" ) { letter | digit | "_" }
//!
//! value       = number | string | "TRUE" | "FALSE" | "NULL"
//! number      = [ "-" ] ( digits [ "." digits ] | "." digits )
//!               [ ( "e" | "E" ) [ "+" | "-" ] digits ]
//! integer     = digits
//! string      = "'" { any } "'" | '"' { any } '"'
//! ```
//!
//! - Precedence, tightest first: comparisons, `NOT`, `AND`, `OR`.
//! - Prefixes, attribute names and aggregate names are case-insensitive; parameter and output
//!   keys are case-sensitive. The first word of an identifier starts with a letter or `_`.
//! - Inside a quoted string or name the quote character is written twice (`'it''s'`,
//!   `` `odd``key` ``); backslashes have no meaning in strings (they do in `LIKE` patterns).
//! - A double-quoted string is a value after an operator and a name where an identifier is
//!   expected: `"run name" = "my run"` compares the `run name` attribute (MLflow's alias of
//!   `run_name`) with the string `my run`. Single quotes always make a value.
//! - A dotted parameter or output key walks nested maps: `params.optimizer.lr` is the `lr` key
//!   of the `optimizer` map. A quoted part is one key even if it contains dots:
//!   ``params.`a.b` `` and `params."a.b"` are the key `a.b`.
//! - An output key ending in an aggregate name is read as that aggregate when at least one key
//!   part comes before it: `outputs.loss.min` is the minimum of `loss`, while `outputs.min` is
//!   the latest value of a key named `min`. Quote the last part to force a key:
//!   ``outputs.loss.`min` `` is the latest value of `min` inside the `loss` map.
//! - `tags.` and `datasets.` identifiers are MLflow's but rejected with an explanation:
//!   runstore runs have neither.
//!
//! # Meaning
//!
//! An identifier names one value of a run (see [`Subject`]):
//!
//! - Attributes come from [`Subject::attribute`]. `created` and `last_modified` are
//!   timestamps: a quoted RFC 3339 date or date-time (`'2024-05-01'`,
//!   `'2024-05-01T12:00:00.5+02:00'`; a date alone is midnight UTC) compares as that instant,
//!   and a number as milliseconds since the Unix epoch, as MLflow's `start_time` does. `status`
//!   compares by name in any case (`'completed'`, `'post-processing'`) or by 3LC's code (`3`
//!   is `RUNNING`); an unknown status is an error, and ordering (`<`, ...) a status is too.
//!   `LIKE` on `status` matches its upper-case name. Epoch milliseconds with a fraction are
//!   rounded to whole microseconds.
//! - `params.<key>` is the parameter at that key path, or NULL when absent.
//! - `outputs.<key>` is the latest value of `key` across the run's output values (the last
//!   output value holding it, as MLflow compares a metric's latest value). An output value
//!   "holds" a key when the key path leads to a value other than null. `.last` is the same as
//!   no aggregate, `.first` the first such value, `.count` how many output values hold it (0
//!   when none), and `.min`, `.max` and `.mean` are taken over its numeric values, NaN skipped;
//!   these three are NULL when there are none.
//!
//! Comparisons use three-valued logic as SQL does, so that `NOT (x = 1)` always means the
//! same as `x != 1`. A comparison is unknown when the identifier's value is NULL (a missing
//! key) or NaN; `AND`, `OR` and `NOT` combine unknowns as in SQL (`unknown AND false` is false,
//! `unknown OR true` is true, `NOT unknown` is unknown), and a run matches only when the whole
//! filter is true. Hence every comparison with a missing key fails, including `!=`, `NOT LIKE`
//! and `NOT IN`, and so does its negation; only `IS NULL` and `IS NOT NULL` test for absence
//! (a NaN is not NULL). Writing `= NULL` is an error that points at `IS NULL`.
//!
//! Otherwise values compare by type:
//!
//! - Numbers compare as numbers whether stored as integers or floats (`params.lr < 0.01`
//!   works on a float parameter, which MLflow cannot do since it stores parameters as
//!   strings). Integers compare exactly with integers and with floats.
//! - Strings compare by Unicode code point, case-sensitively.
//! - For MLflow compatibility (MLflow stores every parameter as a string, so its users quote
//!   numbers), a quoted literal written as a number (`'2'`, `"0.01"`, `'1e-3'`; no spaces,
//!   finite) compared with a value stored as a number compares as that number:
//!   `params.batch_size = "2"` matches a batch size stored as the number 2 and also one stored
//!   as the string `"2"`, and `params.lr < '0.01'` orders numerically. A value stored as a
//!   string is still compared as text: `params.lr = 0.05` does not match the string `"0.05"`.
//! - Booleans compare with `TRUE` and `FALSE` and with the strings `'true'` and `'false'` (in
//!   any case), either side stored as the string; `FALSE < TRUE`.
//! - Other mixed types (a number against a non-numeric string, say) are never equal: `=` is false and `!=` is
//!   true. Mixed types never satisfy an ordering: `<`, `<=`, `>`, `>=` are unknown, so they
//!   fail negated as well. Lists and maps are never equal to a value.
//! - `LIKE` and `ILIKE` match strings only (other types are unknown). In a pattern `%` matches
//!   any run of characters, `_` any one character, and a backslash makes the next character
//!   literal (`'a\_b'` matches only `a_b`; a trailing lone backslash matches a backslash).
//!   `LIKE` is case-sensitive; `ILIKE` folds case character by character (Unicode simple
//!   lowercase).
//! - `x IN (a, b)` is `x = a OR x = b`, and `x NOT IN (a, b)` is `NOT (x IN (a, b))`.
//!
//! # Ordering
//!
//! `ORDER BY` sorts by each key in turn, ascending unless `DESC`. NULL and NaN sort last in
//! both directions (as MLflow does). Other values of different types sort numbers first, then
//! strings, booleans, lists and maps (`DESC` reverses this as well); lists and maps sort equal
//! among themselves. Ties keep the order the caller had, given a stable sort.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::value::{numeric_cmp, Value};

/// Longest query text, in bytes, that the parsers accept.
///
/// 64 KiB is a hundred times the longest filter a person would type or a program would
/// reasonably generate (an `IN` list of a few thousand run names still fits), and it bounds
/// the work of a parse to well under a millisecond per kilobyte.
pub const FILTER_BYTES_MAX: usize = 64 * 1024;

/// Deepest nesting of parentheses and `NOT`s that the parsers accept.
///
/// The parser, the evaluator and `Display` recurse once per level, so this bounds their stack
/// use: 64 levels is far beyond what anyone writes by hand (a handful) or a generated filter
/// needs, while the 65,000 levels that [`FILTER_BYTES_MAX`] bytes of `(` could ask for would
/// overflow a thread's stack.
pub const FILTER_DEPTH_MAX: usize = 64;

/// Longest word, in characters, for which an error looks for a "did you mean" suggestion;
/// longer words are not typos of short names, and this bounds the edit-distance work.
const SUGGESTION_WORD_CHARS_MAX: usize = 64;

/// Longest token text, in characters, quoted in an error message before it is cut with `…`.
const ERROR_SNIPPET_CHARS_MAX: usize = 40;

/// Status names by 3LC code (code = index + 1).
///
/// This mirrors `RunStatus` in `run.rs` (names and 3LC codes), repeated here so that the filter
/// language builds on `value` and `time` alone; a change to the statuses must change both.
const STATUS_NAMES: [&str; 7] = [
    "COMPLETED",
    "EMPTY",
    "RUNNING",
    "COLLECTING",
    "POST_PROCESSING",
    "PAUSED",
    "CANCELLED",
];

const ATTRIBUTE_PREFIXES: [&str; 4] = ["attributes", "attribute", "attr", "run"];
const PARAM_PREFIXES: [&str; 3] = ["params", "param", "parameters"];
const OUTPUT_PREFIXES: [&str; 4] = ["outputs", "output", "metrics", "metric"];

/// Every spelling of an attribute, lowercase, with the attribute it names.
const ATTRIBUTE_NAMES: [(&str, Attribute); 11] = [
    ("name", Attribute::Name),
    ("run_name", Attribute::Name),
    ("run name", Attribute::Name),
    ("status", Attribute::Status),
    ("created", Attribute::Created),
    ("start_time", Attribute::Created),
    ("created_time", Attribute::Created),
    ("last_modified", Attribute::LastModified),
    ("description", Attribute::Description),
    ("project", Attribute::Project),
    ("url", Attribute::Url),
];

/// Why a query text does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter error at column {column}: {message}")]
pub struct FilterError {
    /// What is wrong, as a lowercase phrase without a final period.
    pub message: String,
    /// 1-based column, in characters, of the offending token; one past the last character when
    /// the input ended too early.
    pub column: usize,
}

/// A run attribute: one of the fixed fields every run has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// The run's name (aliases `run_name`, `run name`).
    Name,
    /// The run's status, as its upper-case name (`RUNNING`).
    Status,
    /// Creation time (aliases `start_time`, `created_time`).
    Created,
    /// Time of the last change.
    LastModified,
    /// Free-text description.
    Description,
    /// The project the run belongs to.
    Project,
    /// The run's url, `<project>/runs/<name>`.
    Url,
}

impl Attribute {
    /// All attributes.
    pub const ALL: [Attribute; 7] = [
        Attribute::Name,
        Attribute::Status,
        Attribute::Created,
        Attribute::LastModified,
        Attribute::Description,
        Attribute::Project,
        Attribute::Url,
    ];

    /// The canonical name, as written in a filter: `name`, `status`, `created`, ...
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Name => "name",
            Attribute::Status => "status",
            Attribute::Created => "created",
            Attribute::LastModified => "last_modified",
            Attribute::Description => "description",
            Attribute::Project => "project",
            Attribute::Url => "url",
        }
    }

    /// The attribute a name or alias (any case) stands for.
    pub fn from_name(name: &str) -> Option<Attribute> {
        ATTRIBUTE_NAMES
            .iter()
            .find(|(spelling, _)| spelling.eq_ignore_ascii_case(name))
            .map(|&(_, attribute)| attribute)
    }

    /// Whether the attribute is a timestamp ([`Value::Int`] microseconds since the Unix epoch).
    pub fn is_timestamp(self) -> bool {
        matches!(self, Attribute::Created | Attribute::LastModified)
    }
}

/// How the values of one output key across a run's output values become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggregate {
    /// The latest (last logged) value; what an output identifier without a suffix means.
    Last,
    /// The first logged value.
    First,
    /// The smallest numeric value.
    Min,
    /// The largest numeric value.
    Max,
    /// The mean of the numeric values, as a float.
    Mean,
    /// How many output values hold the key.
    Count,
}

impl Aggregate {
    /// All aggregates.
    pub const ALL: [Aggregate; 6] = [
        Aggregate::Last,
        Aggregate::First,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Mean,
        Aggregate::Count,
    ];

    /// The suffix naming the aggregate: `last`, `first`, `min`, `max`, `mean`, `count`.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Last => "last",
            Aggregate::First => "first",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Mean => "mean",
            Aggregate::Count => "count",
        }
    }

    /// The aggregate a suffix (any case) names.
    pub fn from_name(name: &str) -> Option<Aggregate> {
        Aggregate::ALL
            .into_iter()
            .find(|aggregate| aggregate.name().eq_ignore_ascii_case(name))
    }
}

/// What a comparison looks at: the left-hand side, and an `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A run attribute.
    Attribute(Attribute),
    /// A parameter, by its key path through nested maps.
    Param(Vec<String>),
    /// An output key, by its key path, reduced over the run's output values.
    Output {
        /// The key path inside each output value.
        key: Vec<String>,
        /// How the values across output values are reduced.
        aggregate: Aggregate,
    },
    /// A table column, in a column filter ([`parse_column_filter`]) only.
    Column(ColumnName),
}

/// A column named in a column filter, with where it was written so that a later check against
/// a table's schema (an unknown column, a type that does not fit) can point at it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnName {
    /// The column's name.
    pub name: String,
    /// 1-based column, in characters, of the name in the filter text.
    pub column: usize,
}

impl Operand {
    /// The operand's value for one run: [`Value::Null`] when absent.
    pub fn evaluate<'a, S: Subject + ?Sized>(&self, subject: &'a S) -> Cow<'a, Value> {
        match self {
            Operand::Attribute(attribute) => Cow::Owned(subject.attribute(*attribute)),
            Operand::Param(path) => subject
                .param(path)
                .map_or(Cow::Owned(Value::Null), Cow::Borrowed),
            Operand::Output { key, aggregate } => subject.output(key, *aggregate),
            // A run has no columns; a column filter is evaluated over record batches instead.
            Operand::Column(_) => Cow::Owned(Value::Null),
        }
    }
}

/// A comparison operator with a single value on its right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `=` (also `==`).
    Eq,
    /// `!=` (also `<>`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CompareOp {
    /// The operator as written canonically: `=`, `!=`, `<`, `<=`, `>`, `>=`.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Whether the operator orders (`<`, `<=`, `>`, `>=`) rather than tests equality.
    pub fn is_ordering(self) -> bool {
        !matches!(self, CompareOp::Eq | CompareOp::Ne)
    }

    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering.is_eq(),
            CompareOp::Ne => ordering.is_ne(),
            CompareOp::Lt => ordering.is_lt(),
            CompareOp::Le => ordering.is_le(),
            CompareOp::Gt => ordering.is_gt(),
            CompareOp::Ge => ordering.is_ge(),
        }
    }
}

/// One element of a compiled `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// A literal character (already case-folded for `ILIKE`).
    Char(char),
    /// `_`: any one character.
    One,
    /// `%`: any run of characters.
    Many,
}

/// A compiled `LIKE` / `ILIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    source: String,
    pieces: Vec<Piece>,
    case_insensitive: bool,
}

impl LikePattern {
    /// Compiles `pattern`: `%` matches any run of characters, `_` any one character, and `\`
    /// makes the next character literal (a trailing lone `\` is a literal backslash).
    /// `case_insensitive` makes it an `ILIKE` pattern.
    pub fn new(pattern: &str, case_insensitive: bool) -> LikePattern {
        let mut pieces = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => Piece::Many,
                '_' => Piece::One,
                '\\' => Piece::Char(chars.next().unwrap_or('\\')),
                c => Piece::Char(c),
            };
            pieces.push(match piece {
                Piece::Char(c) if case_insensitive => Piece::Char(fold_case(c)),
                piece => piece,
            });
        }
        LikePattern {
            source: pattern.to_owned(),
            pieces,
            case_insensitive,
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is an `ILIKE` pattern.
    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// The pattern rewritten with every literal `%`, `_` and `\` escaped by a backslash and no
    /// other escapes, so that an engine whose escape rules differ in corner cases (Arrow's
    /// `like` kernels) matches exactly what [`LikePattern::matches`] does. Literals of an
    /// `ILIKE` pattern are case-folded.
    pub fn escaped(&self) -> String {
        let mut text = String::with_capacity(self.source.len());
        for piece in &self.pieces {
            match piece {
                Piece::Many => text.push('%'),
                Piece::One => text.push('_'),
                Piece::Char(c) => {
                    if matches!(c, '%' | '_' | '\\') {
                        text.push('\\');
                    }
                    text.push(*c);
                }
            }
        }
        text
    }

    /// Whether `text` matches the whole pattern.
    ///
    /// Linear backtracking over the last `%` only, so it takes at most pattern length times
    /// text length steps, never exponential time.
    pub fn matches(&self, text: &str) -> bool {
        let pieces = &self.pieces;
        // Positions: `p` indexes pieces, `t` is a byte offset into `text`, always on a char
        // boundary because it only ever advances by whole characters.
        let (mut p, mut t) = (0usize, 0usize);
        // After a `%`: the piece after it and the text offset it has swallowed up to.
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next_char = text.get(t..).and_then(|rest| rest.chars().next());
            match (pieces.get(p), next_char) {
                (Some(Piece::Many), _) => {
                    backtrack = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                (Some(Piece::One), Some(c)) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (Some(Piece::Char(wanted)), Some(c)) if self.char_matches(*wanted, c) => {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last `%` swallow one more character, or fail.
            let Some((after_many, swallowed)) = backtrack else {
                return false;
            };
            let Some(c) = text.get(swallowed..).and_then(|rest| rest.chars().next()) else {
                return false;
            };
            let swallowed = swallowed + c.len_utf8();
            backtrack = Some((after_many, swallowed));
            p = after_many;
            t = swallowed;
        }
    }

    fn char_matches(&self, wanted: char, c: char) -> bool {
        if self.case_insensitive {
            wanted == fold_case(c)
        } else {
            wanted == c
        }
    }
}

/// Simple case folding: the lowercase of `c` when that is one character, else `c`.
fn fold_case(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(folded), None) => folded,
        _ => c,
    }
}

/// What a comparison tests about its operand's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `op value`. The value is never [`Value::Null`] in a parsed expression; timestamps hold
    /// microseconds ([`Value::Int`]) and statuses their canonical name ([`Value::Str`]).
    Compare {
        /// The operator.
        op: CompareOp,
        /// The right-hand side.
        value: Value,
    },
    /// `[NOT] LIKE pattern` or `[NOT] ILIKE pattern`.
    Like {
        /// The pattern, which knows whether it ignores case.
        pattern: LikePattern,
        /// `NOT LIKE` / `NOT ILIKE`.
        negated: bool,
    },
    /// `[NOT] IN (values)`; values as for [`Predicate::Compare`].
    In {
        /// The list, never empty in a parsed expression.
        values: Vec<Value>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `IS [NOT] NULL`.
    IsNull {
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `op integer` for an integer literal outside `i64` (`u > 18446744073709551614`), in a
    /// column filter only: integer columns compare it exactly, float columns with its nearest
    /// float. A run filter reads such a literal as a float ([`Predicate::Compare`]).
    CompareWide {
        /// The operator.
        op: CompareOp,
        /// The integer as written.
        value: i128,
    },
    /// `op other_column`, in a column filter only: compares two columns of the same row.
    CompareColumn {
        /// The operator.
        op: CompareOp,
        /// The column on the right.
        other: ColumnName,
    },
}

/// One comparison: an operand and what is tested about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The left-hand side.
    pub operand: Operand,
    /// The test.
    pub predicate: Predicate,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of the operands hold (at least two in a parsed expression).
    And(Vec<Expr>),
    /// Any of the operands holds (at least two in a parsed expression).
    Or(Vec<Expr>),
    /// The operand does not hold.
    Not(Box<Expr>),
    /// A single comparison.
    Comparison(Comparison),
}

/// A run as the filter language sees it; the store implements this over its run records.
pub trait Subject {
    /// The attribute's value, [`Value::Null`] when absent: `created` and `last_modified` as
    /// [`Value::Int`] microseconds since the Unix epoch (UTC), `status` as [`Value::Str`] of its
    /// upper-case name (`"RUNNING"`), the others as [`Value::Str`].
    fn attribute(&self, attribute: Attribute) -> Value;

    /// The parameter at `path` through nested maps, if present.
    fn param(&self, path: &[String]) -> Option<&Value>;

    /// Every output value of the run (normally maps), in the order logged.
    fn outputs(&self) -> &[Value];

    /// The aggregate of output key path `key` over the run's output values ([`Value::Null`]
    /// when no value holds it, except `count`, which is 0). By default computed from
    /// [`Subject::outputs`]; a subject that keeps the aggregates precomputed returns them.
    fn output(&self, key: &[String], aggregate: Aggregate) -> Cow<'_, Value> {
        aggregate_outputs(self.outputs(), key, aggregate)
    }
}

impl Comparison {
    /// Whether the comparison holds (is true, not false or unknown) for `value`.
    pub fn holds_for(&self, value: &Value) -> bool {
        self.predicate.test(value) == Truth::True
    }
}

/// SQL's three truth values, ordered so that `AND` is the minimum and `OR` the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Truth {
    False,
    Unknown,
    True,
}

impl Truth {
    fn from_bool(b: bool) -> Truth {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }

    fn not(self) -> Truth {
        match self {
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
            Truth::True => Truth::False,
        }
    }

    fn negate_if(self, negated: bool) -> Truth {
        if negated {
            self.not()
        } else {
            self
        }
    }
}

impl Expr {
    /// Whether the run satisfies the filter (the filter is true; false and unknown both fail).
    pub fn matches<S: Subject + ?Sized>(&self, subject: &S) -> bool {
        self.truth(subject) == Truth::True
    }

    fn truth<S: Subject + ?Sized>(&self, subject: &S) -> Truth {
        match self {
            Expr::And(operands) => {
                let mut result = Truth::True;
                for operand in operands {
                    result = result.min(operand.truth(subject));
                    if result == Truth::False {
                        break;
                    }
                }
                result
            }
            Expr::Or(operands) => {
                let mut result = Truth::False;
                for operand in operands {
                    result = result.max(operand.truth(subject));
                    if result == Truth::True {
                        break;
                    }
                }
                result
            }
            Expr::Not(operand) => operand.truth(subject).not(),
            Expr::Comparison(comparison) => {
                let value = comparison.operand.evaluate(subject);
                comparison.predicate.test(&value)
            }
        }
    }

    /// Every operand the filter mentions, each once, in order of first appearance.
    pub fn operands(&self) -> Vec<&Operand> {
        let mut operands = Vec::new();
        self.visit(&mut |comparison| {
            if !operands.contains(&&comparison.operand) {
                operands.push(&comparison.operand);
            }
        });
        operands
    }

    /// The parameter key paths the filter reads, each once, in order of first appearance.
    pub fn referenced_params(&self) -> Vec<&[String]> {
        param_paths(self.operands())
    }

    /// The output key paths the filter reads (whatever the aggregate), each once, in order of
    /// first appearance.
    pub fn referenced_outputs(&self) -> Vec<&[String]> {
        output_paths(self.operands())
    }

    /// The attributes the filter reads, each once, in order of first appearance.
    pub fn referenced_attributes(&self) -> Vec<Attribute> {
        attributes(self.operands())
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Comparison)) {
        match self {
            Expr::And(operands) | Expr::Or(operands) => {
                for operand in operands {
                    operand.visit(f);
                }
            }
            Expr::Not(operand) => operand.visit(f),
            Expr::Comparison(comparison) => f(comparison),
        }
    }
}

fn param_paths<'a>(operands: impl IntoIterator<Item = &'a Operand>) -> Vec<&'a [String]> {
    let mut paths: Vec<&[String]> = Vec::new();
    for operand in operands {
        if let Operand::Param(path) = operand {
            if !paths.contains(&path.as_slice()) {
                paths.push(path);
            }
        }
    }
    paths
}

fn output_paths<'a>(operands: impl IntoIterator<Item = &'a Operand>) -> Vec<&'a [String]> {
    let mut paths: Vec<&[String]> = Vec::new();
    for operand in operands {
        if let Operand::Output { key, .. } = operand {
            if !paths.contains(&key.as_slice()) {
                paths.push(key);
            }
        }
    }
    paths
}

fn attributes<'a>(operands: impl IntoIterator<Item = &'a Operand>) -> Vec<Attribute> {
    let mut attributes = Vec::new();
    for operand in operands {
        if let Operand::Attribute(attribute) = operand {
            if !attributes.contains(attribute) {
                attributes.push(*attribute);
            }
        }
    }
    attributes
}

impl FromStr for Expr {
    type Err = FilterError;

    /// Parses a filter; unlike [`parse_filter`], an empty filter is an error.
    fn from_str(text: &str) -> Result<Expr, FilterError> {
        let mut parser = Parser::new(text)?;
        let expr = parser.filter()?;
        parser.expect_end("AND, OR or the end of the filter")?;
        Ok(expr)
    }
}

impl Predicate {
    /// The truth of this predicate for the operand's value.
    fn test(&self, value: &Value) -> Truth {
        match self {
            Predicate::IsNull { negated } => {
                Truth::from_bool(matches!(value, Value::Null) != *negated)
            }
            // Every other test of a missing value or a NaN is unknown.
            _ if is_null_or_nan(value) => Truth::Unknown,
            Predicate::Compare { op, value: right } => compare_value(value, *op, right),
            Predicate::CompareWide { op, value: right } => {
                compare_value(value, *op, &Value::Float(*right as f64))
            }
            Predicate::Like { pattern, negated } => match value {
                Value::Str(text) => Truth::from_bool(pattern.matches(text)).negate_if(*negated),
                _ => Truth::Unknown,
            },
            Predicate::In { values, negated } => values
                .iter()
                .map(|right| compare_value(value, CompareOp::Eq, right))
                .max()
                .unwrap_or(Truth::False)
                .negate_if(*negated),
            // A run has no columns to compare with.
            Predicate::CompareColumn { .. } => Truth::Unknown,
        }
    }
}

fn is_null_or_nan(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Float(f) => f.is_nan(),
        _ => false,
    }
}

/// How two non-null values relate.
enum Relation {
    /// Comparable, with this order.
    Ordered(Ordering),
    /// Of types that do not compare: never equal, never ordered.
    Mixed,
}

/// Relates two values; `None` when either is a NaN.
fn relate(left: &Value, right: &Value) -> Option<Relation> {
    let bool_text = |text: &str| {
        if text.eq_ignore_ascii_case("true") {
            Some(true)
        } else if text.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    };
    Some(match (left, right) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            Relation::Ordered(numeric_cmp(left, right)?)
        }
        // MLflow stores parameters as strings, so its users write `params.batch_size = '2'`:
        // a number-looking string on the right compares with a number on the left as that
        // number. A string on the left stays a string (`params.lr = '0.05'` against the
        // stored string "0.05" compares text).
        (Value::Int(_) | Value::Float(_), Value::Str(text)) => match numeric_text(text) {
            Some(number) => Relation::Ordered(numeric_cmp(left, &number)?),
            None => Relation::Mixed,
        },
        (Value::Str(a), Value::Str(b)) => Relation::Ordered(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Relation::Ordered(a.cmp(b)),
        (Value::Bool(a), Value::Str(b)) => match bool_text(b) {
            Some(b) => Relation::Ordered(a.cmp(&b)),
            None => Relation::Mixed,
        },
        (Value::Str(a), Value::Bool(b)) => match bool_text(a) {
            Some(a) => Relation::Ordered(a.cmp(b)),
            None => Relation::Mixed,
        },
        _ => Relation::Mixed,
    })
}

/// The number a string literal spells, when it is written as a number (digits, sign, point,
/// exponent: `'2'`, `'-0.5'`, `'1e-3'`) and finite; `None` for anything else (`'inf'`,
/// `'NaN'`, `' 2'`, `'2x'`).
fn numeric_text(text: &str) -> Option<Value> {
    let number_like = text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'));
    if !number_like {
        return None;
    }
    if let Ok(int) = text.parse::<i64>() {
        return Some(Value::Int(int));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::Float)
}

fn compare_value(left: &Value, op: CompareOp, right: &Value) -> Truth {
    match relate(left, right) {
        None => Truth::Unknown,
        Some(Relation::Ordered(ordering)) => Truth::from_bool(op.accepts(ordering)),
        Some(Relation::Mixed) => match op {
            CompareOp::Eq => Truth::False,
            CompareOp::Ne => Truth::True,
            _ => Truth::Unknown,
        },
    }
}

/// Reduces the values of `key` across `outputs`.
fn aggregate_outputs<'a>(
    outputs: &'a [Value],
    key: &[String],
    aggregate: Aggregate,
) -> Cow<'a, Value> {
    let held = |output: &'a Value| -> Option<&'a Value> {
        key.iter()
            .try_fold(output, |value, part| value.get(part))
            .filter(|value| !matches!(value, Value::Null))
    };
    let numbers = || {
        outputs
            .iter()
            .filter_map(held)
            .filter(|value| value.as_f64().is_some_and(|f| !f.is_nan()))
    };
    let found = match aggregate {
        Aggregate::Last => outputs.iter().rev().find_map(held),
        Aggregate::First => outputs.iter().find_map(held),
        Aggregate::Count => {
            let count = outputs.iter().filter_map(held).count();
            return Cow::Owned(Value::Int(i64::try_from(count).unwrap_or(i64::MAX)));
        }
        Aggregate::Min => numbers().min_by(|a, b| numeric_cmp(a, b).unwrap_or(Ordering::Equal)),
        Aggregate::Max => numbers().max_by(|a, b| numeric_cmp(a, b).unwrap_or(Ordering::Equal)),
        Aggregate::Mean => {
            let (sum, count) = numbers()
                .filter_map(Value::as_f64)
                .fold((0.0, 0u64), |(sum, count), f| (sum + f, count + 1));
            return Cow::Owned(if count == 0 {
                Value::Null
            } else {
                Value::Float(sum / count as f64)
            });
        }
    };
    found.map_or(Cow::Owned(Value::Null), Cow::Borrowed)
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    /// What to sort by.
    pub operand: Operand,
    /// `DESC`; ascending otherwise.
    pub descending: bool,
}

impl OrderKey {
    /// Orders two runs by this key alone.
    pub fn compare<S: Subject + ?Sized>(&self, a: &S, b: &S) -> Ordering {
        self.compare_values(&self.operand.evaluate(a), &self.operand.evaluate(b))
    }

    /// Orders two values of this key's operand (as from [`Operand::evaluate`]), so that a
    /// caller sorting many runs can evaluate each run's key once.
    ///
    /// NULL and NaN sort last in both directions; other values by type and then value (see
    /// the module documentation).
    pub fn compare_values(&self, a: &Value, b: &Value) -> Ordering {
        match (is_null_or_nan(a), is_null_or_nan(b)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let ordering = total_cmp(a, b);
                if self.descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            }
        }
    }
}

/// Orders runs by several keys: the first key that tells them apart decides.
pub fn compare<S: Subject + ?Sized>(order_by: &[OrderKey], a: &S, b: &S) -> Ordering {
    order_by
        .iter()
        .map(|key| key.compare(a, b))
        .find(|ordering| ordering.is_ne())
        .unwrap_or(Ordering::Equal)
}

/// A total order on non-null, non-NaN values: by type rank, then by value.
fn total_cmp(a: &Value, b: &Value) -> Ordering {
    let rank = |value: &Value| match value {
        Value::Int(_) | Value::Float(_) => 0,
        Value::Str(_) => 1,
        Value::Bool(_) => 2,
        Value::List(_) => 3,
        Value::Map(_) => 4,
        Value::Null => 5,
    };
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Str(a), Value::Str(b)) => a.cmp(b),
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        _ => numeric_cmp(a, b).unwrap_or(Ordering::Equal),
    })
}

/// A whole run query: `[filter] [ORDER BY keys] [LIMIT n] [OFFSET m]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// The filter; `None` selects every run.
    pub filter: Option<Expr>,
    /// The sort keys; empty leaves the order to the store.
    pub order_by: Vec<OrderKey>,
    /// At most this many runs.
    pub limit: Option<u64>,
    /// Runs to skip before the first one returned.
    pub offset: u64,
}

impl Query {
    fn operands(&self) -> Vec<&Operand> {
        let mut operands = self.filter.as_ref().map(Expr::operands).unwrap_or_default();
        operands.extend(self.order_by.iter().map(|key| &key.operand));
        operands
    }

    /// The parameter key paths the filter and the sort keys read, each once.
    pub fn referenced_params(&self) -> Vec<&[String]> {
        param_paths(self.operands())
    }

    /// The output key paths the filter and the sort keys read, each once.
    pub fn referenced_outputs(&self) -> Vec<&[String]> {
        output_paths(self.operands())
    }

    /// The attributes the filter and the sort keys read, each once.
    pub fn referenced_attributes(&self) -> Vec<Attribute> {
        attributes(self.operands())
    }

    /// Whether every output the filter and the sort keys read is a latest value
    /// ([`Aggregate::Last`]), and no such key path is a prefix of another: then the latest
    /// output holding each path is all a run needs to provide.
    pub fn reads_only_latest_outputs(&self) -> bool {
        let mut paths: Vec<&[String]> = Vec::new();
        for operand in self.operands() {
            if let Operand::Output { key, aggregate } = operand {
                if *aggregate != Aggregate::Last {
                    return false;
                }
                paths.push(key);
            }
        }
        paths.iter().enumerate().all(|(i, a)| {
            paths
                .iter()
                .enumerate()
                .all(|(j, b)| i == j || a == b || !b.starts_with(a))
        })
    }
}

/// Parses a filter. A filter of only whitespace is `None`: it selects every run.
///
/// # Errors
///
/// A `FilterError` naming the column of the first token that does not fit the grammar, an
/// unknown attribute or status, an unparseable date, input over `FILTER_BYTES_MAX` bytes or
/// nesting over `FILTER_DEPTH_MAX` levels.
pub fn parse_filter(text: &str) -> Result<Option<Expr>, FilterError> {
    let mut parser = Parser::new(text)?;
    if parser.at_end() {
        return Ok(None);
    }
    let expr = parser.filter()?;
    parser.expect_end("AND, OR or the end of the filter")?;
    Ok(Some(expr))
}

/// Parses a column filter: the same language over the columns of a table, for scans.
///
/// A name where the run filter expects an identifier (a bare word, or a name in backticks or
/// double quotes; dotted words such as `train.loss` are one name) is a column: `loss < 0.5 AND
/// split = 'val'`. On the right of a comparison operator a bare or backticked name is a
/// column too, comparing two columns of the same row (`predicted != label`); a double-quoted
/// text there is a string, as in run filters. Which columns exist and whether a value fits a
/// column's type is checked later against the table's schema. A filter of only whitespace is
/// `None`.
///
/// # Errors
///
/// As [`parse_filter`].
pub fn parse_column_filter(text: &str) -> Result<Option<Expr>, FilterError> {
    let mut parser = Parser::new(text)?;
    parser.columns = true;
    if parser.at_end() {
        return Ok(None);
    }
    let expr = parser.filter()?;
    parser.expect_end("AND, OR or the end of the filter")?;
    Ok(Some(expr))
}

/// Parses an `ORDER BY` list without the `ORDER BY`: `key [ASC|DESC], ...`. Whitespace alone
/// gives an empty list.
///
/// # Errors
///
/// As [`parse_filter`].
pub fn parse_order_by(text: &str) -> Result<Vec<OrderKey>, FilterError> {
    let mut parser = Parser::new(text)?;
    if parser.at_end() {
        return Ok(Vec::new());
    }
    let keys = parser.order_list()?;
    parser.expect_end("',', ASC, DESC or the end of the list")?;
    Ok(keys)
}

/// Parses a whole query: `[filter] [ORDER BY keys] [LIMIT n] [OFFSET m]`, each part optional.
///
/// # Errors
///
/// As [`parse_filter`]; also a `LIMIT` or `OFFSET` that is not a whole number.
pub fn parse_query(text: &str) -> Result<Query, FilterError> {
    let mut parser = Parser::new(text)?;
    let mut query = Query::default();
    let mut expected = "a filter, ORDER BY, LIMIT, OFFSET or the end of the query";
    if !parser.at_end() && !parser.at_clause_keyword() {
        query.filter = Some(parser.filter()?);
        expected = "AND, OR, ORDER BY, LIMIT, OFFSET or the end of the query";
    }
    if parser.peek_keyword() == Some(Keyword::Order) {
        let order = parser.bump();
        let by = parser.bump();
        if !matches!(by.kind, TokenKind::Keyword(Keyword::By)) {
            return Err(parser.unexpected(&by, &format!("BY after {}", parser.quote(&order))));
        }
        query.order_by = parser.order_list()?;
        expected = "',', ASC, DESC, LIMIT, OFFSET or the end of the query";
    }
    if parser.peek_keyword() == Some(Keyword::Limit) {
        query.limit = Some(parser.count()?);
        expected = "OFFSET or the end of the query";
    }
    if parser.peek_keyword() == Some(Keyword::Offset) {
        query.offset = parser.count()?;
        expected = "the end of the query";
    }
    parser.expect_end(expected)?;
    Ok(query)
}

// ---------------------------------------------------------------------------------------------
// Lexer

/// A reserved word, recognized in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
    Like,
    Ilike,
    In,
    Is,
    Null,
    True,
    False,
    Order,
    By,
    Asc,
    Desc,
    Limit,
    Offset,
}

impl Keyword {
    const ALL: [Keyword; 16] = [
        Keyword::And,
        Keyword::Or,
        Keyword::Not,
        Keyword::Like,
        Keyword::Ilike,
        Keyword::In,
        Keyword::Is,
        Keyword::Null,
        Keyword::True,
        Keyword::False,
        Keyword::Order,
        Keyword::By,
        Keyword::Asc,
        Keyword::Desc,
        Keyword::Limit,
        Keyword::Offset,
    ];

    fn text(self) -> &'static str {
        match self {
            Keyword::And => "AND",
            Keyword::Or => "OR",
            Keyword::Not => "NOT",
            Keyword::Like => "LIKE",
            Keyword::Ilike => "ILIKE",
            Keyword::In => "IN",
            Keyword::Is => "IS",
            Keyword::Null => "NULL",
            Keyword::True => "TRUE",
            Keyword::False => "FALSE",
            Keyword::Order => "ORDER",
            Keyword::By => "BY",
            Keyword::Asc => "ASC",
            Keyword::Desc => "DESC",
            Keyword::Limit => "LIMIT",
            Keyword::Offset => "OFFSET",
        }
    }

    fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|keyword| keyword.text().eq_ignore_ascii_case(word))
    }
}

/// One part of a dotted identifier.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    text: String,
    /// Written in backticks or double quotes.
    quoted: bool,
    /// Char index where it starts (at its opening quote, if quoted).
    start: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// A dotted identifier that is not a keyword.
    Path(Vec<Part>),
    Keyword(Keyword),
    Number(Value),
    Str {
        text: String,
        double_quoted: bool,
    },
    Op(CompareOp),
    LeftParen,
    RightParen,
    Comma,
    End,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    /// Char index of the first character.
    start: usize,
    /// Char index one past the last character.
    end: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Lexer<'_> {
    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn error(&self, start: usize, message: String) -> FilterError {
        FilterError {
            message,
            column: start + 1,
        }
    }

    fn tokens(mut self) -> Result<Vec<Token>, FilterError> {
        let mut tokens = Vec::new();
        loop {
            while self.peek_at(0).is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            let start = self.pos;
            let Some(c) = self.peek_at(0) else {
                tokens.push(Token {
                    kind: TokenKind::End,
                    start,
                    end: start,
                });
                return Ok(tokens);
            };
            let next = self.peek_at(1);
            let (kind, length) = match (c, next) {
                ('(', _) => (TokenKind::LeftParen, 1),
                (')', _) => (TokenKind::RightParen, 1),
                (',', _) => (TokenKind::Comma, 1),
                ('=', Some('=')) => (TokenKind::Op(CompareOp::Eq), 2),
                ('=', _) => (TokenKind::Op(CompareOp::Eq), 1),
                ('!', Some('=')) | ('<', Some('>')) => (TokenKind::Op(CompareOp::Ne), 2),
                ('<', Some('=')) => (TokenKind::Op(CompareOp::Le), 2),
                ('<', _) => (TokenKind::Op(CompareOp::Lt), 1),
                ('>', Some('=')) => (TokenKind::Op(CompareOp::Ge), 2),
                ('>', _) => (TokenKind::Op(CompareOp::Gt), 1),
                ('\'' | '"', _) => {
                    let text = self.quoted(c, "unterminated string")?;
                    let kind = TokenKind::Str {
                        text,
                        double_quoted: c == '"',
                    };
                    tokens.push(Token {
                        kind,
                        start,
                        end: self.pos,
                    });
                    continue;
                }
                _ if self.at_number() => {
                    let kind = self.number()?;
                    tokens.push(Token {
                        kind,
                        start,
                        end: self.pos,
                    });
                    continue;
                }
                _ if c == '`' || (is_word_char(c) && !c.is_ascii_digit()) => {
                    let kind = self.path()?;
                    tokens.push(Token {
                        kind,
                        start,
                        end: self.pos,
                    });
                    continue;
                }
                ('!', _) => {
                    return Err(self.error(
                        start,
                        "unexpected character '!' (use NOT, or != for not equal)".to_owned(),
                    ))
                }
                _ => return Err(self.error(start, format!("unexpected character '{c}'"))),
            };
            self.pos += length;
            tokens.push(Token {
                kind,
                start,
                end: self.pos,
            });
        }
    }

    /// Reads a quoted run of characters starting at the opening `quote`; a doubled quote
    /// stands for one quote character.
    fn quoted(&mut self, quote: char, unterminated: &str) -> Result<String, FilterError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek_at(0) {
                None => return Err(self.error(start, unterminated.to_owned())),
                Some(c) if c == quote => {
                    if self.peek_at(1) == Some(quote) {
                        text.push(quote);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(text);
                    }
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn at_number(&self) -> bool {
        let digit = |offset| self.peek_at(offset).is_some_and(|c| c.is_ascii_digit());
        match self.peek_at(0) {
            Some(c) if c.is_ascii_digit() => true,
            Some('.') => digit(1),
            Some('-') => digit(1) || (self.peek_at(1) == Some('.') && digit(2)),
            _ => false,
        }
    }

    fn number(&mut self) -> Result<TokenKind, FilterError> {
        let start = self.pos;
        let digits = |lexer: &mut Self| {
            let from = lexer.pos;
            while lexer.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                lexer.pos += 1;
            }
            lexer.pos > from
        };
        let mut is_float = false;
        if self.peek_at(0) == Some('-') {
            self.pos += 1;
        }
        digits(self);
        if self.peek_at(0) == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            is_float = true;
            self.pos += 1;
            digits(self);
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            let after_sign = match self.peek_at(1) {
                Some('+' | '-') => 2,
                _ => 1,
            };
            if self.peek_at(after_sign).is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                self.pos += after_sign;
                digits(self);
            }
        }
        // Letters, digits or dots glued to the number make it something else, say `1abc` or
        // `1.2.3`; take them so that the error shows the whole of it.
        let mut invalid = false;
        while self.peek_at(0).is_some_and(|c| is_word_char(c) || c == '.') {
            invalid = true;
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if invalid {
            return Err(self.error(start, format!("invalid number '{}'", snippet(&text))));
        }
        if !is_float {
            if let Ok(int) = text.parse::<i64>() {
                return Ok(TokenKind::Number(Value::Int(int)));
            }
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Ok(TokenKind::Number(Value::Float(float))),
            _ => Err(self.error(
                start,
                format!("number '{}' is out of range", snippet(&text)),
            )),
        }
    }

    /// Reads a dotted identifier, or a keyword.
    fn path(&mut self) -> Result<TokenKind, FilterError> {
        let mut parts = vec![self.part(false)?];
        while self.peek_at(0) == Some('.') {
            let after = self.pos + 1;
            match self.peek_at(1) {
                Some(c) if c == '`' || c == '"' || is_word_char(c) => {
                    self.pos += 1;
                    parts.push(self.part(true)?);
                }
                _ => {
                    return Err(self.error(after, "expected a name after '.'".to_owned()));
                }
            }
        }
        if let [part] = parts.as_slice() {
            if !part.quoted {
                if let Some(keyword) = Keyword::from_word(&part.text) {
                    return Ok(TokenKind::Keyword(keyword));
                }
            }
        }
        Ok(TokenKind::Path(parts))
    }

    /// Reads one part of an identifier; only parts after a dot may be double-quoted.
    fn part(&mut self, after_dot: bool) -> Result<Part, FilterError> {
        let start = self.pos;
        match self.peek_at(0) {
            Some(quote @ ('`' | '"')) if quote == '`' || after_dot => {
                let text = self.quoted(quote, "unterminated quoted name")?;
                Ok(Part {
                    text,
                    quoted: true,
                    start,
                })
            }
            _ => {
                while self.peek_at(0).is_some_and(is_word_char) {
                    self.pos += 1;
                }
                Ok(Part {
                    text: self.chars[start..self.pos].iter().collect(),
                    quoted: false,
                    start,
                })
            }
        }
    }
}

/// Cuts `text` for an error message.
fn snippet(text: &str) -> String {
    if text.chars().count() > ERROR_SNIPPET_CHARS_MAX {
        let mut cut: String = text.chars().take(ERROR_SNIPPET_CHARS_MAX).collect();
        cut.push('…');
        cut
    } else {
        text.to_owned()
    }
}

/// Case-insensitive optimal string alignment distance (edits, with transpositions as one).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(fold_case).collect();
    let b: Vec<char> = b.chars().map(fold_case).collect();
    // Three rows of the dynamic-programming table: two back, one back, current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `word`, if close enough to be a likely typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let length = word.chars().count();
    if length > SUGGESTION_WORD_CHARS_MAX {
        return None;
    }
    // One edit in a two-letter word makes almost any other short word (`lr` is one from
    // `url`), so short words get no suggestion and mid-length ones a single edit.
    let allowed = match length {
        0..=2 => return None,
        3..=4 => 1,
        _ => 2,
    };
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean '{s}'?)"))
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    chars: Vec<char>,
    /// Never empty: the last token is [`TokenKind::End`].
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Column mode ([`parse_column_filter`]): a name is a table column, not a run attribute.
    columns: bool,
}

impl Parser {
    fn new(text: &str) -> Result<Parser, FilterError> {
        if text.len() > FILTER_BYTES_MAX {
            let column = text
                .char_indices()
                .take_while(|&(at, _)| at < FILTER_BYTES_MAX)
                .count()
                + 1;
            return Err(FilterError {
                message: format!(
                    "query is {} bytes long; at most {FILTER_BYTES_MAX} are allowed",
                    text.len()
                ),
                column,
            });
        }
        let chars: Vec<char> = text.chars().collect();
        let tokens = Lexer {
            chars: &chars,
            pos: 0,
        }
        .tokens()?;
        debug_assert!(matches!(
            tokens.last().map(|token| &token.kind),
            Some(TokenKind::End)
        ));
        Ok(Parser {
            chars,
            tokens,
            pos: 0,
            depth: 0,
            columns: false,
        })
    }

    fn peek(&self) -> &Token {
        // `pos` never passes the final End token (see `bump`).
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_keyword(&self) -> Option<Keyword> {
        match self.peek().kind {
            TokenKind::Keyword(keyword) => Some(keyword),
            _ => None,
        }
    }

    fn at_end(&self) -> bool {
        matches!(self.peek().kind, TokenKind::End)
    }

    fn at_clause_keyword(&self) -> bool {
        matches!(
            self.peek_keyword(),
            Some(Keyword::Order | Keyword::Limit | Keyword::Offset)
        )
    }

    /// Takes the next token; at the end, keeps returning the End token.
    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if !matches!(token.kind, TokenKind::End) {
            self.pos += 1;
        }
        token
    }

    fn source(&self, token: &Token) -> String {
        self.chars
            .get(token.start..token.end)
            .map(|chars| chars.iter().collect())
            .unwrap_or_default()
    }

    /// The token as shown in a message: its source text in single quotes (a string as
    /// written, with its own quotes), or "end of input".
    fn quote(&self, token: &Token) -> String {
        match token.kind {
            TokenKind::End => "end of input".to_owned(),
            TokenKind::Str { .. } => snippet(&self.source(token)),
            _ => format!("'{}'", snippet(&self.source(token))),
        }
    }

    fn error_at(&self, token: &Token, message: String) -> FilterError {
        FilterError {
            message,
            column: token.start + 1,
        }
    }

    fn unexpected(&self, token: &Token, expected: &str) -> FilterError {
        self.error_at(
            token,
            format!("expected {expected}, found {}", self.quote(token)),
        )
    }

    fn expect_end(&mut self, expected: &str) -> Result<(), FilterError> {
        let token = self.bump();
        match token.kind {
            TokenKind::End => Ok(()),
            _ => Err(self.unexpected(&token, expected)),
        }
    }

    /// Enters one level of nesting at `token` (a `(` or `NOT`).
    fn enter(&mut self, token: &Token) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > FILTER_DEPTH_MAX {
            return Err(self.error_at(
                token,
                format!(
                    "filter nests deeper than {FILTER_DEPTH_MAX} levels of parentheses and NOT"
                ),
            ));
        }
        Ok(())
    }

    fn filter(&mut self) -> Result<Expr, FilterError> {
        let mut operands = vec![self.and_expr()?];
        while self.peek_keyword() == Some(Keyword::Or) {
            self.bump();
            operands.push(self.and_expr()?);
        }
        Ok(if operands.len() == 1 {
            operands.swap_remove(0)
        } else {
            Expr::Or(operands)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut operands = vec![self.not_expr()?];
        while self.peek_keyword() == Some(Keyword::And) {
            self.bump();
            operands.push(self.not_expr()?);
        }
        Ok(if operands.len() == 1 {
            operands.swap_remove(0)
        } else {
            Expr::And(operands)
        })
    }

    fn not_expr(&mut self) -> Result<Expr, FilterError> {
        match self.peek().kind {
            TokenKind::Keyword(Keyword::Not) => {
                let not = self.bump();
                self.enter(&not)?;
                let operand = self.not_expr()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(operand)))
            }
            TokenKind::LeftParen => {
                let open = self.bump();
                self.enter(&open)?;
                let expr = self.filter()?;
                let close = self.bump();
                if !matches!(close.kind, TokenKind::RightParen) {
                    let expected = format!(
                        "AND, OR or ')' to close the '(' at column {}",
                        open.start + 1
                    );
                    return Err(self.unexpected(&close, &expected));
                }
                self.depth -= 1;
                Ok(expr)
            }
            _ => self.comparison().map(Expr::Comparison),
        }
    }

    fn comparison(&mut self) -> Result<Comparison, FilterError> {
        let (operand, operand_token) = self.operand("a comparison")?;
        let op = self.bump();
        let predicate = match op.kind {
            TokenKind::Op(compare_op) => {
                if compare_op.is_ordering() && operand == Operand::Attribute(Attribute::Status) {
                    return Err(self.error_at(
                        &op,
                        format!(
                            "a status has no order; compare it with =, !=, IN or LIKE, not {}",
                            self.quote(&op)
                        ),
                    ));
                }
                if let Some(other) = self.column_value() {
                    return Ok(Comparison {
                        operand,
                        predicate: Predicate::CompareColumn {
                            op: compare_op,
                            other,
                        },
                    });
                }
                let (value, value_token) = self.value(&op)?;
                if value == Value::Null {
                    let hint = match compare_op {
                        CompareOp::Eq => "use IS NULL to test for a missing value".to_owned(),
                        CompareOp::Ne => "use IS NOT NULL to test for a present value".to_owned(),
                        _ => format!(
                            "NULL has no order; use IS NULL or IS NOT NULL, not {}",
                            self.quote(&op)
                        ),
                    };
                    return Err(self.error_at(&value_token, hint));
                }
                if let Some(wide) = self.wide_integer(&value_token) {
                    return Ok(Comparison {
                        operand,
                        predicate: Predicate::CompareWide {
                            op: compare_op,
                            value: wide,
                        },
                    });
                }
                let value = self.literal_for(&operand, value, &value_token)?;
                Predicate::Compare {
                    op: compare_op,
                    value,
                }
            }
            TokenKind::Keyword(Keyword::Like | Keyword::Ilike) => {
                self.like(&operand, &operand_token, &op, false)?
            }
            TokenKind::Keyword(Keyword::In) => self.in_list(&operand, &op, false)?,
            TokenKind::Keyword(Keyword::Not) => {
                let next = self.bump();
                match next.kind {
                    TokenKind::Keyword(Keyword::Like | Keyword::Ilike) => {
                        self.like(&operand, &operand_token, &next, true)?
                    }
                    TokenKind::Keyword(Keyword::In) => self.in_list(&operand, &next, true)?,
                    _ => {
                        let expected = format!("LIKE, ILIKE or IN after {}", self.quote(&op));
                        return Err(self.unexpected(&next, &expected));
                    }
                }
            }
            TokenKind::Keyword(Keyword::Is) => {
                let negated = self.peek_keyword() == Some(Keyword::Not);
                let last = if negated { self.bump() } else { op.clone() };
                let null = self.bump();
                if !matches!(null.kind, TokenKind::Keyword(Keyword::Null)) {
                    let expected = if negated {
                        format!("NULL after {}", self.quote(&last))
                    } else {
                        "NULL or NOT NULL after 'IS'".to_owned()
                    };
                    return Err(self.unexpected(&null, &expected));
                }
                Predicate::IsNull { negated }
            }
            _ => {
                let mut message = format!(
                    "expected an operator after {}, found {}",
                    self.quote(&operand_token),
                    self.quote(&op)
                );
                if let TokenKind::Path(parts) = &op.kind {
                    if let [part] = parts.as_slice() {
                        let operators = ["LIKE", "ILIKE", "IN", "IS", "NOT"];
                        message += &did_you_mean(suggest(&part.text, operators));
                    }
                }
                return Err(self.error_at(&op, message));
            }
        };
        Ok(Comparison { operand, predicate })
    }

    fn like(
        &mut self,
        operand: &Operand,
        operand_token: &Token,
        like: &Token,
        negated: bool,
    ) -> Result<Predicate, FilterError> {
        if let Operand::Attribute(attribute) = operand {
            if attribute.is_timestamp() {
                return Err(self.error_at(
                    like,
                    format!(
                        "{} is a timestamp; LIKE and ILIKE match strings",
                        self.quote(operand_token)
                    ),
                ));
            }
        }
        let case_insensitive = matches!(like.kind, TokenKind::Keyword(Keyword::Ilike));
        let pattern = self.bump();
        match pattern.kind {
            TokenKind::Str { text, .. } => Ok(Predicate::Like {
                pattern: LikePattern::new(&text, case_insensitive),
                negated,
            }),
            _ => {
                let expected = format!("a quoted pattern after {}", self.quote(like));
                Err(self.unexpected(&pattern, &expected))
            }
        }
    }

    fn in_list(
        &mut self,
        operand: &Operand,
        in_token: &Token,
        negated: bool,
    ) -> Result<Predicate, FilterError> {
        let open = self.bump();
        if !matches!(open.kind, TokenKind::LeftParen) {
            let expected = format!("'(' after {}", self.quote(in_token));
            return Err(self.unexpected(&open, &expected));
        }
        let mut values = Vec::new();
        let mut after = open;
        loop {
            let (value, value_token) = self.value(&after)?;
            if value == Value::Null {
                return Err(self.error_at(
                    &value_token,
                    "NULL in an IN list never matches; use IS NULL".to_owned(),
                ));
            }
            if self.wide_integer(&value_token).is_some() {
                return Err(self.error_at(
                    &value_token,
                    "an IN list holds integers of i64 only; compare a larger one with = (a = \
                     n OR a = m)"
                        .to_owned(),
                ));
            }
            values.push(self.literal_for(operand, value, &value_token)?);
            let next = self.bump();
            match next.kind {
                TokenKind::Comma => after = next,
                TokenKind::RightParen => break,
                _ => return Err(self.unexpected(&next, "',' or ')' in the IN list")),
            }
        }
        Ok(Predicate::In { values, negated })
    }

    /// Reads a value after the token `after` (an operator, `(` or `,`).
    fn value(&mut self, after: &Token) -> Result<(Value, Token), FilterError> {
        let token = self.bump();
        let value = match &token.kind {
            TokenKind::Number(value) => value.clone(),
            TokenKind::Str { text, .. } => Value::Str(text.clone()),
            TokenKind::Keyword(Keyword::True) => Value::Bool(true),
            TokenKind::Keyword(Keyword::False) => Value::Bool(false),
            TokenKind::Keyword(Keyword::Null) => Value::Null,
            kind => {
                let mut message = format!(
                    "expected a value after {}, found {}",
                    self.quote(after),
                    self.quote(&token)
                );
                if let TokenKind::Path(parts) = kind {
                    if let [part] = parts.as_slice() {
                        if !part.quoted {
                            let quoted = snippet(&part.text.replace('\'', "''"));
                            message += &format!(" (strings need quotes: '{quoted}')");
                        }
                    }
                }
                return Err(self.error_at(&token, message));
            }
        };
        Ok((value, token))
    }

    /// Converts a literal to what the operand's values are compared with: timestamps to
    /// microseconds, statuses to their canonical name.
    fn literal_for(
        &self,
        operand: &Operand,
        value: Value,
        token: &Token,
    ) -> Result<Value, FilterError> {
        let Operand::Attribute(attribute) = operand else {
            return Ok(value);
        };
        match attribute {
            Attribute::Status => {
                let name = match &value {
                    Value::Str(text) => status_from_text(text),
                    Value::Int(_) | Value::Float(_) => value.as_f64().and_then(status_from_code),
                    _ => None,
                };
                match name {
                    Some(name) => Ok(Value::Str(name.to_owned())),
                    None => {
                        let text = match &value {
                            Value::Str(text) => text.to_ascii_uppercase(),
                            _ => String::new(),
                        };
                        // MLflow's statuses, pointed at 3LC's nearest equivalent.
                        let mlflow = match text.as_str() {
                            "FINISHED" => Some("COMPLETED"),
                            "FAILED" | "KILLED" => Some("CANCELLED"),
                            "SCHEDULED" => Some("EMPTY"),
                            _ => None,
                        };
                        let hint = match (mlflow, suggest(&text, STATUS_NAMES)) {
                            (Some(name), _) => format!(
                                "{text} is an MLflow status; runstore uses 3LC's statuses: \
                                 did you mean '{name}'?"
                            ),
                            (None, Some(name)) => format!("did you mean '{name}'?"),
                            (None, None) => {
                                format!("expected {} or a code 1 to 7", STATUS_NAMES.join(", "))
                            }
                        };
                        Err(self.error_at(
                            token,
                            format!("unknown status {} ({hint})", self.quote(token)),
                        ))
                    }
                }
            }
            Attribute::Created | Attribute::LastModified => {
                let micros = match &value {
                    Value::Str(text) => crate::time::parse_rfc3339_us(text.trim()),
                    Value::Int(millis) => millis.checked_mul(1000),
                    Value::Float(millis) => float_to_i64((millis * 1000.0).round()),
                    _ => None,
                };
                micros.map(Value::Int).ok_or_else(|| {
                    self.error_at(
                        token,
                        format!(
                            "expected a date such as '2024-05-01' or '2024-05-01T12:00:00Z', or \
                             epoch milliseconds, for '{}', found {}",
                            attribute.name(),
                            self.quote(token)
                        ),
                    )
                })
            }
            _ => Ok(value),
        }
    }

    /// Reads an identifier where `expected` says what was wanted.
    fn operand(&mut self, expected: &str) -> Result<(Operand, Token), FilterError> {
        let token = self.bump();
        let operand = match &token.kind {
            TokenKind::Path(parts) => self.resolve(parts)?,
            TokenKind::Str {
                text,
                double_quoted: true,
            } => {
                let part = Part {
                    text: text.clone(),
                    quoted: true,
                    start: token.start,
                };
                self.resolve(std::slice::from_ref(&part))?
            }
            TokenKind::Str {
                double_quoted: false,
                ..
            } => {
                return Err(self.error_at(
                    &token,
                    format!(
                        "expected {expected}, found the string {}; quote names with backticks \
                         or double quotes",
                        self.quote(&token)
                    ),
                ))
            }
            _ => return Err(self.unexpected(&token, expected)),
        };
        Ok((operand, token))
    }

    /// Turns the parts of an identifier into an operand.
    fn resolve(&self, parts: &[Part]) -> Result<Operand, FilterError> {
        let part_error = |part: &Part, message: String| FilterError {
            message,
            column: part.start + 1,
        };
        let Some((first, rest)) = parts.split_first() else {
            return Err(FilterError {
                message: "expected a name".to_owned(),
                column: 1,
            });
        };
        if self.columns {
            let name: Vec<&str> = parts.iter().map(|part| part.text.as_str()).collect();
            return Ok(Operand::Column(ColumnName {
                name: name.join("."),
                column: first.start + 1,
            }));
        }
        let prefix = first.text.to_ascii_lowercase();
        let is = |prefixes: &[&str]| prefixes.contains(&prefix.as_str());
        let attribute = |part: &Part| {
            Attribute::from_name(&part.text).ok_or_else(|| {
                let spellings = ATTRIBUTE_NAMES.iter().map(|&(spelling, _)| spelling);
                let hint = match suggest(&part.text, spellings) {
                    Some(name) => format!("did you mean '{name}'?"),
                    None => "expected name, status, created, last_modified, description, \
                             project or url, or a params. or outputs. prefix"
                        .to_owned(),
                };
                part_error(
                    part,
                    format!("unknown attribute '{}' ({hint})", snippet(&part.text)),
                )
            })
        };
        let keys = |parts: &[Part]| parts.iter().map(|part| part.text.clone()).collect();
        if rest.is_empty() {
            if is(&ATTRIBUTE_PREFIXES) || is(&PARAM_PREFIXES) || is(&OUTPUT_PREFIXES) {
                return Err(part_error(
                    first,
                    format!("'{}' needs a key, as in {prefix}.<key>", first.text),
                ));
            }
            return attribute(first).map(Operand::Attribute);
        }
        if is(&ATTRIBUTE_PREFIXES) {
            let name = &rest[0];
            let attribute = attribute(name)?;
            if let Some(extra) = rest.get(1) {
                return Err(part_error(
                    extra,
                    format!("attribute '{}' has no keys", attribute.name()),
                ));
            }
            return Ok(Operand::Attribute(attribute));
        }
        if is(&PARAM_PREFIXES) {
            return Ok(Operand::Param(keys(rest)));
        }
        if is(&OUTPUT_PREFIXES) {
            if let [key @ .., last] = rest {
                if !key.is_empty() && !last.quoted {
                    if let Some(aggregate) = Aggregate::from_name(&last.text) {
                        return Ok(Operand::Output {
                            key: keys(key),
                            aggregate,
                        });
                    }
                }
            }
            return Ok(Operand::Output {
                key: keys(rest),
                aggregate: Aggregate::Last,
            });
        }
        if prefix == "tags" || prefix == "tag" {
            return Err(part_error(
                first,
                "runstore runs have no tags; use params.<key> or an attribute".to_owned(),
            ));
        }
        if prefix == "datasets" || prefix == "dataset" {
            return Err(part_error(
                first,
                "runstore runs have no datasets; use params.<key> or an attribute".to_owned(),
            ));
        }
        let prefixes = ATTRIBUTE_PREFIXES
            .into_iter()
            .chain(PARAM_PREFIXES)
            .chain(OUTPUT_PREFIXES);
        let hint = match suggest(&first.text, prefixes) {
            Some(prefix) => format!("did you mean '{prefix}'?"),
            None => "expected attributes, params or outputs".to_owned(),
        };
        Err(part_error(
            first,
            format!("unknown prefix '{}' ({hint})", snippet(&first.text)),
        ))
    }

    /// In column mode, takes a column name (a bare word or backticked, not a keyword) that
    /// stands where a value could.
    fn column_value(&mut self) -> Option<ColumnName> {
        if !self.columns {
            return None;
        }
        let TokenKind::Path(parts) = &self.peek().kind else {
            return None;
        };
        let name: Vec<&str> = parts.iter().map(|part| part.text.as_str()).collect();
        let column = ColumnName {
            name: name.join("."),
            column: self.peek().start + 1,
        };
        self.bump();
        Some(column)
    }

    fn order_list(&mut self) -> Result<Vec<OrderKey>, FilterError> {
        let mut keys = Vec::new();
        loop {
            let (operand, _) = self.operand("a key to order by")?;
            let descending = match self.peek_keyword() {
                Some(Keyword::Asc) => {
                    self.bump();
                    false
                }
                Some(Keyword::Desc) => {
                    self.bump();
                    true
                }
                _ => false,
            };
            keys.push(OrderKey {
                operand,
                descending,
            });
            if !matches!(self.peek().kind, TokenKind::Comma) {
                return Ok(keys);
            }
            self.bump();
        }
    }

    /// In a column filter, the integer a number token holds when it is outside `i64` (the
    /// lexer made it a float): columns of `u64` hold such integers, and compare exactly.
    fn wide_integer(&self, token: &Token) -> Option<i128> {
        if !self.columns || !matches!(token.kind, TokenKind::Number(Value::Float(_))) {
            return None;
        }
        let text: String = self.chars.get(token.start..token.end)?.iter().collect();
        if text.contains(['.', 'e', 'E']) {
            return None;
        }
        text.parse::<i128>().ok()
    }

    /// Reads `LIMIT n` or `OFFSET n`.
    fn count(&mut self) -> Result<u64, FilterError> {
        let keyword = self.bump();
        let token = self.bump();
        match token.kind {
            TokenKind::Number(Value::Int(n)) if n >= 0 => Ok(n.unsigned_abs()),
            _ => {
                let expected = format!("a whole number after {}", self.quote(&keyword));
                Err(self.unexpected(&token, &expected))
            }
        }
    }
}

/// The canonical status name for a name in any case (`-` or space for `_`) or a code.
fn status_from_text(text: &str) -> Option<&'static str> {
    let normalized = text.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    if let Some(name) = STATUS_NAMES.into_iter().find(|name| *name == normalized) {
        return Some(name);
    }
    normalized.parse::<f64>().ok().and_then(status_from_code)
}

fn status_from_code(code: f64) -> Option<&'static str> {
    STATUS_NAMES
        .into_iter()
        .zip(1u8..)
        .find(|&(_, status_code)| f64::from(status_code) == code)
        .map(|(name, _)| name)
}

/// `float` as an `i64` when it is a whole number in range.
fn float_to_i64(float: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    // Also false for NaN.
    let in_range = (-TWO_POW_63..TWO_POW_63).contains(&float);
    (in_range && float.fract() == 0.0).then_some(float as i64)
}

// ---------------------------------------------------------------------------------------------
// Display: canonical text that parses back to an equal value.

/// Writes one identifier part: bare when it is a plain word, else in backticks.
fn write_part(f: &mut fmt::Formatter<'_>, text: &str, force_quotes: bool) -> fmt::Result {
    if !force_quotes && !text.is_empty() && text.chars().all(is_word_char) {
        f.write_str(text)
    } else {
        write!(f, "`{}`", text.replace('`', "``"))
    }
}

fn write_parts(f: &mut fmt::Formatter<'_>, parts: &[String], quote_last: bool) -> fmt::Result {
    for (i, part) in parts.iter().enumerate() {
        f.write_str(".")?;
        write_part(f, part, quote_last && i + 1 == parts.len())?;
    }
    Ok(())
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Attribute(attribute) => f.write_str(attribute.name()),
            Operand::Param(path) => {
                f.write_str("params")?;
                write_parts(f, path, false)
            }
            Operand::Output { key, aggregate } => {
                f.write_str("outputs")?;
                match aggregate {
                    // Without a suffix, a last part that names an aggregate would read as one.
                    Aggregate::Last => {
                        let quote_last = key.len() > 1
                            && key
                                .last()
                                .is_some_and(|last| Aggregate::from_name(last).is_some());
                        write_parts(f, key, quote_last)
                    }
                    aggregate => {
                        write_parts(f, key, false)?;
                        write!(f, ".{}", aggregate.name())
                    }
                }
            }
            Operand::Column(column) => {
                // A keyword or a leading digit would not read back as a name.
                let bare = Keyword::from_word(&column.name).is_none()
                    && !column.name.starts_with(|c: char| c.is_ascii_digit());
                write_part(f, &column.name, !bare)
            }
        }
    }
}

/// Writes a literal; `timestamp` shows integers as quoted RFC 3339 text.
fn write_literal(f: &mut fmt::Formatter<'_>, value: &Value, timestamp: bool) -> fmt::Result {
    match value {
        Value::Null => f.write_str("NULL"),
        Value::Bool(true) => f.write_str("TRUE"),
        Value::Bool(false) => f.write_str("FALSE"),
        Value::Int(us) if timestamp => write!(f, "'{}'", crate::time::format_us(*us)),
        Value::Int(int) => write!(f, "{int}"),
        // Debug gives the shortest text that reads back as the same float.
        Value::Float(float) => write!(f, "{float:?}"),
        Value::Str(text) => write!(f, "'{}'", text.replace('\'', "''")),
        other => write!(f, "'{}'", other.to_string().replace('\'', "''")),
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timestamp =
            matches!(self.operand, Operand::Attribute(attribute) if attribute.is_timestamp());
        write!(f, "{}", self.operand)?;
        let not = |negated: bool| if negated { " NOT" } else { "" };
        match &self.predicate {
            Predicate::Compare { op, value } => {
                write!(f, " {} ", op.symbol())?;
                write_literal(f, value, timestamp)
            }
            Predicate::Like { pattern, negated } => {
                let like = if pattern.case_insensitive {
                    "ILIKE"
                } else {
                    "LIKE"
                };
                write!(
                    f,
                    "{} {like} '{}'",
                    not(*negated),
                    pattern.source.replace('\'', "''")
                )
            }
            Predicate::In { values, negated } => {
                write!(f, "{} IN (", not(*negated))?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_literal(f, value, timestamp)?;
                }
                f.write_str(")")
            }
            Predicate::CompareWide { op, value } => write!(f, " {} {value}", op.symbol()),
            Predicate::IsNull { negated } => write!(f, " IS{} NULL", not(*negated)),
            Predicate::CompareColumn { op, other } => {
                write!(f, " {} ", op.symbol())?;
                // Always quoted, so that a column named like a keyword reads back as a name.
                write_part(f, &other.name, true)
            }
        }
    }
}

impl fmt::Display for Expr {
    /// Canonical text: keywords upper-case, attributes by canonical name, parentheses only
    /// where needed to parse back to the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let write_operands = |f: &mut fmt::Formatter<'_>, operands: &[Expr], separator: &str| {
            for (i, operand) in operands.iter().enumerate() {
                if i > 0 {
                    f.write_str(separator)?;
                }
                // A nested And/Or of the same kind would flatten when read back, and an Or
                // inside an And would bind wrongly, so both get parentheses.
                let parenthesize = matches!(
                    (self, operand),
                    (Expr::And(_), Expr::And(_) | Expr::Or(_)) | (Expr::Or(_), Expr::Or(_))
                );
                if parenthesize {
                    write!(f, "({operand})")?;
                } else {
                    write!(f, "{operand}")?;
                }
            }
            Ok(())
        };
        match self {
            Expr::And(operands) => write_operands(f, operands, " AND "),
            Expr::Or(operands) => write_operands(f, operands, " OR "),
            Expr::Not(operand) => match **operand {
                Expr::Comparison(_) | Expr::Not(_) => write!(f, "NOT {operand}"),
                _ => write!(f, "NOT ({operand})"),
            },
            Expr::Comparison(comparison) => write!(f, "{comparison}"),
        }
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.operand)?;
        if self.descending {
            f.write_str(" DESC")?;
        }
        Ok(())
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clauses = Vec::new();
        if let Some(filter) = &self.filter {
            clauses.push(filter.to_string());
        }
        if !self.order_by.is_empty() {
            let keys: Vec<String> = self.order_by.iter().map(OrderKey::to_string).collect();
            clauses.push(format!("ORDER BY {}", keys.join(", ")));
        }
        if let Some(limit) = self.limit {
            clauses.push(format!("LIMIT {limit}"));
        }
        if self.offset > 0 {
            clauses.push(format!("OFFSET {}", self.offset));
        }
        f.write_str(&clauses.join(" "))
    }
}

/// Parses one identifier alone, such as a column key of a cross-run table
/// (`RunQuery::values`): no sort direction, no comparison, nothing after it.
///
/// # Errors
///
/// As [`parse_filter`]; blank text is an error too.
pub(crate) fn parse_operand(text: &str) -> Result<Operand, FilterError> {
    let mut parser = Parser::new(text)?;
    let (operand, _) = parser.operand("a key")?;
    parser.expect_end("the end of the key")?;
    Ok(operand)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Instant;

    /// A run for the tests: every field given directly.
    #[derive(Debug, Clone)]
    struct TestRun {
        name: String,
        project: String,
        status: String,
        created_us: i64,
        last_modified_us: i64,
        description: Option<String>,
        params: Value,
        outputs: Vec<Value>,
    }

    impl Subject for TestRun {
        fn attribute(&self, attribute: Attribute) -> Value {
            match attribute {
                Attribute::Name => Value::from(self.name.as_str()),
                Attribute::Status => Value::from(self.status.as_str()),
                Attribute::Created => Value::Int(self.created_us),
                Attribute::LastModified => Value::Int(self.last_modified_us),
                Attribute::Description => {
                    self.description.as_deref().map_or(Value::Null, Value::from)
                }
                Attribute::Project => Value::from(self.project.as_str()),
                Attribute::Url => Value::from(format!("{}/runs/{}", self.project, self.name)),
            }
        }

        fn param(&self, path: &[String]) -> Option<&Value> {
            path.iter()
                .try_fold(&self.params, |value, key| value.get(key))
        }

        fn outputs(&self) -> &[Value] {
            &self.outputs
        }
    }

    fn us(text: &str) -> i64 {
        crate::time::parse_rfc3339_us(text).unwrap()
    }

    fn json(text: &str) -> Value {
        Value::from_json_str(text).unwrap()
    }

    /// Builds a fixture run; `modified` of `None` means "same as created".
    #[allow(clippy::too_many_arguments)]
    fn run(
        name: &str,
        project: &str,
        status: &str,
        created: &str,
        modified: Option<&str>,
        description: Option<&str>,
        params: &str,
        outputs: Vec<Value>,
    ) -> TestRun {
        TestRun {
            name: name.to_owned(),
            project: project.to_owned(),
            status: status.to_owned(),
            created_us: us(created),
            last_modified_us: us(modified.unwrap_or(created)),
            description: description.map(str::to_owned),
            params: json(params),
            outputs,
        }
    }

    /// The eight runs the table of cases is written against.
    ///
    /// | run | lr | batch_size | latest acc | status |
    /// | --- | --- | --- | --- | --- |
    /// | alpha | 0.001 | 32 | 0.95 (0.5, 0.8, 0.95) | COMPLETED |
    /// | beta | 0.01 | "2" | 0.7 (0.6, 0.7) | RUNNING |
    /// | gamma | 1 | 64 | NaN (0.9, NaN) | CANCELLED |
    /// | my run | "0.05" | 16 | none | PAUSED |
    /// | delta | none | none | none | EMPTY |
    /// | epsilon_1 | 0.0001 | 128 | 0.91 (0.92, 0.91) | COMPLETED |
    /// | epsilonX1 | 0.02 | 256 | 0.3 | POST_PROCESSING |
    /// | zeta | -0.5 | 2 | 0.99 (third output only) | COLLECTING |
    fn runs() -> Vec<TestRun> {
        let nan_acc = Value::map([("acc", Value::Float(f64::NAN))]);
        vec![
            run(
                "alpha",
                "mnist",
                "COMPLETED",
                "2024-01-10T09:00:00Z",
                Some("2024-01-11T00:00:00Z"),
                Some("baseline logistic regression"),
                r#"{"lr": 0.001, "batch_size": 32, "model_class": "LogisticRegression",
                    "optimizer": {"name": "adam", "lr": 0.001}, "my-key": "x", "a.b": 1,
                    "flag": true, "tags": ["a", "b"]}"#,
                vec![
                    json(r#"{"epoch": 0, "acc": 0.5, "rmse": 2.0, "loss": 1.0}"#),
                    json(r#"{"epoch": 1, "acc": 0.8, "rmse": 0.9, "loss": 0.5}"#),
                    json(r#"{"epoch": 2, "acc": 0.95, "rmse": 0.7, "loss": 0.3}"#),
                ],
            ),
            run(
                "beta",
                "mnist",
                "RUNNING",
                "2024-02-01T00:00:00Z",
                Some("2024-07-01T00:00:00Z"),
                Some(""),
                r#"{"lr": 0.01, "batch_size": "2", "model_class": "RandomForest",
                    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "flag": false}"#,
                vec![
                    json(r#"{"epoch": 0, "acc": 0.6, "rmse": 1.5}"#),
                    json(r#"{"epoch": 1, "acc": 0.7, "rmse": 0.8}"#),
                ],
            ),
            run(
                "gamma",
                "mnist",
                "CANCELLED",
                "2024-03-15T12:00:00Z",
                None,
                Some("lr sweep, 100% broken"),
                r#"{"lr": 1, "batch_size": 64, "model_class": "LogisticRegression",
                    "a": {"b": 2}}"#,
                vec![json(r#"{"acc": 0.9, "rmse": 0.5}"#), nan_acc],
            ),
            run(
                "my run",
                "mnist",
                "PAUSED",
                "2024-04-01T00:00:00Z",
                None,
                Some("Tuning the LR"),
                r#"{"lr": "0.05", "min": 3, "batch_size": 16}"#,
                vec![
                    json(r#"{"min": 7, "loss": 0.2}"#),
                    json(r#"{"min": 5, "loss": {"nested": 1}}"#),
                    json(r#"{"val": {"acc": 0.75}}"#),
                ],
            ),
            run(
                "delta",
                "mnist",
                "EMPTY",
                "2023-12-31T23:59:59.5Z",
                None,
                None,
                "{}",
                vec![],
            ),
            run(
                "epsilon_1",
                "cifar",
                "COMPLETED",
                "2025-01-01T00:00:00+01:00",
                None,
                Some("Transfer learning"),
                r#"{"lr": 0.0001, "batch_size": 128, "model_class": "logisticregression",
                    "flag": "TRUE", "percent": "100%", "path": "C:\\data"}"#,
                vec![
                    json(r#"{"acc": 0.92}"#),
                    json(r#"{"acc": 0.91, "epoch": 1}"#),
                ],
            ),
            run(
                "epsilonX1",
                "cifar",
                "POST_PROCESSING",
                "2025-03-01T00:00:00Z",
                None,
                Some("resnet"),
                r#"{"lr": 0.02, "batch_size": 256, "model_class": "ResNet",
                    "quote": "O'Brien", "note": "say \"hi\""}"#,
                vec![json(r#"{"acc": 0.3, "rmse": 3}"#)],
            ),
            run(
                "zeta",
                "cifar",
                "COLLECTING",
                "2025-06-01T12:30:00+02:00",
                None,
                Some("zeta run"),
                r#"{"lr": -0.5, "batch_size": 2, "model_class": "LogisticRegression",
                    "flag": "yes", "big": 9007199254740993}"#,
                vec![
                    json(r#"{"loss": 3}"#),
                    json(r#"{"loss": 2}"#),
                    json(r#"{"acc": 0.99}"#),
                ],
            ),
        ]
    }

    /// What a query gives over [`runs`]: the names of the runs it selects, comma-separated,
    /// in fixture order unless it has an ORDER BY; or `error <column>: <message>`.
    fn outcome(query: &str) -> String {
        let runs = runs();
        match parse_query(query) {
            Ok(parsed) => {
                let mut selected: Vec<&TestRun> = runs
                    .iter()
                    .filter(|run| parsed.filter.as_ref().is_none_or(|f| f.matches(*run)))
                    .collect();
                // Stable, so ties keep fixture order.
                selected.sort_by(|a, b| compare(&parsed.order_by, *a, *b));
                let limit = parsed.limit.map_or(usize::MAX, |n| n as usize);
                let names: Vec<&str> = selected
                    .iter()
                    .skip(parsed.offset as usize)
                    .take(limit)
                    .map(|run| run.name.as_str())
                    .collect();
                // The canonical text of every valid query reads back as the same query.
                let canonical = parsed.to_string();
                assert_eq!(
                    parse_query(&canonical).as_ref(),
                    Ok(&parsed),
                    "canonical text {canonical:?} of {query:?}"
                );
                names.join(", ")
            }
            Err(error) => format!("error {}: {}", error.column, error.message),
        }
    }

    fn check(cases: &[(&str, &str)]) {
        for &(query, expected) in cases {
            assert_eq!(outcome(query), expected, "query: {query}");
        }
    }

    const ALL: &str = "alpha, beta, gamma, my run, delta, epsilon_1, epsilonX1, zeta";

    #[test]
    fn filter_mlflow_documentation_examples() {
        check(&[
            (
                "metrics.rmse < 1 and params.model_class = 'LogisticRegression'",
                "alpha, gamma",
            ),
            (
                "attributes.status = 'ACTIVE'",
                "error 21: unknown status 'ACTIVE' (expected COMPLETED, EMPTY, RUNNING, \
                 COLLECTING, POST_PROCESSING, PAUSED, CANCELLED or a code 1 to 7)",
            ),
            // MLflow quotes numbers: "2" matches the string "2" and the number 2.
            (r#"params.batch_size = "2""#, "beta, zeta"),
            ("params.batch_size = 2", "zeta"),
            (r#"attributes.run_name = "my run""#, "my run"),
            ("attributes.`run name` = 'my run'", "my run"),
            // LIKE matches strings only, so numeric learning rates do not match '0.0%'.
            ("metrics.acc > 0.9 and params.lr LIKE '0.0%'", ""),
            (
                "metrics.acc > 0.9 and params.lr < 0.01",
                "alpha, epsilon_1, zeta",
            ),
            (
                "metrics.acc >= 0.9 AND params.batch_size != 32",
                "epsilon_1, zeta",
            ),
            (
                "attributes.start_time >= 1704844800000",
                "alpha, beta, gamma, my run, epsilon_1, epsilonX1, zeta",
            ),
            ("attributes.status = 'RUNNING'", "beta"),
            (
                "attributes.status = 'FINISHED'",
                "error 21: unknown status 'FINISHED' (FINISHED is an MLflow status; runstore \
                 uses 3LC's statuses: did you mean 'COMPLETED'?)",
            ),
            (
                "attributes.status IN ('FAILED', 'KILLED')",
                "error 23: unknown status 'FAILED' (FAILED is an MLflow status; runstore uses \
                 3LC's statuses: did you mean 'CANCELLED'?)",
            ),
            ("params.model_class LIKE 'L%'", "alpha, gamma, zeta"),
            (
                "metrics.acc IS NOT NULL",
                "alpha, beta, gamma, epsilon_1, epsilonX1, zeta",
            ),
            ("metrics.accuracy IS NOT NULL", ""),
            (
                "attributes.run_name IN ('alpha', 'my run') ORDER BY attributes.run_name DESC",
                "my run, alpha",
            ),
            (
                "attributes.created >= '2024-12-31' ORDER BY attributes.start_time",
                "epsilon_1, epsilonX1, zeta",
            ),
            (
                "tags.`mlflow.user` = 'me'",
                "error 1: runstore runs have no tags; use params.<key> or an attribute",
            ),
            ("params.model_class LIKE 'Logistic%'", "alpha, gamma, zeta"),
            (
                "params.model_class ILIKE 'logistic%'",
                "alpha, gamma, epsilon_1, zeta",
            ),
            (
                "attributes.run_name IN ('alpha', 'zeta', 'nope')",
                "alpha, zeta",
            ),
            (
                "attributes.run_name NOT IN ('alpha', 'zeta')",
                "beta, gamma, my run, delta, epsilon_1, epsilonX1",
            ),
            (
                "tags.mlflow.runName = 'x'",
                "error 1: runstore runs have no tags; use params.<key> or an attribute",
            ),
            (
                "datasets.name = 'x'",
                "error 1: runstore runs have no datasets; use params.<key> or an attribute",
            ),
            (
                "metrics.acc > 0.9 ORDER BY metrics.acc DESC LIMIT 2",
                "zeta, alpha",
            ),
        ]);
    }

    #[test]
    fn filter_comparison_operators_and_numbers() {
        check(&[
            ("params.lr < 0.01", "alpha, epsilon_1, zeta"),
            ("params.lr <= 0.01", "alpha, beta, epsilon_1, zeta"),
            ("params.lr > 0.01", "gamma, epsilonX1"),
            ("params.lr >= 0.02", "gamma, epsilonX1"),
            ("params.lr = 1.0", "gamma"),
            ("params.lr == 0.001", "alpha"),
            (
                "params.lr != 0.001",
                "beta, gamma, my run, epsilon_1, epsilonX1, zeta",
            ),
            (
                "params.lr <> 0.001",
                "beta, gamma, my run, epsilon_1, epsilonX1, zeta",
            ),
            ("params.lr = '0.05'", "my run"),
            // A number and a string are never equal, and never ordered.
            ("params.lr = 0.05", ""),
            ("params.lr < 'a'", "my run"),
            (
                "params.lr > -1e-1",
                "alpha, beta, gamma, epsilon_1, epsilonX1",
            ),
            ("params.lr < -.25", "zeta"),
            ("params.lr < 1E-3", "epsilon_1, zeta"),
            ("params.batch_size IN (2, 16)", "my run, zeta"),
            (
                "params.batch_size NOT IN (2, 16)",
                "alpha, beta, gamma, epsilon_1, epsilonX1",
            ),
            ("params.batch_size IN ('2', 16.0)", "beta, my run, zeta"),
            // A number-looking string literal against a number value compares as a number.
            ("params.lr < '0.01'", "alpha, epsilon_1, zeta"),
            // ... but a string value against a string literal compares text: "0.05" < "1e-2".
            (
                "params.lr <= '1e-2'",
                "alpha, beta, my run, epsilon_1, zeta",
            ),
            ("params.batch_size = '+2'", "zeta"),
            ("params.batch_size = '2.0'", "zeta"),
            ("params.big = '9007199254740993'", "zeta"),
            ("params.batch_size = ' 2'", ""),
            (
                "params.batch_size != 'two'",
                "alpha, beta, gamma, my run, epsilon_1, epsilonX1, zeta",
            ),
            ("params.lr = 'NaN'", ""),
            ("params.lr < 'inf'", "my run"),
            ("outputs.acc.count = '2'", "beta, gamma, epsilon_1"),
            ("parameters.batch_size > 100", "epsilon_1, epsilonX1"),
            // Integers compare exactly with floats, beyond 2^53 too.
            ("params.big = 9007199254740992.0", ""),
            ("params.big > 9007199254740992.0", "zeta"),
            ("params.big = 9007199254740993", "zeta"),
            ("params.lr IS NULL", "delta"),
            (
                "params.lr IS NOT NULL",
                "alpha, beta, gamma, my run, epsilon_1, epsilonX1, zeta",
            ),
        ]);
    }

    #[test]
    fn filter_logic_precedence_and_nulls() {
        check(&[
            // NOT binds tighter than AND, AND tighter than OR.
            (
                "name = 'alpha' OR name = 'beta' AND status = 'COMPLETED'",
                "alpha",
            ),
            (
                "(name = 'alpha' OR name = 'beta') AND status = 'RUNNING'",
                "beta",
            ),
            (
                "NOT name = 'alpha' AND project = 'mnist'",
                "beta, gamma, my run, delta",
            ),
            (
                "NOT (name = 'alpha' OR project = 'mnist')",
                "epsilon_1, epsilonX1, zeta",
            ),
            ("NOT NOT name = 'alpha'", "alpha"),
            (
                "name = 'alpha' or NAME = 'beta' aNd project like 'mn%'",
                "alpha, beta",
            ),
            ("(name='alpha')or(name='beta')", "alpha, beta"),
            ("((((name = 'gamma'))))", "gamma"),
            // A missing key makes a comparison unknown, and so its negation too.
            ("NOT params.lr < 0.01", "beta, gamma, epsilonX1"),
            (
                "NOT (params.lr = 0.05)",
                "alpha, beta, gamma, my run, epsilon_1, epsilonX1, zeta",
            ),
            (
                "params.lr < 0.01 OR name = 'my run'",
                "alpha, my run, epsilon_1, zeta",
            ),
            (
                "NOT (params.lr < 0.01 OR name = 'delta')",
                "beta, gamma, epsilonX1",
            ),
            ("params.missing != 1", ""),
            ("params.missing NOT LIKE '%'", ""),
            ("params.missing NOT IN (1)", ""),
            ("NOT params.missing = 1", ""),
            ("params.missing IS NULL", ALL),
            ("", ALL),
        ]);
    }

    #[test]
    fn filter_identifiers_aliases_and_keys() {
        check(&[
            ("name = 'alpha'", "alpha"),
            ("NAME = 'alpha'", "alpha"),
            ("attr.name = 'beta'", "beta"),
            ("run.name = 'gamma'", "gamma"),
            ("attribute.run_name = 'delta'", "delta"),
            (r#""run name" = 'zeta'"#, "zeta"),
            ("attributes.`run name` LIKE 'my%'", "my run"),
            ("PARAMS.lr = 1", "gamma"),
            ("param.min = 3", "my run"),
            ("description IS NULL", "delta"),
            ("description = ''", "beta"),
            ("description ILIKE '%lr%'", "gamma, my run"),
            ("description LIKE '%LR%'", "my run"),
            ("project = 'cifar'", "epsilon_1, epsilonX1, zeta"),
            ("url = 'cifar/runs/zeta'", "zeta"),
            ("params.optimizer.lr = 0.1", "beta"),
            ("params.optimizer.name = 'adam'", "alpha"),
            ("params.optimizer IS NOT NULL", "alpha, beta"),
            // A map is never equal to a value.
            ("params.optimizer = 'adam'", ""),
            ("params.optimizer != 'adam'", "alpha, beta"),
            ("params.`my-key` = 'x'", "alpha"),
            (r#"params."a.b" = 1"#, "alpha"),
            ("params.a.b = 2", "gamma"),
            ("params.`a`.b = 2", "gamma"),
            ("params.tags IS NOT NULL", "alpha"),
        ]);
    }

    #[test]
    fn filter_outputs_and_aggregates() {
        check(&[
            ("outputs.acc.max > 0.9", "alpha, epsilon_1, zeta"),
            ("outputs.acc.min < 0.6", "alpha, epsilonX1"),
            ("outputs.acc.first = 0.5", "alpha"),
            ("outputs.acc.last = 0.91", "epsilon_1"),
            ("outputs.acc.count = 2", "beta, gamma, epsilon_1"),
            ("outputs.acc.count = 0", "my run, delta"),
            ("outputs.acc.mean > 0.7", "alpha, gamma, epsilon_1, zeta"),
            ("output.acc.MAX >= 0.99", "zeta"),
            // A key named like an aggregate: alone it is a key, after a key an aggregate.
            ("outputs.min = 5", "my run"),
            ("outputs.min.min = 5", "my run"),
            ("outputs.min.max = 7", "my run"),
            ("outputs.loss.nested = 1", "my run"),
            ("outputs.loss.min = 0.2", "my run"),
            ("outputs.loss.`min` IS NULL", ALL),
            ("metrics.loss > 1", "zeta"),
            ("metric.acc IS NULL", "my run, delta"),
            ("output.val.acc = 0.75", "my run"),
            ("outputs.rmse = 3", "epsilonX1"),
            // NaN satisfies nothing, negated or not, but is not NULL.
            (
                "outputs.acc != 0.5",
                "alpha, beta, epsilon_1, epsilonX1, zeta",
            ),
            ("NOT outputs.acc > 0.5", "epsilonX1"),
            (
                "outputs.acc IS NOT NULL",
                "alpha, beta, gamma, epsilon_1, epsilonX1, zeta",
            ),
        ]);
    }

    #[test]
    fn filter_dates_and_statuses() {
        check(&[
            ("created > '2024-12-31'", "epsilon_1, epsilonX1, zeta"),
            (
                "created >= '2025-01-01T00:00:00+01:00'",
                "epsilon_1, epsilonX1, zeta",
            ),
            ("start_time < '2024-01-01'", "delta"),
            ("created_time = '2025-06-01T10:30:00Z'", "zeta"),
            ("created = '2023-12-31T23:59:59.500Z'", "delta"),
            ("created > 1735689600000", "epsilonX1, zeta"),
            ("created > 1735689600000.5", "epsilonX1, zeta"),
            (
                "last_modified > '2024-06-01'",
                "beta, epsilon_1, epsilonX1, zeta",
            ),
            (
                "created IN ('2024-02-01', '2024-04-01T00:00:00Z')",
                "beta, my run",
            ),
            (
                "created = 'yesterday'",
                "error 11: expected a date such as '2024-05-01' or '2024-05-01T12:00:00Z', or \
                 epoch milliseconds, for 'created', found 'yesterday'",
            ),
            (
                "created LIKE '2024%'",
                "error 9: 'created' is a timestamp; LIKE and ILIKE match strings",
            ),
            ("status = 'completed'", "alpha, epsilon_1"),
            ("status = 3", "beta"),
            ("status = '3'", "beta"),
            (
                "status != 'RUNNING'",
                "alpha, gamma, my run, delta, epsilon_1, epsilonX1, zeta",
            ),
            (
                "status IN ('paused', 'post-processing', 7)",
                "gamma, my run, epsilonX1",
            ),
            ("status LIKE '%ING'", "beta, epsilonX1, zeta"),
            (
                "status = 'COMPLETD'",
                "error 10: unknown status 'COMPLETD' (did you mean 'COMPLETED'?)",
            ),
            (
                "status = 9",
                "error 10: unknown status '9' (expected COMPLETED, EMPTY, RUNNING, COLLECTING, \
                 POST_PROCESSING, PAUSED, CANCELLED or a code 1 to 7)",
            ),
            (
                "status < 3",
                "error 8: a status has no order; compare it with =, !=, IN or LIKE, not '<'",
            ),
        ]);
    }

    #[test]
    fn filter_like_strings_and_booleans() {
        check(&[
            ("name LIKE 'epsilon_1'", "epsilon_1, epsilonX1"),
            (r"name LIKE 'epsilon\_1'", "epsilon_1"),
            (r"description LIKE '%100\%%'", "gamma"),
            (r"params.percent LIKE '100\%'", "epsilon_1"),
            (r"params.path LIKE 'C:\\data'", "epsilon_1"),
            (r"params.path = 'C:\data'", "epsilon_1"),
            ("name NOT LIKE '%a'", "my run, epsilon_1, epsilonX1"),
            (
                "name NOT ILIKE 'E%'",
                "alpha, beta, gamma, my run, delta, zeta",
            ),
            ("name LIKE '_eta'", "beta, zeta"),
            ("name LIKE 'ALPHA'", ""),
            ("name ILIKE 'ALPHA'", "alpha"),
            ("name LIKE '%'", ALL),
            ("name LIKE '%%n%'", "my run, epsilon_1, epsilonX1"),
            ("params.quote = 'O''Brien'", "epsilonX1"),
            (r#"params.note = 'say "hi"'"#, "epsilonX1"),
            (r#"params.note = "say ""hi""""#, "epsilonX1"),
            ("params.flag = TRUE", "alpha, epsilon_1"),
            ("params.flag = 'false'", "beta"),
            ("params.flag != true", "beta, zeta"),
            ("params.flag = 'yes'", "zeta"),
        ]);
    }

    #[test]
    fn query_order_by_limit_offset() {
        check(&[
            // Numbers, then strings, then NULL.
            (
                "ORDER BY params.lr",
                "zeta, epsilon_1, alpha, beta, epsilonX1, gamma, my run, delta",
            ),
            (
                "ORDER BY params.lr DESC",
                "my run, gamma, epsilonX1, beta, alpha, epsilon_1, zeta, delta",
            ),
            // NaN and NULL last in both directions.
            (
                "ORDER BY outputs.acc DESC LIMIT 3",
                "zeta, alpha, epsilon_1",
            ),
            (
                "ORDER BY outputs.acc",
                "epsilonX1, beta, epsilon_1, alpha, zeta, gamma, my run, delta",
            ),
            (
                "ORDER BY project, name DESC",
                "zeta, epsilon_1, epsilonX1, my run, gamma, delta, beta, alpha",
            ),
            (
                "ORDER BY outputs.acc.count DESC, name ASC LIMIT 4 OFFSET 1",
                "beta, epsilon_1, gamma, epsilonX1",
            ),
            (
                "order by created desc",
                "zeta, epsilonX1, epsilon_1, my run, gamma, beta, alpha, delta",
            ),
            (
                "project = 'mnist' ORDER BY status",
                "gamma, alpha, delta, my run, beta",
            ),
            (
                "params.flag IS NOT NULL ORDER BY params.flag",
                "epsilon_1, zeta, beta, alpha",
            ),
            ("LIMIT 2", "alpha, beta"),
            ("OFFSET 6", "epsilonX1, zeta"),
            ("name = 'alpha' LIMIT 0", ""),
            (
                "ORDER name",
                "error 7: expected BY after 'ORDER', found 'name'",
            ),
            (
                "name = 'a' LIMIT -1",
                "error 18: expected a whole number after 'LIMIT', found '-1'",
            ),
            (
                "ORDER BY name,",
                "error 15: expected a key to order by, found end of input",
            ),
            (
                "ORDER BY name sideways",
                "error 15: expected ',', ASC, DESC, LIMIT, OFFSET or the end of the query, \
                 found 'sideways'",
            ),
            (
                "LIMIT 1 ORDER BY name",
                "error 9: expected OFFSET or the end of the query, found 'ORDER'",
            ),
        ]);
    }

    #[test]
    fn filter_errors_name_the_column() {
        check(&[
            (
                "params.lr <",
                "error 12: expected a value after '<', found end of input",
            ),
            (
                "params.lr < AND",
                "error 13: expected a value after '<', found 'AND'",
            ),
            (
                "nmae = 'x'",
                "error 1: unknown attribute 'nmae' (did you mean 'name'?)",
            ),
            (
                "lr < 0.01",
                "error 1: unknown attribute 'lr' (expected name, status, created, \
                 last_modified, description, project or url, or a params. or outputs. prefix)",
            ),
            ("name = 'x", "error 8: unterminated string"),
            ("params.`x = 1", "error 8: unterminated quoted name"),
            (
                "parms.lr = 1",
                "error 1: unknown prefix 'parms' (did you mean 'params'?)",
            ),
            (
                "foo.bar = 1",
                "error 1: unknown prefix 'foo' (expected attributes, params or outputs)",
            ),
            (
                "name = 'a' AND",
                "error 15: expected a comparison, found end of input",
            ),
            (
                "(name = 'a'",
                "error 12: expected AND, OR or ')' to close the '(' at column 1, found end of \
                 input",
            ),
            (
                "name = 'a')",
                "error 11: expected AND, OR, ORDER BY, LIMIT, OFFSET or the end of the query, \
                 found ')'",
            ),
            (
                "name = 'a' name = 'b'",
                "error 12: expected AND, OR, ORDER BY, LIMIT, OFFSET or the end of the query, \
                 found 'name'",
            ),
            (
                "name 'a'",
                "error 6: expected an operator after 'name', found 'a'",
            ),
            (
                "name LIK 'a'",
                "error 6: expected an operator after 'name', found 'LIK' (did you mean 'LIKE'?)",
            ),
            (
                "name = alpha",
                "error 8: expected a value after '=', found 'alpha' (strings need quotes: 'alpha')",
            ),
            ("name IN 'a'", "error 9: expected '(' after 'IN', found 'a'"),
            (
                "name IN ()",
                "error 10: expected a value after '(', found ')'",
            ),
            (
                "name IN ('a',)",
                "error 14: expected a value after ',', found ')'",
            ),
            (
                "name IN ('a' 'b')",
                "error 14: expected ',' or ')' in the IN list, found 'b'",
            ),
            (
                "name IS 'a'",
                "error 9: expected NULL or NOT NULL after 'IS', found 'a'",
            ),
            (
                "name IS NOT 'a'",
                "error 13: expected NULL after 'NOT', found 'a'",
            ),
            (
                "name NOT = 'a'",
                "error 10: expected LIKE, ILIKE or IN after 'NOT', found '='",
            ),
            (
                "name = NULL",
                "error 8: use IS NULL to test for a missing value",
            ),
            (
                "name != NULL",
                "error 9: use IS NOT NULL to test for a present value",
            ),
            (
                "params.lr > NULL",
                "error 13: NULL has no order; use IS NULL or IS NOT NULL, not '>'",
            ),
            (
                "name IN ('a', NULL)",
                "error 15: NULL in an IN list never matches; use IS NULL",
            ),
            ("params.lr = 1abc", "error 13: invalid number '1abc'"),
            ("params.lr = 1.2.3", "error 13: invalid number '1.2.3'"),
            (
                "params.lr = 1e999",
                "error 13: number '1e999' is out of range",
            ),
            ("name # 'a'", "error 6: unexpected character '#'"),
            (
                "name ! 'a'",
                "error 6: unexpected character '!' (use NOT, or != for not equal)",
            ),
            ("params. = 1", "error 8: expected a name after '.'"),
            (
                "params = 1",
                "error 1: 'params' needs a key, as in params.<key>",
            ),
            (
                "'name' = 'x'",
                "error 1: expected a comparison, found the string 'name'; quote names with \
                 backticks or double quotes",
            ),
            (
                "name LIKE 5",
                "error 11: expected a quoted pattern after 'LIKE', found '5'",
            ),
            (
                "attributes.name.first = 'x'",
                "error 17: attribute 'name' has no keys",
            ),
            ("NOT", "error 4: expected a comparison, found end of input"),
            ("()", "error 2: expected a comparison, found ')'"),
            // Columns count characters, not bytes.
            (
                "name = 'é' AND é",
                "error 16: unknown attribute 'é' (expected name, status, \
              created, last_modified, description, project or url, or a params. or outputs. \
              prefix)",
            ),
        ]);
    }

    #[test]
    fn parse_filter_and_order_by_entry_points() {
        assert_eq!(parse_filter("  \n\t"), Ok(None));
        assert!(matches!(
            parse_filter("name = 'a'"),
            Ok(Some(Expr::Comparison(_)))
        ));
        let error = parse_filter("name = 'a' ORDER BY name").unwrap_err();
        assert_eq!(
            error.to_string(),
            "filter error at column 12: expected AND, OR or the end of the filter, found 'ORDER'"
        );
        let error = "".parse::<Expr>().unwrap_err();
        assert_eq!(error.message, "expected a comparison, found end of input");
        assert_eq!(error.column, 1);
        assert_eq!(parse_order_by(" "), Ok(vec![]));
        let keys = parse_order_by("metrics.acc.max DESC, `run name`").unwrap();
        assert_eq!(
            keys,
            vec![
                OrderKey {
                    operand: Operand::Output {
                        key: vec!["acc".to_owned()],
                        aggregate: Aggregate::Max,
                    },
                    descending: true,
                },
                OrderKey {
                    operand: Operand::Attribute(Attribute::Name),
                    descending: false,
                },
            ]
        );
        let error = parse_order_by("name LIMIT 3").unwrap_err();
        assert_eq!(
            error.to_string(),
            "filter error at column 6: expected ',', ASC, DESC or the end of the list, found \
             'LIMIT'"
        );
        assert_eq!(parse_query("").unwrap(), Query::default());
    }

    #[test]
    fn order_key_compare_puts_nulls_and_nan_last() {
        let ascending = OrderKey {
            operand: Operand::Param(vec!["x".to_owned()]),
            descending: false,
        };
        let descending = OrderKey {
            descending: true,
            ..ascending.clone()
        };
        let nan = Value::Float(f64::NAN);
        for key in [&ascending, &descending] {
            assert_eq!(
                key.compare_values(&Value::Null, &Value::Int(1)),
                Ordering::Greater
            );
            assert_eq!(key.compare_values(&Value::Int(1), &nan), Ordering::Less);
            assert_eq!(key.compare_values(&nan, &Value::Null), Ordering::Equal);
        }
        assert_eq!(
            ascending.compare_values(&Value::Int(2), &Value::Float(2.5)),
            Ordering::Less
        );
        assert_eq!(
            descending.compare_values(&Value::Int(2), &Value::Float(2.5)),
            Ordering::Greater
        );
        assert_eq!(
            ascending.compare_values(&Value::Float(1e30), &Value::from("a")),
            Ordering::Less
        );
        let runs = runs();
        let keys = parse_order_by("params.batch_size DESC, name").unwrap();
        // alpha's 32 after gamma's 64, and after beta's "2": descending reverses the type
        // order (numbers before strings) too.
        assert_eq!(compare(&keys, &runs[0], &runs[2]), Ordering::Greater);
        assert_eq!(compare(&keys, &runs[0], &runs[1]), Ordering::Greater);
        assert_eq!(compare(&keys, &runs[0], &runs[4]), Ordering::Less);
        assert_eq!(compare(&keys, &runs[0], &runs[0]), Ordering::Equal);
        assert_eq!(compare(&[], &runs[0], &runs[1]), Ordering::Equal);
    }

    #[test]
    fn referenced_keys_list_what_a_query_reads() {
        let query = parse_query(
            "params.lr < 0.01 AND (outputs.acc > 0.5 OR params.optimizer.lr = 1) \
             AND NOT outputs.acc.max < 1 AND status = 'RUNNING' ORDER BY outputs.loss, params.lr",
        )
        .unwrap();
        let filter = query.filter.as_ref().unwrap();
        let path = |parts: &[&str]| {
            parts
                .iter()
                .map(|part| part.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            filter.referenced_params(),
            vec![
                path(&["lr"]).as_slice(),
                path(&["optimizer", "lr"]).as_slice()
            ]
        );
        assert_eq!(filter.referenced_outputs(), vec![path(&["acc"]).as_slice()]);
        assert_eq!(filter.referenced_attributes(), vec![Attribute::Status]);
        assert_eq!(
            query.referenced_outputs(),
            vec![path(&["acc"]).as_slice(), path(&["loss"]).as_slice()]
        );
        assert_eq!(query.referenced_params().len(), 2);
        assert_eq!(query.referenced_attributes(), vec![Attribute::Status]);
    }

    #[test]
    fn canonical_text() {
        let canonical = |text: &str| parse_query(text).unwrap().to_string();
        assert_eq!(
            canonical(
                "attr.`run name` like 'a%' and (metric.acc.MAX>=.5 or NOT params.x in (1,'b'))"
            ),
            "name LIKE 'a%' AND (outputs.acc.max >= 0.5 OR NOT params.x IN (1, 'b'))"
        );
        assert_eq!(
            canonical("created > 1735689600000 ORDER BY start_time DESC LIMIT 5 OFFSET 2"),
            "created > '2025-01-01T00:00:00.000000Z' ORDER BY created DESC LIMIT 5 OFFSET 2"
        );
        assert_eq!(
            canonical(r#"status in ('post-processing', 3) and params."a.b" is not null"#),
            "status IN ('POST_PROCESSING', 'RUNNING') AND params.`a.b` IS NOT NULL"
        );
        assert_eq!(
            canonical("outputs.loss.`min` = 1 and outputs.`x y`.min = 2 and outputs.min = 3"),
            "outputs.loss.`min` = 1 AND outputs.`x y`.min = 2 AND outputs.min = 3"
        );
        assert_eq!(
            canonical(
                "(a = 1 AND b = 2) AND (c = 3 OR d = 4)"
                    .replace(|c| "abcd".contains(c), "params.k")
                    .as_str()
            ),
            "(params.k = 1 AND params.k = 2) AND (params.k = 3 OR params.k = 4)"
        );
    }

    #[test]
    fn like_pattern_matching() {
        let like = |pattern: &str, text: &str| LikePattern::new(pattern, false).matches(text);
        let ilike = |pattern: &str, text: &str| LikePattern::new(pattern, true).matches(text);
        assert!(like("", ""));
        assert!(!like("", "a"));
        assert!(like("%", ""));
        assert!(like("a%b%c", "aXbYc"));
        assert!(like("a%b%c", "abbbc"));
        assert!(!like("a%b%c", "acb"));
        assert!(like("%a_", "bbab"));
        assert!(like("_é_", "aéb"));
        assert!(!like("__", "é"));
        assert!(like(r"\\", r"\"));
        assert!(like(r"a\", r"a\"));
        assert!(like(r"\a", "a"));
        assert!(ilike("ÉCOLE%", "école normale"));
        assert!(!like("ÉCOLE%", "école normale"));
        // Backtracking over a long text stays linear per `%`.
        let text = "a".repeat(10_000);
        let start = Instant::now();
        assert!(!like("%a%a%a%b", &text));
        assert!(start.elapsed().as_millis() < 2_000);
    }

    #[test]
    fn limits_bound_length_and_depth() {
        let comparison = "name = 'a'";
        let nested =
            |depth: usize| format!("{}{comparison}{}", "(".repeat(depth), ")".repeat(depth));
        assert!(parse_filter(&nested(FILTER_DEPTH_MAX)).is_ok());
        let error = parse_filter(&nested(FILTER_DEPTH_MAX + 1)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "filter error at column 65: filter nests deeper than 64 levels of parentheses and NOT"
        );
        let nots = |count: usize| format!("{}{comparison}", "NOT ".repeat(count));
        assert!(parse_filter(&nots(FILTER_DEPTH_MAX)).is_ok());
        assert_eq!(
            parse_filter(&nots(FILTER_DEPTH_MAX + 1))
                .unwrap_err()
                .column,
            257
        );
        // Far deeper than any stack allows if the parser recursed without a limit.
        assert_eq!(parse_filter(&nested(30_000)).unwrap_err().column, 65);
        assert_eq!(
            parse_filter(&"NOT (".repeat(12_000)).unwrap_err().column,
            161
        );

        let too_long = format!("name = '{}'", "x".repeat(FILTER_BYTES_MAX));
        let error = parse_filter(&too_long).unwrap_err();
        assert_eq!(
            error.message,
            format!(
                "query is {} bytes long; at most 65536 are allowed",
                FILTER_BYTES_MAX + 9
            )
        );
        assert_eq!(error.column, FILTER_BYTES_MAX + 1);
        let longest = format!("name = '{}'", "é".repeat((FILTER_BYTES_MAX - 10) / 2));
        assert!(parse_filter(&longest).is_ok());
    }

    #[test]
    fn parse_of_64_kib_is_fast() {
        let clause = "(params.lr < 0.01 AND outputs.acc.max >= 0.5) OR name LIKE 'a%b' OR ";
        let mut text = clause.repeat(FILTER_BYTES_MAX / clause.len());
        text.push_str("status IN ('RUNNING', 3)");
        assert!(text.len() <= FILTER_BYTES_MAX);
        assert!(text.len() > FILTER_BYTES_MAX - clause.len());
        let start = Instant::now();
        let expr = parse_filter(&text).unwrap().unwrap();
        let elapsed = start.elapsed();
        // Debug builds are an order of magnitude slower than release; even so it is well
        // under the 100 ms budget.
        assert!(elapsed.as_millis() < 100, "{elapsed:?}");
        assert!(matches!(expr, Expr::Or(ref operands) if operands.len() > 1_000));
        let runs = runs();
        assert_eq!(runs.iter().filter(|run| expr.matches(*run)).count(), 4);
    }

    // ---- Property tests: generated expressions against a naive evaluator. ----

    /// An operand as the generator builds it.
    #[derive(Debug, Clone)]
    enum GenOperand {
        Name,
        Description,
        Status,
        Created,
        Param(Vec<String>),
        Output(Vec<String>, Option<Aggregate>),
    }

    #[derive(Debug, Clone)]
    enum GenTest {
        Compare(CompareOp, Value),
        Like {
            pattern: String,
            case_insensitive: bool,
            negated: bool,
        },
        In(Vec<Value>, bool),
        IsNull(bool),
    }

    #[derive(Debug, Clone)]
    enum GenExpr {
        And(Vec<GenExpr>),
        Or(Vec<GenExpr>),
        Not(Box<GenExpr>),
        Compare(GenOperand, GenTest),
    }

    fn gen_literal() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-3i64..4).prop_map(Value::Int),
            prop::sample::select(vec![-1.5, 0.0, 0.5, 1.0, 2.5]).prop_map(Value::Float),
            "[ab%_'\"]{0,3}".prop_map(Value::Str),
            prop::sample::select(vec!["true", "FALSE"]).prop_map(Value::from),
            prop::sample::select(vec!["2", "-1.5", "0.5e0", "+1", "1x"]).prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn gen_op() -> impl Strategy<Value = CompareOp> {
        prop::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Lt,
            CompareOp::Le,
            CompareOp::Gt,
            CompareOp::Ge,
        ])
    }

    fn gen_test(literal: BoxedStrategy<Value>, ordering: bool) -> impl Strategy<Value = GenTest> {
        let op = if ordering {
            gen_op().boxed()
        } else {
            prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]).boxed()
        };
        prop_oneof![
            3 => (op, literal.clone()).prop_map(|(op, value)| GenTest::Compare(op, value)),
            1 => ("[ab%_\\\\]{0,4}", any::<bool>(), any::<bool>()).prop_map(
                |(pattern, case_insensitive, negated)| GenTest::Like {
                    pattern,
                    case_insensitive,
                    negated,
                }
            ),
            1 => (prop::collection::vec(literal, 1..4), any::<bool>())
                .prop_map(|(values, negated)| GenTest::In(values, negated)),
            1 => any::<bool>().prop_map(GenTest::IsNull),
        ]
    }

    fn gen_comparison() -> impl Strategy<Value = GenExpr> {
        let status = prop::sample::select(STATUS_NAMES.to_vec())
            .prop_map(Value::from)
            .boxed();
        let millis = (0i64..6).prop_map(Value::Int).boxed();
        let param_key = prop::sample::select(vec![
            vec!["a"],
            vec!["b"],
            vec!["a-b"],
            vec!["n", "x"],
            vec!["min"],
        ]);
        let output_key =
            prop::sample::select(vec![vec!["m"], vec!["n"], vec!["min"], vec!["n", "x"]]);
        // An aggregate two times in three.
        let aggregate =
            prop::option::weighted(2.0 / 3.0, prop::sample::select(Aggregate::ALL.to_vec()));
        let to_strings = |key: Vec<&str>| key.into_iter().map(str::to_owned).collect::<Vec<_>>();
        let filtered_like = |test: &GenTest| !matches!(test, GenTest::Like { .. });
        // Weighted towards parameters and outputs, where the value types vary.
        prop_oneof![
            1 => (
                prop::sample::select(vec![GenOperand::Name, GenOperand::Description]),
                gen_test(gen_literal().boxed(), true)
            )
                .prop_map(|(operand, test)| GenExpr::Compare(operand, test)),
            1 => gen_test(status, false)
                .prop_map(|test| GenExpr::Compare(GenOperand::Status, test)),
            1 => gen_test(millis, true)
                .prop_filter("LIKE on a timestamp is an error", filtered_like)
                .prop_map(|test| GenExpr::Compare(GenOperand::Created, test)),
            2 => (param_key, gen_test(gen_literal().boxed(), true)).prop_map(move |(key, test)| {
                GenExpr::Compare(GenOperand::Param(to_strings(key)), test)
            }),
            4 => (output_key, aggregate, gen_test(gen_literal().boxed(), true)).prop_map(
                move |(key, aggregate, test)| {
                    GenExpr::Compare(GenOperand::Output(to_strings(key), aggregate), test)
                }
            ),
        ]
    }

    fn gen_expr() -> impl Strategy<Value = GenExpr> {
        gen_comparison().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(GenExpr::And),
                prop::collection::vec(inner.clone(), 2..4).prop_map(GenExpr::Or),
                inner.prop_map(|expr| GenExpr::Not(Box::new(expr))),
            ]
        })
    }

    fn gen_value() -> impl Strategy<Value = Value> {
        // Mostly numbers, so that aggregates have several values to tell apart.
        prop_oneof![
            1 => Just(Value::Null),
            3 => (-3i64..4).prop_map(Value::Int),
            3 => prop::sample::select(vec![-1.5, 0.0, 0.5, 1.0, 2.5, f64::NAN])
                .prop_map(Value::Float),
            1 => "[ab%_]{0,2}".prop_map(Value::Str),
            1 => prop::sample::select(vec!["true", "False"]).prop_map(Value::from),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => Just(Value::List(vec![Value::Int(1)])),
        ]
    }

    /// A map holding some of `keys` (`n` nested as `{"x": ...}`).
    fn gen_map(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop::collection::vec((any::<bool>(), gen_value()), keys.len()).prop_map(move |slots| {
            Value::map(
                keys.iter()
                    .zip(slots)
                    .filter(|(_, (present, _))| *present)
                    .map(|(key, (_, value))| {
                        let value = if *key == "n" {
                            Value::map([("x", value)])
                        } else {
                            value
                        };
                        (*key, value)
                    }),
            )
        })
    }

    fn gen_run() -> impl Strategy<Value = TestRun> {
        (
            "[ab_%]{0,3}",
            prop::option::of("[ab]{0,2}"),
            prop::sample::select(STATUS_NAMES.to_vec()),
            0i64..6,
            gen_map(&["a", "b", "a-b", "n", "min"]),
            prop::collection::vec(gen_map(&["m", "n", "min"]), 0..6),
        )
            .prop_map(
                |(name, description, status, millis, params, outputs)| TestRun {
                    name,
                    project: "p".to_owned(),
                    status: status.to_owned(),
                    created_us: millis * 1000,
                    last_modified_us: millis * 1000,
                    description,
                    params,
                    outputs,
                },
            )
    }

    /// The truth of a generated expression, computed directly from the documented rules
    /// (`None` is unknown).
    fn naive(expr: &GenExpr, run: &TestRun) -> Option<bool> {
        match expr {
            GenExpr::And(operands) => {
                let truths: Vec<_> = operands.iter().map(|e| naive(e, run)).collect();
                if truths.contains(&Some(false)) {
                    Some(false)
                } else if truths.contains(&None) {
                    None
                } else {
                    Some(true)
                }
            }
            GenExpr::Or(operands) => {
                let truths: Vec<_> = operands.iter().map(|e| naive(e, run)).collect();
                if truths.contains(&Some(true)) {
                    Some(true)
                } else if truths.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            GenExpr::Not(operand) => naive(operand, run).map(|b| !b),
            GenExpr::Compare(operand, test) => {
                naive_test(&naive_value(operand, run), operand, test)
            }
        }
    }

    fn naive_value(operand: &GenOperand, run: &TestRun) -> Value {
        let lookup = |root: &Value, key: &[String]| {
            let mut value = root.clone();
            for part in key {
                value = value.get(part).cloned().unwrap_or(Value::Null);
            }
            value
        };
        match operand {
            GenOperand::Name => Value::from(run.name.as_str()),
            GenOperand::Description => run.description.clone().map_or(Value::Null, Value::Str),
            GenOperand::Status => Value::from(run.status.as_str()),
            GenOperand::Created => Value::Int(run.created_us),
            GenOperand::Param(key) => lookup(&run.params, key),
            GenOperand::Output(key, aggregate) => {
                let held: Vec<Value> = run
                    .outputs
                    .iter()
                    .map(|output| lookup(output, key))
                    .filter(|value| *value != Value::Null)
                    .collect();
                let numbers: Vec<f64> = held
                    .iter()
                    .filter_map(|value| match value {
                        Value::Int(i) => Some(*i as f64),
                        Value::Float(f) if !f.is_nan() => Some(*f),
                        _ => None,
                    })
                    .collect();
                let or_null = |value: Option<f64>| value.map_or(Value::Null, Value::Float);
                match aggregate {
                    None | Some(Aggregate::Last) => held.last().cloned().unwrap_or(Value::Null),
                    Some(Aggregate::First) => held.first().cloned().unwrap_or(Value::Null),
                    Some(Aggregate::Count) => Value::Int(held.len() as i64),
                    Some(Aggregate::Min) => or_null(numbers.iter().copied().reduce(f64::min)),
                    Some(Aggregate::Max) => or_null(numbers.iter().copied().reduce(f64::max)),
                    Some(Aggregate::Mean) => or_null(
                        (!numbers.is_empty())
                            .then(|| numbers.iter().sum::<f64>() / numbers.len() as f64),
                    ),
                }
            }
        }
    }

    fn naive_test(value: &Value, operand: &GenOperand, test: &GenTest) -> Option<bool> {
        if let GenTest::IsNull(negated) = test {
            return Some((*value == Value::Null) != *negated);
        }
        let nan = matches!(value, Value::Float(f) if f.is_nan());
        if *value == Value::Null || nan {
            return None;
        }
        // Literals as the filter means them.
        let literal = |literal: &Value| match (operand, literal) {
            (GenOperand::Created, Value::Int(millis)) => Value::Int(millis * 1000),
            _ => literal.clone(),
        };
        let equal = |right: &Value| naive_compare(value, CompareOp::Eq, &literal(right));
        match test {
            GenTest::IsNull(_) => unreachable!(),
            GenTest::Compare(op, right) => naive_compare(value, *op, &literal(right)),
            GenTest::Like {
                pattern,
                case_insensitive,
                negated,
            } => match value {
                Value::Str(text) => {
                    let fold = |s: &str| {
                        if *case_insensitive {
                            s.to_lowercase()
                        } else {
                            s.to_owned()
                        }
                    };
                    let pattern: Vec<char> = fold(pattern).chars().collect();
                    let text: Vec<char> = fold(text).chars().collect();
                    Some(naive_like(&pattern, &text) != *negated)
                }
                _ => None,
            },
            GenTest::In(values, negated) => {
                let found = values.iter().any(|right| equal(right) == Some(true));
                Some(found != *negated)
            }
        }
    }

    fn naive_compare(left: &Value, op: CompareOp, right: &Value) -> Option<bool> {
        let as_bool = |value: &Value| match value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s.to_lowercase() == "true" => Some(true),
            Value::Str(s) if s.to_lowercase() == "false" => Some(false),
            _ => None,
        };
        let ordering = match (left, right) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                left.as_f64().unwrap().partial_cmp(&right.as_f64().unwrap())
            }
            (Value::Int(_) | Value::Float(_), Value::Str(text)) => {
                let digits = text.chars().any(|c| c.is_ascii_digit())
                    && text.chars().all(|c| "0123456789+-.eE".contains(c));
                match text.parse::<f64>() {
                    Ok(number) if digits && number.is_finite() => {
                        left.as_f64().unwrap().partial_cmp(&number)
                    }
                    _ => None,
                }
            }
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Bool(_), _) | (_, Value::Bool(_)) => match (as_bool(left), as_bool(right)) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => None,
            },
            _ => None,
        };
        match (ordering, op) {
            (Some(ordering), CompareOp::Eq) => Some(ordering == Ordering::Equal),
            (Some(ordering), CompareOp::Ne) => Some(ordering != Ordering::Equal),
            (Some(ordering), CompareOp::Lt) => Some(ordering == Ordering::Less),
            (Some(ordering), CompareOp::Le) => Some(ordering != Ordering::Greater),
            (Some(ordering), CompareOp::Gt) => Some(ordering == Ordering::Greater),
            (Some(ordering), CompareOp::Ge) => Some(ordering != Ordering::Less),
            (None, CompareOp::Eq) => Some(false),
            (None, CompareOp::Ne) => Some(true),
            (None, _) => None,
        }
    }

    /// Recursive LIKE, exponential in the worst case but fine for tiny patterns.
    fn naive_like(pattern: &[char], text: &[char]) -> bool {
        match pattern {
            [] => text.is_empty(),
            ['%', rest @ ..] => (0..=text.len()).any(|skip| naive_like(rest, &text[skip..])),
            ['_', rest @ ..] => !text.is_empty() && naive_like(rest, &text[1..]),
            ['\\', escaped, rest @ ..] => {
                text.first() == Some(escaped) && naive_like(rest, &text[1..])
            }
            [c, rest @ ..] => text.first() == Some(c) && naive_like(rest, &text[1..]),
        }
    }

    /// Renders generated expressions as text, with choices from a seeded generator: keyword
    /// case, spacing, prefix and alias spellings, quote styles, operator spellings and
    /// redundant parentheses.
    struct Renderer {
        state: u64,
        text: String,
    }

    impl Renderer {
        fn next(&mut self) -> u64 {
            // xorshift64*: plenty for picking spellings.
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn coin(&mut self) -> bool {
            self.next().is_multiple_of(2)
        }

        fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
            choices[(self.next() % choices.len() as u64) as usize]
        }

        fn space(&mut self) {
            let space = self.pick(&[" ", " ", "  ", "\t", "\n "]);
            self.text.push_str(space);
        }

        fn maybe_space(&mut self) {
            if self.coin() {
                self.space();
            }
        }

        fn keyword(&mut self, keyword: &str) {
            let spelled: String = match self.next() % 3 {
                0 => keyword.to_uppercase(),
                1 => keyword.to_lowercase(),
                _ => keyword
                    .chars()
                    .map(|c| {
                        if self.coin() {
                            c.to_ascii_lowercase()
                        } else {
                            c
                        }
                    })
                    .collect(),
            };
            self.text.push_str(&spelled);
        }

        fn part(&mut self, part: &str, force_quotes: bool) {
            let plain = part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match self.next() % 4 {
                0 if plain && !force_quotes => self.text.push_str(part),
                1 | 2 if plain && !force_quotes => self.text.push_str(part),
                3 => self
                    .text
                    .push_str(&format!("\"{}\"", part.replace('"', "\"\""))),
                _ => self
                    .text
                    .push_str(&format!("`{}`", part.replace('`', "``"))),
            }
        }

        fn operand(&mut self, operand: &GenOperand) {
            let attribute_prefix = self.pick(&[
                "",
                "",
                "attributes.",
                "attribute.",
                "attr.",
                "run.",
                "ATTRIBUTES.",
            ]);
            match operand {
                GenOperand::Name => {
                    let name = self.pick(&["name", "run_name", "`run name`", "Name"]);
                    if name == "`run name`" && attribute_prefix.is_empty() && self.coin() {
                        self.text.push_str("\"run name\"");
                    } else {
                        self.text.push_str(attribute_prefix);
                        self.text.push_str(name);
                    }
                }
                GenOperand::Description => {
                    self.text.push_str(attribute_prefix);
                    self.text.push_str("description");
                }
                GenOperand::Status => {
                    self.text.push_str(attribute_prefix);
                    self.text.push_str("status");
                }
                GenOperand::Created => {
                    self.text.push_str(attribute_prefix);
                    let name = self.pick(&["created", "start_time", "created_time"]);
                    self.text.push_str(name);
                }
                GenOperand::Param(key) => {
                    let prefix = self.pick(&["params", "param", "parameters", "Params"]);
                    self.text.push_str(prefix);
                    for part in key {
                        self.text.push('.');
                        self.part(part, false);
                    }
                }
                GenOperand::Output(key, aggregate) => {
                    let prefix = self.pick(&["outputs", "output", "metrics", "metric"]);
                    self.text.push_str(prefix);
                    for (i, part) in key.iter().enumerate() {
                        self.text.push('.');
                        // Without a suffix, a last part named like an aggregate must be quoted
                        // to stay a key.
                        let is_last = i + 1 == key.len();
                        let force = aggregate.is_none()
                            && is_last
                            && key.len() > 1
                            && Aggregate::from_name(part).is_some();
                        self.part(part, force);
                    }
                    if let Some(aggregate) = aggregate {
                        self.text.push('.');
                        let name = aggregate.name();
                        let spelled = if self.coin() {
                            name.to_uppercase()
                        } else {
                            name.to_owned()
                        };
                        self.text.push_str(&spelled);
                    }
                }
            }
        }

        /// Writes a value; `operand` decides respellings (statuses in any case), `None` for a
        /// LIKE pattern, which is written as is.
        fn literal(&mut self, value: &Value, operand: Option<&GenOperand>) {
            match value {
                Value::Int(i) => self.text.push_str(&i.to_string()),
                Value::Float(f) => {
                    let text = match self.next() % 3 {
                        0 => format!("{f:e}"),
                        _ => format!("{f:?}"),
                    };
                    self.text.push_str(&text);
                }
                Value::Bool(b) => self.keyword(if *b { "TRUE" } else { "FALSE" }),
                Value::Str(s) => {
                    let s = match operand {
                        Some(GenOperand::Status) => match self.next() % 3 {
                            0 => s.to_lowercase(),
                            1 => s.replace('_', "-"),
                            _ => s.clone(),
                        },
                        _ => s.clone(),
                    };
                    if self.coin() {
                        self.text.push_str(&format!("'{}'", s.replace('\'', "''")));
                    } else {
                        self.text
                            .push_str(&format!("\"{}\"", s.replace('"', "\"\"")));
                    }
                }
                other => panic!("no literal for {other:?}"),
            }
        }

        fn test(&mut self, test: &GenTest, operand: &GenOperand) {
            match test {
                GenTest::Compare(op, value) => {
                    self.maybe_space();
                    let symbol = match op {
                        CompareOp::Eq => self.pick(&["=", "=="]),
                        CompareOp::Ne => self.pick(&["!=", "<>"]),
                        op => op.symbol(),
                    };
                    self.text.push_str(symbol);
                    self.maybe_space();
                    // A number right after `<` or `>` must not read as `<-` ... fine, but `<`
                    // followed by `>` would: literals never start with `>`.
                    self.literal(value, Some(operand));
                }
                GenTest::Like {
                    pattern,
                    case_insensitive,
                    negated,
                } => {
                    self.space();
                    if *negated {
                        self.keyword("NOT");
                        self.space();
                    }
                    self.keyword(if *case_insensitive { "ILIKE" } else { "LIKE" });
                    self.space();
                    self.literal(&Value::from(pattern.as_str()), None);
                }
                GenTest::In(values, negated) => {
                    self.space();
                    if *negated {
                        self.keyword("NOT");
                        self.space();
                    }
                    self.keyword("IN");
                    self.maybe_space();
                    self.text.push('(');
                    for (i, value) in values.iter().enumerate() {
                        if i > 0 {
                            self.text.push(',');
                            self.maybe_space();
                        }
                        self.literal(value, Some(operand));
                        self.maybe_space();
                    }
                    self.text.push(')');
                }
                GenTest::IsNull(negated) => {
                    self.space();
                    self.keyword("IS");
                    self.space();
                    if *negated {
                        self.keyword("NOT");
                        self.space();
                    }
                    self.keyword("NULL");
                }
            }
        }

        /// Renders `expr`; `parenthesize` when the context binds tighter than `expr`.
        fn expr(&mut self, expr: &GenExpr, parenthesize: bool) {
            let extra = self.next().is_multiple_of(8);
            if parenthesize || extra {
                self.text.push('(');
                self.maybe_space();
            }
            match expr {
                GenExpr::And(operands) | GenExpr::Or(operands) => {
                    let (keyword, is_and) = match expr {
                        GenExpr::And(_) => ("AND", true),
                        _ => ("OR", false),
                    };
                    for (i, operand) in operands.iter().enumerate() {
                        if i > 0 {
                            self.space();
                            self.keyword(keyword);
                            self.space();
                        }
                        let child_needs = match operand {
                            GenExpr::Or(_) => true,
                            GenExpr::And(_) => is_and,
                            _ => false,
                        };
                        // Parentheses also keep same-kind children as separate nodes, which
                        // the evaluation does not care about but the round trip does.
                        self.expr(operand, child_needs);
                    }
                }
                GenExpr::Not(operand) => {
                    self.keyword("NOT");
                    self.space();
                    let needs = matches!(**operand, GenExpr::And(_) | GenExpr::Or(_));
                    self.expr(operand, needs);
                }
                GenExpr::Compare(operand, test) => {
                    self.operand(operand);
                    self.test(test, operand);
                }
            }
            if parenthesize || extra {
                self.maybe_space();
                self.text.push(')');
            }
        }
    }

    fn render(expr: &GenExpr, seed: u64) -> String {
        let mut renderer = Renderer {
            state: seed | 1,
            text: String::new(),
        };
        renderer.maybe_space();
        renderer.expr(expr, false);
        renderer.maybe_space();
        renderer.text
    }

    /// Words and symbols that a token soup is made of.
    const SOUP: &[&str] = &[
        "name",
        "params.lr",
        "outputs.acc.max",
        "metrics.`x`",
        "params.\"a.b\"",
        "status",
        "created",
        "AND",
        "or",
        "NOT",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "<>",
        "<",
        ">=",
        "LIKE",
        "ilike",
        "IN",
        "IS",
        "NULL",
        "TRUE",
        "'a%'",
        "\"b\"",
        "'RUNNING'",
        "'2024-01-01'",
        "1",
        "-2.5e3",
        ".5",
        "ORDER",
        "BY",
        "DESC",
        "LIMIT",
        "OFFSET",
        "3",
        "'",
        "`",
        "\"",
        ".",
        "é",
        "tags.x",
        "1abc",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn parsed_filters_agree_with_the_naive_evaluator(
            expr in gen_expr(),
            seed in any::<u64>(),
            runs in prop::collection::vec(gen_run(), 1..8),
        ) {
            let text = render(&expr, seed);
            let parsed = parse_filter(&text);
            prop_assert!(matches!(parsed, Ok(Some(_))), "{text:?} gave {parsed:?}");
            let parsed = parsed.unwrap().unwrap();
            for run in &runs {
                let expected = naive(&expr, run) == Some(true);
                prop_assert_eq!(parsed.matches(run), expected, "{} on {:?}", text, run);
            }
            let canonical = parsed.to_string();
            prop_assert_eq!(parse_filter(&canonical), Ok(Some(parsed)), "{}", canonical);
        }

        /// Single comparisons, where every leaf decides the outcome, catch a wrong aggregate
        /// or comparison far more often than whole trees do.
        #[test]
        fn parsed_comparisons_agree_with_the_naive_evaluator(
            expr in gen_comparison(),
            seed in any::<u64>(),
            runs in prop::collection::vec(gen_run(), 1..8),
        ) {
            let text = render(&expr, seed);
            let parsed = parse_filter(&text);
            prop_assert!(matches!(parsed, Ok(Some(_))), "{text:?} gave {parsed:?}");
            let parsed = parsed.unwrap().unwrap();
            for run in &runs {
                let expected = naive(&expr, run) == Some(true);
                prop_assert_eq!(parsed.matches(run), expected, "{} on {:?}", text, run);
                let negated = Expr::Not(Box::new(parsed.clone()));
                let expected = naive(&GenExpr::Not(Box::new(expr.clone())), run) == Some(true);
                prop_assert_eq!(negated.matches(run), expected, "NOT ({}) on {:?}", text, run);
            }
        }

        #[test]
        fn parse_of_arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse_query(&text);
            let _ = parse_order_by(&text);
            if let Ok(Some(expr)) = parse_filter(&text) {
                for run in &runs() {
                    let _ = expr.matches(run);
                }
                prop_assert_eq!(parse_filter(&expr.to_string()), Ok(Some(expr)));
            }
        }

        #[test]
        fn parse_of_token_soup_never_panics(
            words in prop::collection::vec(prop::sample::select(SOUP), 0..24),
            glue in prop::collection::vec(prop::sample::select(&[" ", "", "\t"][..]), 24),
        ) {
            let text: String = words
                .iter()
                .zip(&glue)
                .flat_map(|(word, glue)| [*word, *glue])
                .collect();
            match parse_query(&text) {
                Ok(query) => {
                    let runs = runs();
                    if let Some(filter) = &query.filter {
                        for run in &runs {
                            let _ = filter.matches(run);
                        }
                    }
                    prop_assert_eq!(parse_query(&query.to_string()), Ok(query));
                }
                Err(error) => {
                    prop_assert!(error.column >= 1);
                    prop_assert!(error.column <= text.chars().count() + 1);
                    prop_assert!(!error.message.is_empty());
                }
            }
        }
    }

    /// Column mode: names are columns, a name on the right is a column, and the canonical
    /// text reads back to the same filter.
    #[test]
    fn column_filter_reads_names_as_columns() {
        let column = |name: &str, at: usize| ColumnName {
            name: name.to_owned(),
            column: at,
        };
        let check = |text: &str, expected: Expr, canonical: &str| {
            let expr = parse_column_filter(text).unwrap().unwrap();
            assert_eq!(expr, expected, "{text}");
            assert_eq!(expr.to_string(), canonical, "{text}");
            let again = parse_column_filter(canonical).unwrap().unwrap();
            assert_eq!(again.to_string(), canonical);
        };
        check(
            "loss < 0.5",
            Expr::Comparison(Comparison {
                operand: Operand::Column(column("loss", 1)),
                predicate: Predicate::Compare {
                    op: CompareOp::Lt,
                    value: Value::Float(0.5),
                },
            }),
            "loss < 0.5",
        );
        check(
            "predicted != `label`",
            Expr::Comparison(Comparison {
                operand: Operand::Column(column("predicted", 1)),
                predicate: Predicate::CompareColumn {
                    op: CompareOp::Ne,
                    other: column("label", 14),
                },
            }),
            "predicted != `label`",
        );
        check(
            "\"odd name\" = \"x\" OR train.loss IS NULL OR `and` LIKE 'a%'",
            Expr::Or(vec![
                Expr::Comparison(Comparison {
                    operand: Operand::Column(column("odd name", 1)),
                    predicate: Predicate::Compare {
                        op: CompareOp::Eq,
                        value: Value::from("x"),
                    },
                }),
                Expr::Comparison(Comparison {
                    operand: Operand::Column(column("train.loss", 21)),
                    predicate: Predicate::IsNull { negated: false },
                }),
                Expr::Comparison(Comparison {
                    operand: Operand::Column(column("and", 43)),
                    predicate: Predicate::Like {
                        pattern: LikePattern::new("a%", false),
                        negated: false,
                    },
                }),
            ]),
            "`odd name` = 'x' OR `train.loss` IS NULL OR `and` LIKE 'a%'",
        );
        // An integer outside i64 keeps every digit in a column filter (a u64 column holds it).
        check(
            "u >= 18446744073709551615",
            Expr::Comparison(Comparison {
                operand: Operand::Column(column("u", 1)),
                predicate: Predicate::CompareWide {
                    op: CompareOp::Ge,
                    value: i128::from(u64::MAX),
                },
            }),
            "u >= 18446744073709551615",
        );
        check(
            "a < -9223372036854775809",
            Expr::Comparison(Comparison {
                operand: Operand::Column(column("a", 1)),
                predicate: Predicate::CompareWide {
                    op: CompareOp::Lt,
                    value: i128::from(i64::MIN) - 1,
                },
            }),
            "a < -9223372036854775809",
        );
        let error = parse_column_filter("u IN (1, 18446744073709551615)").unwrap_err();
        assert_eq!(error.column, 10);
        assert!(
            error.message.contains("IN list holds integers of i64"),
            "{error}"
        );
        // A run filter reads it as the float it always did.
        assert!(matches!(
            parse_filter("params.x = 18446744073709551615"),
            Ok(Some(Expr::Comparison(Comparison {
                predicate: Predicate::Compare {
                    value: Value::Float(_),
                    ..
                },
                ..
            })))
        ));
        assert_eq!(parse_column_filter("  "), Ok(None));
        // The same words in a run filter are attributes, as before.
        let error = parse_filter("loss < 0.5").unwrap_err();
        assert!(
            error.message.starts_with("unknown attribute 'loss'"),
            "{error}"
        );
        assert!(parse_filter("a < b").is_err());
        let error = parse_column_filter("loss <").unwrap_err();
        assert_eq!(error.column, 7);
    }

    #[test]
    fn like_pattern_escaped_keeps_the_meaning() {
        for (pattern, escaped) in [
            ("a%b_", "a%b_"),
            ("a\\%b", "a\\%b"),
            ("a\\_", "a\\_"),
            ("\\\\", "\\\\"),
            ("x\\", "x\\\\"),
            ("\\q", "q"),
        ] {
            assert_eq!(
                LikePattern::new(pattern, false).escaped(),
                escaped,
                "{pattern}"
            );
        }
        assert_eq!(LikePattern::new("AbC%", true).escaped(), "abc%");
    }
}
