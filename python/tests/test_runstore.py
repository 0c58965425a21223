"""The Python API: every call, its errors, zero-copy reads, and two processes on one store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pyarrow as pa
import pytest

import runstore


@pytest.fixture
def store(tmp_path):
    with runstore.open(tmp_path / "t.runs") as s:
        yield s


# ------------------------------------------------------------------------------------------
# Store and run lifecycle


def test_open_init_and_context_manager(tmp_path):
    path = tmp_path / "a.runs"
    with runstore.open(path) as store:
        assert store.path == str(path)
        assert not store.read_only
        run = store.init(project_name="mnist", run_name="base", description="d",
                         parameters={"lr": 0.01, "opt": {"name": "adam"}})
        assert run.name == "base"
        assert run.project == "mnist"
        assert run.url == "mnist/runs/base"
        assert run.description == "d"
        assert run.parameters == {"lr": 0.01, "opt": {"name": "adam"}}
        assert run.status == "EMPTY" and run.status_code == 2
        assert run.bulk_data_url.startswith("mnist/runs/base")
        assert run.created_us > 0 and run.last_modified_us >= run.created_us
    assert store.closed
    with pytest.raises(ValueError):
        store.init(project_name="x")
    with runstore.open(path, read_only=True) as again:
        assert again.read_only
        assert again.run("mnist/runs/base").description == "d"
        with pytest.raises(runstore.ReadOnly):
            again.init(project_name="mnist")


def test_generated_names_and_if_exists(store):
    a = store.init(project_name="p")
    assert "-" in a.name
    b = store.init(project_name="p", run_name="r")
    c = store.init(project_name="p", run_name="r")
    assert (b.name, c.name) == ("r", "r_0000")
    with pytest.raises(runstore.AlreadyExists) as info:
        store.init(project_name="p", run_name="r", if_exists="raise")
    assert isinstance(info.value, FileExistsError)
    assert "already exists" in str(info.value)
    d = store.init(project_name="p", run_name="r", if_exists="reuse")
    assert d == b and d.status == "RUNNING"
    e = store.init(project_name="p", run_name="r", if_exists="overwrite")
    assert e.name == "r"
    with pytest.raises(ValueError):
        store.init(project_name="p", if_exists="nope")


def test_invalid_names(store):
    with pytest.raises(runstore.InvalidName) as info:
        store.init(project_name="bad/name")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, runstore.Error)
    assert "bad/name" in str(info.value)


def test_active_run_and_lookup(store):
    with pytest.raises(runstore.NoActiveRun):
        store.active_run()
    a = store.init(project_name="p", run_name="a")
    b = store.init(project_name="p", run_name="b")
    assert store.active_run() == b
    store.set_active_run(a)
    assert store.active_run() == a
    store.set_active_run("p/runs/b")
    assert store.active_run() == b
    assert runstore.Run.from_url("p/runs/a", store) == a
    assert runstore.Run.from_names("a", "p", store) == a
    # The module-level functions use the store opened last.
    assert runstore.active_run() == b
    runstore.set_active_run(a)
    assert runstore.active_run() == a
    c = runstore.init(project_name="p", run_name="c")
    assert store.active_run() == c
    assert runstore.Run.from_url("p/runs/c") == c
    with pytest.raises(runstore.NotFound) as info:
        runstore.Run.from_url("p/runs/missing", store)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("run p/runs/missing not found")
    with pytest.raises(runstore.NotFound):
        runstore.Run.from_names("missing", "p", store)
    with pytest.raises(runstore.InvalidUrl):
        store.run("not-a-url")
    assert {p["name"]: p["run_count"] for p in store.projects()} == {"p": 3}


def test_parameters_inputs_outputs(store):
    run = store.init(project_name="p", run_name="r", parameters={"a": 1})
    run.set_parameters({"b": {"c": [1, 2.5, "x", None, True]}})
    assert run.parameters == {"a": 1, "b": {"c": [1, 2.5, "x", None, True]}}
    run.set_parameters({"a": np.int64(3), "f": np.float32(0.5), "arr": np.arange(3)})
    assert run.parameters["a"] == 3 and run.parameters["f"] == 0.5
    assert run.parameters["arr"] == [0, 1, 2]
    run.set_description("new")
    assert run.description == "new"
    run.add_input_value({"x": 1})
    run.add_input_value({"x": 1})
    run.add_input_value({"x": 2})
    assert run.input_values == [{"x": 1}, {"x": 2}]
    run.add_input_table("p/tables/train")
    assert run.input_tables == ["p/tables/train"]
    run.add_output_value({"epoch": 1, "loss": 0.5})
    run.add_output_values([{"epoch": 2, "loss": 0.4}, {"epoch": 3, "loss": 0.3}])
    assert [v["epoch"] for v in run.output_values] == [1, 2, 3]
    with pytest.raises(TypeError):
        run.add_output_value({"x": object()})
    with pytest.raises(TypeError):
        run.set_parameters({1: 2})


def test_statuses(store):
    run = store.init(project_name="p")
    for name, code in [
        ("running", 3), ("collecting", 4), ("post_processing", 5), ("completed", 1),
        ("empty", 2), ("paused", 6), ("cancelled", 7),
    ]:
        getattr(run, f"set_status_{name}")()
        assert run.status_code == code, name
        assert run.status == name.upper()
    run.set_status(1)
    assert run.status == "COMPLETED"
    run.set_status("paused")
    assert run.status == "PAUSED"
    with pytest.raises(runstore.InvalidStatus) as info:
        run.set_status(9)
    assert isinstance(info.value, ValueError)


def test_copy_and_delete(store):
    run = store.init(project_name="p", run_name="r", parameters={"lr": 0.1})
    run.add_metrics_data({"loss": [0.1, 0.2]})
    copy = run.copy()
    assert copy.name == "r_0000" and copy.parameters == {"lr": 0.1}
    assert len(copy.metrics_tables) == 1
    named = run.copy(run_name="c", project_name="q")
    assert named.url == "q/runs/c"
    with pytest.raises(runstore.AlreadyExists):
        run.copy(run_name="c", project_name="q")
    renamed = run.copy(run_name="c", project_name="q", if_exists="rename")
    assert renamed.name == "c_0000"
    over = run.copy(run_name="c", project_name="q", if_exists="overwrite")
    assert over.url == "q/runs/c"
    by_url = run.copy(destination_url="z/runs/u")
    assert by_url.url == "z/runs/u"
    with pytest.raises(ValueError):
        run.copy(if_exists="skip")
    copy.delete()
    with pytest.raises(runstore.NotFound):
        store.run(copy.url)
    store.delete_run("q/runs/c")
    with pytest.raises(runstore.NotFound):
        store.delete_run("q/runs/c")


def test_blobs(store):
    run = store.init(project_name="p")
    assert run.put_bulk("ckpt.pt", b"abc" * 1000) == 3000
    assert run.bulk("ckpt.pt") == b"abc" * 1000
    assert run.bulk_list() == [("ckpt.pt", 3000)]
    with pytest.raises(runstore.NotFound):
        run.bulk("missing")


# ------------------------------------------------------------------------------------------
# Metrics data in, Arrow out


def test_add_metrics_data_inputs(store):
    run = store.init(project_name="p", run_name="r")
    rng = np.random.default_rng(0)
    emb = rng.random((5, 8), dtype=np.float32)
    infos = run.add_metrics_data(
        {
            "example_id": np.arange(5, dtype=np.int32),
            "loss": np.linspace(0, 1, 5).astype(np.float32),
            "label": ["a", "b", "a", "c", "b"],
            "embedding": emb,
        },
        table_writer_base_name="eval",
        stream_name="val",
    )
    assert len(infos) == 1
    info = infos[0]
    assert info["url"] == "p/runs/r/eval_0000"
    assert info["stream_name"] == "val" and info["row_count"] == 5
    [table] = run.metrics_tables
    assert table.url == info["url"] and table.num_rows == 5 and len(table) == 5
    field = table.schema.field("embedding")
    assert pa.types.is_fixed_size_list(field.type) and field.type.list_size == 8
    assert field.metadata[runstore.ROLE_KEY.encode()] == b"embedding"
    np.testing.assert_array_equal(table.to_numpy("embedding"), emb)
    np.testing.assert_array_equal(table.to_numpy("example_id"), np.arange(5))
    assert table.to_arrow(["label"]).column("label").to_pylist() == ["a", "b", "a", "c", "b"]
    assert table.to_arrow(["loss"], start=1, end=3).num_rows == 2
    assert table.info()["row_count"] == 5
    assert run.metrics_infos[0]["url"] == info["url"]

    # pyarrow table, record batch, pandas, lists of lists (an embedding)
    batch = pa.record_batch({"x": pa.array([1, 2, 3], pa.int64())})
    run.add_metrics_data(batch)
    run.add_metrics_data(pa.Table.from_batches([batch, batch]))
    run.add_metrics_data({"e": [[1.0, 2.0], [3.0, 4.0]]})
    pd = pytest.importorskip("pandas")
    run.add_metrics_data(pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}))
    urls = [t.url for t in run.metrics_tables]
    assert urls == [
        "p/runs/r/eval_0000", "p/runs/r/metrics_0000", "p/runs/r/metrics_0001",
        "p/runs/r/metrics_0002", "p/runs/r/metrics_0003",
    ]
    assert run.metrics_tables[2].num_rows == 6
    assert run.metrics_tables[3].schema.field("e").metadata[runstore.ROLE_KEY.encode()] == b"embedding"
    df = run.metrics_tables[4].to_pandas()
    assert list(df["b"]) == [3, 4]


def test_add_metrics_data_overrides_and_errors(store):
    run = store.init(project_name="p", run_name="r")
    [info] = run.add_metrics_data(
        {"pred": [1, 2, 3]},
        override_column_schemas={"pred": pa.field("pred", pa.int8(), metadata={runstore.ROLE_KEY: "prediction"})},
    )
    field = store.table(info["url"]).schema.field("pred")
    assert field.type == pa.int8()
    assert field.metadata[runstore.ROLE_KEY.encode()] == b"prediction"
    run.add_metrics_data({"p": [1, 2]}, override_column_schemas={"p": pa.float32()})
    with pytest.raises(TypeError):
        run.add_metrics_data({"p": [1]}, override_column_schemas={"p": 3})
    with pytest.raises(runstore.InvalidInput) as info:
        run.add_metrics_data({})
    assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError):
        run.add_metrics_data(42)
    with pytest.raises(runstore.InvalidName):
        run.add_metrics_data({"x": [1]}, table_writer_base_name="a/b")
    with pytest.raises(runstore.InvalidInput):
        run.add_metrics_data({"x": np.zeros((2, 2, 2))})


def test_input_table_join_and_errors(store):
    train = store.create_table("p", "train", {"image": ["a", "b", "c"]})
    assert train.url == "p/tables/train" and train.num_rows == 3
    run = store.init(project_name="p", run_name="r")
    run.add_input_table(train)
    [info] = run.add_metrics_data({"loss": [0.1, 0.2, 0.3]}, input_table_url=train.url)
    table = store.table(info["url"])
    assert table.info()["foreign_table_url"] == "p/tables/train"
    assert "example_id" in table.schema.names
    with pytest.raises(runstore.RowCountMismatch) as mismatch:
        run.add_metrics_data({"loss": [0.1, 0.2]}, input_table_url="p/tables/train")
    assert isinstance(mismatch.value, ValueError)
    assert "2 rows" in str(mismatch.value) and "3" in str(mismatch.value)
    with pytest.raises(FileNotFoundError):
        run.add_metrics_data({"loss": [0.1]}, input_table_url="p/tables/missing")
    assert len(store.tables("p")) == 2


def test_update_metrics_and_add_metrics_table(store):
    a = store.init(project_name="p", run_name="a")
    b = store.init(project_name="p", run_name="b")
    [info] = a.add_metrics_data({"x": [1, 2]})
    b.add_metrics_table(info["url"])
    assert [t.url for t in b.metrics_tables] == [info["url"]]
    b.update_metrics([info])  # already present: not added again
    assert len(b.metrics_infos) == 1
    b.update_metrics([{"url": "s3://bucket/external.parquet", "stream_name": "ext"}])
    assert [i["url"] for i in b.metrics_infos] == [info["url"], "s3://bucket/external.parquet"]
    assert len(b.metrics_tables) == 1  # external entries have no Table
    with pytest.raises(runstore.NotFound):
        b.add_metrics_table("p/runs/a/missing")
    with pytest.raises(runstore.NotFound):
        b.update_metrics([{"url": "p/runs/a/missing"}])
    with pytest.raises(ValueError):
        b.update_metrics([{"stream_name": "x"}])


def test_append_metrics(store):
    run = store.init(project_name="p", run_name="r")
    first = run.append_metrics("eval", {"loss": [1.0, 2.0]})
    assert first["created"] and first["rows_appended"] == 2
    second = run.append_metrics("eval", pa.table({"loss": [3.0]}))
    assert not second["created"] and second["row_count"] == 3
    with pytest.raises(runstore.SchemaMismatch):
        run.append_metrics("eval", {"other": ["x"]})


def test_zero_copy_scan_points_into_the_mapping(tmp_path):
    path = tmp_path / "z.runs"
    with runstore.open(path) as store:
        run = store.init(project_name="p", run_name="r")
        loss = np.arange(100_000, dtype=np.float32)
        run.add_metrics_data({"loss": loss})
        arrow = run.metrics_tables[0].to_arrow(["loss"])
        chunk = arrow.column("loss").chunk(0)
        address = chunk.buffers()[1].address
        real = os.path.realpath(path)
        ranges = []
        with builtins_open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split()
                if len(parts) >= 6 and os.path.realpath(parts[5]) == real:
                    start, end = (int(x, 16) for x in parts[0].split("-"))
                    ranges.append((start, end))
        assert ranges, "the store file is not mapped"
        assert any(start <= address < end for start, end in ranges), (hex(address), ranges)
        np.testing.assert_array_equal(chunk.to_numpy(), loss)
        # to_numpy of a single-chunk column without nulls is a view of the mapping too.
        view = run.metrics_tables[0].to_numpy("loss")
        assert any(start <= view.ctypes.data < end for start, end in ranges)
        np.testing.assert_array_equal(view, loss)
        # The buffers keep the mapping alive after every runstore object is gone.
        del run
    del store
    import gc

    gc.collect()
    assert float(pa.compute.sum(arrow.column("loss")).as_py()) == float(loss.astype(np.float64).sum())


def builtins_open(path):
    import builtins

    return builtins.open(path)


def test_scan_edge_cases(store):
    run = store.init(project_name="p", run_name="r")
    run.add_metrics_data({"a": [1, 2, 3], "b": [1.0, None, 3.0]})
    table = run.metrics_tables[0]
    empty = table.to_arrow(["b"], start=3, end=3)
    assert empty.num_rows == 0 and empty.schema.names == ["b"]
    assert table.to_arrow(["b"]).column("b").null_count == 1
    b = table.to_numpy("b")
    assert b[0] == 1.0 and np.isnan(b[1]) and b[2] == 3.0
    assert table.to_numpy("a", start=1).tolist() == [2, 3]
    with pytest.raises(runstore.Error):
        table.to_arrow(["missing"])
    with pytest.raises(runstore.NotFound):
        store.table("p/runs/r/missing")


# ------------------------------------------------------------------------------------------
# Queries


def test_runs_query_and_to_arrow(store):
    for i, lr in enumerate([0.1, 0.01, 0.001]):
        run = store.init(project_name="sweep", run_name=f"r{i}", parameters={"lr": lr, "opt": {"name": "adam"}})
        run.add_output_value({"acc": 0.5 + i * 0.1})
    store.init(project_name="other", run_name="x")
    runs = store.runs()
    assert len(runs) == 4
    top = store.runs("params.lr < 0.05", order_by="outputs.acc DESC", limit=1)
    assert [r.name for r in top] == ["r2"]
    assert [r.name for r in store.runs(project="sweep", offset=1)] == ["r1", "r2"]
    table = store.runs(project="sweep", order_by="params.lr").to_arrow()
    assert isinstance(table, pa.Table)
    assert table.column("name").to_pylist() == ["r2", "r1", "r0"]
    assert table.column("params.lr").to_pylist() == [0.001, 0.01, 0.1]
    assert table.column("params.opt.name").to_pylist() == ["adam"] * 3
    assert table.column("outputs.acc").to_pylist() == pytest.approx([0.7, 0.6, 0.5])
    chosen = store.runs(project="sweep").to_arrow(["params.lr"])
    assert chosen.schema.names == ["project", "name", "url", "params.lr"]
    with pytest.raises(runstore.InvalidQuery) as info:
        store.runs("params.lr <<< 1")
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------------------------------------
# Per-step logging


def test_log(tmp_path):
    path = tmp_path / "log.runs"
    with runstore.open(path) as store:
        run = store.init(project_name="p", run_name="r")
        for step in range(1000):
            run.log({"loss": 1.0 / (step + 1), "acc": step / 1000})
        run.log({"loss": 0.0, "acc": np.float32(1.0)}, step=5000)
        run.flush_log()
        table = run.log_table
        assert table.url == "p/runs/r/steps_0000"
        arrow = table.to_arrow()
        assert arrow.schema.names == ["step", "loss", "acc"]
        assert arrow.num_rows == 1001
        assert arrow.column("step").to_pylist()[-2:] == [999, 5000]
        with pytest.raises(TypeError):
            run.log({"loss": "high"})
        with pytest.raises(ValueError):
            run.log({"step": 1.0})
        # A new key starts a wider table; earlier keys keep going, a missing key is null.
        run.log({"loss": 0.5, "val_loss": 0.7})
        run.log({"val_loss": 0.6})
    with runstore.open(path, read_only=True) as store:
        tables = store.run("p/runs/r").metrics_tables
        assert [t.url for t in tables] == ["p/runs/r/steps_0000", "p/runs/r/steps_0001"]
        wide = tables[1].to_arrow()
        assert wide.schema.names == ["step", "loss", "acc", "val_loss"]
        assert wide.column("step").to_pylist() == [5001, 5002]
        assert wide.column("loss").to_pylist() == [0.5, None]


def test_log_flushed_at_interpreter_exit(tmp_path):
    path = tmp_path / "exit.runs"
    code = textwrap.dedent(
        f"""
        import runstore
        store = runstore.open({str(path)!r})
        run = store.init(project_name="p", run_name="r")
        for step in range(10):
            run.log({{"loss": step * 0.5}}, step=step)
        # no close: the atexit hook commits the rows
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    with runstore.open(path, read_only=True) as store:
        table = store.run("p/runs/r").metrics_tables[0]
        assert table.to_numpy("loss").tolist() == [i * 0.5 for i in range(10)]


