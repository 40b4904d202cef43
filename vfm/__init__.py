"""vfm: vision foundation models put to work.

Public API (everything else is internal)::

    import vfm
    img = vfm.load_image("photo.jpg")
    seg = vfm.Segmenter.load("sam-vit-base")
    res = seg.predict(points=[(420, 310)], image=img)    # -> vfm.Instances
    doc = vfm.formats.instances_to_document(res)       # COCO-style JSON with RLE masks
"""

from vfm import formats
from vfm.errors import ImageError, ModelError, ModelNotFoundError, PromptError, VfmError
from vfm.io.image import LoadedImage, load_image
from vfm.models.registry import list_models, resolve
from vfm.results.instances import Instances
from vfm.tasks.prompts import Prompt

__version__ = "0.1.0"


def __getattr__(name: str):
    # Segmenter pulls in torch and transformers: resolved on first use (PEP 562), so that `import vfm`
    # stays light for processes that never run a model (the CLI's argument checks, the labeling
    # engine's driver; about 0.5 GB RSS on torch 2.14.1's CUDA build).
    if name in ("Segmenter", "segment"):
        from vfm.tasks import segment as _segment_module

        return getattr(_segment_module, name)
    raise AttributeError(f"module 'vfm' has no attribute {name!r}")

__all__ = [
    "ImageError", "Instances", "LoadedImage", "ModelError", "ModelNotFoundError", "Prompt", "PromptError",
    "Segmenter", "VfmError", "formats", "list_models", "load_image", "resolve", "segment",
]
