"""`finetune status` material: a run's metrics as text and PNG; the state folder layout."""

from finetune.backends.local.layout import StateLayout, safe_name


def test_training_report(trained_job, tracking_uri, tmp_path):
    from finetune.backends.local.report import training_report

    report = training_report(tracking_uri, trained_job["status"].mlflow_run_id, png_path=tmp_path / "loss.png")
    assert report.last["loss"] == report.histories["loss"][-1][1]
    assert report.sparkline and "loss" in report.chart.splitlines()[-1]
    assert report.png_path.read_bytes()[:4] == b"\x89PNG"


def test_layout(tmp_path):
    layout = StateLayout(tmp_path)
    assert layout.tracking_uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert layout.job_dir("sha256:ab/c").parent == tmp_path.resolve() / "jobs"
    assert layout.server_state("deployment.chat/demo").name == "deployment.chat_demo.json"
    assert safe_name("..") == "unnamed"
