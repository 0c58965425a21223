"""Issue 18, "Day one" (second half): typos in run queries are errors, one history per run,
bulk data from files and arrays, reduction errors and results, float-only embeddings."""

import re
import subprocess
import sys

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


# -- item 2: one history per run


def test_history_joins_step_tables_by_step(tmp_path):
    path = tmp_path / "h.runs"
    with runstore.open(path) as store:
        run = store.init(project_name="p", run_name="r")
        for step in range(10):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            if step % 5 == 4:
                # A new key per epoch: log() moves to a wider table, history does not split.
                run.log({"val_accuracy": step / 10}, step=step)
        history = run.history()  # includes rows not yet committed by the group commit
        assert history.schema.names == ["step", "loss", "val_accuracy"]
        assert history.column("step").to_pylist() == list(range(10))
        assert history.column("loss").to_pylist() == [1.0 / (s + 1) for s in range(10)]
        assert history.column("val_accuracy").to_pylist() == [
            None, None, None, None, 0.4, None, None, None, None, 0.9
        ]
        assert len([t for t in run.metrics_tables if "/steps_" in t.url]) == 2
    with runstore.open(path, read_only=True) as store:
        run = store.run("p/runs/r")
        frame = run.history().to_pandas()
        assert list(frame.columns) == ["step", "loss", "val_accuracy"]
        assert frame["val_accuracy"].notna().sum() == 2
        only = run.history(keys=["val_accuracy"])
        assert only.schema.names == ["step", "val_accuracy"]
        assert only.column("step").to_pylist() == [4, 5, 6, 7, 8, 9]


def test_scalars_are_numpy_without_padding_and_keep_logged_nan(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        run = store.init(project_name="p", run_name="r")
        run.log({"loss": 3.0})
        run.log({"loss": 2.0, "val_loss": 2.5})
        run.log({"loss": float("nan")})
        run.log({"val_loss": 1.5}, step=10)
        steps, values = run.scalars("loss")
        assert steps.dtype == np.int64 and values.dtype == np.float64
        assert steps.tolist() == [0, 1, 2]
        assert values[:2].tolist() == [3.0, 2.0] and np.isnan(values[2])
        val = run.scalars("val_loss")
        assert val.steps.tolist() == [1, 10] and val.values.tolist() == [2.5, 1.5]


def test_a_later_log_at_the_same_step_wins_in_history(tmp_path):
    with runstore.open(tmp_path / "w.runs") as store:
        run = store.init(project_name="p", run_name="r")
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 0.5}, step=1)
        run.log({"loss": 0.25, "acc": 0.5}, step=1)
        run.log({"acc": 0.75}, step=1)
        history = run.history()
        assert history.to_pydict() == {"step": [0, 1], "loss": [1.0, 0.25], "acc": [None, 0.75]}


def test_history_names_an_unknown_key_and_is_empty_before_any_log(tmp_path):
    with runstore.open(tmp_path / "u.runs") as store:
        run = store.init(project_name="p", run_name="r")
        empty = run.history()
        assert empty.num_rows == 0 and empty.schema.names == ["step"]
        assert run.log_table is None
        run.log({"loss": 1.0})
        with pytest.raises(runstore.NotFound, match="did you mean 'loss'"):
            run.scalars("los")
        with pytest.raises(runstore.NotFound, match="did you mean 'loss'"):
            run.history(keys=["Loss"])


def test_log_after_reopen_carries_on_in_the_same_table(tmp_path):
    path = tmp_path / "r.runs"
    # The first session in another process, as a training script that ended would be.
    first = (
        "import runstore, sys\n"
        "with runstore.open(sys.argv[1]) as store:\n"
        "    run = store.init(project_name='p', run_name='r')\n"
        "    for step in range(3):\n"
        "        run.log({'loss': float(step)})\n"
    )
    subprocess.run([sys.executable, "-c", first, str(path)], check=True)
    with runstore.open(path) as store:
        run = store.run("p/runs/r")
        table = run.log_table
        assert table is not None and table.url == "p/runs/r/steps_0000"
        run.log({"loss": 10.0})  # step 3, not 0: the history is not overwritten
        run.close_log()
        run.log({"loss": 11.0})  # after close_log too
        assert run.log_table.url == "p/runs/r/steps_0000"
        steps, values = run.scalars("loss")
        assert steps.tolist() == [0, 1, 2, 3, 4]
        assert values.tolist() == [0.0, 1.0, 2.0, 10.0, 11.0]
        run.log({"loss": 12.0, "acc": 0.5})  # a new key: a wider table, one history
        assert run.history().column("step").to_pylist() == [0, 1, 2, 3, 4, 5]
    with runstore.open(path, read_only=True) as store:
        run = store.run("p/runs/r")
        assert run.log_table.url == "p/runs/r/steps_0001"
        assert run.history().column("acc").to_pylist() == [None] * 5 + [0.5]


