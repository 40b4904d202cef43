"""The `vfm` command. Each subcommand lives in its own module with ``add_parser`` and ``run``.

Every error prints one line on stderr (no traceback) and exits non-zero: 2 for a usage error,
1 for anything else. ``VFM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

#: Subcommand modules under vfm.cli, in help order.
COMMANDS = ["segment", "everything", "track", "models", "detect", "ground", "classify", "tag", "caption", "ask", "read", "depth", "semantic", "panoptic", "lidar3d", "embed", "index", "search", "dedupe", "serve", "mcp", "label", "convert", "eval"]


#: Values that start with '-' but are numbers, or comma-separated numbers ("-5,100", "-0.5,2,1"), are
#: values, not options: ``--point -5,100`` works without the ``--point=-5,100`` spelling.
NEGATIVE_VALUES = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*$")

#: Options that name a model, in the order they are reported.
MODEL_FLAGS = ("model", "detector", "segmenter", "classifier", "semantic_model")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUES

    def error(self, message: str) -> None:  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from vfm import __version__

    parser = _Parser(prog="vfm", description="Vision foundation models put to work.")
    parser.add_argument("--version", action="version", version=f"vfm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"vfm.cli.{name}_cmd")
        module.add_parser(sub)
    return parser


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("VFM_DEBUG") == "1"
    if not debug:
        _quiet_libraries()
    from vfm.errors import VfmError

    try:
        return int(args.func(args) or 0)
    except VfmError as exc:
        if debug:
            raise
        sys.stderr.write(f"vfm {args.command}: error: {_flagged(args, exc)}\n")
        return 1
    except OSError as exc:  # a file or folder the command could not read or write
        if debug:
            raise
        where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"vfm {args.command}: error: cannot use{where}: {exc.strerror or exc}; "
                         "check the path and its permissions\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"vfm {args.command}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, never a traceback
        if debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        sys.stderr.write(
            f"vfm {args.command}: internal error: {type(exc).__name__}: {msg} (set VFM_DEBUG=1 for the traceback)\n"
        )
        return 1


def _flagged(args, exc) -> str:
    """A model error prefixed with the option that named the model (--detector, --segmenter, ...)."""
    name = getattr(exc, "model_name", None) or getattr(exc.__cause__, "model_name", None)
    if name:
        for dest in MODEL_FLAGS:
            if getattr(args, dest, None) == name:
                return f"--{dest.replace('_', '-')} {name}: {exc}"
    return str(exc)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
