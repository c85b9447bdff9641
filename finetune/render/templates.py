"""Jinja2 templates shipped with finetune (`templates/` in a checkout, `finetune/_templates` in a wheel)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"none of {', '.join(map(str, candidates))} exists; the installation is incomplete")


def templates_dir() -> Path:
    return _first_existing(PACKAGE_DIR / "_templates", PACKAGE_DIR.parent / "templates")


def specs_dir() -> Path:
    return _first_existing(PACKAGE_DIR / "_specs", PACKAGE_DIR.parent / "specs")


@cache
def _environment():
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    from finetune.render.markdown import FILTERS

    env = SandboxedEnvironment(loader=FileSystemLoader(str(templates_dir())), undefined=StrictUndefined,
                               keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)  # md, code, money, plan_view, location: the markdown plan's escaping and grouping
    return env


def render_template(template: str, **context) -> str:
    return _environment().get_template(template).render(**context)
