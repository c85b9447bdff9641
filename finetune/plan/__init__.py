"""Planning: diff desired against observed into Changes; the Plan data model and its JSON form."""

from finetune.plan.model import Action, Change, Observed, Plan

__all__ = ["Action", "Change", "Observed", "Plan"]
