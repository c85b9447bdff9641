"""Route families. Each module exposes ``register(router)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..router import Router


def register_all(router: Router) -> None:
    from . import (
        aad,
        assets,
        blob,
        compute,
        compute_instance,
        datastores,
        endpoints,
        history,
        jobs,
        models,
        operations,
        registry,
        scoring,
        tracking,
        workspace,
    )

    families = (workspace, compute, compute_instance, datastores, blob, registry, jobs, history, tracking, models,
                assets, endpoints, operations, scoring, aad)
    for module in families:
        module.register(router)
