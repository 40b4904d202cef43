"""Tasks: each composes models as pre-process -> forward (the only device step) -> post-process."""

from vfm.tasks.prompts import Prompt, scribble_to_points
from vfm.tasks.segment import EmbeddingCache, Segmenter, segment

__all__ = ["EmbeddingCache", "Prompt", "Segmenter", "scribble_to_points", "segment"]
