"""The `finetune` command line: parse arguments, call the layers below, pick a view, map errors to exit codes.

Exit codes: 0 success (no changes with --detailed-exitcode), 1 error, 2 changes present (--detailed-exitcode),
3 plan blocked by preflight, 70 internal error (a bug; details in the debug log), 130 interrupted.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import click

from finetune import __version__
from finetune.errors import FinetuneError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_BLOCKED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130

# pydantic scans every installed package's entry points for plugins on first use (~25 ms, a tenth of
# `finetune validate`); the CLI uses none. An explicit setting by the user still wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# When this command started (set by `run`, before parsing; one per spec in folder mode, each in its own thread):
# the elapsed time the closing line reports is the whole command's, planning and data included.
_started: ContextVar[float | None] = ContextVar("finetune_command_started", default=None)


def command_seconds() -> float:
    return time.monotonic() - click.get_current_context().meta["finetune.started"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Run `finetune COMMAND --help` for a command's options and examples. A spec file describes the "
                    "whole lifecycle; `finetune init` writes a commented one.")
@click.version_option(__version__, prog_name="finetune")
@click.pass_context
def app(ctx: click.Context) -> None:
    """Declarative LLM fine-tuning: one spec file; validate, plan and apply it on Azure ML or locally.

    \b
    Examples:
      finetune init my-model.yaml && finetune validate my-model.yaml
      finetune plan my-model.yaml
      finetune apply my-model.yaml
      finetune plan my-model.yaml --emulate   # an azureml spec, rehearsed against the local emulator
    """
    ctx.meta["finetune.started"] = _started.get() or time.monotonic()


# Options shared by most commands (click decorators, applied bottom-up).
spec_arg = click.argument("spec", type=click.Path(path_type=Path))
json_opt = click.option("--json", "json_out", is_flag=True, help="Machine-readable JSON output.")
emulate_opt = click.option("--emulate", is_flag=True, help="Rehearse against a local Azure ML emulator instead of "
                           "the workspace (an azureml spec; its state is kept under the spec's state folder).")


@contextlib.contextmanager
def _target(loaded, emulate: bool) -> Iterator[Any]:
    """The spec's backend; an emulated one says so, on one stderr line, every time."""
    from finetune.session import open_backend

    with open_backend(loaded, emulate=emulate) as backend:
        if emulate:
            from finetune.console import say
            from finetune.dataprep import state_dir

            say(f"rehearsal: --emulate runs against the local Azure ML emulator ({state_dir(loaded) / 'emulator'}), "
                "not Azure; nothing is created or billed there", "yellow", stderr=True)
        yield backend


def template_opts(command):
    command = click.option("--var-file", type=click.Path(path_type=Path), help="YAML file of template variables.")(
        command)
    return click.option("--var", multiple=True, help="Template variable NAME=VALUE (repeatable).")(command)


