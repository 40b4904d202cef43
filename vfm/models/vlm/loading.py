"""Load a vision-language model (Florence-2, BLIP, SmolVLM, LLaVA, LLaVA-OneVision, Qwen2.5-VL) by
alias, hub id or local directory, with its processor, wrapped in its family's adapter."""

from __future__ import annotations

import torch

from vfm.errors import ModelError
from vfm.models.registry import VIDEO_CHAT_FAMILIES, Resolved, load_pretrained, resolve
from vfm.models.vlm.base import VlmAdapter
from vfm.runtime import resolve_device

CHAT_FAMILIES = ("smolvlm", "llava", "llava-onevision", "qwen2.5-vl")


def load_vlm(name: str, *, task: str | None = None, device: str | torch.device | None = None,
             precision: str = "fp32") -> VlmAdapter:
    resolved = resolve(name, task=task) if task else _resolve_any(name)
    dev = resolve_device(device)
    dtype = _dtype(precision, dev)
    family = resolved.family
    if family == "florence2":
        from transformers import Florence2ForConditionalGeneration as cls

        from vfm.models.vlm.florence2 import Florence2Adapter as adapter
    elif family == "blip":
        from transformers import BlipForConditionalGeneration as cls

        from vfm.models.vlm.blip import BlipCaptionAdapter as adapter
    elif family == "blip-vqa":
        from transformers import BlipForQuestionAnswering as cls

        from vfm.models.vlm.blip import BlipVqaAdapter as adapter
    elif family in CHAT_FAMILIES:
        from transformers import AutoModelForImageTextToText as cls

        from vfm.models.vlm.chat import ChatAdapter

        def adapter(*args, **kwargs):
            return ChatAdapter(*args, family=family, videos=family in VIDEO_CHAT_FAMILIES, **kwargs)
    else:  # resolve() checked the task
        raise ModelError(f"model '{name}' is a {family} model, not a vision-language model", model_name=name)
    model = load_pretrained(cls.from_pretrained, resolved, dtype=dtype).to(dev).eval()
    processor = _processor(resolved)
    return adapter(model, processor, dev, dtype, name=resolved.name)


def _resolve_any(name: str) -> Resolved:
    resolved = resolve(name)
    if resolved.family not in ("florence2", "blip", "blip-vqa", *CHAT_FAMILIES):
        raise ModelError(f"model '{name}' is a {resolved.family} model, not a vision-language model; "
                         "see `vfm models --task ask` / `--task caption`", model_name=name)
    return resolved


def _processor(resolved: Resolved):
    from transformers import AutoProcessor

    from vfm.models.registry import _short, hub_online

    attempts = (True,) if resolved.is_local else (True, False)
    last: BaseException | None = None
    for local_only in attempts:
        if not local_only and not hub_online():
            break
        try:
            return AutoProcessor.from_pretrained(resolved.source, local_files_only=local_only)
        except OSError as exc:
            last = exc
        except ImportError as exc:
            from vfm.errors import require

            if "num2words" in str(exc):
                require("num2words", "vlm")  # SmolVLM's processor; raises the one-line install hint
            raise ModelError(f"the processor of {resolved.describe()} needs a package that is missing: {_short(exc)}",
                             model_name=resolved.name) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"the processor of {resolved.describe()} could not be loaded: {_short(exc)}",
                             model_name=resolved.name) from exc
    raise ModelError(f"the processor (tokenizer, image processor) of {resolved.describe()} is not on this machine "
                     f"({_short(last) if last else 'the hub is unreachable'}); download the whole checkpoint",
                     model_name=resolved.name)


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    from vfm.runtime import resolve_precision

    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return resolve_precision(precision, device)
