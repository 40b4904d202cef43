"""Model registry and one thin adapter per model family. No IO beyond loading checkpoints."""

from vfm.models.registry import ModelSpec, get_alias, is_cached, list_models, register_alias, resolve

__all__ = ["ModelSpec", "get_alias", "is_cached", "list_models", "register_alias", "resolve"]