def _variables(var: tuple[str, ...] | list[str] | None, var_file: Path | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if var_file is not None:
        import yaml

        try:
            loaded = yaml.safe_load(var_file.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise FinetuneError(f"--var-file {var_file}: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise FinetuneError(f"--var-file {var_file}: must be a mapping of NAME: VALUE")
        values.update(loaded)
    for item in var or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise FinetuneError(f"--var {item!r}: expected NAME=VALUE", hint="e.g. --var epochs=3")
        values[name.strip()] = value
    return values


def _load(spec: Path, var: tuple[str, ...] | None, var_file: Path | None, *, needs_data: bool = True,
          locked: bool = False):
    """The spec; with `locked`, its floating references pinned by the lock file beside it (when there is one)."""
    from finetune.spec.load import load_spec

    loaded = load_spec(spec, variables=_variables(var, var_file), needs_data=needs_data)
    if locked:
        from finetune.workflow import with_lock

        loaded = with_lock(loaded)
    return loaded


def _report_error(exc: FinetuneError, as_json: bool) -> None:
    from finetune.console import print_json, say

    if as_json:
        print_json({"ok": False, "diagnostics": [d.to_dict() for d in exc.diagnostics]})
    for diagnostic in exc.diagnostics:
        say(diagnostic.format(), "red" if diagnostic.severity.value == "error" else "yellow", stderr=True)
    errors = sum(1 for d in exc.diagnostics if d.severity.value == "error")
    if errors > 1:
        say(f"{errors} errors", "bold red", stderr=True)


@app.command(short_help="Check a spec offline: schema, names, SKUs, parameters.")
@spec_arg
@template_opts
@json_opt
def validate(spec: Path, var: tuple[str, ...], var_file: Path | None, json_out: bool) -> None:
    """Check a spec offline: schema, names, SKUs, allow lists, parameters, and the data and model files it refers
    to (read like `data prepare`, nothing written). Every problem at once, with file:line.

    SPEC is a spec file, or a folder: every spec in it is checked.

    \b
    Examples:
      finetune validate examples/phi3-ultrachat.yaml
      finetune validate spec.yaml --var epochs=3 --json
      finetune validate specs/                    # every spec of a folder
    """
    from finetune.console import print_json, say
    from finetune.deepcheck import check_references
    from finetune.errors import Severity, SpecError
    from finetune.spec.load import SpecCheckError

    try:
        loaded = _load(spec, var, var_file)
    except SpecCheckError as exc:
        found = check_references(exc.spec, exc.source, exc.path.parent, broken=exc.broken).diagnostics
        raise SpecError(_errors_first(exc.diagnostics + found)) from None
    report = check_references(loaded.spec, loaded.source, loaded.base_dir)
    if any(d.severity is Severity.ERROR for d in report.diagnostics):
        raise SpecError(_errors_first(report.diagnostics + loaded.warnings))
    warnings = loaded.warnings + report.diagnostics
    if json_out:
        print_json({"ok": True, "spec": loaded.spec.metadata.name, "target": loaded.spec.target.kind.value,
                    "diagnostics": [d.to_dict() for d in warnings],
                    "data_rows": {role: {"valid": v, "selected": n} for role, (v, n) in report.rows.items()}})
        return
    for warning in warnings:
        say(warning.format(), "yellow", stderr=True)
    say(f"{spec}: valid (FineTune {loaded.spec.metadata.name}, target {loaded.spec.target.kind.value})", "green")
    if report.summary:
        say(f"  {report.summary}", "dim")


def _errors_first(diagnostics: list) -> list:
    return sorted(diagnostics, key=lambda d: d.severity.value != "error")


def _say_stderr(message: str) -> None:
    from finetune.console import say

    say(message, "dim", stderr=True)


def _render_plan(result, fmt: str, verbose: bool) -> None:
    from finetune.console import print_json, print_lines

    data = result.to_dict()
    if fmt == "json":
        print_json(data)
    elif fmt == "markdown":
        from finetune.render.templates import render_template

        sys.stdout.write(render_template("plan.md.j2", plan=data))
    elif fmt == "text":
        from finetune.render.plan_text import render_plan

        print_lines(render_plan(data, verbose=verbose))
    else:
        raise FinetuneError(f"--format {fmt!r} is not one of text, markdown, json")


@app.command(short_help="Show what apply would change, why, and what it costs.")
@spec_arg
@click.option("--offline", is_flag=True, help="Do not read the target: show everything as to-create.")
@click.option("--out", type=click.Path(path_type=Path), help="Save the plan (JSON) for `finetune apply PLANFILE`.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              metavar="[text|markdown]", callback=lambda _ctx, _param, value: _deprecated_format(value),
              help="markdown renders the plan for a pull-request comment (JSON: --json).  [default: text]")
@json_opt
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 2 with changes.")
@click.option("--verbose", "-v", is_flag=True, help="Also show unchanged resources.")
@emulate_opt
@template_opts
def plan(spec: Path, offline: bool, out: Path | None, fmt: str, json_out: bool, detailed_exitcode: bool,
         verbose: bool, emulate: bool, var: tuple[str, ...], var_file: Path | None) -> None:
    """Show what apply would create, change or keep, why, and what it will cost.

    \b
    Examples:
      finetune plan spec.yaml
      finetune plan spec.yaml --offline           # without reading the workspace
      finetune plan spec.yaml --out plan.json && finetune apply plan.json
      finetune plan spec.yaml --format markdown   # for a pull-request comment
      finetune plan spec.yaml --json --detailed-exitcode
      finetune plan spec.yaml --emulate           # an azureml spec, against the emulator
    """
    loaded = _load(spec, var, var_file, locked=True)
    fmt = "json" if json_out else fmt
    if offline:
        from finetune.workflow import offline_plan

        result = offline_plan(loaded)
    else:
        from finetune.workflow import plan_against_target

        with _target(loaded, emulate) as backend:
            result = plan_against_target(loaded, backend, _say_stderr if fmt == "text" else lambda _m: None).plan
    if out is not None:
        out.write_text(result.to_json())
    _render_plan(result, fmt, verbose)
    if result.blocked:
        raise click.exceptions.Exit(EXIT_BLOCKED)
    if detailed_exitcode and result.has_changes:
        raise click.exceptions.Exit(EXIT_CHANGES)


def _deprecated_format(value: str) -> str:
    """`--format json` still works (scripts use it) but is no longer offered: --json is the one way to ask."""
    if value == "json":
        from finetune.console import say

        say("warning: `--format json` is deprecated and will be removed: use --json", "yellow", stderr=True)
    return value


def _confirm(question: str, auto_approve: bool) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise FinetuneError("confirmation needed but stdin is not a terminal", hint="pass --auto-approve")
    if not click.confirm(question, default=False):
        from finetune.console import say

        say("cancelled: nothing was changed", "yellow", stderr=True)
        raise click.exceptions.Exit(EXIT_ERROR)


def _print_result(result, json_out: bool) -> None:
    from finetune.console import print_json, say

    if json_out:
        print_json(result.to_dict())
        return
    failed = result.failed()
    for step in failed:
        say(f"error: {step.address}: {step.message}" + (f" ({step.hint})" if step.hint else ""), "red", stderr=True)
    skipped = [s for s in result.steps.values() if s.status == "skipped"]
    if skipped:
        say(f"skipped {len(skipped)}: " + ", ".join(s.address for s in skipped), "yellow", stderr=True)
    if any(s.status == "interrupted" for s in result.steps.values()):
        say("interrupted: what was started keeps running in the target; run the same command again to resume",
            "yellow", stderr=True)


auto_approve_opt = click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")


@app.command(short_help="Create or update what the spec describes; resumable.")
@spec_arg
@auto_approve_opt
@click.option("--detach", is_flag=True, help="Submit training and do everything that does not wait on it, then "
              "exit; the next apply carries on (for CI runners that stop before training ends).")
@json_opt
@emulate_opt
@template_opts
def apply(spec: Path, auto_approve: bool, detach: bool, json_out: bool, emulate: bool, var: tuple[str, ...],
          var_file: Path | None) -> None:
    """Create or update everything the spec describes, in dependency order; safe to interrupt and re-run.

    SPEC is the spec file, a plan saved with `finetune plan --out`, or a folder of specs (with --auto-approve).

    \b
    Examples:
      finetune apply spec.yaml
      finetune apply spec.yaml --auto-approve --detach   # in CI: submit, exit; a later apply finishes
      finetune plan spec.yaml --out plan.json && finetune apply plan.json
      finetune apply spec.yaml --emulate                 # an azureml spec, rehearsed against the emulator
    """
    from finetune.console import say
    from finetune.render.progress import order_summary, progress_printer
    from finetune.session import lock_for
    from finetune.workflow import apply_plan, check_saved_plan, plan_against_target, write_first_lock

    saved = _saved_plan(spec)
    if saved is not None:
        _check_plan_emulation(spec, saved, emulate)
    loaded = _load(Path(saved.spec_path) if saved else spec, var, var_file, locked=True)
    log = (lambda _m: None) if json_out else _say_stderr
    with _target(loaded, emulate) as backend, lock_for(loaded, backend) as held:
        if held.taken_over is not None:
            old = held.taken_over
            log(f"took over the lock left by {old.command} pid {old.pid} (started {old.started}), which is no longer "
                "running")
        planned = plan_against_target(loaded, backend, log)
        if saved is not None:
            check_saved_plan(saved, planned.plan)
        written = write_first_lock(loaded, planned)
        if written:
            log(f"wrote {written}: it pins what the floating references resolved to; commit it with the spec")
        if not json_out:
            _render_plan(planned.plan, "text", False)
        if planned.plan.blocked:
            raise click.exceptions.Exit(EXIT_BLOCKED)
        if planned.plan.has_changes or any(c.action.value == "read" for c in planned.plan.changes):
            if saved is None:
                _confirm("Apply these changes?", auto_approve)
        elif not json_out:
            say("Nothing to do: everything is up to date.", "green")
        if planned.plan.has_changes:
            log(f"order: {order_summary(planned.plan)}")
        result = apply_plan(planned, backend, loaded, progress_printer(log), detach=detach)
        where = backend.where({a: s.outputs for a, s in result.steps.items()}) if result.ok else []
    _print_result(result, json_out)
    if any(step.status == "interrupted" for step in result.steps.values()):
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_ERROR)
    if not json_out:
        outputs = {a: s.outputs for a, s in result.steps.items() if s.outputs}
        smoke = next((o for a, o in outputs.items() if a.startswith("smoke_test.") and "answer" in o), None)
        if result.detached:
            _say_detached(result)
            return
        say(f"Apply complete in {command_seconds():.1f} s.", "bold green")
        if smoke is not None:
            from finetune.console import print_lines
            from finetune.render.exchange import exchange_lines

            say("Smoke test:", "bold")
            print_lines(exchange_lines(smoke))
        for line in where:
            say(line)
        from finetune.render.cost_text import estimate_vs_actual

        for line in estimate_vs_actual(planned.plan.cost, outputs.get("job.finetune")):
            say(line)
        evaluation = outputs.get("job.finetune", {}).get("evaluation")
        if evaluation:
            from finetune.render.evaluation import evaluation_lines

            for line in evaluation_lines(evaluation):
                say(line)


def _say_detached(result) -> None:
    from finetune.console import say

    say(f"Detached after {command_seconds():.1f} s: everything that does not wait on training is done.",
        "bold green")
    for step in result.still_running():
        where = f" ({step.outputs['studio_url']})" if step.outputs.get("studio_url") else ""
        say(f"  still running: {step.address} {step.outputs.get('name', '')} [{step.outputs.get('status')}]{where}")
    if result.pending():
        say(f"  the next `finetune apply` waits for it, then: {', '.join(s.address for s in result.pending())}")


def _check_plan_emulation(path: Path, saved, emulate: bool) -> None:
    """A saved plan is applied where it was made: against the emulator (`plan --emulate`) or the real target."""
    planned_emulated = bool(saved.target.get("emulated"))
    if planned_emulated and not emulate:
        raise FinetuneError(f"{path} was planned against the Azure ML emulator (--emulate), not a workspace",
                            hint=f"apply it with `finetune apply {path} --emulate`, or plan again without --emulate "
                                 "for the real workspace")
    if emulate and not planned_emulated:
        where = saved.target.get("workspace") or saved.target.get("kind", "its target")
        raise FinetuneError(f"{path} was planned against {where}, not the emulator",
                            hint=f"apply it without --emulate, or make a rehearsal plan with `finetune plan "
                                 f"{saved.spec_path} --emulate --out FILE`")


def _saved_plan(path: Path):
    """A plan file (JSON with format_version) rather than a spec."""
    if path.suffix != ".json" or not path.is_file():
        return None
    import json

    from finetune.plan.model import Plan

    try:
        return Plan.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError) as exc:
        raise FinetuneError(f"{path} is not a finetune plan: {exc}") from None


@app.command(short_help="Delete what this spec created (the endpoint first).")
@spec_arg
@click.option("--all", "include_all", is_flag=True, help="Also model versions, data assets and the compute.")
@auto_approve_opt
@json_opt
@emulate_opt
@template_opts
def destroy(spec: Path, include_all: bool, auto_approve: bool, json_out: bool, emulate: bool,
            var: tuple[str, ...], var_file: Path | None) -> None:
    """Delete the endpoint and its deployments (with --all: also models, data and compute) that this spec created.

    Only what carries this spec's tags is deleted; it needs the target alone, not the data.

    \b
    Examples:
      finetune destroy examples/phi3-ultrachat.yaml
      finetune destroy examples/phi3-ultrachat.yaml --all --auto-approve
    """
    from finetune.console import say
    from finetune.render.progress import progress_printer
    from finetune.session import lock_for
    from finetune.workflow import destroy_changes, run_destroy

    loaded = _load(spec, var, var_file, needs_data=False)
    log = (lambda _m: None) if json_out else _say_stderr
    with _target(loaded, emulate) as backend, lock_for(loaded, backend, "destroy"):
        log("reading what this spec owns on the target")
        teardown = destroy_changes(loaded, backend, include_all)
        changes = teardown.changes
        if not changes:
            if json_out:
                from finetune.console import print_json

                print_json({"ok": True, "steps": []})
            else:
                say("Nothing to destroy.", "green")
            return
        if not json_out:
            for change in changes:
                say(f"  - {change.address}", "red")
        _confirm(f"Destroy {len(changes)} resource(s)?", auto_approve)
        result = run_destroy(loaded, teardown, backend, progress_printer(log))
    _print_result(result, json_out)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_ERROR)
    if not json_out:
        say(f"Destroyed {len(changes)} resource(s) in {command_seconds():.1f} s.", "bold green")