def test_a_user_table_named_like_a_step_table_is_not_history(tmp_path):
    with runstore.open(tmp_path / "t.runs") as store:
        run = store.init(project_name="p", run_name="r")
        run.add_metrics_data({"label": ["x", "y"]}, table_writer_base_name="steps")
        assert run.log_table is None
        assert run.history().num_rows == 0
        run.log({"loss": 1.0})
        assert run.history().to_pydict() == {"step": [0], "loss": [1.0]}


# -- item 3: bulk data from files, file objects and arrays


class _Chunks:
    """A binary file object that records the sizes asked of it."""

    def __init__(self, data):
        self._data = data
        self._at = 0
        self.asked = []

    def read(self, size=-1):
        self.asked.append(size)
        if size < 0:
            size = len(self._data) - self._at
        chunk = self._data[self._at : self._at + size]
        self._at += len(chunk)
        return chunk


def test_put_bulk_takes_a_path_and_a_file_object_streamed_in_chunks(tmp_path):
    payload = bytes(range(256)) * (40 * 1024)  # 10 MiB: three chunks
    source = tmp_path / "model.pt"
    source.write_bytes(payload)
    with runstore.open(tmp_path / "b.runs") as store:
        run = store.init(project_name="p", run_name="r")
        assert run.put_bulk("from-path.pt", source) == len(payload)
        assert run.put_bulk("from-str.pt", str(source)) == len(payload)
        reader = _Chunks(payload)
        assert run.put_bulk("from-file.pt", reader) == len(payload)
        assert reader.asked and all(0 < size <= 4 << 20 for size in reader.asked)
        with open(source, "rb") as file:
            assert run.put_bulk("opened.pt", file) == len(payload)
        for name in ["from-path.pt", "from-str.pt", "from-file.pt", "opened.pt"]:
            assert run.bulk(name) == payload
        with pytest.raises(runstore.NotFound, match="nope.pt"):
            run.put_bulk("x", tmp_path / "nope.pt")
        with open(source, "r", encoding="latin-1") as text:
            with pytest.raises(runstore.InvalidInput, match="binary"):
                run.put_bulk("x", text)
        class Text:
            def read(self, size=-1):
                return "text"

        with pytest.raises(runstore.InvalidInput, match="not bytes: open the file in binary"):
            run.put_bulk("x", Text())

        class Failing:
            def read(self, size=-1):
                raise OSError("disk gone")

        with pytest.raises(OSError, match="disk gone"):
            run.put_bulk("x", Failing())
        with pytest.raises(runstore.InvalidInput, match="is a folder"):
            run.put_bulk("x", tmp_path)
        with pytest.raises(runstore.InvalidInput, match="cannot store a int"):
            run.put_bulk("x", 3)
        assert "x" not in [name for name, _ in run.bulk_list()]


def test_put_bulk_keeps_an_arrays_dtype_and_shape(tmp_path):
    with runstore.open(tmp_path / "a.runs") as store:
        run = store.init(project_name="p", run_name="r")
        arrays = {
            "weights": np.arange(24, dtype=np.float16).reshape(2, 3, 4),
            "fortran": np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
            "strided": np.arange(20, dtype=np.int64)[::3],
            "scalar": np.array(7, dtype=np.uint8),
            "labels": np.array(["cat", "dog"]),
        }
        for name, array in arrays.items():
            run.put_bulk(name, array)
        for name, array in arrays.items():
            back = run.bulk_array(name)
            assert back.dtype == array.dtype and back.shape == array.shape, name
            np.testing.assert_array_equal(back, array)
        # The blob is a .npy file: numpy reads it as one.
        import io

        np.testing.assert_array_equal(np.load(io.BytesIO(run.bulk("weights"))), arrays["weights"])
        with pytest.raises(runstore.InvalidInput, match="pickled"):
            run.put_bulk("objects", np.array([{"a": 1}], dtype=object))
        run.put_bulk("raw", b"not an array")
        with pytest.raises(runstore.InvalidInput, match="not stored from a numpy array"):
            run.bulk_array("raw")


def test_blob_names_may_be_folders_but_not_escape_them(tmp_path):
    with runstore.open(tmp_path / "n.runs") as store:
        run = store.init(project_name="p", run_name="r")
        run.put_bulk("ckpt/epoch-3/model.pt", b"w")
        assert run.bulk("ckpt/epoch-3/model.pt") == b"w"
        assert ("ckpt/epoch-3/model.pt", 1) in run.bulk_list()
        for bad, reason in [
            ("../model.pt", "'.' or '..' segment"),
            ("ckpt/../../x", "'.' or '..' segment"),
            ("ckpt//x", "empty segment"),
            ("/abs", "starts with '/'"),
            ("ckpt/", "ends with '/'"),
            ("", "empty"),
        ]:
            with pytest.raises(runstore.InvalidName, match=re.escape(reason)):
                run.put_bulk(bad, b"x")


