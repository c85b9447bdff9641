"""The spec layer: YAML + templating + pydantic models + semantic checks. Imports no cloud or ML package."""

from finetune.spec.load import LoadedSpec, load_spec
from finetune.spec.models import Spec, TargetKind

__all__ = ["LoadedSpec", "Spec", "TargetKind", "load_spec"]