@app.command(short_help="What exists: job, metrics, endpoint health, cost.")
@spec_arg
@json_opt
@emulate_opt
@template_opts
def status(spec: Path, json_out: bool, emulate: bool, var: tuple[str, ...], var_file: Path | None) -> None:
    """What exists, job state and metrics, endpoint health, the last smoke test, and the cost burn per hour and day.

    \b
    Examples:
      finetune status examples/local-quickstart.yaml
      finetune status examples/phi3-ultrachat.yaml --json
      finetune status specs/                      # every spec of a folder
    """
    from finetune.console import print_json, print_lines
    from finetune.render.status_text import render_status
    from finetune.workflow import plan_against_target, status_report

    loaded = _load(spec, var, var_file, needs_data=False, locked=True)  # the pins name the current job and model
    with _target(loaded, emulate) as backend:
        planned = plan_against_target(loaded, backend, (lambda _m: None) if json_out else _say_stderr, prepare=False)
        report = status_report(planned, backend, loaded)
    if json_out:
        print_json(report)
    else:
        print_lines(render_status(report))


@app.command(short_help="Training runs, newest first: changes, metrics, deployed.")
@spec_arg
@click.option("--compare", nargs=2, metavar="A B", help="Two runs side by side: positions (1 = newest), job names "
              "or prefixes of a name or fingerprint.")
