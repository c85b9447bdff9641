"""The published schema matches the models; templates and schema ship inside the wheel; startup stays light."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from finetune.schema import SCHEMA_FILE, spec_json_schema_text

ROOT = Path(__file__).resolve().parents[1]


def test_checked_in_schema_is_in_sync():
    checked_in = (ROOT / "specs" / SCHEMA_FILE).read_text()
    assert checked_in == spec_json_schema_text(), "run: finetune schema --out specs/finetune-v1.schema.json"


def test_examples_point_at_the_schema():
    for example in (ROOT / "examples").glob("*.yaml"):
        first = example.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), example
        assert first.endswith(SCHEMA_FILE)


def test_schema_validates_the_example_shape():
    schema = json.loads(spec_json_schema_text())
    assert schema["properties"]["apiVersion"]["const"] == "finetune/v1"
    assert "additionalProperties" in schema["$defs"]["ComputeSpec"]


def test_validate_and_offline_plan_import_no_heavy_package(tmp_path):
    code = """
import sys
from finetune.cli import main
for argv in (["validate", sys.argv[1]], ["plan", sys.argv[1], "--offline", "--json"]):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, exc.code
heavy = sorted(m for m in ("azure.ai.ml", "mlflow", "datasets", "torch", "transformers") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "phi3-ultrachat.yaml")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stderr


@pytest.mark.skipif(os.environ.get("FINETUNE_SKIP_WHEEL_TEST") == "1", reason="wheel build disabled")
def test_wheel_carries_templates_and_schema(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("finetune-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "finetune/_templates/init.yaml.j2" in names
    assert "finetune/_templates/plan.md.j2" in names
    assert f"finetune/_specs/{SCHEMA_FILE}" in names
    assert "finetune/catalog/data/vm_sizes.json" in names
    # Rendering works from the unpacked wheel alone, not from the checkout.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("from finetune.render.templates import render_template, templates_dir;"
             "print(templates_dir()); print(render_template('init.yaml.j2', target='local', name='x', schema_url='u'))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(target)}, timeout=60)
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout.splitlines()[0]
    assert "apiVersion: finetune/v1" in run.stdout
