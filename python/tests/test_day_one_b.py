"""Issue 18, "Day one" (second half): typos in run queries are errors, one history per run,
bulk data from files and arrays, reduction errors and results, float-only embeddings."""

import numpy as np
import pyarrow as pa
import pytest

import runstore


@pytest.fixture
def sweep(tmp_path):
    """Two runs with `lr` and a per-epoch `val_accuracy`; one has `momentum`."""
    store = runstore.open(tmp_path / "sweep.runs")
    for name, params in [("a", {"lr": 0.1, "momentum": 0.9}), ("b", {"lr": 0.01})]:
        run = store.init(project_name="p", run_name=name, parameters=params)
        run.add_output_value({"epoch": 0, "val_accuracy": 0.8 if name == "a" else 0.95})
    yield store
    store.close()


# -- item 1: typos are not silent


def test_filter_on_an_output_no_run_has_raises_with_a_suggestion(sweep):
    with pytest.raises(runstore.InvalidQuery) as info:
        sweep.runs(filter="outputs.val_acc > 0.9")
    assert "did you mean 'val_accuracy'?" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parameter_keys_are_case_sensitive_and_the_slip_is_named(sweep):
    with pytest.raises(runstore.InvalidQuery) as info:
        sweep.runs(filter="params.LR > 0")
    assert "no run has parameter 'LR' (did you mean 'lr'?)" in str(info.value)


def test_order_by_and_columns_name_their_typos(sweep):
    with pytest.raises(runstore.InvalidQuery, match="did you mean 'val_accuracy'"):
        sweep.runs(order_by="outputs.val_acuracy DESC")
    runs = sweep.runs()
    with pytest.raises(runstore.InvalidQuery, match="no run has parameter 'momentun'"):
        runs.to_arrow(columns=["params.lr", "params.momentun"])


def test_a_key_only_some_runs_have_is_answered(sweep):
    runs = sweep.runs(filter="params.momentum > 0.5")
    assert [run.name for run in runs] == ["a"]
    table = sweep.runs(order_by="outputs.val_accuracy DESC").to_arrow(
        columns=["params.momentum", "outputs.val_accuracy"]
    )
    assert table.column("name").to_pylist() == ["b", "a"]
    assert table.column("params.momentum").to_pylist() == [None, 0.9]