@json_opt
@emulate_opt
@template_opts
def runs(spec: Path, compare: tuple[str, str] | None, json_out: bool, emulate: bool, var: tuple[str, ...],
         var_file: Path | None) -> None:
    """Training runs, newest first: what changed, metrics, duration, cost, model version, which one is deployed.

    \b
    Examples:
      finetune runs examples/local-quickstart.yaml
      finetune runs spec.yaml --compare 2 1       # the run before the newest, against the newest
      finetune runs spec.yaml --json
    """
    from finetune.console import print_json, print_lines
    from finetune.render.runs_text import render_compare, render_runs
    from finetune.runs import compare_runs, runs_report
    from finetune.session import open_backend

    loaded = _load(spec, var, var_file, needs_data=False)
    with open_backend(loaded, emulate=emulate) as backend:
        report = runs_report(loaded, backend)
    result = compare_runs(report, *compare) if compare else report
    if json_out:
        print_json(result)
    else:
        print_lines(render_compare(result) if compare else render_runs(result))


@app.command(short_help="Open MLflow's UI on the spec's runs (local target).")
@spec_arg
@click.option("--port", type=int, default=0, help="Port to serve on (default: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@template_opts
def ui(spec: Path, port: int, host: str, var: tuple[str, ...], var_file: Path | None) -> None:
    """Open MLflow's UI on the spec's tracking store (local target); Ctrl-C stops it.

    \b
    Examples:
      finetune ui examples/local-quickstart.yaml
      finetune ui spec.yaml --port 5000
    """
    from finetune.backends.local import ui as mlflow_ui_server
    from finetune.console import say
    from finetune.runs import mlflow_ui

    command, url = mlflow_ui(_load(spec, var, var_file, needs_data=False), host, port)
    _say_stderr(f"starting: {' '.join(command)}")
    try:
        proc = mlflow_ui_server.start(command, url)
    except RuntimeError as exc:
        raise FinetuneError(str(exc), hint="is the port taken? pass --port") from None
    say(f"MLflow UI: {url}  (Ctrl-C stops it)")
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        mlflow_ui_server.stop(proc)


@app.command(short_help="Send a chat request to the endpoint; print the answer.")
@spec_arg
@click.option("--message", "-m", help="Send this user message instead of the smoke-test sample row.")
@click.option("--deployment", help="Target one deployment (default: by traffic).")
@click.option("--temperature", type=click.FloatRange(min=0), help="Sampling temperature; 0 decodes greedily (the same "
              "answer every time).  [default: the spec's smoke_test.parameters]")
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True),
              help="Nucleus sampling: keep the most likely tokens up to this probability mass.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="The longest answer, in tokens.")
