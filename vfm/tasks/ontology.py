"""Prompt -> class mapping (autodistill's ontology): ``"person: astronaut, forklift"``.

Each entry of a class list is either a class name, which is also what the model is asked, or
``prompt: class``: the model is asked ``prompt`` and what it finds is named ``class``. Several
prompts may name one class (``"man: person, woman: person"``)::

    onto = Ontology.parse("person: astronaut, forklift")
    onto.prompts   # ["person", "forklift"]      what detectors and classifiers are given
    onto.classes   # ["astronaut", "forklift"]   what results, documents and datasets name
    onto.class_of  # [0, 1]                      prompt i -> class index

Entries are split on the first ``:``; both sides are trimmed and must be non-empty. Entries
first go through :func:`vfm.tasks.classes.parse_classes` (commas, newlines, duplicates). A prompt
given twice for two different classes is an error; class names are matched case-insensitively
(the first spelling is kept). Class ids everywhere are positions in ``classes``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np

from vfm.errors import PromptError


@dataclass(frozen=True)
class Ontology:
    prompts: tuple[str, ...]
    classes: tuple[str, ...]
    class_of: tuple[int, ...]

    @classmethod
    def parse(cls, entries: "str | Iterable[str] | Ontology", *, what: str = "class list") -> "Ontology":
        if isinstance(entries, Ontology):
            return entries
        from vfm.tasks.classes import parse_classes

        prompts: list[str] = []
        classes: list[str] = []
        class_of: list[int] = []
        prompt_index: dict[str, int] = {}
        class_index: dict[str, int] = {}
        for entry in parse_classes(entries, what=what):
            prompt, sep, name = entry.partition(":")
            prompt, name = prompt.strip(), name.strip()
            if sep and (not prompt or not name):
                raise PromptError(f"'{entry}' in the {what} has an empty side; write 'prompt: class', e.g. 'person: astronaut'")
            name = name if sep else prompt
            c = class_index.setdefault(name.lower(), len(classes))
            if c == len(classes):
                classes.append(name)
            p = prompt_index.get(prompt.lower())
            if p is not None:
                if class_of[p] != c:
                    raise PromptError(f"prompt '{prompt}' in the {what} names two classes, '{classes[class_of[p]]}' "
                                      f"and '{name}'; give each prompt one class")
                continue
            prompt_index[prompt.lower()] = len(prompts)
            prompts.append(prompt)
            class_of.append(c)
        return cls(tuple(prompts), tuple(classes), tuple(class_of))

    @property
    def mapped(self) -> bool:
        """True when some prompt differs from its class name (otherwise prompts == classes)."""
        return self.prompts != self.classes

    def class_ids(self, prompt_ids) -> np.ndarray:
        """Prompt indices -> class indices."""
        table = np.asarray(self.class_of, dtype=np.int64)
        return table[np.asarray(prompt_ids, dtype=np.int64).reshape(-1)]

    def relabel(self, instances):
        """``instances`` whose ``class_ids`` index ``prompts`` -> ids and names of ``classes``."""
        if instances.class_ids is None:
            return instances
        ids = self.class_ids(instances.class_ids)
        return replace(instances, class_ids=ids, class_names=[self.classes[i] for i in ids])

    def merge_scores(self, scores: np.ndarray, *, how: str) -> np.ndarray:
        """Scores over prompts (last axis) -> scores over classes: ``sum`` (probabilities of one
        softmax: the class gets its prompts' total) or ``max`` (independent scores)."""
        scores = np.asarray(scores)
        if not self.mapped:
            return scores
        if how not in ("sum", "max"):
            raise ValueError(f"how must be 'sum' or 'max', got {how!r}")
        fill = 0 if how == "sum" else -np.inf
        out = np.full(scores.shape[:-1] + (len(self.classes),), fill, dtype=np.float64)
        for p, c in enumerate(self.class_of):
            out[..., c] = out[..., c] + scores[..., p] if how == "sum" else np.maximum(out[..., c], scores[..., p])
        return out.astype(scores.dtype)
