//! The parsed form of a run query: identifiers ([`Operand`]), comparisons, filters ([`Expr`]),
//! sort keys and whole queries, with the keys each one reads.
//!
//! These are plain data: the parser builds them, `eval` gives them meaning against a run and
//! `display` prints them back as canonical text.

use crate::value::Value;

use super::like::LikePattern;

/// Every spelling of an attribute, lowercase, with the attribute it names.
pub(super) const ATTRIBUTE_NAMES: [(&str, Attribute); 11] = [
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

/// A run attribute: one of the fixed fields every run has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
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

/// How the values of one output key across a run's output values become one value: the
/// suffix of `outputs.loss.min`. (Not a table aggregate: those are [`crate::AggFunc`], over the
/// rows of a table.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutputReduction {
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

impl OutputReduction {
    /// All reductions.
    pub const ALL: [OutputReduction; 6] = [
        OutputReduction::Last,
        OutputReduction::First,
        OutputReduction::Min,
        OutputReduction::Max,
        OutputReduction::Mean,
        OutputReduction::Count,
    ];

    /// The suffix naming the reduction, as written after an output key.
    pub fn name(self) -> &'static str {
        match self {
            OutputReduction::Last => "last",
            OutputReduction::First => "first",
            OutputReduction::Min => "min",
            OutputReduction::Max => "max",
            OutputReduction::Mean => "mean",
            OutputReduction::Count => "count",
        }
    }

    /// The reduction a suffix (any case) names.
    pub fn from_name(name: &str) -> Option<OutputReduction> {
        OutputReduction::ALL
            .into_iter()
            .find(|aggregate| aggregate.name().eq_ignore_ascii_case(name))
    }
}

/// What a comparison looks at: the left-hand side, and an `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
        aggregate: OutputReduction,
    },
    /// A table column, in a column filter ([`parse_column_filter`](super::parse_column_filter))
    /// only.
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

impl Expr {
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

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    /// What to sort by.
    pub operand: Operand,
    /// `DESC`; ascending otherwise.
    pub descending: bool,
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
    /// ([`OutputReduction::Last`]), and no such key path is a prefix of another: then the latest
    /// output holding each path is all a run needs to provide.
    pub fn reads_only_latest_outputs(&self) -> bool {
        let mut paths: Vec<&[String]> = Vec::new();
        for operand in self.operands() {
            if let Operand::Output { key, aggregate } = operand {
                if *aggregate != OutputReduction::Last {
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
