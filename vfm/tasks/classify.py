"""Zero-shot image classification with CLIP or SigLIP: an image and label names -> probabilities.

    clf = Classifier.load("clip-vit-base-32")
    labels = clf.classify("photo.jpg", "cat, dog, remote control")   # Labels, best first
    labels.names[0], labels.scores[0], labels.activation              # "cat", 0.93, "softmax"

Each label is put into a prompt template (default ``"a photo of a {}."``) and compared with the
image. Probabilities are those of the model's own forward (``logits_per_image``):

* CLIP (``clip-vit-base-32``, ``clip-vit-large-14``): softmax over the given labels with the model's
  ``logit_scale``; they sum to 1, so they depend on which other labels are in the list.
* SigLIP / SigLIP 2 (``siglip-base``, ``siglip2-base``): ``sigmoid(logit_scale * cos + logit_bias)``
  per label, independently; they do not sum to 1 and adding labels does not change the others.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage, load_image
from vfm.results.labels import Labels
from vfm.tasks.ontology import Ontology

DEFAULT_CLASSIFIER = "clip-vit-base-32"
DEFAULT_TEMPLATE = "a photo of a {}."


def check_template(template: str | None) -> str:
    """A prompt template must contain ``{}`` exactly once (where the label goes)."""
    if template is None:
        return DEFAULT_TEMPLATE
    template = str(template)
    if template.count("{}") != 1:
        raise PromptError(
            f"template '{template}' must contain '{{}}' exactly once where the label goes, e.g. \"a photo of a {{}}.\""
        )
    try:
        template.format("x")
    except (IndexError, KeyError, ValueError):
        raise PromptError(f"template '{template}' has braces other than '{{}}'; double them ('{{{{') to keep them") from None
    return template


def as_pixels(image: ImageSource | LoadedImage) -> np.ndarray:
    if isinstance(image, LoadedImage):
        return image.pixels
    return load_image(image).pixels


class Classifier:
    """A CLIP or SigLIP model for zero-shot classification and image/text embeddings."""

    def __init__(self, adapter):
        self.adapter = adapter

    @classmethod
    def load(cls, model: str = DEFAULT_CLASSIFIER, device: str | None = None, precision: str = "fp32") -> "Classifier":
        """Load by alias, hub id or local directory (saved with save_pretrained, with its processor).

        ``precision`` defaults to fp32 so scores equal transformers' own forward; bf16/fp16 are for GPUs
        (bf16 autocast measured 3.8x slower than fp32 for CLIP on a 2-core CPU, bench/clip_precision.py).
        """
        from vfm.models.clip import load_contrastive
        from vfm.runtime import resolve_device, resolve_precision, tune_allocator

        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        if dev.type == "cpu":
            tune_allocator()
        return cls(load_contrastive(model, dev, dtype))

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def family(self) -> str:
        return self.adapter.family

    @property
    def activation(self) -> str:
        """"softmax" (CLIP) or "sigmoid" (SigLIP)."""
        return self.adapter.activation

    # ------------------------------------------------------------------ embeddings
    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """HxWx3 uint8 images -> (N, D) float32 L2-normalized embeddings (batched forward passes)."""
        return self.adapter.embed_images([np.asarray(im, dtype=np.uint8) for im in images]).numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts (used as given, no template) -> (N, D) float32 L2-normalized embeddings."""
        return self.adapter.embed_texts(list(texts)).numpy()

    def prompts(self, labels: Sequence[str], template: str | None = None) -> list[str]:
        t = check_template(template)
        return [t.format(name) for name in labels]

    # ------------------------------------------------------------------ scores
    def logits(self, image_embeds: np.ndarray, text_embeds: np.ndarray) -> np.ndarray:
        """(N_images, N_texts) logits from embeddings, as the model's forward computes them."""
        return self.adapter.logits(torch.as_tensor(image_embeds), torch.as_tensor(text_embeds)).numpy()

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Softmax over the last axis (CLIP) or elementwise sigmoid (SigLIP)."""
        return self.adapter.probabilities(torch.as_tensor(logits, dtype=torch.float32)).numpy()

    def classify(self, image: ImageSource | LoadedImage, labels: str | Iterable[str],
                 template: str | None = DEFAULT_TEMPLATE) -> Labels:
        """Score ``labels`` (a comma-separated string or a list) for one image; best first.

        A ``prompt: label`` entry (:mod:`vfm.tasks.ontology`) scores ``prompt`` and reports ``label``;
        a label named by several prompts gets their total (softmax) or their best score (sigmoid).
        """
        onto = Ontology.parse(labels, what="label list")
        prompts = self.prompts(list(onto.prompts), template)
        pixels = as_pixels(image)
        img = self.adapter.embed_images([pixels])
        txt = self.adapter.embed_texts(prompts)
        probs = self.adapter.probabilities(self.adapter.logits(img, txt))[0].numpy()
        probs = onto.merge_scores(probs, how="sum" if self.activation == "softmax" else "max")
        return Labels(list(onto.classes), probs, self.activation)


def classify(image: ImageSource | LoadedImage, labels: str | Iterable[str], model: str = DEFAULT_CLASSIFIER,
             template: str | None = DEFAULT_TEMPLATE, device: str | None = None) -> Labels:
    """One-call zero-shot classification (loads the model each call; keep a Classifier for many images)."""
    return Classifier.load(model, device=device).classify(image, labels, template=template)
