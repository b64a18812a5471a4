"""Model records under test: a registry with two adapters."""

from __future__ import annotations

from finetune.pipeline import GeneratorPaths
from finetune.registry import ModelRegistry


def two_adapters(registry: ModelRegistry, paths: GeneratorPaths) -> tuple[int, int]:
    """A bootstrap base model gpt-0001 and two adapters on it, v0002 trained from v0001:
    their ids."""
    base = registry.register_base(
        paths.base_models / "gpt-0001",
        source="bootstrap",
        model_ref=str(paths.base_models / "gpt-0001"),
    )
    first = registry.register_adapter(paths.adapters / "v0001", base_id=base.id)
    second = registry.register_adapter(
        paths.adapters / "v0002", base_id=base.id, parent_id=first.id
    )
    return first.id, second.id
