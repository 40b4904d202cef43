"""Load a promptable segmentation model (SAM, SlimSAM, SAM-HQ, SAM 2, SAM 3's tracker) by alias, hub id or directory."""

from __future__ import annotations

import torch

from vfm.models.promptable import PromptableModel
from vfm.models.registry import load_pretrained, read_hub_json, resolve
from vfm.runtime import resolve_device, resolve_precision, tune_allocator


def load_promptable(
    name: str, *, device: str | torch.device | None = None, precision: str = "auto", backend: str | None = None
) -> PromptableModel:
    """Load a SAM-family model and wrap it in its adapter.

    ``precision`` sets the image encoder's autocast dtype ("auto": bf16 where the hardware has it;
    "int8": an int8 export, with ``backend`` onnxruntime or openvino). ``backend`` runs the image
    encoder in torch (default), ONNX Runtime, OpenVINO or the fastest of them measured here ("auto");
    see :mod:`vfm.models.backends`. The prompt encoder and mask decoder always run in fp32 torch.
    """
    from vfm.models.backends import check_backend

    backend = check_backend(backend, precision)
    resolved = resolve(name, task="segment")
    dev = resolve_device(device)
    wrapped = _load(resolved, dev, torch.float32 if precision == "int8" else resolve_precision(precision, dev))
    if backend != "torch":
        from vfm.models.backends.select import attach

        wrapped.backend = attach(wrapped, backend, precision)
    return wrapped


def _load(resolved, dev, dtype) -> PromptableModel:
    if dev.type == "cpu":
        tune_allocator()
    if resolved.meta_kind is not None:
        model, prep, adapter = _meta_file(resolved)
        wrapped = adapter(model, prep, dev, dtype)
        wrapped.name = resolved.name
        return wrapped
    processor_config = read_hub_json(resolved.source, "preprocessor_config.json", name=resolved.name)
    if resolved.family in ("sam", "sam-hq"):
        from vfm.models.sam import SamAdapter, SamHQAdapter, sam_preprocessing

        if resolved.family == "sam":
            from transformers import SamModel as cls

            adapter = SamAdapter
        else:
            from transformers import SamHQModel as cls

            adapter = SamHQAdapter
        model = load_pretrained(cls.from_pretrained, resolved)
        prep = sam_preprocessing(model.config, processor_config)
    elif resolved.family == "sam2":
        from transformers import Sam2Model

        from vfm.models.sam2 import Sam2Adapter, sam2_preprocessing

        model = load_pretrained(Sam2Model.from_pretrained, resolved)
        prep = sam2_preprocessing(model.config, processor_config)
        adapter = Sam2Adapter
    elif resolved.family == "sam3":
        from vfm.models.sam2 import Sam3TrackerAdapter, sam2_preprocessing
        from vfm.models.sam3 import load_sam3_tracker

        config = read_hub_json(resolved.source, "config.json", required=True, name=resolved.name)
        model = load_sam3_tracker(resolved, config)
        if processor_config is None:  # newer checkpoints keep the image settings inside processor_config.json
            processor_config = (read_hub_json(resolved.source, "processor_config.json", name=resolved.name) or {}).get(
                "image_processor")
        prep = sam2_preprocessing(model.config, processor_config)
        adapter = Sam3TrackerAdapter
    else:  # resolve(task="segment") only lets segment families through
        raise AssertionError(resolved.family)
    wrapped = adapter(model, prep, dev, dtype)
    wrapped.name = resolved.name
    return wrapped


def _meta_file(resolved):
    """Model, preprocessing and adapter for a Meta-format file (Meta's SamPredictor / SAM2Transforms settings)."""
    from vfm.models.meta.checkpoint import load_meta_model

    model, kind = load_meta_model(resolved.source, resolved.name)
    if kind == "sam2":
        from vfm.models.sam2 import Sam2Adapter, sam2_preprocessing

        return model, sam2_preprocessing(model.config, None), Sam2Adapter
    from vfm.models.sam import SamAdapter, SamHQAdapter, sam_preprocessing

    return model, sam_preprocessing(model.config, None), SamHQAdapter if kind == "sam-hq" else SamAdapter
