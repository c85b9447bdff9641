"""Run the azure-ai-ml SDK's own e2e tests live against the in-process emulator.

Their fixtures (``client``, ``randstr``, ...) come from here instead of the SDK's recording conftest; each area's
deselections, with the reason, are in ``selection.py``. The test files come from the SDK's sdist
(``python -m tests.sdk_e2e.sdk_tests``); without them this directory is skipped with that instruction.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from tests.sdk_e2e import selection
from tests.sdk_e2e.sdk_tests import tests_root

HERE = Path(__file__).resolve().parent
SDK_ROOT = tests_root()


def _have_sdk_tests() -> bool:
    """The tests are fetched before the run (`python -m tests.sdk_e2e.sdk_tests`, in the README's test command),
    never during it: without them this directory is skipped, with that instruction."""
    if not (SDK_ROOT / "tests").is_dir():
        print("sdk_e2e: the azure-ai-ml e2e tests are not here; get them with `python -m tests.sdk_e2e.sdk_tests` "
              "(skipping them)", file=sys.stderr)
        return False
    return True


HAVE_SDK_TESTS = _have_sdk_tests()

collect_ignore_glob = ["_sdk/*/tests/*/unittests/*", "_sdk/*/tests/test_utilities/*", "_sdk/*/tests/test_configs/*"]
if not HAVE_SDK_TESTS:
    collect_ignore_glob.append("_sdk/*")
else:
    sys.path.insert(0, str(HERE / "shim"))
    sys.path.insert(0, str(SDK_ROOT / "tests"))
    import test_utilities.utils as _sdk_utils  # noqa: E402

    for _config in (HERE / "test_configs").rglob("*"):
        _target = SDK_ROOT / "tests" / "test_configs" / _config.relative_to(HERE / "test_configs")
        if _config.is_file() and _config.name != "README.md" and (
                not _target.exists() or _target.read_bytes() != _config.read_bytes()):
            _target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_config, _target)

    # The emulator's clock runs accelerated: waiting "for the service" in wall time only slows the run.
    _sdk_utils.sleep_if_live = lambda seconds: None


SDK_MARKS = ("core_sdk_test", "data_experiences_test", "disable_mock_code_hash", "e2etest", "mlc", "pipeline_test",
             "production_experiences_test", "training_experiences_test")


def pytest_configure(config):
    for mark in SDK_MARKS:  # the SDK's own test marks (its setup.cfg registers them)
        config.addinivalue_line("markers", f"{mark}: azure-ai-ml e2e test mark")


def pytest_collection_modifyitems(config, items):
    reasons = selection.apply(config, items, SDK_ROOT)
    if os.environ.get("FINETUNE_SDK_E2E_DESELECTED"):  # bench/sdk_e2e.py counts them per area
        Path(os.environ["FINETUNE_SDK_E2E_DESELECTED"]).write_text(json.dumps(reasons))


def pytest_report_header(config):
    if not HAVE_SDK_TESTS:
        return "sdk_e2e: azure-ai-ml e2e tests not present; run `python -m tests.sdk_e2e.sdk_tests` to get them"
    return f"sdk_e2e: azure-ai-ml e2e tests from {SDK_ROOT}"


MISSING_CONFIG = re.compile(r"No such file or directory: '?(\.?/?tests/test_configs/[^'\s]+)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A config the test builds the path of at run time and the sdist lacks: a skip with that reason, not a
    failure of the emulator (the static cases are deselected in selection.py)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and SDK_ROOT in Path(str(item.path)).parents:
        m = MISSING_CONFIG.search(str(call.excinfo.value))
        if m and not (SDK_ROOT / m.group(1)).exists():
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0,
                               f"Skipped: {selection.missing_config_reason(m.group(1))}")


@pytest.fixture(scope="package")
def sdk_emulator():
    from finetune.testing import AzureMLEmulator

    saved = dict(os.environ)
    with AzureMLEmulator(acceleration=1_000_000.0) as emu:
        _workspace_like_the_sdk_tests(emu)
        yield emu
    os.environ.clear()
    os.environ.update(saved)


def _workspace_like_the_sdk_tests(emu) -> None:
    """The SDK's test workspace has clusters named cpu-cluster, testCompute and gpu-cluster, components that
    earlier runs registered there and a data file on its blob store; its tests submit to them and name them without
    a fixture creating them (microsoftsamples_command_component_basic@default,
    microsoftsamplescommandcomponentbasic_nopaths_test:1, azureml://datastores/workspaceblobstore/paths/python/data.csv).
    """
    from azure.ai.ml import load_component
    from azure.ai.ml.entities import AmlCompute

    from finetune.testing.emulator.routes.blob import put_blob

    client = emu.ml_client(polling_interval=0.001)
    for name, size in (("cpu-cluster", "Standard_DS3_v2"), ("testCompute", "Standard_DS3_v2"),
                       ("gpu-cluster", "Standard_NC6s_v3")):
        client.compute.begin_create_or_update(AmlCompute(name=name, size=size, max_instances=2)).result()
    with emu.service.lock:
        put_blob(emu.service, emu.service.cfg["container"], "python/data.csv", b"sepal_length,species\n5.1,setosa\n",
                 content_type="text/csv")
    cwd = os.getcwd()
    os.chdir(SDK_ROOT)
    try:
        client.components.create_or_update(load_component(
            _config("components/helloworld_component.yml"),
            params_override=[{"name": "microsoftsamples_command_component_basic"}]))
        client.components.create_or_update(load_component(_config("components/helloworld_component_no_paths.yml")))
    finally:
        os.chdir(cwd)


def _load_or_create_component(client, path: str):
    """As the SDK's conftest: the component named in the file, created when the workspace lacks it."""
    from azure.ai.ml import load_component
    from azure.core.exceptions import ResourceNotFoundError

    component = load_component(source=path)
    try:
        return client.components.get(component.name, component.version)
    except ResourceNotFoundError:
        return client.components.create_or_update(component)


def _component(rel: str):
    """A fixture like the SDK's: the component in ``test_configs/{rel}``, created when the workspace lacks it."""
    @pytest.fixture
    def fixture(client):
        return _load_or_create_component(client, _config(rel))

    return fixture


hello_world_component = _component("components/helloworld_component.yml")
hello_world_component_no_paths = _component("components/helloworld_component_no_paths.yml")
helloworld_component_with_paths = _component("components/helloworld_component_with_paths.yml")
pipeline_samples_e2e_registered_train_components = _component("dsl_pipeline/e2e_registered_components/train.yml")


@pytest.fixture(autouse=True)
def _sdk_cwd(request, monkeypatch):
    """The SDK tests open ``./tests/test_configs/...`` relative to the SDK package root."""
    if SDK_ROOT in Path(str(request.path)).parents:
        monkeypatch.chdir(SDK_ROOT)


@pytest.fixture
def client(sdk_emulator):
    return sdk_emulator.ml_client(polling_interval=0.001)


@pytest.fixture
def location(sdk_emulator) -> str:
    return sdk_emulator.location


class VariableRecorder:
    def __init__(self) -> None:
        self.variables: dict[str, str] = {}

    def get_or_record(self, name: str, default: str) -> str:
        return self.variables.setdefault(name, default)


@pytest.fixture
def variable_recorder() -> VariableRecorder:
    return VariableRecorder()


@pytest.fixture
def recorded_test():
    """No proxy, no recording: the requests reach the emulator."""


def _names(make):
    """A fixture like the SDK's: ``name -> random name``, the same for the same variable within a test."""
    @pytest.fixture
    def fixture(variable_recorder):
        return lambda name: variable_recorder.get_or_record(name, make())

    return fixture


randstr = _names(lambda: f"test_{random.randint(1, 10**12)}")
rand_compute_name = _names(lambda: f"test{random.randint(1, 10**12)}")
rand_online_name = _names(lambda: f"online-ept-{uuid.uuid4().hex[:15]}")
rand_online_deployment_name = _names(lambda: f"online-dpm-{uuid.uuid4().hex[:15]}")


@pytest.fixture
def storage_account_name(sdk_emulator) -> str:
    return sdk_emulator.service.cfg["storage_account"]


@pytest.fixture
def account_keys() -> tuple[str, str]:
    import base64

    return base64.b64encode(b"primary emulator key").decode(), base64.b64encode(b"secondary emulator key").decode()


def _config(rel: str) -> str:
    return f"./tests/test_configs/{rel}"


@pytest.fixture
def blob_store_file() -> str:
    return _config("datastore/blob_store.yml")


@pytest.fixture
def blob_store_credential_less_file() -> str:
    return _config("datastore/blob_store_credential_less.yml")


@pytest.fixture
def file_store_file() -> str:
    return _config("datastore/file_store.yml")


@pytest.fixture
def adls_gen2_credential_less_file() -> str:
    return _config("datastore/adls_gen2_credential_less.yml")


@pytest.fixture
def resource_group_name(sdk_emulator) -> str:
    return sdk_emulator.resource_group


@pytest.fixture
def data_with_2_versions(client) -> str:
    """Two versions of one data asset, as the SDK's conftest creates them when missing."""
    from azure.ai.ml.entities import Data

    name = "list_data_v2_test"
    for version, path in (("1", "https://bla"), ("2", "http://bla")):
        client.data.create_or_update(Data(name=name, version=version, path=path))
    return name


@pytest.fixture
def enable_pipeline_private_preview_features(mocker):
    """As the SDK's conftest: the pipeline private-preview switches on."""
    for target in ("azure.ai.ml.entities._job.pipeline.pipeline_job", "azure.ai.ml._schema.pipeline.pipeline_component",
                   "azure.ai.ml.entities._schedule.schedule", "azure.ai.ml.dsl._pipeline_decorator",
                   "azure.ai.ml._utils._cache_utils"):
        mocker.patch(f"{target}.is_private_preview_enabled", return_value=True)


@pytest.fixture
def enable_environment_id_arm_expansion(mocker):
    """As the SDK's conftest: environment ids are expanded to ARM ids."""
    mocker.patch("azure.ai.ml._utils.utils.is_private_preview_enabled", return_value=False)


@pytest.fixture(autouse=True)
def _fresh_invoke_headers(monkeypatch):
    """azure-ai-ml's ``online_endpoints.invoke`` writes ``azureml-model-deployment`` into the class-level
    ``EndpointInvokeFields.DEFAULT_HEADER`` dict, so one invoke with a deployment name leaks it into every later
    invoke in the process. The SDK runs its tests in their own process; here other tests ran before."""
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    monkeypatch.setattr(EndpointInvokeFields, "DEFAULT_HEADER",
                        {k: v for k, v in EndpointInvokeFields.DEFAULT_HEADER.items()
                         if k not in (EndpointInvokeFields.MODEL_DEPLOYMENT, EndpointInvokeFields.AUTHORIZATION)})


@pytest.fixture(autouse=True)
def remove_git_props(mocker):
    """As the SDK's conftest does: no git properties of this checkout on submitted jobs."""
    mocker.patch("azure.ai.ml.operations._job_operations.get_git_properties", return_value={})


@pytest.fixture
def snapshot_hash_sanitizer():
    """A recording sanitizer in the SDK's conftest: nothing is recorded here."""


@pytest.fixture
def mock_code_hash():
    """Live runs use the real content hash (the emulator answers the SDK's hash look-up)."""


@pytest.fixture
def mock_asset_name():
    """Live runs keep the SDK's random asset names."""


@pytest.fixture
def mock_component_hash():
    """Live runs keep the SDK's real component hashes."""


@pytest.fixture
def mock_anon_component_version(mocker):
    """As the SDK's conftest does live: each anonymous component gets a fresh version."""
    from azure.ai.ml.constants._common import ANONYMOUS_COMPONENT_NAME

    mocker.patch("azure.ai.ml.entities._component.component.Component._get_anonymous_component_name_version",
                 side_effect=lambda *a, **k: (ANONYMOUS_COMPONENT_NAME, str(uuid.uuid4())))


@pytest.fixture
def mock_set_headers_with_user_aml_token():
    """Live runs send the user's AML token (the emulator's credential issues one)."""
