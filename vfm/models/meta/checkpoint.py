"""Meta-format checkpoint files (``.pth`` / ``.pt``): read safely, tell which SAM generation, build the model.

``torch.load(weights_only=True)``: a file that pickles anything besides tensors and plain
containers is refused rather than executed. SAM 2 files wrap the weights in ``{"model": ...}``.
"""

from __future__ import annotations

import re
from pathlib import Path

from vfm.errors import ModelError

SUFFIXES = (".pth", ".pt")

#: kind -> (vfm family, what it is, an example file)
KINDS = {
    "sam": ("sam", "SAM (ViT image encoder)", "sam_vit_b_01ec64.pth"),
    "sam-hq": ("sam-hq", "SAM-HQ (ViT image encoder)", "sam_hq_vit_b.pth"),
    "mobile-sam": ("sam", "MobileSAM (TinyViT image encoder)", "mobile_sam.pt"),
    "sam2": ("sam2", "SAM 2 / 2.1 (Hiera image encoder)", "sam2.1_hiera_tiny.pt"),
}
SUPPORTED = ", ".join(f"{v[1]} like {v[2]}" for v in KINDS.values())


def is_meta_file(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix.lower() in SUFFIXES and p.is_file()


def read_state_dict(path: str | Path, name: str | None = None) -> dict:
    """The flat tensor dict of a Meta checkpoint file, memory-mapped (the weights are read on use)."""
    import pickle

    import torch

    shown = name or str(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (non-zip) files cannot be memory-mapped
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise ModelError(f"'{shown}' holds Python objects besides weights (e.g. {found[1]}); vfm only loads "
                             "tensor checkpoints (torch.load weights_only): save model.state_dict() instead",
                             model_name=name) from None
        raise ModelError(f"'{shown}' is not a readable PyTorch checkpoint (truncated or not a .pth/.pt file): "
                         f"{str(exc).splitlines()[0][:120]}; download it again", model_name=name) from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError) as exc:
        raise ModelError(f"'{shown}' is not a readable PyTorch checkpoint (truncated or not a .pth/.pt file): "
                         f"{str(exc).splitlines()[0][:160]}; download it again", model_name=name) from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"'{shown}' is not a state dict of tensors (a SAM-family checkpoint is one); supported: "
                         f"{SUPPORTED}", model_name=name)
    return obj


def sniff(state: dict, name: str) -> str:
    """Which SAM generation ``state`` is (a key of :data:`KINDS`)."""
    has = state.__contains__
    if has("image_encoder.trunk.patch_embed.proj.weight") and any(k.startswith("sam_mask_decoder.") for k in state):
        return "sam2"
    if not has("mask_decoder.mask_tokens.weight") or not has("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"):
        first = ", ".join(list(state)[:3])
        raise ModelError(f"'{name}' is not a SAM-family checkpoint (its weights start {first}); supported: {SUPPORTED}",
                         model_name=name)
    hq = has("mask_decoder.hf_token.weight")
    if has("image_encoder.patch_embed.proj.weight") and has("image_encoder.blocks.0.attn.qkv.weight"):
        return "sam-hq" if hq else "sam"
    if has("image_encoder.patch_embed.seq.0.c.weight"):
        if hq:
            raise ModelError(f"'{name}' is Light HQ-SAM (TinyViT + HQ decoder), which vfm does not load yet; "
                             "use sam_hq_vit_b/l/h.pth or mobile_sam.pt", model_name=name)
        return "mobile-sam"
    raise ModelError(f"'{name}' has a SAM decoder but an image encoder vfm does not know; supported: {SUPPORTED}",
                     model_name=name)


def family_of_file(path: str | Path, name: str) -> tuple[str, str]:
    """(vfm family, kind) of a Meta checkpoint file."""
    kind = sniff(read_state_dict(path, name), name)
    return KINDS[kind][0], kind


def load_meta_model(path: str | Path, name: str):
    """The transformers model (SamModel / SamHQModel / Sam2Model) holding a Meta checkpoint's weights."""
    state = read_state_dict(path, name)
    kind = sniff(state, name)
    try:
        if kind in ("sam", "sam-hq"):
            from vfm.models.meta.sam import sam_from_meta

            return sam_from_meta(state), kind
        if kind == "mobile-sam":
            from vfm.models.meta.mobile_sam import mobile_sam_from_meta

            return mobile_sam_from_meta(state), kind
        from vfm.models.meta.sam2 import sam2_from_meta

        return sam2_from_meta(state), kind
    except (KeyError, ValueError, RuntimeError, IndexError) as exc:
        raise ModelError(f"'{name}' looks like {KINDS[kind][1]} but does not convert: {str(exc).splitlines()[0][:200]}",
                         model_name=name) from None
