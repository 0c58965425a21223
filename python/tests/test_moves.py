"""One-line moves: ``import runstore as wandb`` (and trackio), ``runstore.SummaryWriter`` for
TensorBoard's, ``runstore.mlflow`` for MLflow's fluent API. A run written through any shape
reads back through the others and through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import runstore


@pytest.fixture(autouse=True)
def fresh_process_state(tmp_path, monkeypatch):
    runstore._close_all()
    runstore._active.set_current(None)
    runstore.mlflow._stack.clear()
    runstore.mlflow.set_tracking_uri("")
    runstore.mlflow.set_experiment("Default")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNSTORE_PATH", raising=False)
    yield
    runstore._close_all()
    runstore._active.set_current(None)
    runstore.mlflow._stack.clear()


def history(run):
    """Every logged step of ``run`` as {key: {step: value}} (across its step tables)."""
    out = {}
    for table in run.metrics_tables:
        if not table.url.rsplit("/", 1)[-1].startswith("steps_"):
            continue
        data = table.to_arrow().to_pydict()
        for key, values in data.items():
            if key == "step":
                continue
            for step, value in zip(data["step"], values):
                if value is not None and value == value:
                    out.setdefault(key, {})[step] = value
    return out


# ------------------------------------------------------------------------------------------
# wandb / trackio


def test_wandb_shape(tmp_path):
    import runstore as wandb

    run = wandb.init(project="mnist", name="base", config={"lr": 0.01, "bs": 32}, dir=str(tmp_path))
    assert os.path.samefile(run.store.path, tmp_path / "runs.runs")
    wandb.config.update({"epochs": 3})
    wandb.config.dropout = 0.1
    assert wandb.config["lr"] == 0.01 and wandb.config.bs == 32
    for step in range(5):
        wandb.log({"loss": 1.0 / (step + 1)}, step=step)
    run.log({"acc": 0.9}, step=5)
    wandb.summary["best_acc"] = 0.91
    wandb.summary.update({"final_loss": 0.2})
    assert wandb.summary["best_acc"] == 0.91
    assert dict(run.summary) == {"best_acc": 0.91, "final_loss": 0.2}
    assert run.status_name == "EMPTY" or run.status_name == "RUNNING"
    wandb.finish()
    assert run.status_name == "COMPLETED"
    with pytest.raises(runstore.NoActiveRun):
        wandb.log({"loss": 0.0})
    assert run.parameters == {"lr": 0.01, "bs": 32, "epochs": 3, "dropout": 0.1}
    assert history(run)["loss"] == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3), 3: 0.25, 4: 0.2}
    assert history(run)["acc"] == {5: 0.9}


def test_wandb_finish_with_exit_code_cancels_and_init_rejects_unknown_keywords(tmp_path):
    import runstore as wandb

    run = wandb.init(project="p", root_url="x.runs")
    run.set_status_running()
    wandb.finish(exit_code=1)
    assert run.status_name == "CANCELLED"
    with pytest.raises(TypeError, match="entity.*takes project_name"):
        wandb.init(project="p", entity="me")
    with pytest.raises(runstore.InvalidInput, match="give one"):
        wandb.init(project_name="a", project="b")
    wandb.finish()  # no active run: nothing to do


def test_trackio_shape_positional_project(tmp_path):
    import runstore as trackio

    trackio.init("proj", name="t1", config={"lr": 0.1})
    for i in range(3):
        trackio.log({"loss": 0.1 * i})
    run = runstore.active_run()
    trackio.finish()
    assert run.project == "proj" and run.name == "t1"
    assert sorted(history(run)["loss"]) == [0, 1, 2]


# ------------------------------------------------------------------------------------------
# TensorBoard


def test_summary_writer(tmp_path):
    with runstore.SummaryWriter("runs/exp1") as writer:
        for step in range(4):
            writer.add_scalar("Loss/train", 1.0 / (step + 1), step)
            writer.add_scalar("Accuracy/train", step / 4, step)
        writer.add_scalars("lr", {"group0": 0.1, "group1": 0.01}, 3)
        writer.add_hparams({"lr": 0.1, "optimizer": "sgd"}, {"hparam/accuracy": 0.75})
        writer.add_text("notes", "first try", 0)
        writer.add_histogram("weights", np.arange(100, dtype=np.float32), 2)
        writer.add_embedding(np.ones((10, 16)), metadata=list(range(10)), global_step=3)
        run = writer.run
    assert os.path.samefile(run.store.path, tmp_path / "runs.runs")
    assert run.name == "exp1" and run.status_name == "COMPLETED"
    h = history(run)
    assert h["Loss/train"] == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3), 3: 0.25}
    assert h["Accuracy/train"][3] == 0.75
    assert h["lr/group0"] == {3: 0.1} and h["lr/group1"] == {3: 0.01}
    assert run.parameters == {"lr": 0.1, "optimizer": "sgd"}
    assert run.output_values == [{"hparam/accuracy": 0.75}]
    tables = {t.url.rsplit("/", 1)[-1].rsplit("_", 1)[0]: t for t in run.metrics_tables}
    text = run.store.table(f"{run.url}/text").to_arrow().to_pydict()
    assert text == {"step": [0], "tag": ["notes"], "text": ["first try"]}
    hist = run.store.table(f"{run.url}/histograms").to_arrow().to_pydict()
    assert hist["step"] == [2] and hist["count"] == [100] and hist["max"] == [99.0]
    assert len(hist["values"][0]) == 100
    emb = tables["embeddings"].to_arrow()
    assert emb.num_rows == 10 and emb.column("label").to_pylist() == list(range(10))
    assert emb.schema.field("embedding").metadata[runstore.ROLE_KEY.encode()] == b"embedding"


def test_summary_writer_places_runs_like_tensorboard(tmp_path):
    a = runstore.SummaryWriter("logs/a")
    b = runstore.SummaryWriter("logs/a")  # the same log dir twice: a second run
    c = runstore.SummaryWriter(str(tmp_path / "exp.runs"), comment="_x")
    d = runstore.SummaryWriter()
    assert a.run.url == "default/runs/a" and b.run.url == "default/runs/a_0000"
    assert os.path.samefile(c.run.store.path, tmp_path / "exp.runs")
    assert os.path.samefile(d.run.store.path, tmp_path / "runs.runs")
    for w in (a, b, c, d):
        w.close()
    w = runstore.SummaryWriter("logs/b")
    with pytest.raises(runstore.InvalidInput, match="one number"):
        w.add_scalar("x", [1, 2], 0)
    w.close()
    with pytest.raises(runstore.InvalidInput, match="closed"):
        w.add_scalar("x", 1.0, 0)


def test_summary_writer_marks_a_failed_block_cancelled(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with runstore.SummaryWriter("runs/bad") as writer:
            writer.add_scalar("loss", 1.0, 0)
            1 / 0
    assert writer.run.status_name == "CANCELLED"
    assert "cancelled by ZeroDivisionError" in writer.run.description
    assert history(writer.run)["loss"] == {0: 1.0}


# ------------------------------------------------------------------------------------------
# MLflow


def test_mlflow_shape(tmp_path):
    mlflow = runstore.mlflow
    mlflow.set_tracking_uri(f"file:{tmp_path / 'ml.runs'}")
    mlflow.set_experiment("exp")
    for lr in (0.1, 0.01, 0.001):
        with mlflow.start_run(run_name=f"lr-{lr}") as started:
            mlflow.log_param("lr", lr)
            mlflow.log_params({"bs": 32})
            mlflow.set_tag("team", "vision")
            mlflow.set_tags({"stage": "dev"})
            for step in range(3):
                mlflow.log_metric("loss", lr * (3 - step), step=step)
            mlflow.log_metrics({"acc": 1 - lr}, step=3)
        assert started.info.status == "FINISHED"
    frame = mlflow.search_runs(filter_string="params.lr < 0.05 and tags.team = 'vision'",
                               order_by=["metrics.acc DESC"])
    assert list(frame["tags.mlflow.runName"]) == ["lr-0.001", "lr-0.01"]
    for column in ("run_id", "experiment_id", "status", "start_time", "end_time",
                   "artifact_uri", "metrics.acc", "metrics.loss", "params.lr", "params.bs",
                   "tags.team", "tags.stage"):
        assert column in frame.columns, column
    assert list(frame["status"]) == ["FINISHED", "FINISHED"]
    assert list(frame["metrics.acc"]) == pytest.approx([0.999, 0.99])
    assert list(frame["experiment_id"]) == ["exp", "exp"]
    by_name = mlflow.search_runs(filter_string="tags.mlflow.runName = 'lr-0.1'")
    assert list(by_name["params.lr"]) == [0.1]
    assert mlflow.search_runs(filter_string="metrics.acc > 2").empty


def test_mlflow_failed_run_nested_and_resume(tmp_path):
    mlflow = runstore.mlflow
    mlflow.set_tracking_uri(str(tmp_path / "ml.runs"))
    with pytest.raises(KeyError):
        with mlflow.start_run(run_name="bad") as bad:
            mlflow.log_metric("loss", 1.0)
            raise KeyError("boom")
    assert bad.info.status == "KILLED" and bad.run.status_name == "CANCELLED"
    assert "cancelled by KeyError" in bad.run.description
    assert bad.run.output_values == [{"loss": 1.0}]  # the latest metrics, kept
    with mlflow.start_run(run_name="parent") as parent:
        with pytest.raises(runstore.InvalidInput, match="nested=True"):
            mlflow.start_run()
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run() is child
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert mlflow.active_run() is None
    with mlflow.start_run(run_id=parent.info.run_id) as resumed:
        mlflow.log_param("more", 1)
    assert resumed.run == parent.run and parent.run.parameters["more"] == 1
    mlflow.start_run(run_name="manual")
    mlflow.end_run(status="FAILED")
    assert runstore.Run.from_url(f"{tmp_path / 'ml.runs'}/Default/runs/manual").status_name == "CANCELLED"


# ------------------------------------------------------------------------------------------
# Every shape reads back through the others and through the CLI


def cli(*args):
    """The runstore command line (the console script's entry, or cargo's binary)."""
    exe = os.environ.get("RUNSTORE_CLI")
    if exe is None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for candidate in ("target/release/runstore", "target/debug/runstore"):
            path = os.path.join(root, candidate)
            if os.path.exists(path):
                exe = path
                break
    if exe is None:
        pytest.skip("no runstore binary (build it with cargo build --release)")
    return subprocess.run([exe, *args], capture_output=True, text=True, check=True).stdout


def test_every_shape_reads_back_through_the_others(tmp_path):
    path = str(tmp_path / "all.runs")
    run = runstore.init(project="shapes", name="wandb", config={"lr": 0.1}, root_url=path)
    runstore.log({"loss": 0.5}, step=0)
    runstore.summary["acc"] = 0.8
    runstore.finish()
    with runstore.SummaryWriter(path, project_name="shapes", run_name="tb") as writer:
        writer.add_scalar("loss", 0.4, 0)
        writer.add_hparams({"lr": 0.2}, {"acc": 0.85})
    runstore.mlflow.set_tracking_uri(path)
    runstore.mlflow.set_experiment("shapes")
    with runstore.mlflow.start_run(run_name="mlflow"):
        runstore.mlflow.log_params({"lr": 0.3})
        runstore.mlflow.log_metric("loss", 0.3, step=0)
        runstore.mlflow.log_metric("acc", 0.9, step=0)
    # 3LC's Run, by url
    for name, lr in (("wandb", 0.1), ("tb", 0.2), ("mlflow", 0.3)):
        r = runstore.Run.from_url(f"{path}/shapes/runs/{name}")
        assert r.parameters["lr"] == lr and r.status_name == "COMPLETED"
        assert history(r)["loss"][0] == pytest.approx(0.6 - lr)
    # MLflow's search over all three
    frame = runstore.mlflow.search_runs(order_by=["params.lr"])
    assert list(frame["tags.mlflow.runName"]) == ["wandb", "tb", "mlflow"]
    assert list(frame["metrics.acc"]) == pytest.approx([0.8, 0.85, 0.9])
    # wandb's config and summary on a run found by name
    tb = runstore.Run.from_names("tb", "shapes", root_url=path)
    assert tb.config["lr"] == 0.2 and tb.summary["acc"] == 0.85
    runstore._close_all()
    # the CLI
    lines = cli("runs", path, "--project", "shapes", "--json").splitlines()
    listed = {row["name"]: row for row in map(json.loads, lines)}
    assert sorted(listed) == ["mlflow", "tb", "wandb"]
    assert listed["tb"]["params"]["lr"] == 0.2 and listed["mlflow"]["status"] == "COMPLETED"
