"""Closed-set image classification: any transformers image-classification checkpoint with its own labels
(ViT, DeiT, BEiT, ConvNeXt, Swin, EfficientNet, ResNet, Perceiver, ...).

    clf = ImageClassifier.load("vit-base-patch16-224")
    labels = clf.classify("photo.jpg")                   # Labels over the model's classes, best first
    labels = clf.classify("photo.jpg", "tabby, tiger cat")   # only those, scores unchanged

The numbers are those of transformers' ``image-classification`` pipeline: the checkpoint's image
processor, the model's logits, then a softmax (sigmoid for checkpoints whose ``problem_type`` is
``multi_label_classification``, as the pipeline decides). A class list keeps only the named labels
(the model's names, case-insensitive; ``prompt: label`` renames), with the probabilities of the
full softmax, so they need not sum to 1.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from vfm.errors import PromptError
from vfm.io.image import ImageSource, LoadedImage
from vfm.results.labels import Labels
from vfm.runtime import autocast

FAMILY = "image-classifier"  # the registry's family of CLASSIFIER_MODEL_TYPES


class ImageClassifier:
    def __init__(self, model, processor, device: torch.device, dtype: torch.dtype = torch.float32, name: str = ""):
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        self.dtype = dtype
        self.name = name
        id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        self.class_names = [id2label.get(i, f"class_{i}") for i in range(model.config.num_labels)]
        multi = getattr(model.config, "problem_type", None) == "multi_label_classification" or model.config.num_labels == 1
        self.activation = "sigmoid" if multi else "softmax"

    @classmethod
    def load(cls, name: str, device: str | None = None, precision: str = "fp32") -> "ImageClassifier":
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        from vfm.models.processors import load_processor
        from vfm.models.registry import load_pretrained, resolve
        from vfm.runtime import resolve_device, resolve_precision

        resolved = resolve(name, task="classify")
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        model = load_pretrained(AutoModelForImageClassification.from_pretrained, resolved)
        processor = load_processor(AutoImageProcessor, resolved)
        return cls(model, processor, dev, dtype, name=name)

    @torch.inference_mode()
    def classify(self, image: ImageSource | LoadedImage, labels: str | Iterable[str] | None = None,
                 template: str | None = None) -> Labels:
        """Scores of the model's classes (or of ``labels`` only) for one image, best first.

        ``template`` is accepted for the zero-shot signature; a closed-set model has no prompts.
        """
        from PIL import Image

        from vfm.tasks.classify import as_pixels

        selected = self._select(labels)
        enc = self.processor(images=Image.fromarray(as_pixels(image)), return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if isinstance(v, torch.Tensor)}
        with autocast(self.device, self.dtype):
            logits = self.model(**enc).logits[0].float()
        probs = (logits.sigmoid() if self.activation == "sigmoid" else logits.softmax(-1)).cpu().numpy().astype(np.float64)
        if selected is None:
            return Labels(self.class_names, probs, self.activation)
        onto, ids = selected
        return Labels(list(onto.classes), onto.merge_scores(probs[ids], how="sum" if self.activation == "softmax" else "max"),
                      self.activation)

    def _select(self, labels):
        if labels is None:
            return None
        from vfm.tasks.ontology import Ontology

        onto = Ontology.parse(labels, what="class list")
        lookup = {n.lower(): i for i, n in reversed(list(enumerate(self.class_names)))}
        missing = [p for p in onto.prompts if p.lower() not in lookup]
        if missing:
            shown = ", ".join(self.class_names[:20])
            raise PromptError(f"model '{self.name}' has no class '{missing[0]}'; its {len(self.class_names)} classes "
                              f"begin: {shown}... (zero-shot names need clip-vit-base-32 or siglip-base)")
        return onto, np.array([lookup[p.lower()] for p in onto.prompts], dtype=np.int64)
