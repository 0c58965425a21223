//! Canonical text of a parsed query: `Display` for operands, comparisons, filters, sort keys
//! and queries, which parses back to an equal value.

use std::fmt;

use crate::value::Value;

use super::ast::{Comparison, Expr, Operand, OrderKey, OutputReduction, Predicate, Query};
use super::lexer::{is_word_char, Keyword};

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
                    OutputReduction::Last => {
                        let quote_last = key.len() > 1
                            && key
                                .last()
                                .is_some_and(|last| OutputReduction::from_name(last).is_some());
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
