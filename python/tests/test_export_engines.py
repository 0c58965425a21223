"""`runstore export` read by the engines users scale out to: DuckDB and Polars over the
Hive-style Parquet folder, every answer checked against what the store says through the Python
API (counts, sums, per-run values, parameter columns, statuses, timestamps); then a
`--since` refresh read again.

The store is built as training jobs would: two projects with input tables, runs with
parameters, per-epoch outputs and a status, an evaluation table per run joined to its input
table (a loss, a predicted label, an embedding) and the steps `run.log` writes.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import runstore

duckdb = pytest.importorskip("duckdb", reason="duckdb is not installed (pip install duckdb)")

EMBEDDING_DIM = 8
# project -> (input table name, rows, runs)
PROJECTS = {"cifar10": ("val", 40, 5), "mnist": ("test", 25, 3)}
STATUSES = ["COMPLETED", "COMPLETED", "CANCELLED", "COMPLETED", "RUNNING"]


def command(*args: str) -> subprocess.CompletedProcess:
    """`python -m runstore ARGS`, the package's command line, as the other tests call it."""
    return subprocess.run(
        [sys.executable, "-m", "runstore", *args], capture_output=True, text=True, timeout=300
    )


def build_store(path: Path) -> None:
    rng = np.random.default_rng(20)
    with runstore.open(path) as store:
        for project, (input_name, rows, run_count) in PROJECTS.items():
            labels = rng.integers(0, 10, rows)
            inputs = store.create_table(
                project,
                input_name,
                {
                    "image": [f"{input_name}/{i:05d}.png" for i in range(rows)],
                    "label": labels.astype(np.int64),
                },
            )
            for index in range(run_count):
                lr = [0.1, 0.03, 0.01, 0.003, 0.001][index]
                run = store.init(
                    project_name=project,
                    run_name=f"lr{lr}-{index}",
                    description=f"sweep point {index}",
                    parameters={
                        "lr": lr,
                        "epochs": 3 + index,
                        "augment": index % 2 == 0,
                        "optimizer": {"name": ["sgd", "adam"][index % 2], "momentum": 0.9},
                    },
                )
                run.add_input_table(inputs)
                for epoch in range(3 + index):
                    run.add_output_value(
                        {"epoch": epoch, "accuracy": float(rng.uniform(0.5, 0.99))}
                    )
                for step in range(10 * (index + 1)):
                    run.log({"loss": 1.0 / (step + 1) + 0.01 * index, "lr": lr}, step=step)
                run.close_log()
                # Predictions right for a run-dependent share of the examples.
                correct = rng.random(rows) < 0.5 + 0.1 * index
                predicted = np.where(correct, labels, (labels + 1) % 10)
                run.add_metrics_data(
                    {
                        "loss": rng.random(rows).astype(np.float32),
                        "predicted": predicted.astype(np.int64),
                        "embedding": rng.random((rows, EMBEDDING_DIM), dtype=np.float32),
                    },
                    input_table_url=inputs.url,
                    table_writer_base_name="eval",
                )
                run.set_status(STATUSES[index % len(STATUSES)])