def test_stored_reducers_are_listed_apart_from_the_users_blobs(tmp_path):
    with runstore.open(tmp_path / "r.runs") as store:
        run = store.init(project_name="p", run_name="r")
        rng = np.random.default_rng(0)
        run.add_metrics_data({"x": rng.normal(size=(50, 8)).astype(np.float32)})
        run.put_bulk("notes.txt", b"hi")
        run.reduce_embeddings_per_dataset(False, method="pca")
        assert run.bulk_list() == [("notes.txt", 2)]
        reducers = run.reducer_list()
        assert len(reducers) == 1
        (reducer,) = reducers
        assert reducer["name"].startswith("reducer-pca-") and reducer["column"] == "x"
        assert reducer["method"] == "pca" and reducer["n_components"] == 2
        with pytest.raises(runstore.InvalidName, match="reducer-"):
            run.put_bulk("reducer-mine", b"x")




# -- item 4: reduction errors and results


def _embedded_run(store):
    run = store.init(project_name="p", run_name="r")
    rng = np.random.default_rng(1)
    run.add_metrics_data({"x": rng.normal(size=(60, 6)).astype(np.float32), "y": np.arange(60)})
    return run


def test_reducing_a_column_no_table_has_names_the_columns(tmp_path):
    with runstore.open(tmp_path / "c.runs") as store:
        run = _embedded_run(store)
        with pytest.raises(runstore.InvalidInput) as info:
            run.reduce_embeddings_per_dataset(False, method="pca", columns=["nope"])
        message = str(info.value)
        assert "'nope'" in message and "x, y" in message and "embeddings: x" in message
        assert run.metrics_tables[0].url == "p/runs/r/metrics_0000"
        assert run.reducer_list() == []  # nothing fitted, nothing stored


def test_pca_reports_its_explained_variance(tmp_path):
    with runstore.open(tmp_path / "v.runs") as store:
        run = _embedded_run(store)
        result = run.reduce_embeddings_per_dataset(False, method="pca")
        assert dict(result) == {"p/runs/r/metrics_0000": "p/runs/r/metrics_0000_pca"}
        (reducer,) = result.reducers
        ratio = reducer["explained_variance_ratio"]
        assert len(ratio) == 2 and 0 < ratio[1] <= ratio[0] < 1
        assert result.explained_variance_ratio == {"x": ratio}
        assert result.deleted == []
        assert run.reducer_list()[0]["explained_variance_ratio"] == ratio


def test_a_kept_source_stays_listed_and_a_second_reduce_names_what_it_reduces(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        run = _embedded_run(store)
        run.reduce_embeddings_per_dataset(False, method="pca")
        assert [t.url for t in run.metrics_tables] == [
            "p/runs/r/metrics_0000",
            "p/runs/r/metrics_0000_pca",
        ]
        # The same method again: nothing left to reduce (the kept source is done).
        assert run.reduce_embeddings_per_dataset(False, method="pca") == {}
        # Another method reduces the source's `x` (to `x_umap`), not the reduction `x_pca`.
        result = run.reduce_embeddings_per_dataset(False, method="umap", n_neighbors=5)
        assert dict(result) == {"p/runs/r/metrics_0000": "p/runs/r/metrics_0000_umap"}
        assert store.table("p/runs/r/metrics_0000_umap").schema.names == ["x_umap", "y"]
        assert result.explained_variance_ratio == {}
        # A reduction is reduced again only when named, and its name says so.
        result = run.reduce_embeddings_per_dataset(
            False, method="umap", n_neighbors=5, columns=["x_pca"]
        )
        (new,) = result.values()
        assert "x_pca_umap" in store.table(new).schema.names
        # Deleting the sources puts the new table in the source's place.
        other = store.init(project_name="p", run_name="d")
        other.add_metrics_data({"x": np.random.default_rng(2).normal(size=(30, 4)).astype(np.float32)})
        result = other.reduce_embeddings_per_dataset(True, method="pca")
        assert result.deleted == ["p/runs/d/metrics_0000"]
        assert [t.url for t in other.metrics_tables] == ["p/runs/d/metrics_0000_pca"]


# -- item 5: only float arrays are embeddings


def test_a_2d_integer_array_is_a_list_column_not_an_embedding(tmp_path):
    with runstore.open(tmp_path / "e.runs") as store:
        run = store.init(project_name="p", run_name="r")
        infos = run.add_metrics_data(
            {
                "boxes": np.arange(12, dtype=np.int32).reshape(6, 2),
                "emb": np.ones((6, 2), dtype=np.float64),
                "pairs": [[1, 2]] * 6,
                "floats": [[1.5, 2.0]] * 6,
            }
        )
        table = store.table(infos[0]["url"])
        schema = table.schema
        assert schema.field("boxes").type == pa.list_(pa.int32(), 2)
        assert not schema.field("boxes").metadata
        assert schema.field("pairs").type == pa.list_(pa.int64(), 2)
        assert not schema.field("pairs").metadata
        for name in ["emb", "floats"]:
            assert schema.field(name).metadata[runstore.ROLE_KEY.encode()] == b"embedding"
        np.testing.assert_array_equal(
            table.to_numpy("boxes"), np.arange(12, dtype=np.int32).reshape(6, 2)
        )
        with pytest.raises(runstore.InvalidInput, match="complex"):
            run.add_metrics_data({"z": np.ones((2, 2), dtype=np.complex64)})
