"""The local runs reader (sqlite read directly vs MLflow's client, on a store MLflow wrote) and `finetune ui`
(the command it builds; the UI started on a free port answers from the spec's store, then stops)."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import urllib.request

import pytest
from conftest import heavy

from finetune.backends.local import ui
from finetune.backends.local.runs import read_client, read_sqlite
from finetune.backends.local.tracking import client, ensure_experiment, sqlite_uri
from finetune.cli import main
from finetune.spec.load import load_spec


@pytest.fixture
def store(tmp_path):
    """A store as training leaves it: this spec's runs (one failed), a registration run, another spec's run, a
    deleted run, and model versions (one deleted)."""
    heavy()
    uri = sqlite_uri(tmp_path / "mlflow.db")
    c = client(uri)
    experiment = ensure_experiment(c, uri, "finetune-s")
    c.create_registered_model("m")
    ids = []
    for i, status in enumerate(("FINISHED", "FAILED", "FINISHED")):
        inputs = {"model": "tiny", "component": "local-lora", "data": {"train": "ab"},
                  "parameters": {"learning_rate": 0.001 * (i + 1)}}
        run = c.create_run(experiment, run_name=f"ft-s-{i}", tags={
            "finetune.spec": "s", "finetune.fingerprint": f"fp{i}", "finetune.job": f"ft-s-{i}",
            "finetune.inputs": json.dumps(inputs)})
        c.log_param(run.info.run_id, "learning_rate", str(0.001 * (i + 1)))
        c.log_param(run.info.run_id, "train_file", f"/data/{i}.jsonl")  # bookkeeping, not an input
        c.log_metric(run.info.run_id, "loss", 3.0, step=0)
        c.log_metric(run.info.run_id, "loss", 1.0 / (i + 1), step=5)
        c.set_terminated(run.info.run_id, status=status)
        ids.append(run.info.run_id)
    for run_id in (ids[0], ids[2], ids[2]):
        c.create_model_version("m", source="file:///x", run_id=run_id)
    c.delete_model_version("m", "1")  # run 0's version is gone
    registration = c.create_run(experiment, tags={"finetune.spec": "s", "finetune.kind": "registration"})
    other = c.create_run(experiment, tags={"finetune.spec": "other"})
    deleted = c.create_run(experiment, tags={"finetune.spec": "s"})
    c.delete_run(deleted.info.run_id)
    for run in (registration, other):
        c.set_terminated(run.info.run_id)
    return uri, ids


def test_sqlite_reader_agrees_with_mlflows_client(store):
    uri, ids = store
    fast = read_sqlite(uri.removeprefix("sqlite:///"), "finetune-s", "s", "m")
    slow = read_client(uri, "finetune-s", "s", "m")
    key = lambda r: r.name  # noqa: E731
    assert sorted(fast, key=key) == sorted(slow, key=key)
    by_name = {r.name: r for r in fast}
    assert sorted(by_name) == ["ft-s-0", "ft-s-1", "ft-s-2"]  # registration, other spec and deleted runs left out
    assert by_name["ft-s-1"].status == "Failed" and by_name["ft-s-0"].status == "Completed"
    assert by_name["ft-s-2"].metrics == {"loss": pytest.approx(1 / 3)}  # the latest step's value
    assert by_name["ft-s-2"].model == "m@2"  # its oldest live version
    assert by_name["ft-s-0"].model is None  # its version was deleted
    assert by_name["ft-s-1"].params == {"learning_rate": "0.002"}
    assert by_name["ft-s-1"].inputs["parameters"] == {"learning_rate": 0.002}
    assert read_sqlite(uri.removeprefix("sqlite:///"), "no-such-experiment", "s", "m") == []


def test_ui_command_is_mlflow_ui_on_the_store():
    uri = "sqlite:////tmp/x/.finetune/mlflow.db"
    assert ui.ui_command(uri, "127.0.0.1", 5123) == [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--registry-store-uri", uri,
        "--host", "127.0.0.1", "--port", "5123", "--workers", "1",
        "--default-artifact-root", "file:///tmp/x/.finetune/mlartifacts"]


def test_ui_starts_answers_from_the_specs_store_and_stops(tmp_path, store):
    heavy()
    uri, _ = store
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent(f"""\
        apiVersion: finetune/v1
        kind: FineTune
        metadata: {{name: s}}
        target: {{kind: local, local: {{tracking_uri: "{uri}"}}}}
        model: {{tiny: {{layers: 1}}}}
        data: {{source: {{path: data}}, splits: {{train: train}}}}
        registered_model: {{name: m}}
        """))
    from finetune.runs import mlflow_ui

    command, url = mlflow_ui(load_spec(spec, needs_data=False), "127.0.0.1", 0)
    assert command[command.index("--backend-store-uri") + 1] == uri
    port = int(url.rsplit(":", 1)[1])
    proc = ui.start(command, url, timeout=240)
    try:
        query = f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=finetune-s"
        with urllib.request.urlopen(query, timeout=30) as resp:
            assert json.loads(resp.read())["experiment"]["name"] == "finetune-s"
    finally:
        ui.stop(proc)
    assert proc.poll() is not None
    with socket.socket() as s:  # nothing listens any more
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_ui_refuses_the_azureml_target_in_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(textwrap.dedent("""\
        apiVersion: finetune/v1
        kind: FineTune
        metadata: {name: s}
        target: {kind: azureml, azureml: {subscription_id: x, resource_group: y, workspace: z}}
        model: {registry: azureml, name: Phi-3-mini-4k-instruct, version: "15"}
        data: {source: {path: data}, splits: {train: train}}
        compute: {name: gpu-cluster, sku: Standard_NC24ads_A100_v4}
        registered_model: {name: m}
        """))
    with pytest.raises(SystemExit) as info:
        main(["ui", str(spec)])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "this spec targets azureml" in err and "Traceback" not in err
