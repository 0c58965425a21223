"""``MetricsTableWriter`` and ``collect_metrics``: streamed metrics tables joined to an input
table, with the shipped numpy collectors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import runstore


@pytest.fixture
def store(tmp_path):
    runstore._active.set_current(None)
    with runstore.open(tmp_path / "c.runs") as s:
        yield s


def input_table(store, rows=1000, classes=5, width=8, seed=0):
    rng = np.random.default_rng(seed)
    return store.create_table(
        "p",
        f"data{rows}",
        {
            "label": rng.integers(0, classes, rows).astype(np.int32),
            "features": rng.normal(size=(rows, width)).astype(np.float32),
        },
    )


# ------------------------------------------------------------------------------------------
# MetricsTableWriter


def test_writer_streams_batches_and_rows_into_one_table(store):
    run = store.init(project_name="p", run_name="r")
    with runstore.MetricsTableWriter(run, rows_per_batch=3) as writer:
        writer.add_batch({"loss": np.array([0.1, 0.2]), "id": [0, 1]})
        writer.add_batch(pa.table({"loss": pa.array([0.3], pa.float32()), "id": [2]}))  # cast
        for i in range(3, 10):
            writer.add_row({"loss": i / 10, "id": i})
        assert writer.url is not None
    table = writer.finalize()
    assert writer.finalized and writer.rows_written == 10
    assert table.num_rows == 10
    assert table.to_numpy("id").tolist() == list(range(10))
    assert table.to_numpy("loss") == pytest.approx([0.1, 0.2, 0.3] + [i / 10 for i in range(3, 10)])
    assert table.url in [t.url for t in run.metrics_tables]
    run.add_metrics_table(table)  # as the 3LC guide does: harmless
    assert [t.url for t in run.metrics_tables].count(table.url) == 1


def test_writer_joined_to_an_input_table_numbers_rows_and_checks_ids(store):
    data = input_table(store, rows=10)
    run = store.init(project_name="p")
    with runstore.MetricsTableWriter(run, foreign_table_url=data) as writer:
        writer.add_batch({"loss": np.arange(6, dtype=np.float32)})
        writer.add_batch({"loss": np.arange(4, dtype=np.float32)})
    table = writer.finalize()
    assert table.to_numpy("example_id").tolist() == list(range(10))
    assert table.info()["foreign_table_url"] == data.url

    writer = runstore.MetricsTableWriter(run, foreign_table_url=data.url)
    writer.add_batch({"example_id": [3, 1], "loss": [0.1, 0.2]})
    with pytest.raises(runstore.InvalidInput, match="example_id 1 appears more than once"):
        writer.add_batch({"example_id": [1], "loss": [0.3]})
    with pytest.raises(runstore.InvalidInput, match="not a row of the input table"):
        writer.add_batch({"example_id": [10], "loss": [0.3]})
    assert writer.finalize().num_rows == 2  # a partial table is fine with explicit ids

    short = runstore.MetricsTableWriter(run, foreign_table_url=data)
    short.add_batch({"loss": [0.5] * 3})
    with pytest.raises(runstore.RowCountMismatch, match="3 rows"):
        short.finalize()


def test_writer_errors(store):
    run = store.init(project_name="p")
    writer = runstore.MetricsTableWriter(run)
    with pytest.raises(runstore.InvalidInput, match="no rows"):
        writer.finalize()
    writer = runstore.MetricsTableWriter(run, column_schemas={"x": pa.float32()})
    writer.add_batch({"x": [1, 2], "y": ["a", "b"]})
    assert writer._schema.field("x").type == pa.float32()
    with pytest.raises(runstore.SchemaMismatch, match="missing"):
        writer.add_batch({"x": [1.0]})
    with pytest.raises(runstore.InvalidInput, match="column 'x' cannot be cast"):
        writer.add_batch({"x": ["not a number"], "y": ["c"]})
    with pytest.raises(runstore.SchemaMismatch, match="cannot be cast"):
        writer.add_batch({"x": [1.0], "y": [[1, 2]]})
    table = writer.finalize()
    with pytest.raises(runstore.InvalidInput, match="finalized"):
        writer.add_row({"x": 1.0, "y": "c"})
    assert table.num_rows == 2
    with pytest.raises(runstore.NoActiveRun):
        runstore._active.set_current(None)
        runstore.MetricsTableWriter()


def test_writer_keeps_rows_when_the_block_raises(store):
    run = store.init(project_name="p")
    with pytest.raises(RuntimeError):
        with runstore.MetricsTableWriter(run) as writer:
            writer.add_batch({"x": [1.0, 2.0]})
            raise RuntimeError("training crashed")
    assert writer.finalized
    assert run.metrics_tables[0].num_rows == 2


def test_writer_uses_the_active_run_and_a_run_url(store):
    run = store.init(project_name="p", run_name="active")
    with runstore.MetricsTableWriter() as writer:
        writer.add_batch({"x": [1.0]})
    assert writer.url.startswith("p/runs/active/")
    with runstore.MetricsTableWriter(run_url=f"{store.path}/p/runs/active") as writer:
        writer.add_batch({"x": [2.0]})
    assert len(run.metrics_tables) == 2


# ------------------------------------------------------------------------------------------
# collect_metrics


def numpy_model(weights):
    def predict(batch):
        features = batch["features"]
        return {"logits": features @ weights, "embedding": np.tanh(features[:, :4])}

    return predict


def test_collect_metrics_joins_rows_to_the_input_table(store):
    data = input_table(store, rows=1000, classes=5, width=8)
    run = store.init(project_name="p", run_name="r")
    run.set_status_running()
    weights = np.random.default_rng(1).normal(size=(8, 5))
    table = runstore.collect_metrics(
        data,
        [
            runstore.ClassificationCollector(logits_key="logits", top_k=[2]),
            runstore.EmbeddingsCollector(key="embedding"),
            runstore.FunctionCollector(lambda batch: {"norm": np.linalg.norm(batch["features"], axis=1)}, needs_predictions=False),
        ],
        predictor=numpy_model(weights),
        batch_size=96,
        run=run,
        split="val",
        progress=False,
    )
    assert table.url.startswith("p/runs/r/metrics_val_")
    assert table.num_rows == 1000
    assert run.status_name == "RUNNING"  # restored
    assert data.url in run.input_tables
    out = table.to_arrow()
    assert out.column("example_id").to_pylist() == list(range(1000))
    # every row is the input row's own metrics
    src = data.to_arrow()
    labels = src.column("label").to_numpy()
    features = np.stack(src.column("features").to_numpy(zero_copy_only=False))
    logits = features @ weights
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert out.column("loss").to_numpy() == pytest.approx(-log_probs[np.arange(1000), labels], rel=1e-5)
    assert out.column("predicted").to_numpy().tolist() == logits.argmax(axis=1).tolist()
    assert out.column("correct").to_numpy().tolist() == (logits.argmax(axis=1) == labels).tolist()
    top2 = np.argsort(-logits, axis=1)[:, :2]
    assert out.column("top2_correct").to_numpy().tolist() == (top2 == labels[:, None]).any(axis=1).tolist()
    assert out.column("confidence").to_numpy() == pytest.approx(np.exp(log_probs.max(axis=1)), rel=1e-5)
    assert out.column("norm").to_numpy() == pytest.approx(np.linalg.norm(features, axis=1), rel=1e-5)
    embedding = out.schema.field("embedding")
    assert pa.types.is_fixed_size_list(embedding.type) and embedding.type.list_size == 4
    assert embedding.metadata[runstore.ROLE_KEY.encode()] == b"embedding"
    # the joined table reduces like any metrics table
    mapping = run.reduce_embeddings_per_dataset(method="pca", n_components=2)
    assert table.url in mapping


def test_collect_metrics_uses_the_active_run_and_plain_callables(store):
    data = input_table(store, rows=50)
    run = store.init(project_name="p")
    table = runstore.collect_metrics(data.url, lambda batch, _: {"twice": batch["label"] * 2}, batch_size=7)
    assert table.to_numpy("twice").tolist() == (data.to_numpy("label") * 2).tolist()
    assert table.url in [t.url for t in run.metrics_tables]


def test_collect_metrics_errors_name_the_problem(store):
    data = input_table(store, rows=20)
    run = store.init(project_name="p")
    with pytest.raises(runstore.InvalidInput, match="has no 'nope'"):
        runstore.collect_metrics(data, runstore.ClassificationCollector(logits_key="nope"),
                                 predictor=lambda b: {"logits": np.zeros((len(b["label"]), 5))})
    with pytest.raises(runstore.InvalidInput, match="3 rows for a batch of"):
        runstore.collect_metrics(data, lambda b, p: {"x": [1, 2, 3]})
    with pytest.raises(runstore.InvalidInput, match="no column 'target'"):
        runstore.collect_metrics(data, runstore.ClassificationCollector(label_column="target"),
                                 predictor=lambda b: np.zeros((len(b["label"]), 5)))
    with pytest.raises(runstore.InvalidInput, match="batch_size"):
        runstore.collect_metrics(data, lambda b, p: {"x": b["label"]}, batch_size=0)
    assert run.status_name == "EMPTY"