def test_log_from_threads(store):
    run = store.init(project_name="p", run_name="r")

    def work(k):
        for i in range(500):
            run.log({f"t{k}": float(i)})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush()
    assert sum(t.num_rows for t in run.metrics_tables) == 2000


# ------------------------------------------------------------------------------------------
# Embedding reduction


def test_reduce_embeddings(store):
    train = store.create_table("p", "train", {"i": list(range(60))})
    run = store.init(project_name="p", run_name="r")
    rng = np.random.default_rng(1)
    run.add_metrics_data({"embedding": rng.random((60, 8), dtype=np.float32)}, input_table_url=train)
    run.add_metrics_data({"embedding": rng.random((60, 8), dtype=np.float32)}, input_table_url=train)
    mapping = run.reduce_embeddings_per_dataset(delete_source_tables=False, method="pca", n_components=2)
    assert len(mapping) == 2
    for source, reduced in mapping.items():
        table = store.table(reduced)
        assert "embedding_pca" in table.schema.names
        assert table.to_numpy("embedding_pca").shape == (60, 2)
    run2 = store.init(project_name="p", run_name="r2")
    run2.add_metrics_data({"embedding": rng.random((60, 8), dtype=np.float32)}, input_table_url=train)
    mapping2 = run2.reduce_embeddings_by_foreign_table_url(train, method="pca", n_neighbors=5)
    assert len(mapping2) == 1
    [(source, reduced)] = mapping2.items()
    with pytest.raises(runstore.NotFound):  # delete_source_tables defaults to True (3LC)
        store.table(source)
    with pytest.raises(ValueError):
        run2.reduce_embeddings_per_dataset(method="tsne")
    with pytest.raises(runstore.InvalidInput):
        run2.reduce_embeddings_per_dataset(method="pca", n_components=0)


