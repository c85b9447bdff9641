"""A registry model or component that does not exist: one line naming the registry, close names and the versions
there are, from `finetune plan` against the emulator; the 404 is asked once, never retried."""

from __future__ import annotations

import copy

from test_apply import edit, run

MODEL = "Phi-3-mini-4k-instruct"


def plan_error(capsys, spec, old: str, new: str) -> str:
    """`finetune plan` of the spec with one edit: it fails with exactly one error line, no traceback."""
    edit(spec, old, new)
    code, out, err = run(capsys, "plan", str(spec))
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("error") or ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _gets(emu, fragment: str) -> list:
    return [r for r in emu.requests if r.method == "GET" and fragment in r.path]


def test_misspelled_catalog_model_is_one_error_before_any_request(emu, workdir, capsys):
    line = plan_error(capsys, workdir / "spec.yaml", f"name: {MODEL}", "name: Phi-3-mini-4k-instuct")
    assert f"did you mean '{MODEL}'" in line and "The specified resource was not found" not in line


def _seed_registry_model(emu, name: str, versions: tuple[str, ...]) -> None:
    """A registry model the offline catalog does not know (the registry is the only one that can suggest it)."""
    models = emu.state["registries"]["azureml"]["models"]
    template = models[MODEL]["versions"]["15"]
    entry = models.setdefault(name, {"versions": {}})
    for i, version in enumerate(versions):
        body = copy.deepcopy(template)
        body["name"] = version
        body["id"] = body["properties"]["modelUri"] = f"azureml://registries/azureml/models/{name}/versions/{version}"
        body["systemData"]["createdAt"] = f"2026-01-0{i + 1}T00:00:00.0000000+00:00"
        entry["versions"][version] = body


def test_misspelled_registry_model_names_the_registry_suggests_and_lists_versions(emu, workdir, capsys):
    _seed_registry_model(emu, "Llama-3.2-1B-Instruct", ("1", "2"))
    line = plan_error(capsys, workdir / "spec.yaml", f"name: {MODEL}", "name: Llama-3.2-1B-Instrct")
    assert "model Llama-3.2-1B-Instrct not found in registry azureml" in line
    assert "did you mean Llama-3.2-1B-Instruct" in line
    assert "(Llama-3.2-1B-Instruct: versions 1, 2; label latest = 2)" in line
    assert "set model.name: Llama-3.2-1B-Instruct" in line
    assert "The specified resource was not found" not in line
    # the SDK's latest-label look-up of the misspelled name is made once (an empty list, never retried) and ours once
    assert len(_gets(emu, "/models/Llama-3.2-1B-Instrct/versions")) == 2


def test_missing_model_version_lists_the_existing_ones_and_is_asked_once(emu, workdir, capsys):
    line = plan_error(capsys, workdir / "spec.yaml",
                      "label: latest            # resolved and shown at plan time; pin with `version: 15`",
                      'version: "99"')
    assert f"model {MODEL} has no version 99 in registry azureml (versions 13, 14, 15; label latest = 15)" in line
    assert "model.version" in line
    assert len(_gets(emu, f"/models/{MODEL}/versions/99")) == 1  # no retry of the 404


def test_misspelled_component_suggests_the_registry_component(emu, workdir, capsys):
    line = plan_error(capsys, workdir / "spec.yaml", "name: chat_completion_pipeline", "name: chat_completion_pipelin")
    assert "component chat_completion_pipelin not found in registry azureml" in line
    assert "did you mean chat_completion_pipeline?" in line
    assert "versions 0.0.81, 0.0.82; label latest = 0.0.82" in line


def test_missing_component_version_lists_versions(emu, workdir, capsys):
    line = plan_error(capsys, workdir / "spec.yaml", "    name: chat_completion_pipeline\n    label: latest",
                      '    name: chat_completion_pipeline\n    version: "0.0.7"')
    assert "component chat_completion_pipeline has no version 0.0.7 in registry azureml" in line
    assert "versions 0.0.81, 0.0.82" in line


def test_an_existing_model_and_component_resolve_without_extra_listing(emu, workdir, capsys):
    code, out, err = run(capsys, "plan", str(workdir / "spec.yaml"))
    assert code == 0, err
    # the helpful listings run only on the failure path
    assert not [r for r in emu.requests if r.method == "GET" and r.path.rstrip("/").endswith("/models")]
    assert not [r for r in emu.requests if r.method == "GET" and r.path.rstrip("/").endswith("/components")]


def test_when_the_registry_cannot_be_listed_the_error_still_names_the_model_and_registry(emu, workdir, capsys):
    emu.faults.add("registry.models.list", "error", status=403, code="AuthorizationFailed",
                   message="The client does not have authorization to list models.")
    line = plan_error(capsys, workdir / "spec.yaml", f"name: {MODEL}", "name: Llama-3.2-1B-Instrct")
    assert "model Llama-3.2-1B-Instrct not found in registry azureml" in line
    assert "check model.name and model.registry" in line
    assert "did you mean" not in line