@json_opt
@emulate_opt
@template_opts
def invoke(spec: Path, message: str | None, deployment: str | None, temperature: float | None, top_p: float | None,
           max_new_tokens: int | None, json_out: bool, emulate: bool, var: tuple[str, ...], var_file: Path | None
           ) -> None:
    """Send the smoke-test request (or --message) to the endpoint; print the question, the expected answer (when
    the sample row has one) and the answer.

    The request carries the spec's smoke_test.parameters, with --temperature, --top-p and --max-new-tokens over
    them.

    \b
    Examples:
      finetune invoke examples/local-quickstart.yaml
      finetune invoke spec.yaml -m "How often should I water a fern?" --temperature 0
      finetune invoke spec.yaml --deployment blue --max-new-tokens 64 --json
    """
    from finetune.console import print_json, print_lines
    from finetune.render.exchange import exchange_lines
    from finetune.workflow import invoke_endpoint

    loaded = _load(spec, var, var_file, needs_data=False)
    generation = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}
    with _target(loaded, emulate) as backend:
        exchange = invoke_endpoint(loaded, backend, message, deployment, generation)
    if json_out:
        print_json(exchange.to_dict())
    else:
        print_lines(exchange_lines(exchange.to_dict(), indent=""))


@app.command("force-unlock", short_help="Remove the lock a crashed apply left behind.")
@spec_arg
@emulate_opt
@template_opts
def force_unlock(spec: Path, emulate: bool, var: tuple[str, ...], var_file: Path | None) -> None:
    """Remove the apply lock left by a crashed apply (refuses while a running process holds it).

    A lock whose holder died on this machine is taken over by the next apply without this; it is for a lock left
    on another host through a shared state folder.

    \b
    Examples:
      finetune force-unlock examples/phi3-ultrachat.yaml
    """
    from finetune.console import say
    from finetune.session import lock_for

    loaded = _load(spec, var, var_file, needs_data=False)
    with _target(loaded, emulate) as backend:
        lock = lock_for(loaded, backend)
    unlocked = lock.force_unlock()
    if not unlocked.removed:
        say("No lock held.", "green")
        return
    previous = unlocked.previous
    left_by = f"left by {previous.describe()}" if previous is not None else "its content was not a readable lock"
    say(f"Removed {lock.path} ({left_by}).", "green")