# ------------------------------------------------------------------------------------------
# Two processes


READER = textwrap.dedent(
    """
    import sys, time, runstore
    path, target = sys.argv[1], int(sys.argv[2])
    deadline = time.time() + 60
    seen = 0
    while time.time() < deadline:
        try:
            with runstore.open(path, read_only=True) as store:
                runs = store.runs(project="p")
                if runs:
                    tables = runs[0].metrics_tables
                    seen = sum(t.num_rows for t in tables)
                    if seen >= target:
                        total = sum(float(t.to_numpy("loss").sum()) for t in tables)
                        print(seen, total)
                        sys.exit(0)
        except runstore.NotFound:
            pass
        time.sleep(0.05)
    print("timeout", seen)
    sys.exit(1)
    """
)


def test_two_processes_writer_and_reader(tmp_path):
    path = tmp_path / "two.runs"
    with runstore.open(path) as store:
        run = store.init(project_name="p", run_name="r")
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path), "3000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(30):
            run.add_metrics_data({"loss": np.full(100, float(i), dtype=np.float64)})
        out, err = reader.communicate(timeout=90)
        assert reader.returncode == 0, (out, err)
        rows, total = out.split()
        assert int(rows) == 3000
        assert float(total) == sum(100.0 * i for i in range(30))
        # and a second writer process is refused while this one holds the store
        code = f"import runstore; runstore.open({str(path)!r})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode != 0 and "AlreadyOpen" in proc.stderr


