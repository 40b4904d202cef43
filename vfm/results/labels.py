"""`Labels`: the result type of image-level recognition (zero-shot classification and tagging).

``names[i]`` has probability ``scores[i]``; entries are kept sorted by score, highest first.
``activation`` says how scores were made, which decides how to read them:

* ``"softmax"`` (CLIP classification): one distribution over the given labels; scores sum to 1.
* ``"sigmoid"`` (SigLIP, and tags): each label is scored on its own, in [0, 1]; they do not sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ACTIVATIONS = ("softmax", "sigmoid")


@dataclass
class Labels:
    names: list[str]
    scores: np.ndarray
    activation: str

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(self.names) != len(self.scores):
            raise ValueError(f"names has {len(self.names)} entries but scores has {len(self.scores)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        order = np.argsort(-self.scores, kind="stable")
        self.names = [self.names[i] for i in order]
        self.scores = self.scores[order]

    def __len__(self) -> int:
        return len(self.names)

    def top(self, k: int | None) -> "Labels":
        """The ``k`` best labels (all when ``k`` is None)."""
        if k is None:
            return Labels(list(self.names), self.scores.copy(), self.activation)
        return Labels(self.names[: int(k)], self.scores[: int(k)], self.activation)

    def above(self, threshold: float) -> "Labels":
        """Labels whose score is at least ``threshold``."""
        keep = self.scores >= threshold
        return Labels([n for n, k in zip(self.names, keep) if k], self.scores[keep], self.activation)

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": [{"name": n, "score": round(float(s), 6)} for n, s in zip(self.names, self.scores)],
            "activation": self.activation,
        }

    def __repr__(self) -> str:
        head = ", ".join(f"{n}={s:.3f}" for n, s in zip(self.names[:5], self.scores[:5]))
        return f"Labels({self.activation}: {head}{', ...' if len(self) > 5 else ''})"
