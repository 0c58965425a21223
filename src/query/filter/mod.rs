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
//! This file holds the entry points (`parse_filter`, `parse_query`, ...) and the limits; the
//! submodules are `lexer` (text to tokens), `parser` (tokens to the types of `ast`), `eval`
//! (what an expression means for one run), `like` (`LIKE` patterns), `display` (canonical
//! text) and `hint` ("did you mean" in errors).
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

mod ast;
mod display;
mod eval;
mod hint;
mod lexer;
mod like;
mod parser;
#[cfg(test)]
mod tests;

use std::str::FromStr;

pub use ast::{
    Attribute, ColumnName, CompareOp, Comparison, Expr, Operand, OrderKey, OutputReduction,
    Predicate, Query,
};
pub use eval::{compare, Subject};
pub(crate) use hint::{suggest, suggest_key};
#[cfg(test)]
use like::LikePattern;

use lexer::{Keyword, TokenKind};
use parser::Parser;

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
