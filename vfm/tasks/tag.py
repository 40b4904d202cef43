"""Image tagging (Recognize Anything's job) with CLIP or SigLIP over a vocabulary of tags.

    tagger = Tagger.load("clip-vit-base-32")            # built-in vocabulary (vfm/data/tags.txt)
    tags = tagger.tag("photo.jpg", top_k=10)              # Labels, activation "sigmoid"

Scoring rule (each tag is scored on its own, so the scores do not sum to 1):

* Every tag ``t`` is put in the template ``"a photo of {}."``.
* SigLIP / SigLIP 2: ``score(t) = sigmoid(logit_scale * cos(image, t) + logit_bias)`` — the model's
  own per-pair probability.
* CLIP has no per-pair probability (its softmax only ranks labels against each other), so each tag
  competes with a fixed set of generic prompts (:data:`GENERIC_PROMPTS`, "a photo.", "an image." ...)
  that describe no particular content: ``score(t) = e^{s*cos(image,t)} / (e^{s*cos(image,t)} +
  mean_k e^{s*cos(image,g_k)})`` with ``s`` = CLIP's logit scale, i.e. a two-way softmax between the
  tag and the (log-mean-exp) generic prompt. 0.5 means "this tag describes the image exactly as
  well as a generic caption"; higher means the tag adds information about the image.
* Tags with ``score >= threshold`` are kept (default :data:`DEFAULT_THRESHOLDS`: 0.5 for CLIP,
  0.1 for SigLIP), best first, at most ``top_k``.

The vocabulary's text embeddings are computed once per (model, vocabulary, template) and cached on
disk in ``$VFM_CACHE_DIR/tag-embeddings`` (default ``~/.cache/vfm``); see :class:`EmbeddingStore`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage
from vfm.results.labels import Labels
from vfm.tasks.classes import parse_classes, read_vocabulary
from vfm.tasks.ontology import Ontology
from vfm.tasks.classify import DEFAULT_CLASSIFIER, Classifier, as_pixels, check_template

TAG_TEMPLATE = "a photo of {}."
#: Content-free captions a CLIP tag must beat (see the module docstring).
GENERIC_PROMPTS = ("a photo.", "an image.", "a picture.", "a photo of something.", "a photo of a thing.")
DEFAULT_THRESHOLDS = {"softmax": 0.5, "sigmoid": 0.1}
CACHE_FORMAT = 1


def builtin_vocabulary() -> list[str]:
    """The built-in tag list: over 1,000 common objects, scenes and attributes."""
    text = resources.files("vfm").joinpath("data/tags.txt").read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return parse_classes("\n".join(lines), what="built-in vocabulary")


def load_vocabulary(vocabulary: str | os.PathLike | Iterable[str] | None) -> list[str]:
    """None -> built-in; a path to an existing file -> one tag per line; a string -> comma-separated; a list."""
    if vocabulary is None:
        return builtin_vocabulary()
    if isinstance(vocabulary, os.PathLike):
        return read_vocabulary(vocabulary)
    if isinstance(vocabulary, str) and "," not in vocabulary and "\n" not in vocabulary and Path(vocabulary).is_file():
        return read_vocabulary(vocabulary)
    return parse_classes(vocabulary, what="vocabulary")


def check_threshold(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PromptError(f"threshold '{value}' is not a number; give a value between 0 and 1") from None
    if not np.isfinite(v) or not 0.0 <= v <= 1.0:
        raise PromptError(f"threshold {value} is outside 0..1; tag scores are probabilities, e.g. --threshold 0.5")
    return v


def check_top_k(value: int | None) -> int | None:
    if value is None:
        return None
    if int(value) < 1:
        raise PromptError(f"top-k {value} must be at least 1")
    return int(value)


def default_cache_dir() -> Path:
    """``$VFM_CACHE_DIR`` or ``~/.cache/vfm``."""
    env = os.environ.get("VFM_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vfm"


class EmbeddingStore:
    """On-disk cache of text embeddings, one ``.npz`` file per key.

    The key is a JSON description (model identity: source, config hash, weight files' size/mtime;
    a hash of the texts; the template). Writes go to a temporary file in the same folder and are
    renamed into place (atomic); a file that cannot be read or does not match its key is
    recomputed and rewritten. A folder that cannot be written only disables the cache.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir() / "tag-embeddings"

    def path(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.npz"

    def get(self, key: str, n: int) -> np.ndarray | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != key:
                    return None
                emb = np.asarray(z["embeddings"], dtype=np.float32)
        except Exception:  # noqa: BLE001 - any unreadable file is a miss
            return None
        if emb.ndim != 2 or emb.shape[0] != n or not np.all(np.isfinite(emb)):
            return None
        return emb

    def put(self, key: str, embeddings: np.ndarray) -> Path | None:
        path = self.path(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, key=np.array(key), embeddings=np.asarray(embeddings, dtype=np.float32))
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return None
        return path


class Tagger:
    """Scores every tag of a vocabulary for an image (see the module docstring for the rule)."""

    def __init__(self, classifier: Classifier, vocabulary: str | os.PathLike | Iterable[str] | None = None, *,
                 template: str = TAG_TEMPLATE, cache_dir: str | os.PathLike | None = None, use_cache: bool = True):
        self.classifier = classifier
        # A "prompt: tag" line scores prompt and reports tag (vfm.tasks.ontology); a tag named by
        # several prompts gets the best of their scores.
        self.ontology = Ontology.parse(load_vocabulary(vocabulary), what="vocabulary")
        self.vocabulary = list(self.ontology.prompts)
        self.template = check_template(template)
        self.store = EmbeddingStore(cache_dir) if use_cache else None
        self._text: torch.Tensor | None = None
        self._generic: torch.Tensor | None = None
        self.cache_path: Path | None = None

    @classmethod
    def load(cls, model: str = DEFAULT_CLASSIFIER, device: str | None = None,
             vocabulary: str | os.PathLike | Iterable[str] | None = None, precision: str = "fp32", **kwargs) -> "Tagger":
        return cls(Classifier.load(model, device=device, precision=precision), vocabulary, **kwargs)

    @property
    def activation(self) -> str:
        return "sigmoid"

    @property
    def default_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.classifier.activation]

    def cache_key(self) -> str:
        vocab_hash = hashlib.sha256("\n".join(self.vocabulary).encode()).hexdigest()
        return json.dumps({"format": CACHE_FORMAT, "model": self.classifier.adapter.identity, "vocabulary": vocab_hash,
                           "n": len(self.vocabulary), "template": self.template, "generic": list(GENERIC_PROMPTS)})

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(V x D tag embeddings, K x D generic-prompt embeddings), from memory, disk or the model."""
        if self._text is None:
            prompts = [self.template.format(t) for t in self.vocabulary] + list(GENERIC_PROMPTS)
            key = self.cache_key()
            emb = self.store.get(key, len(prompts)) if self.store else None
            if emb is None:
                emb = self.classifier.adapter.embed_texts(prompts).numpy()
                if self.store:
                    self.cache_path = self.store.put(key, emb)
            elif self.store:
                self.cache_path = self.store.path(key)
            emb = torch.from_numpy(np.ascontiguousarray(emb))
            v = len(self.vocabulary)
            self._text, self._generic = emb[:v], emb[v:]
        return self._text, self._generic

    def scores(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """N x V per-tag scores in [0, 1] for N image embeddings."""
        text, generic = self.text_embeddings()
        adapter = self.classifier.adapter
        if adapter.family != "clip":
            return torch.sigmoid(adapter.logits(image_embeds, text))
        s = adapter.logit_scale
        tag_logits = s * (image_embeds.float() @ text.T)  # N x V
        gen = s * (image_embeds.float() @ generic.T)  # N x K
        background = torch.logsumexp(gen, dim=-1, keepdim=True) - float(np.log(gen.shape[-1]))
        return torch.sigmoid(tag_logits - background)

    def tag(self, image: ImageSource | LoadedImage, threshold: float | None = None, top_k: int | None = None) -> Labels:
        """Tags scoring at least ``threshold`` (model default when None), best first, at most ``top_k``."""
        threshold = check_threshold(threshold)
        top_k = check_top_k(top_k)
        img = self.classifier.adapter.embed_images([as_pixels(image)])
        scores = self.ontology.merge_scores(self.scores(img)[0].numpy(), how="max")
        labels = Labels(list(self.ontology.classes), scores, "sigmoid")
        return labels.above(self.default_threshold if threshold is None else threshold).top(top_k)
