"""finetune: declarative LLM fine-tuning (one spec file; plan and apply on Azure ML or locally)."""

__version__ = "0.1.0"
