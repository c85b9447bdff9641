"""The `finetune` command line: parse arguments, call the layers below, pick a view, map errors to exit codes.

Exit codes: 0 success (no changes with --detailed-exitcode), 1 error, 2 changes present (--detailed-exitcode),
3 plan blocked by preflight, 70 internal error (a bug; details in the debug log), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer

from finetune import __version__
from finetune.errors import FinetuneError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_BLOCKED, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130

app = typer.Typer(
    name="finetune", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Declarative LLM fine-tuning: one spec file; validate, plan and apply it on Azure ML or locally.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

SpecArg = Annotated[Path, typer.Argument(help="The spec file (YAML).", show_default=False)]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="Template variable NAME=VALUE (repeatable).")]
VarFileOpt = Annotated[Path | None, typer.Option("--var-file", help="YAML file of template variables.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _variables(var: list[str] | None, var_file: Path | None) -> dict[str, Any]:
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


def _load(spec: Path, var: list[str] | None, var_file: Path | None):
    from finetune.spec.load import load_spec

    return load_spec(spec, variables=_variables(var, var_file))


def _report_error(exc: FinetuneError, as_json: bool) -> None:
    from finetune.console import print_json, say

    if as_json:
        print_json({"ok": False, "diagnostics": [d.to_dict() for d in exc.diagnostics]})
    for diagnostic in exc.diagnostics:
        say(diagnostic.format(), "red" if diagnostic.severity.value == "error" else "yellow", stderr=True)
    errors = sum(1 for d in exc.diagnostics if d.severity.value == "error")
    if errors > 1:
        say(f"{errors} errors", "bold red", stderr=True)


@app.command()
def validate(spec: SpecArg, var: VarOpt = None, var_file: VarFileOpt = None, json_out: JsonOpt = False) -> None:
    """Check a spec offline: schema, names, SKUs, allow lists, parameters. Every problem at once, with file:line."""
    from finetune.console import print_json, say

    loaded = _load(spec, var, var_file)
    if json_out:
        print_json({"ok": True, "spec": loaded.spec.metadata.name, "target": loaded.spec.target.kind.value,
                    "diagnostics": [d.to_dict() for d in loaded.warnings]})
        return
    for warning in loaded.warnings:
        say(warning.format(), "yellow", stderr=True)
    say(f"{spec}: valid (FineTune {loaded.spec.metadata.name}, target {loaded.spec.target.kind.value})", "green")


@app.command()
def plan(
    spec: SpecArg,
    offline: Annotated[bool, typer.Option("--offline", help="Do not read the target: show everything as to-create.")]
    = False,
    out: Annotated[Path | None, typer.Option("--out", help="Save the plan (JSON) for `finetune apply PLANFILE`.")]
    = None,
    fmt: Annotated[str, typer.Option("--format", help="text, markdown (for PR comments) or json.")] = "text",
    json_out: JsonOpt = False,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode",
                                                    help="Exit 0 with no changes, 2 with changes.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show unchanged resources.")] = False,
    var: VarOpt = None, var_file: VarFileOpt = None,
) -> None:
    """Show what apply would create, change or keep, why, and what it will cost."""
    from finetune.console import print_json, print_lines
    from finetune.plan.planner import make_plan, offline_facts

    loaded = _load(spec, var, var_file)
    if not offline:
        raise FinetuneError("reading the target is not available in this version", hint="use --offline")
    result = make_plan(loaded, offline_facts(loaded), None)
    if out is not None:
        out.write_text(result.to_json())
    data = result.to_dict()
    fmt = "json" if json_out else fmt
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
    if result.blocked:
        raise typer.Exit(EXIT_BLOCKED)
    if detailed_exitcode and result.has_changes:
        raise typer.Exit(EXIT_CHANGES)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the spec format (for editors: yaml-language-server)."""
    from finetune.schema import spec_json_schema_text

    text = spec_json_schema_text()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the new spec.")] = Path("finetune.yaml"),
    target: Annotated[str, typer.Option(help="local or azureml.")] = "local",
    name: Annotated[str | None, typer.Option(help="Spec name (default: from the file name).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter spec."""
    from finetune.console import say
    from finetune.render.templates import render_template
    from finetune.schema import SCHEMA_ID

    if target not in ("local", "azureml"):
        raise FinetuneError(f"--target {target!r} is not one of local, azureml")
    if path.exists() and not force:
        raise FinetuneError(f"{path} already exists", hint="pass --force to overwrite it, or choose another path")
    spec_name = name or path.stem.replace("_", "-").replace(".", "-")
    path.write_text(render_template("init.yaml.j2", target=target, name=spec_name, schema_url=SCHEMA_ID))
    say(f"wrote {path}: edit it, then run `finetune validate {path}` and `finetune plan {path}`", "green")


def _version_callback(value: bool) -> None:
    if value:
        print(f"finetune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Declarative LLM fine-tuning."""


def _debug_log(exc: BaseException) -> Path:
    folder = Path(os.environ.get("FINETUNE_LOG_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "finetune-debug.log"
    with path.open("a", encoding="utf-8") as log:
        log.write("".join(traceback.format_exception(exc)))
    return path


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected errors become one-line diagnostics, unexpected ones a bug hint, never a traceback."""
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    try:
        # Outside standalone mode click returns the code of a typer.Exit instead of raising it.
        code = app(args=argv, standalone_mode=False)
    except FinetuneError as exc:
        _report_error(exc, as_json)
        sys.exit(EXIT_ERROR)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        log = _debug_log(exc)
        print(f"internal error: {type(exc).__name__}: {exc} (this is a bug in finetune; details in {log})",
              file=sys.stderr)
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
