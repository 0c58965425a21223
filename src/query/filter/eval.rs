//! What a parsed query means for one run: SQL's three-valued truth of a filter, the values
//! an identifier reads (output reductions included) and the order of `ORDER BY`.
//!
//! A run is seen only through the [`Subject`] trait, so the store decides what to load.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::value::{numeric_cmp, Value};

use super::ast::{
    Attribute, CompareOp, Comparison, Expr, Operand, OrderKey, OutputReduction, Predicate,
};

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

impl CompareOp {
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

    /// The reduction of output key path `key` over the run's output values ([`Value::Null`]
    /// when no value holds it, except `count`, which is 0). By default computed from
    /// [`Subject::outputs`]; a subject that keeps the reductions precomputed returns them.
    fn output(&self, key: &[String], aggregate: OutputReduction) -> Cow<'_, Value> {
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
    aggregate: OutputReduction,
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
        OutputReduction::Last => outputs.iter().rev().find_map(held),
        OutputReduction::First => outputs.iter().find_map(held),
        OutputReduction::Count => {
            let count = outputs.iter().filter_map(held).count();
            return Cow::Owned(Value::Int(i64::try_from(count).unwrap_or(i64::MAX)));
        }
        OutputReduction::Min => {
            numbers().min_by(|a, b| numeric_cmp(a, b).unwrap_or(Ordering::Equal))
        }
        OutputReduction::Max => {
            numbers().max_by(|a, b| numeric_cmp(a, b).unwrap_or(Ordering::Equal))
        }
        OutputReduction::Mean => {
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
