"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vfm.errors import PromptError


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    """--device, --precision, --max-pixels."""
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: CUDA when available, else CPU)")
    p.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
        help="image encoder precision (default auto: bf16 where the hardware has it, fp32 elsewhere)",
    )
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (default 100M, env VFM_MAX_PIXELS)")


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend for the SAM image encoder, and int8 among the --precision choices (issue #21)."""
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "openvino", "auto"],
                   help="engine of the SAM image encoder: torch (default), onnxruntime, openvino (the encoder exported "
                        "once to ONNX and cached), or auto: the fastest measured on this CPU")
    for action in p._actions:
        if action.dest == "precision":
            action.choices = list(action.choices) + ["int8"]
            action.help += "; int8: an int8 encoder (with --backend onnxruntime / openvino; see docs/backends.md)"


def add_output_options(p: argparse.ArgumentParser, *, masks: bool = True, coco: bool = True) -> None:
    """--json, --out DIR, --quiet (``masks``: --out writes mask PNGs; ``coco``: the document is COCO-style)."""
    p.add_argument("--json", action="store_true",
                   help=f"print one {'COCO-style ' if coco else ''}JSON document per image on stdout")
    p.add_argument("--out", metavar="DIR", default=None,
                   help=f"write {'PNG masks, ' if masks else ''}an overlay.png and result.json into DIR "
                        "(a folder per image when there are several)")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")


def parse_floats(text: str, n: tuple[int, ...], what: str, example: str) -> list[float]:
    parts = [t for t in text.replace(" ", "").split(",")]
    try:
        values = [float(t) for t in parts]
    except ValueError:
        raise PromptError(f"{what} '{text}' is not a list of numbers; expected {example}") from None
    if len(values) not in n:
        raise PromptError(f"{what} '{text}' has {len(values)} numbers; expected {example}")
    return values


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def out_dir(path: str) -> Path:
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise PromptError(f"--out '{path}' exists and is not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PromptError(f"--out '{path}' cannot be created ({exc.strerror or exc}); give a folder you can write to") from None
    return d


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
