//! The recursive-descent parser of the query language: tokens to [`Expr`], [`OrderKey`]s and
//! [`Query`], with every error pointing at the column of the token that does not fit.
//!
//! Nesting is bounded by [`FILTER_DEPTH_MAX`] and input by [`FILTER_BYTES_MAX`], so a parse
//! never overflows the stack.

use crate::status::RunStatus;
use crate::value::Value;

use super::ast::{
    Attribute, ColumnName, CompareOp, Comparison, Expr, Operand, OrderKey, OutputReduction,
    Predicate, ATTRIBUTE_NAMES,
};
use super::hint::{did_you_mean, snippet, suggest};
use super::lexer::{Keyword, Lexer, Part, Token, TokenKind};
use super::like::LikePattern;
use super::{FilterError, FILTER_BYTES_MAX, FILTER_DEPTH_MAX};

const ATTRIBUTE_PREFIXES: [&str; 4] = ["attributes", "attribute", "attr", "run"];
const PARAM_PREFIXES: [&str; 3] = ["params", "param", "parameters"];
const OUTPUT_PREFIXES: [&str; 4] = ["outputs", "output", "metrics", "metric"];

pub(super) struct Parser {
    chars: Vec<char>,
    /// Never empty: the last token is [`TokenKind::End`].
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Column mode ([`parse_column_filter`]): a name is a table column, not a run attribute.
    pub(super) columns: bool,
}

impl Parser {
    pub(super) fn new(text: &str) -> Result<Parser, FilterError> {
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

    pub(super) fn peek_keyword(&self) -> Option<Keyword> {
        match self.peek().kind {
            TokenKind::Keyword(keyword) => Some(keyword),
            _ => None,
        }
    }

    pub(super) fn at_end(&self) -> bool {
        matches!(self.peek().kind, TokenKind::End)
    }

    pub(super) fn at_clause_keyword(&self) -> bool {
        matches!(
            self.peek_keyword(),
            Some(Keyword::Order | Keyword::Limit | Keyword::Offset)
        )
    }

    /// Takes the next token; at the end, keeps returning the End token.
    pub(super) fn bump(&mut self) -> Token {
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
    pub(super) fn quote(&self, token: &Token) -> String {
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

    pub(super) fn unexpected(&self, token: &Token, expected: &str) -> FilterError {
        self.error_at(
            token,
            format!("expected {expected}, found {}", self.quote(token)),
        )
    }

    pub(super) fn expect_end(&mut self, expected: &str) -> Result<(), FilterError> {
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

    pub(super) fn filter(&mut self) -> Result<Expr, FilterError> {
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
                match status_from_value(&value) {
                    Some(status) => Ok(Value::Str(status.name().to_owned())),
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
                        let hint = match (mlflow, suggest(&text, RunStatus::names())) {
                            (Some(name), _) => format!(
                                "{text} is an MLflow status; runstore uses 3LC's statuses: \
                                 did you mean '{name}'?"
                            ),
                            (None, Some(name)) => format!("did you mean '{name}'?"),
                            (None, None) => {
                                format!(
                                    "expected {} or a code 1 to 7",
                                    RunStatus::names().join(", ")
                                )
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
    pub(super) fn operand(&mut self, expected: &str) -> Result<(Operand, Token), FilterError> {
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
                    if let Some(aggregate) = OutputReduction::from_name(&last.text) {
                        return Ok(Operand::Output {
                            key: keys(key),
                            aggregate,
                        });
                    }
                }
            }
            return Ok(Operand::Output {
                key: keys(rest),
                aggregate: OutputReduction::Last,
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

    pub(super) fn order_list(&mut self) -> Result<Vec<OrderKey>, FilterError> {
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
    pub(super) fn count(&mut self) -> Result<u64, FilterError> {
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

/// The status a literal names: a name in any case (`-` or space for `_`) or a code.
fn status_from_value(value: &Value) -> Option<RunStatus> {
    let code = match value {
        Value::Str(text) => match RunStatus::lookup(text, &['-', ' ']) {
            Ok(status) => return Some(status),
            Err(code) => code,
        },
        Value::Int(_) | Value::Float(_) => value.as_f64(),
        _ => None,
    };
    code.and_then(|code| RunStatus::from_code(code).ok())
}

/// `float` as an `i64` when it is a whole number in range.
fn float_to_i64(float: f64) -> Option<i64> {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    // Also false for NaN.
    let in_range = (-TWO_POW_63..TWO_POW_63).contains(&float);
    (in_range && float.fract() == 0.0).then_some(float as i64)
}
