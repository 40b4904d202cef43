"""User-facing errors.

Every error a user can cause is a :class:`VfmError` whose message is one sentence that says what was
wrong and what to do. The CLI prints it as one line and exits non-zero; the server maps it to a 4xx.
"""

from __future__ import annotations


class VfmError(Exception):
    """Base class of every error vfm raises for bad input or an unusable environment."""

    #: HTTP status the server answers with for this error.
    http_status: int = 400


class ImageError(VfmError):
    """An image could not be read: missing, empty, corrupt, truncated, unsupported or too large."""

    http_status = 415


class ImageTooLargeError(ImageError):
    """An image has more pixels than the configured limit (decompression-bomb guard)."""

    http_status = 413


class VideoError(VfmError):
    """A video could not be read: missing, not a video, no video stream, zero frames, corrupt."""

    http_status = 415


class PromptError(VfmError):
    """A prompt (point, box, mask, class list, threshold) is malformed or outside the image."""

    http_status = 422


class ModelError(VfmError):
    """A model name cannot be resolved or loaded. ``model_name`` is the name as the user gave it
    (the CLI names the option it came from)."""

    http_status = 400

    def __init__(self, message: str, *, model_name: str | None = None):
        super().__init__(message)
        self.model_name = model_name


class ModelNotFoundError(ModelError):
    """The model is not cached locally and the hub cannot be reached (or the id does not exist)."""


class DependencyError(VfmError):
    """An optional dependency needed for this feature is not installed."""

    http_status = 501


def require(module: str, extra: str):
    """Import an optional dependency or raise a :class:`DependencyError` naming the pip extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyError(
            f"this feature needs the optional package '{module.split('.')[0]}'; "
            f"install it with: pip install 'vfm[{extra}]'"
        ) from exc
