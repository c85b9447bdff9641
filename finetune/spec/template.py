"""Render `{{ ... }}` in string values with Jinja2's sandbox.

Each string is rendered on its own (never the whole file), so templating cannot change the YAML structure and every
error points at the exact value. Undefined names are errors (StrictUndefined). Environment variables are read only
when a template names them explicitly: `{{ env.AZURE_SUBSCRIPTION_ID }}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from finetune.errors import Diagnostics
from finetune.spec.yaml_source import Path, SourceMap, dotted


class _Env(Mapping[str, str]):
    """`env.NAME` in templates; a missing variable is an undefined value, hence an error."""

    def __getitem__(self, key: str) -> str:
        return os.environ[key]

    def __iter__(self):  # listing the environment would leak it into templates
        return iter(())

    def __len__(self) -> int:
        return 0


def _environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def has_template(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


def render_tree(data: Any, variables: Mapping[str, Any], source: SourceMap, diags: Diagnostics,
                skip: frozenset[str] = frozenset({"vars"})) -> Any:
    """Return a copy of `data` with every templated string rendered. Top-level keys in `skip` are left as they are."""
    env = None  # built on the first templated string: most specs have none, and jinja2 costs ~50 ms to import
    context = {**variables, "vars": dict(variables), "env": _Env()}

    def render(value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {k: (v if (not path and k in skip) else render(v, path + (k,))) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v, path + (i,)) for i, v in enumerate(value)]
        if isinstance(value, str) and has_template(value):
            nonlocal env
            env = env or _environment()
            return _render_one(env, value, context, path, source, diags)
        return value

    return render(data, ())


def _render_one(env, text: str, context: dict, path: Path, source: SourceMap, diags: Diagnostics) -> str:
    from jinja2 import TemplateError, UndefinedError
    from jinja2.exceptions import SecurityError, TemplateSyntaxError

    where = dict(path=dotted(path), location=source.locate(path))
    try:
        return env.from_string(text).render(context)
    except UndefinedError as exc:
        diags.error(f"template error: {_undefined_message(exc)}",
                    hint="define it under `vars:`, pass --var NAME=VALUE, or export the environment variable", **where)
    except SecurityError as exc:
        diags.error(f"template refused by the sandbox: {exc}", hint="templates may only read vars and env", **where)
    except TemplateSyntaxError as exc:
        diags.error(f"template syntax error: {exc.message}", hint="templates look like {{ vars.name }}", **where)
    except TemplateError as exc:
        diags.error(f"template error: {exc}", **where)
    except (TypeError, ValueError, ArithmeticError, KeyError, AttributeError) as exc:
        diags.error(f"template error: {type(exc).__name__}: {exc}", **where)
    return text


def _undefined_message(exc: Exception) -> str:
    message = str(exc)
    # StrictUndefined says "'x' is undefined"; for env lookups it reports the missing key.
    if "has no attribute" in message:
        name = message.rsplit("'", 2)[-2]
        if "_Env" in message:
            return f"environment variable {name} is not set"
        return f"'{name}' is undefined"
    return message
