"""The azure-ai-ml SDK's own e2e tests, taken from the sdist of the installed SDK version (PyPI, via pip).

They are not committed: ``python -m tests.sdk_e2e.sdk_tests`` (part of the README's test command, so the test run
itself fetches nothing) downloads the sdist once (sha256-pinned), and
extracts the e2e test files of the areas below plus the helpers they import into ``tests/sdk_e2e/_sdk/`` (ignored by
git). Source: https://pypi.org/project/azure-ai-ml/ (code from Azure/azure-sdk-for-python,
sdk/ml/azure-ai-ml/tests, MIT license, (c) Microsoft Corporation).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE / "_sdk"

# sdist sha256 per SDK version (from pip download; PyPI's published digest).
SDIST_SHA256 = {"1.35.2": "fdb0b51755b70819628792f198e9895af82c9efb4721d731eb7e6119f4c8ff1d"}

AREAS = {
    "compute": "compute/e2etests/test_compute.py",
    "model": "model/e2etests/test_model.py",
    "online_endpoint": "online_services/e2etests/test_online_endpoint.py",
    "online_deployment": "online_services/e2etests/test_online_deployment.py",
    "datastore": "datastore/e2etests/test_datastore.py",
    "data": "dataset/e2etests/test_data.py",
    "command_job": "command_job/e2etests/test_command_job.py",
    "pipeline_job": "pipeline_job/e2etests/test_pipeline_job.py",
    "code": "code_asset/e2etests/test_code.py",
    "component": "component/e2etests/test_component.py",
    "environment": "environment/e2etests/test_environment.py",
}
# What the selected files import besides the SDK (relative to the sdist's tests/).
HELPERS = ("test_utilities/", "pipeline_job/_util.py", "component/_util.py",
           "component/unittests/__init__.py", "component/unittests/test_component_schema.py", "test_configs/")


def sdk_version() -> str:
    return version("azure-ai-ml")


def tests_root() -> Path:
    """Where the extracted tests live (``<root>/tests/...``; the SDK tests expect it as their working directory)."""
    return ROOT / f"azure-ai-ml-{sdk_version()}"


def _wanted(rel: str) -> bool:
    if rel.startswith(HELPERS) or rel in AREAS.values():
        return True
    parts = rel.split("/")  # the packages' __init__.py files on the way to a selected file
    return parts[-1] == "__init__.py" and any(v.startswith("/".join(parts[:-1]) + "/") for v in AREAS.values())


def materialize() -> Path:
    dest = tests_root()
    if (dest / "tests").is_dir():
        return dest
    ver = sdk_version()
    if ver not in SDIST_SHA256:
        raise SystemExit(f"no pinned sdist digest for azure-ai-ml {ver}: add it to SDIST_SHA256 in {__file__}")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"azure-ai-ml=={ver}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("azure_ai_ml-*.tar.gz"))
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SDIST_SHA256[ver]:
            raise SystemExit(f"{sdist.name}: sha256 {digest} != pinned {SDIST_SHA256[ver]}")
        staging = Path(tmp) / "out"
        prefix = f"azure_ai_ml-{ver}/tests/"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()
                       and _wanted(m.name[len(prefix):])]
            tar.extractall(staging, members=members, filter="data")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(dest, ignore_errors=True)
        shutil.move(str(staging / f"azure_ai_ml-{ver}"), dest)
    return dest


if __name__ == "__main__":
    try:
        print(materialize())
    except (SystemExit, OSError, subprocess.CalledProcessError) as exc:  # no index in reach: those tests skip
        print(f"sdk_e2e: could not get the azure-ai-ml e2e tests ({exc}); tests/sdk_e2e will be skipped",
              file=sys.stderr)
