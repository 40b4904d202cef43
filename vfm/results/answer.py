"""`Answer`: the result of a caption or a question (vfm caption / ask), optionally grounded.

``text`` is the decoded answer; ``tokens`` the number of tokens generated (end-of-sequence
included, the prompt not); ``seconds`` the wall time of the generation (the prompt's encoding
included); ``first_token_seconds`` the time until the first new token. ``grounding`` holds the
answer's phrases located in the image (boxes, masks where a segmenter ran) as :class:`Instances`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vfm.results.instances import Instances


@dataclass
class Answer:
    text: str
    model: str
    tokens: int
    seconds: float
    first_token_seconds: float | None = None
    task: str = "ask"  # "caption", "ask"
    question: str | None = None
    grounding: Instances | None = None
    frames: list[int] | None = None  # the video frames the model saw (vfm ask VIDEO)

    def to_document(self) -> dict[str, Any]:
        """``{"answer", "model", "tokens", "seconds"}`` (+ "question", "first_token_seconds", and the
        grounded phrases as COCO-style "annotations" with "categories" when grounded)."""
        doc: dict[str, Any] = {"answer": self.text, "model": self.model, "tokens": int(self.tokens),
                               "seconds": round(float(self.seconds), 4)}
        if self.question is not None:
            doc["question"] = self.question
        if self.frames is not None:
            doc["frames"] = [int(i) for i in self.frames]
        if self.first_token_seconds is not None:
            doc["first_token_seconds"] = round(float(self.first_token_seconds), 4)
        if self.grounding is not None:
            from vfm.formats.coco import instances_to_document

            names = list(dict.fromkeys(self.grounding.class_names or []))
            grounded = instances_to_document(self.grounding, categories=names)
            doc["image"] = grounded["image"]
            doc["categories"] = grounded["categories"]
            doc["annotations"] = grounded["annotations"]
        return doc
