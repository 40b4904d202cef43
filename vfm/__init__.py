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
from vfm.tasks.segment import Segmenter, segment

__version__ = "0.1.0"

__all__ = [
    "ImageError", "Instances", "LoadedImage", "ModelError", "ModelNotFoundError", "Prompt", "PromptError",
    "Segmenter", "VfmError", "formats", "list_models", "load_image", "resolve", "segment",
]
