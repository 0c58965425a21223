//! Unit tests of the run filter language: parse, meaning, order, display and its round trip.
//!
//! One file over 1,500 lines because its parts share one fixture: the `TestRun` subject, the
//! proptest strategies that generate queries over the whole grammar, and the naive evaluator
//! the random tests compare against.

use super::*;
use crate::status::RunStatus;
use crate::value::Value;
use proptest::prelude::*;
use std::cmp::Ordering;
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
            Attribute::Description => self.description.as_deref().map_or(Value::Null, Value::from),
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
                    aggregate: OutputReduction::Max,
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
        canonical("attr.`run name` like 'a%' and (metric.acc.MAX>=.5 or NOT params.x in (1,'b'))"),
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
    let nested = |depth: usize| format!("{}{comparison}{}", "(".repeat(depth), ")".repeat(depth));
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
    Output(Vec<String>, Option<OutputReduction>),
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
    let status = prop::sample::select(RunStatus::names().to_vec())
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
    let output_key = prop::sample::select(vec![vec!["m"], vec!["n"], vec!["min"], vec!["n", "x"]]);
    // An aggregate two times in three.
    let aggregate = prop::option::weighted(
        2.0 / 3.0,
        prop::sample::select(OutputReduction::ALL.to_vec()),
    );
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
        prop::sample::select(RunStatus::names().to_vec()),
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
        GenExpr::Compare(operand, test) => naive_test(&naive_value(operand, run), operand, test),
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
                None | Some(OutputReduction::Last) => held.last().cloned().unwrap_or(Value::Null),
                Some(OutputReduction::First) => held.first().cloned().unwrap_or(Value::Null),
                Some(OutputReduction::Count) => Value::Int(held.len() as i64),
                Some(OutputReduction::Min) => or_null(numbers.iter().copied().reduce(f64::min)),
                Some(OutputReduction::Max) => or_null(numbers.iter().copied().reduce(f64::max)),
                Some(OutputReduction::Mean) => or_null(
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
        ['\\', escaped, rest @ ..] => text.first() == Some(escaped) && naive_like(rest, &text[1..]),
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
                        && OutputReduction::from_name(part).is_some();
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
