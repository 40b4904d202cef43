"""A checkpoint's processor (tokenizer and/or image processor): local cache first, then the hub.

Which image backend: transformers has a PIL and a torchvision ("fast") image processor for most
families, and picks torchvision when it is installed. On the CPU measured for bench/RESULTS.md
(2-core AMD EPYC with AVX-512, torch 2.14.1, one 1280x960 image per call), torchvision was the
faster one for every family vfm loads a processor for, by 1.5x (OWLv2) to 4x (OWL-ViT,
Grounding DINO, Mask2Former, OneFormer), with pixels within one uint8 step of the PIL processor:
so vfm keeps transformers' choice. Other CPUs measured the other way round (CLIP 120 vs 42 ms in
issue #17's figures), so ``VFM_IMAGE_BACKEND=pil`` (or ``torchvision``) overrides it for every
model; ``python bench/processors.py`` measures both on the machine in hand.

SAM and SAM 2 do not go through transformers' processors at all: vfm resamples as Meta's
references do (vfm/models/promptable.py).
"""

from __future__ import annotations

import os
from typing import Any, Callable

from vfm.errors import DependencyError, ModelError

BACKEND_ENV = "VFM_IMAGE_BACKEND"
BACKENDS = ("pil", "torchvision")


def image_backend() -> str | None:
    """The image backend from ``VFM_IMAGE_BACKEND`` (``pil``, ``torchvision``), or None: transformers' choice."""
    value = os.environ.get(BACKEND_ENV, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise ModelError(f"{BACKEND_ENV}={value!r} is not an image backend; use one of: auto, {', '.join(BACKENDS)}")
    return value


def load_processor(loader: Callable[..., Any], resolved, *, images: bool = True) -> Any:
    """``loader.from_pretrained`` (AutoProcessor, AutoImageProcessor ...) for a resolved model, offline first.

    ``images``: the processor has an image part, so the backend policy applies.
    """
    from vfm.models.registry import hub_online

    kwargs = {}
    backend = image_backend() if images else None
    if backend is not None:
        kwargs["backend"] = backend
    last: BaseException | None = None
    for local_only in (True,) if resolved.is_local else (True, False):
        if not local_only and not hub_online():
            break
        try:
            return loader.from_pretrained(resolved.source, local_files_only=local_only, **kwargs)
        except ImportError as exc:
            hint = "pip install 'vfm[siglip]'" if "sentencepiece" in str(exc).lower() else "pip install the package it names"
            raise DependencyError(
                f"the processor of model {resolved.describe()} needs a package that is not installed "
                f"({_first_line(exc)}); run: {hint}"
            ) from exc
        except (OSError, ValueError) as exc:
            last = exc
    if last is not None and "sentencepiece" in str(last).lower():
        raise DependencyError(f"the tokenizer of model {resolved.describe()} needs sentencepiece; run: pip install 'vfm[siglip]'")
    text = _first_line(last).split(". ")[0] if last else "not found"
    raise ModelError(
        f"the processor (tokenizer and image settings) of model {resolved.describe()} could not be loaded ({text}); "
        "a model directory needs the files of processor.save_pretrained(dir) beside the weights"
    )


def _first_line(exc: BaseException | None) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200] if exc is not None else ""
