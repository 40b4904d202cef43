"""Score thresholds given by users: probabilities in [0, 1], checked before any model is loaded.

Kept free of torch so that processes which only check options (the CLI, the labeling engine's
driver) do not pay for importing it.
"""

from __future__ import annotations

import math

from vfm.errors import PromptError


def check_threshold(value: float | None, name: str) -> float | None:
    """``None`` passes (model default); anything else must be a number in [0, 1]."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PromptError(f"{name} '{value}' is not a number; give a value between 0 and 1") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise PromptError(f"{name} {value} is outside 0..1; scores are probabilities, e.g. {name} 0.3")
    return v