def export(store_path: Path, out: Path, *extra: str) -> str:
    proc = command("export", str(store_path), str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The store, its export folder, and what the store says, read through the Python API."""
    base = tmp_path_factory.mktemp("engines")
    store_path = base / "team.runs"
    build_store(store_path)
    out = base / "export"
    stderr = export(store_path, out)
    assert "exported 8 runs" in stderr, stderr
    return store_path, out, expected(store_path)


def expected(store_path: Path) -> dict:
    """Per run: attributes, parameters, last output and the eval and steps tables as numpy."""
    runs = {}
    with runstore.open(store_path, read_only=True) as store:
        for run in store.runs():
            tables = {t.url.rsplit("/", 1)[1]: t for t in run.metrics_tables}
            eval_table = tables["eval_0000"]
            [input_url] = run.input_tables
            inputs = store.table(input_url)
            steps = run.history(["loss"])
            runs[run.url] = {
                "project": run.project,
                "name": run.name,
                "status": run.status_name,
                "created_us": run.created_us,
                "last_modified_us": run.last_modified_us,
                "parameters": run.parameters,
                "outputs": run.output_values,
                "eval_loss": eval_table.to_numpy("loss"),
                "eval_predicted": eval_table.to_numpy("predicted"),
                "eval_example_id": eval_table.to_numpy("example_id"),
                "eval_embedding": eval_table.to_numpy("embedding"),
                "input_label": inputs.to_numpy("label"),
                "input_url": input_url,
                "steps": len(steps),
                "steps_loss": np.asarray(steps.column("loss").to_pylist(), dtype=np.float64),
                "step_tables": sorted(n for n in tables if n.startswith("steps_")),
            }
    return runs


def accuracy(run: dict) -> float:
    labels = run["input_label"][run["eval_example_id"]]
    return float(np.mean(run["eval_predicted"] == labels))


# ------------------------------------------------------------------------------------------
# DuckDB


def test_duckdb_reads_runs_parquet_as_the_store_lists_runs(exported):
    _, out, runs = exported
    con = duckdb.connect()
    rows = con.execute(
        f"""SELECT url, project, name, status, epoch_us(created), epoch_us(last_modified),
                   "params.lr", "params.epochs", "params.augment", "params.optimizer.name",
                   output_count, params, outputs, input_tables
            FROM read_parquet('{out}/runs.parquet') ORDER BY url"""
    ).fetchall()
    assert [row[0] for row in rows] == sorted(runs)
    for (url, project, name, status, created, modified, lr, epochs, augment, optimizer,
         output_count, params, outputs, input_tables) in rows:
        run = runs[url]
        assert (project, name, status) == (run["project"], run["name"], run["status"])
        assert (created, modified) == (run["created_us"], run["last_modified_us"])
        parameters = run["parameters"]
        assert (lr, epochs, augment, optimizer) == (
            parameters["lr"], parameters["epochs"], parameters["augment"],
            parameters["optimizer"]["name"],
        )
        assert json.loads(params) == parameters
        assert json.loads(outputs) == run["outputs"]
        assert output_count == len(run["outputs"])
        assert json.loads(input_tables) == [run["input_url"]]

    # filters and aggregates
    counts = dict(con.execute(
        f"""SELECT project, count(*) FROM read_parquet('{out}/runs.parquet')
            WHERE status = 'COMPLETED' AND "params.lr" <= 0.03 GROUP BY project"""
    ).fetchall())
    want: dict = {}
    for run in runs.values():
        if run["status"] == "COMPLETED" and run["parameters"]["lr"] <= 0.03:
            want[run["project"]] = want.get(run["project"], 0) + 1
    assert counts == want
    # the best run by its last output, from the outputs JSON
    best = con.execute(
        f"""SELECT url, CAST(json_extract(outputs, '$[-1].accuracy') AS DOUBLE) AS accuracy
            FROM read_parquet('{out}/runs.parquet') ORDER BY accuracy DESC LIMIT 1"""
    ).fetchone()
    top = max(runs, key=lambda url: runs[url]["outputs"][-1]["accuracy"])
    assert best == (top, runs[top]["outputs"][-1]["accuracy"])


def test_duckdb_reads_one_metrics_table_of_every_run_with_hive_partitions(exported):
    _, out, runs = exported
    con = duckdb.connect()
    rows = con.execute(
        f"""SELECT project, run, count(*), sum(loss), sum(list_sum(embedding)),
                   min(len(embedding)), max(len(embedding))
            FROM read_parquet('{out}/project=*/run=*/eval_0000.parquet', hive_partitioning=true)
            GROUP BY project, run ORDER BY project, run"""
    ).fetchall()
    by_url = {f"{project}/runs/{name}": rest for project, name, *rest in rows}
    assert sorted(by_url) == sorted(runs)
    for url, (count, loss, embedding, dim_min, dim_max) in by_url.items():
        run = runs[url]
        assert count == len(run["eval_loss"])
        assert loss == pytest.approx(float(run["eval_loss"].astype(np.float64).sum()), rel=1e-9)
        assert embedding == pytest.approx(
            float(run["eval_embedding"].astype(np.float64).sum()), rel=1e-6
        )
        assert dim_min == dim_max == EMBEDDING_DIM
    # The steps run.log wrote: one step table per run here, every step and its loss.
    for run in runs.values():
        assert run["step_tables"] == ["steps_0000"]
    rows = con.execute(
        f"""SELECT project || '/runs/' || run, count(*), sum(loss)
            FROM read_parquet('{out}/project=*/run=*/steps_0000.parquet', hive_partitioning=true)
            GROUP BY ALL"""
    ).fetchall()
    assert len(rows) == len(runs)
    for url, count, loss in rows:
        assert count == runs[url]["steps"]
        assert loss == pytest.approx(float(runs[url]["steps_loss"].sum()), rel=1e-12)


def test_duckdb_joins_metrics_to_their_input_table_by_example_id(exported):
    _, out, runs = exported
    con = duckdb.connect()
    rows = con.execute(
        f"""SELECT m.project, m.run, avg(CAST(m.predicted = i.label AS DOUBLE)), count(*)
            FROM read_parquet('{out}/project=*/run=*/eval_0000.parquet', hive_partitioning=true) m
            JOIN (SELECT *, file_row_number AS example_id, project
                  FROM read_parquet('{out}/project=*/tables/*.parquet',
                                    hive_partitioning=true, file_row_number=true)) i
              ON i.project = m.project AND i.example_id = m.example_id
            GROUP BY ALL"""
    ).fetchall()
    assert len(rows) == len(runs)
    for project, name, value, count in rows:
        run = runs[f"{project}/runs/{name}"]
        assert count == len(run["eval_loss"])
        assert value == pytest.approx(accuracy(run), rel=1e-12)


# ------------------------------------------------------------------------------------------
# Polars


def test_polars_scans_the_export_with_hive_partitions(exported):
    pl = pytest.importorskip("polars", reason="polars is not installed (pip install polars)")
    _, out, runs = exported
    runs_frame = pl.read_parquet(out / "runs.parquet")
    assert sorted(runs_frame["url"].to_list()) == sorted(runs)
    for row in runs_frame.iter_rows(named=True):
        run = runs[row["url"]]
        assert row["status"] == run["status"]
        assert row["params.lr"] == run["parameters"]["lr"]
        assert row["params.optimizer.name"] == run["parameters"]["optimizer"]["name"]
        assert int(row["created"].timestamp() * 1_000_000) == pytest.approx(
            run["created_us"], abs=1
        )
    metrics = pl.scan_parquet(
        str(out / "project=*" / "run=*" / "eval_0000.parquet"), hive_partitioning=True
    )
    per_run = (
        metrics.group_by("project", "run")
        .agg(pl.len().alias("rows"), pl.col("loss").cast(pl.Float64).sum().alias("loss"))
        .collect()
    )
    assert per_run.height == len(runs)
    for row in per_run.iter_rows(named=True):
        run = runs[f"{row['project']}/runs/{row['run']}"]
        assert row["rows"] == len(run["eval_loss"])
        assert row["loss"] == pytest.approx(float(run["eval_loss"].astype(np.float64).sum()))
    inputs = pl.scan_parquet(
        str(out / "project=*" / "tables" / "*.parquet"), hive_partitioning=True
    ).with_columns(pl.int_range(pl.len()).over("project").cast(pl.Int32).alias("example_id"))
    joined = (
        metrics.join(inputs, on=["project", "example_id"])
        .group_by("project", "run")
        .agg((pl.col("predicted") == pl.col("label")).mean().alias("accuracy"))
        .collect()
    )
    assert joined.height == len(runs)
    for row in joined.iter_rows(named=True):
        run = runs[f"{row['project']}/runs/{row['run']}"]
        assert row["accuracy"] == pytest.approx(accuracy(run))


# ------------------------------------------------------------------------------------------
# --since: a nightly refresh, read again


def test_export_since_refreshes_what_duckdb_reads(exported, tmp_path):
    store_path, out, _ = exported
    # Copies of the store and the folder, so the other tests' stay as they were.
    store_copy = tmp_path / "team.runs"
    shutil.copy(store_path, store_copy)
    copy = tmp_path / "export"
    shutil.copytree(out, copy)
    time.sleep(0.01)
    since = datetime.datetime.now(datetime.timezone.utc).isoformat()
    time.sleep(0.01)
    changed, deleted = "mnist/runs/lr0.1-0", "mnist/runs/lr0.03-1"
    with runstore.open(store_copy) as store:
        run = store.run(changed)
        run.set_status("CANCELLED")
        run.add_output_value({"epoch": 99, "accuracy": 1.0})
        store.delete_run(deleted)
    stderr = export(store_copy, copy, "--since", since, "--prune")
    # The changed run's eval and steps tables and the input table it uses; the deleted run's
    # two files pruned.
    assert "exported 1 runs and 3 tables" in stderr, stderr
    assert "skipped 6 runs" in stderr and "pruned 2 files" in stderr, stderr
    runs = expected(store_copy)
    assert changed in runs and deleted not in runs
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT url, status, output_count FROM read_parquet('{copy}/runs.parquet')"
    ).fetchall()
    assert sorted(rows) == sorted(
        (url, run["status"], len(run["outputs"])) for url, run in runs.items()
    )
    assert ("mnist/runs/lr0.1-0", "CANCELLED", 4) in rows
    urls = con.execute(
        f"""SELECT DISTINCT project || '/runs/' || run FROM
            read_parquet('{copy}/project=*/run=*/*.parquet', hive_partitioning=true,
                         union_by_name=true)"""
    ).fetchall()
    assert sorted(url for (url,) in urls) == sorted(runs)
