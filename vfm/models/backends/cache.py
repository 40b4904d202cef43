"""Where exported encoders live: ``$VFM_CACHE_DIR/exports/<key>/`` (default ``~/.cache/vfm``).

The key hashes what the export depends on: the encoder's weights (every tensor's bytes, in order),
its input size, vfm's export format version and the torch version that exported it. A checkpoint
whose weights change gets a new key, so it is exported again; old exports are left for the user to
delete (``rm -r ~/.cache/vfm/exports``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

EXPORT_VERSION = 2  # 2: exported through transformers' plain ViT layers


def cache_root() -> Path:
    env = os.environ.get("VFM_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vfm"


def weights_key(module: torch.nn.Module, *extra: object) -> str:
    h = hashlib.sha256(f"vfm-export-{EXPORT_VERSION}|torch-{torch.__version__}|{extra!r}".encode())
    for name, tensor in module.state_dict().items():
        t = tensor.detach().contiguous().cpu()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


def export_dir(key: str) -> Path:
    d = cache_root() / "exports" / key
    d.mkdir(parents=True, exist_ok=True)
    return d