# ------------------------------------------------------------------------------------------
# Errors of opening and of damaged files


def test_open_errors(tmp_path):
    junk = tmp_path / "junk.runs"
    junk.write_bytes(b"hello" * 1000)
    with pytest.raises(runstore.NotAStore) as info:
        runstore.open(junk)
    assert isinstance(info.value, ValueError) and "is not a runstore store" in str(info.value)
    with pytest.raises(FileNotFoundError):
        runstore.open(tmp_path / "missing.runs", create=False)
    with pytest.raises(runstore.NotFound):
        runstore.open(tmp_path / "missing.runs", read_only=True)
    path = tmp_path / "busy.runs"
    with runstore.open(path):
        with pytest.raises(runstore.AlreadyOpen) as busy:
            runstore.open(path, timeout=0.05)
        assert isinstance(busy.value, OSError)


def test_corrupted_segment(tmp_path):
    path = tmp_path / "c.runs"
    marker = np.full(4096, 1234.5678, dtype=np.float64)
    with runstore.open(path) as store:
        run = store.init(project_name="p", run_name="r")
        run.add_metrics_data({"loss": marker})
    data = bytearray(path.read_bytes())
    at = data.find(marker[:4].tobytes())
    assert at >= 0
    data[at + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with runstore.open(path, read_only=True) as store:
        table = store.run("p/runs/r").metrics_tables[0]
        with pytest.raises(runstore.Corrupted) as info:
            table.to_arrow()
        assert "checksum" in str(info.value)


def test_handles_after_close_and_misc(tmp_path):
    store = runstore.open(tmp_path / "m.runs")
    run = store.init(project_name="p", run_name="r")
    assert run.log_table is None
    run.log({"loss": 1.0})
    run.close_log()
    run.log({"loss": 2.0})  # a new logger, carrying on in the same table
    store.flush()
    assert [t.num_rows for t in run.metrics_tables] == [2]
    assert run.metrics_tables[0] == store.table("p/runs/r/steps_0000")
    assert {t["url"] for t in store.tables()} == {"p/runs/r/steps_0000"}
    assert repr(run) == "Run('p/runs/r')" and "m.runs" in repr(store)
    store.close()
    store.close()  # idempotent
    with pytest.raises(ValueError):
        run.log({"loss": 3.0})
    with pytest.raises(runstore.NoActiveRun):
        runstore.active_run()  # no default store any more


def test_gil_released_during_long_calls(store):
    run = store.init(project_name="p", run_name="r")
    table = pa.table({"embedding": runstore.to_arrow_table(
        {"e": np.random.default_rng(0).random((200_000, 64), dtype=np.float32)})["e"]})
    state = {"busy": False, "done": False, "ticks": 0, "elapsed": 0.0}

    def work():
        import time

        state["busy"] = True
        start = time.perf_counter()
        run.add_metrics_data(table)  # 51 MB written and committed, in Rust
        run.reduce_embeddings_per_dataset(delete_source_tables=False, method="pca")
        state["elapsed"] = time.perf_counter() - start
        state["busy"] = False
        state["done"] = True

    import time

    # This thread's loop rate while it has the interpreter to itself.
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.1:
        n += 1
    rate = n / 0.1
    worker = threading.Thread(target=work)
    worker.start()
    while not state["done"]:
        if state["busy"]:
            state["ticks"] += 1
            time.perf_counter()
    worker.join()
    expected = rate * state["elapsed"]
    print(state, expected)
    # With the GIL held through the Rust calls, this thread would run only in the worker's
    # few Python-level switch intervals (5 ms each): a small fraction of `expected`.
    assert state["ticks"] > 0.2 * expected, (state, expected)