@app.group("data", short_help="Prepare the spec's data (see `finetune data prepare`).")
def data_app() -> None:
    """Dataset preparation.

    \b
    Examples:
      finetune data prepare examples/phi3-ultrachat.yaml
    """


@data_app.command("prepare", short_help="Prepare, check and hash the spec's data (cached).")
@spec_arg
@json_opt
@template_opts
def data_prepare(spec: Path, json_out: bool, var: tuple[str, ...], var_file: Path | None) -> None:
    """Prepare the spec's data (JSONL per split, checked, hashed, cached) and summarize it.

    \b
    Examples:
      finetune data prepare examples/phi3-ultrachat.yaml
      finetune data prepare examples/local-quickstart.yaml --json
    """
    from finetune.console import print_json, say
    from finetune.data import render_summary
    from finetune.dataprep import prepare_data

    loaded = _load(spec, var, var_file)

    def show(event) -> None:
        if json_out:
            return
        if event.kind == "rows" and event.rows:
            total = f" of {event.total:,}" if event.total else ""
            _say_stderr(f"  {event.role}: {event.rows:,}{total} rows")
        elif event.kind in ("resolving", "split_started", "split_done", "cache_hit"):
            detail = " ".join(part for part in (event.role, event.message) if part)
            _say_stderr(f"{event.kind.replace('_', ' ')}: {detail}")

    result = prepare_data(loaded, progress=show)
    if json_out:
        print_json(result.to_dict())
        return
    for line in render_summary(result):
        say(line)


