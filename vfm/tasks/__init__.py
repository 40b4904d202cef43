"""Tasks: each composes models as pre-process -> forward (the only device step) -> post-process.

Names are resolved on first use (PEP 562), so ``import vfm.tasks.thresholds`` and the like do not
import torch.
"""

from __future__ import annotations

import importlib

_LAZY = {"EmbeddingCache": "vfm.tasks.segment", "Segmenter": "vfm.tasks.segment",
         "Prompt": "vfm.tasks.prompts", "scribble_to_points": "vfm.tasks.prompts"}

__all__ = ["EmbeddingCache", "Prompt", "Segmenter", "scribble_to_points"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vfm.tasks' has no attribute {name!r}")
