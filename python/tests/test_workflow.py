"""3LC's workflow around ``Run``: urls and roots, the process's active run and the module-level
calls on it, the seed's types (float status, ISO times, constants), and set_parameters."""

from __future__ import annotations

import datetime as dt
import os

import pytest

import runstore


@pytest.fixture(autouse=True)
def fresh_process_state(tmp_path, monkeypatch):
    """Each test starts with no store open, no active run, and the default store in tmp."""
    runstore._close_all()
    runstore._active.set_current(None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNSTORE_PATH", raising=False)
    yield
    runstore._close_all()
    runstore._active.set_current(None)


# ------------------------------------------------------------------------------------------
# 1. Urls and roots


def test_from_url_with_a_store_path_opens_that_store(tmp_path):
    path = tmp_path / "exp.runs"
    with runstore.open(path) as store:
        store.init(project_name="my-project", run_name="r1", parameters={"lr": 0.1})
    run = runstore.Run.from_url(f"{path}/my-project/runs/r1")
    assert run.url == "my-project/runs/r1"
    assert run.parameters == {"lr": 0.1}
    assert os.path.samefile(run.store.path, path)
    # relative, as the issue writes it
    again = runstore.Run.from_url("exp.runs/my-project/runs/r1")
    assert again == run  # the open handle is reused


def test_from_url_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(runstore.InvalidUrl, match="project>/runs/<run>"):
        runstore.Run.from_url("exp.runs/my-project/r1")
    with pytest.raises(runstore.NotFound, match="nope.runs"):
        runstore.Run.from_url("nope.runs/p/runs/r")
    assert not (tmp_path / "nope.runs").exists()  # a lookup never creates a store
    with runstore.open(tmp_path / "exp.runs") as store:
        store.init(project_name="p", run_name="r")
    with pytest.raises(runstore.NotFound):
        runstore.Run.from_url("exp.runs/p/runs/missing")


def test_from_names_with_root_url(tmp_path):
    with runstore.open(tmp_path / "exp.runs") as store:
        store.init(project_name="p", run_name="r", description="d")
    run = runstore.Run.from_names("r", "p", root_url="exp.runs")
    assert run.description == "d"
    run = runstore.Run.from_names(run_name="r", project_name="p", root_url=tmp_path / "exp.runs")
    assert run.url == "p/runs/r"
    with pytest.raises(runstore.InvalidInput, match="run_name"):
        runstore.Run.from_names(project_name="p", root_url="exp.runs")


def test_copy_into_another_store_created_if_missing(tmp_path):
    with runstore.open(tmp_path / "a.runs") as store:
        run = store.init(project_name="p", run_name="r", parameters={"lr": 0.5})
        run.add_output_value({"epoch": 1, "acc": 0.9})
        run.add_metrics_data({"loss": [0.1, 0.2, 0.3]})
        run.put_bulk("weights", b"\x00\x01\x02")
        # the seed's positional order: copy(run_name, project_name, root_url, if_exists)
        copy = run.copy("r2", "q", str(tmp_path / "other.runs"), "raise")
        assert os.path.samefile(copy.store.path, tmp_path / "other.runs")
        assert copy.url == "q/runs/r2"
        assert copy.parameters == {"lr": 0.5}
        assert copy.output_values == [{"epoch": 1, "acc": 0.9}]
        assert copy.bulk("weights") == b"\x00\x01\x02"
        assert copy.metrics_tables[0].to_numpy("loss").tolist() == pytest.approx([0.1, 0.2, 0.3])
        with pytest.raises(runstore.AlreadyExists):
            run.copy("r2", "q", str(tmp_path / "other.runs"))
        renamed = run.copy("r2", "q", str(tmp_path / "other.runs"), "rename")
        assert renamed.url.startswith("q/runs/r2_") and renamed.url != copy.url
    # the copy is in the other file, readable on its own
    with runstore.open(tmp_path / "other.runs", read_only=True) as other:
        assert other.run("q/runs/r2").parameters == {"lr": 0.5}


def test_copy_precedence_names_over_destination_url(tmp_path):
    with runstore.open(tmp_path / "a.runs") as store:
        run = store.init(project_name="p", run_name="r")
        # names win over destination_url (the seed's order), no error
        copy = run.copy(run_name="by-name", destination_url="p/runs/by-url")
        assert copy.url == "p/runs/by-name"
        # destination_url with a store path in it
        far = run.copy(destination_url=f"{tmp_path / 'b.runs'}/x/runs/y")
        assert far.url == "x/runs/y"
        assert os.path.samefile(far.store.path, tmp_path / "b.runs")
        # nothing given: next to the source
        assert run.copy().url == "p/runs/r_0000"
        # the old positional form copy(name, project, if_exists) still reads as if_exists
        assert run.copy("by-name", "p", "rename").url == "p/runs/by-name_0000"


def test_init_with_root_url_and_the_default_store(tmp_path, monkeypatch):
    run = runstore.init(project_name="p", run_name="r", root_url="exp.runs")
    assert os.path.samefile(run.store.path, tmp_path / "exp.runs")
    run.store.close()
    # no root, nothing open: ./runs.runs
    run = runstore.init(project_name="p")
    assert os.path.samefile(run.store.path, tmp_path / "runs.runs")
    run.store.close()
    # RUNSTORE_PATH names the default store
    monkeypatch.setenv("RUNSTORE_PATH", str(tmp_path / "env.runs"))
    assert runstore.default_store_path() == str(tmp_path / "env.runs")
    run = runstore.init(project_name="p")
    assert os.path.samefile(run.store.path, tmp_path / "env.runs")


# ------------------------------------------------------------------------------------------
# 2. The active run is used


def test_module_level_calls_act_on_the_active_run(tmp_path):
    run = runstore.init(project_name="p", run_name="r", root_url="s.runs")
    assert runstore.active_run() == run
    runstore.add_output_value({"epoch": 1, "loss": 0.5})
    runstore.log({"loss": 0.4}, step=0)
    runstore.log({"loss": 0.3})
    runstore.set_status_running()
    assert run.status_name == "RUNNING"
    runstore.set_status_collecting()
    runstore.set_status_post_processing()
    runstore.set_status_paused()
    runstore.set_status_empty()
    runstore.set_status_cancelled()
    runstore.set_status_completed()
    assert run.status == 1.0 and run.status_name == "COMPLETED"
    run.flush_log()
    assert run.output_values == [{"epoch": 1, "loss": 0.5}]
    steps = run.log_table.to_arrow().to_pydict()
    assert steps["step"] == [0, 1] and steps["loss"] == pytest.approx([0.4, 0.3])


def test_active_run_is_per_process_not_per_store(tmp_path):
    a = runstore.open(tmp_path / "a.runs")
    b = runstore.open(tmp_path / "b.runs")
    ra = a.init(project_name="p", run_name="ra")
    rb = b.init(project_name="p", run_name="rb")
    assert runstore.active_run() == rb
    a.set_active_run(ra)  # on a handle that is not the one opened last
    assert runstore.active_run() == ra
    runstore.add_output_value({"x": 1})
    assert ra.output_values == [{"x": 1}] and rb.output_values == []
    runstore.set_active_run(f"{tmp_path / 'b.runs'}/p/runs/rb")
    assert runstore.active_run() == rb
    b.close()
    with pytest.raises(runstore.NoActiveRun):
        runstore.active_run()


def test_no_active_run_is_a_clear_error():
    with pytest.raises(runstore.NoActiveRun, match="runstore.init"):
        runstore.add_output_value({"x": 1})
    with pytest.raises(runstore.NoActiveRun):
        runstore.log({"x": 1.0})


def test_module_level_reduction_on_the_active_run(tmp_path):
    import numpy as np

    run = runstore.init(project_name="p", run_name="r", root_url="s.runs")
    rng = np.random.default_rng(0)
    run.add_metrics_data({"emb": rng.normal(size=(64, 8)).astype(np.float32)})
    mapping = runstore.reduce_embeddings_per_dataset(method="pca", n_components=2)
    assert len(mapping) == 1
    reduced = run.store.table(next(iter(mapping.values())))
    assert "emb_pca" in reduced.schema.names
    data = run.store.create_table("p", "inputs", {"x": list(range(16))})
    infos = run.add_metrics_data(
        {"emb": rng.normal(size=(16, 8)).astype(np.float32)}, input_table_url=data
    )
    mapping = runstore.reduce_embeddings_by_foreign_table_url(
        data.url, delete_source_tables=False, method="pca", n_components=2
    )
    assert infos[0]["url"] in mapping


# ------------------------------------------------------------------------------------------
# 5. The seed's types and defaults


def test_status_is_a_float_code_that_equals_its_name(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        run = store.init(project_name="p")
        assert isinstance(run.status, float)
        assert run.status == 2.0 and run.status == "EMPTY" and run.status == "empty"
        assert run.status_name == "EMPTY" and run.status_code == 2
        run.set_status(3.0)
        assert run.status == 3.0 and run.status.name == "RUNNING"
        assert run.status != "COMPLETED"
        assert {run.status: 1}[3.0] == 1  # hashes as the float


def test_created_and_last_modified_are_iso_strings(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        run = store.init(project_name="p")
        created = dt.datetime.fromisoformat(run.created)
        assert created.tzinfo is not None
        assert int(created.timestamp() * 1_000_000) == pytest.approx(run.created_us, abs=1)
        assert dt.datetime.fromisoformat(run.last_modified) >= created
        assert isinstance(run.created_us, int) and isinstance(run.last_modified_us, int)


def test_constants_and_init_parameters(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        table = store.create_table("p", "data", {"x": [1, 2]})
        run = store.init(project_name="p", run_name="r", parameters={"lr": 0.1})
        run.add_input_table(table)
        run.add_input_value({"seed": 3})
        run.add_output_value({"acc": 0.5})
        assert run.constants == {
            "parameters": {"lr": 0.1},
            "inputs": [{"input_table_url": "p/tables/data"}, {"seed": 3}],
            "outputs": [{"acc": 0.5}],
        }
        init = run.init_parameters
        assert init["url"] == "p/runs/r" and init["status"] == 2.0
        assert init["constants"] == run.constants and init["created"] == run.created


def test_stream_name_empty_is_the_default_stream(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        run = store.init(project_name="p")
        infos = run.add_metrics_data({"loss": [0.1]}, stream_name="")
        assert infos[0]["stream_name"] == run.metrics_infos[0]["stream_name"]


def test_set_parameters_sets_top_level_keys_as_dict_update(tmp_path):
    with runstore.open(tmp_path / "s.runs") as store:
        run = store.init(project_name="p", parameters={"lr": 0.1, "opt": {"name": "sgd", "m": 0.9}})
        run.set_parameters({"opt": {"name": "adam"}, "bs": 32})
        # as the docstring says: top-level keys set, a nested dict replaced whole, others kept
        assert run.parameters == {"lr": 0.1, "opt": {"name": "adam"}, "bs": 32}
        doc = " ".join(runstore.Run.set_parameters.__doc__.split())
        assert "replaces the stored one whole" in doc


def test_reduce_takes_the_seeds_kwargs_and_names_them_on_a_typo(tmp_path):
    import numpy as np

    with runstore.open(tmp_path / "s.runs") as store:
        run = store.init(project_name="p")
        run.add_metrics_data({"emb": np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)})
        with pytest.raises(TypeError, match="'n_component'.*takes delete_source_tables and method, n_components"):
            run.reduce_embeddings_per_dataset(n_component=2)
        with pytest.raises(TypeError, match="'metod'"):
            run.reduce_embeddings_by_foreign_table_url("p/tables/x", metod="pca")
        with pytest.raises(TypeError, match="'bogus'"):
            runstore.reduce_embeddings_per_dataset(run=run, bogus=1)
        mapping = run.reduce_embeddings_per_dataset(False, method="pca", n_components=3, columns="emb")
        (reduced,) = mapping.values()
        assert store.table(reduced).schema.field("emb_pca").type.list_size == 3