@app.command(short_help="Print the JSON Schema of the spec format.")
@click.option("--out", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
def schema(out: Path | None) -> None:
    """Print the JSON Schema of the spec format (for editors: yaml-language-server).

    \b
    Examples:
      finetune schema --out specs/finetune-v1.schema.json
    """
    from finetune.schema import spec_json_schema_text

    text = spec_json_schema_text()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


@app.command(short_help="Write a commented starter spec, or the CI workflow.")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--target", type=click.Choice(["local", "azureml"]), default="local", show_default=True)
@click.option("--name", help="Spec name (default: from the file name).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--ci", type=click.Choice(["github"]),
              help="Instead of a spec, write the CI workflow: plans on pull requests, detached applies on main.")
@click.option("--repo-root", type=click.Path(path_type=Path, file_okay=False),
              help="With --ci: the repository root (default: the nearest folder at or above the cwd with .git).")
@click.option("--specs", "spec_globs", multiple=True, metavar="GLOB",
              help="With --ci: which files are specs, a glob from the repository root (repeatable; default: every "
                   "YAML file declaring apiVersion: finetune/v1).")
@click.option("--pip", "pip_requirement", metavar="REQUIREMENT",
              help="With --ci: what the workflow pip-installs (default: where this finetune came from: its git "
                   "URL and commit, its archive URL, or finetune==this version when it came from a package index).")
def init(path: Path | None, target: str, name: str | None, force: bool, ci: str | None, repo_root: Path | None,
         spec_globs: tuple[str, ...], pip_requirement: str | None) -> None:
    """Write a commented starter spec to PATH (default: finetune.yaml), or with --ci github the CI workflow.

    \b
    Examples:
      finetune init my-model.yaml --target azureml
      finetune init --ci github                     # .github/workflows/finetune.yml in this repository
      finetune init --ci github --specs 'models/*.yaml'
    """
    from finetune.console import say
    from finetune.render.templates import render_template

    if ci is not None:
        if path is not None or name is not None:
            raise FinetuneError("--ci writes the workflow, not a spec: PATH and --name do not apply",
                                hint="run `finetune init PATH` for a spec and `finetune init --ci github` apart")
        _init_github_ci(repo_root, spec_globs, pip_requirement, force)
        return
    if repo_root is not None or spec_globs or pip_requirement is not None:
        raise FinetuneError("--repo-root, --specs and --pip go with --ci", hint="add --ci github, or drop them")
    from finetune.schema import SCHEMA_ID

    path = path or Path("finetune.yaml")
    if path.exists() and not force:
        raise FinetuneError(f"{path} already exists", hint="pass --force to overwrite it, or choose another path")
    spec_name = name or path.stem.replace("_", "-").replace(".", "-")
    path.write_text(render_template("init.yaml.j2", target=target, name=spec_name, schema_url=SCHEMA_ID))
    say(f"wrote {path}: edit it, then run `finetune validate {path}` and `finetune plan {path}`", "green")


CI_WORKFLOW = Path(".github/workflows/finetune.yml")
CI_DEFAULT_SPECS = ("**/*.yaml", "**/*.yml")  # narrowed to files with a line `apiVersion: finetune/v1`


def _init_github_ci(repo_root: Path | None, spec_globs: tuple[str, ...], pip_requirement: str | None,
                    force: bool) -> None:
    """`finetune init --ci github`: render templates/github-workflow.yml.j2 into the repository's workflows."""
    import glob
    import re

    from finetune.console import say
    from finetune.render.templates import render_template

    if repo_root is None:
        start = Path.cwd().resolve()
        repo_root = next((folder for folder in (start, *start.parents) if (folder / ".git").exists()), None)
        if repo_root is None:
            raise FinetuneError(f"no git repository at or above {start}",
                                hint="run it inside your repository, pass --repo-root DIR, or run `git init` first")
    elif not repo_root.is_dir():
        raise FinetuneError(f"--repo-root {repo_root}: no such folder", hint="pass the folder that holds .git")
    for pattern in spec_globs:
        if not pattern.strip() or Path(pattern).is_absolute() or ".." in Path(pattern).parts or "\n" in pattern:
            raise FinetuneError(f"--specs {pattern!r}: expected a glob relative to the repository root",
                                hint="e.g. --specs 'models/*.yaml' or --specs '**/*.finetune.yaml'")
    out = repo_root / CI_WORKFLOW
    if out.exists() and not force:
        raise FinetuneError(f"{out} already exists", hint="pass --force to overwrite it")
    globs = list(spec_globs) or list(CI_DEFAULT_SPECS)
    if pip_requirement is None:
        from finetune.installed import installed_requirement

        pip_requirement = installed_requirement()
    text = render_template("github-workflow.yml.j2", version=__version__, pip_requirement=pip_requirement,
                           spec_globs=globs,
                           branch="main", branch_ref="'refs/heads/main'", environment="azureml",
                           cron="17 * * * *", python_version="3.12")
    # What the workflow would find today (it looks again on every run; tracked files only there).
    declares = re.compile(r"^apiVersion:[ ]*.?finetune/v1", re.M)
    found = sorted({Path(match) for pattern in globs for match in glob.glob(pattern, root_dir=repo_root, recursive=True)
                    if not match.endswith((".lock.yaml", ".lock.yml")) and (repo_root / match).is_file()
                    and declares.search((repo_root / match).read_text(errors="replace")[:4096])})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    say(f"wrote {out}: plans on pull requests, `apply --detach` on pushes to main, hourly re-applies", "green")
    if found:
        say("specs it finds now: " + ", ".join(map(str, found)))
    else:
        say("no spec matches yet: the workflow skips until one does (`finetune init PATH` writes one)", "yellow")
    say("next: set secrets AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_SUBSCRIPTION_ID and the environment azureml "
        "(see the comments at the top of the file); commit the specs' lock files (`finetune lock SPEC`)")


@app.command(short_help="Pin floating references in SPEC.lock.yaml.")
@spec_arg
@click.option("--upgrade", is_flag=True, help="Resolve every floating reference again and move the pins.")
@json_opt
@emulate_opt
@template_opts
def lock(spec: Path, upgrade: bool, json_out: bool, emulate: bool, var: tuple[str, ...], var_file: Path | None
         ) -> None:
    """Pin the spec's floating references (model and component labels, hub dataset branches) in SPEC.lock.yaml.

    Plan and apply use the pins while the file exists; commit it with the spec.

    \b
    Examples:
      finetune lock examples/phi3-ultrachat.yaml
      finetune lock examples/phi3-ultrachat.yaml --upgrade
    """
    from finetune.console import print_json, say
    from finetune.workflow import lock_spec

    loaded = _load(spec, var, var_file)
    with _target(loaded, emulate) as backend:
        result = lock_spec(loaded, backend, upgrade, (lambda _m: None) if json_out else _say_stderr)
    if json_out:
        print_json({"ok": True, "lock": result.path, "written": result.written, "changes": result.lines})
        return
    if not result.lines and not result.written:
        say(f"{result.path}: up to date" if Path(result.path).exists() else
            "Nothing to lock: the spec pins every reference already.", "green")
        return
    for line in result.lines:
        say(f"  {line}")
    say(f"wrote {result.path}: commit it with the spec", "green")


@app.command(short_help="Write the spec as files another tool runs (az ml YAML).")
@spec_arg
@click.option("--to", "to", required=True, type=click.Choice(["azure-cli"]),
              help="azure-cli: `az ml` CLI v2 YAML files and a README.md with the commands in order.")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--online", is_flag=True, help="Resolve floating references against the target (reads only).")
@json_opt
@emulate_opt
@template_opts
def export(spec: Path, to: str, folder: Path, online: bool, json_out: bool, emulate: bool, var: tuple[str, ...],
           var_file: Path | None) -> None:
    """Write what the spec describes as files another tool runs, from the graph `plan` uses.

    Offline (the default) the lock file pins floating references; --online or --emulate resolves them.

    \b
    Examples:
      finetune lock examples/phi3-ultrachat.yaml && finetune export examples/phi3-ultrachat.yaml --to azure-cli out/
      finetune export examples/phi3-ultrachat.yaml --to azure-cli out/ --online
    """
    from finetune.console import print_json, say
    from finetune.export import check_target, export_azure_cli

    loaded = _load(spec, var, var_file, locked=True)
    check_target(loaded, to)
    log = (lambda _m: None) if json_out else _say_stderr
    if online or emulate:
        with _target(loaded, emulate) as backend:
            result = export_azure_cli(loaded, folder, backend=backend, say=log)
    else:
        result = export_azure_cli(loaded, folder, say=log)
    if json_out:
        print_json({"ok": True, "to": to, "folder": str(folder), "mode": result.mode,
                    "files": [*result.files, "README.md"], "commands": result.commands})
        return
    for name in result.files:
        say(f"  {folder / name}")
    say(f"wrote {len(result.files)} files and {folder / 'README.md'} ({result.mode}): run the commands in "
        "README.md in order", "green")


def _debug_log(exc: BaseException) -> Path:
    folder = Path(os.environ.get("FINETUNE_LOG_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "finetune-debug.log"
    with path.open("a", encoding="utf-8") as log:
        log.write("".join(traceback.format_exception(exc)))
    return path


def wants_json(args: list[str]) -> bool:
    return "--json" in args or "--format=json" in args or any(
        a == "--format" and b == "json" for a, b in zip(args, args[1:], strict=False))


def run(args: list[str]) -> int:
    """Run one command; expected errors become one-line diagnostics, unexpected ones a bug hint. The exit code."""
    as_json = wants_json(args)
    _started.set(time.monotonic())
    try:
        # Outside standalone mode click returns the code of an Exit instead of raising it.
        code = app.main(args=args, prog_name="finetune", standalone_mode=False)
    except FinetuneError as exc:
        _report_error(exc, as_json)
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:  # usage errors: click's own one-line message, exit 1 (not 2: see above)
        exc.show()
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        log = _debug_log(exc)
        print(f"internal error: {type(exc).__name__}: {exc} (this is a bug in finetune; details in {log})",
              file=sys.stderr)
        return EXIT_INTERNAL
    return code if isinstance(code, int) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point. `--json` output is one JSON document; no escape codes reach a non-terminal. A folder given
    to validate, plan, apply or status runs every spec in it (see finetune/many.py)."""
    from finetune.console import json_only_stdout, plain_when_not_styled
    from finetune.many import folder_of

    args = list(argv if argv is not None else sys.argv[1:])
    as_json = wants_json(args)
    with plain_when_not_styled(), json_only_stdout(as_json):
        folder = folder_of(args)
        if folder is not None:
            from finetune.many import run_folder

            code = run_folder(args, folder, run, as_json)
        else:
            code = run(args)
    sys.exit(code)
