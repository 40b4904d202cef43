"""Input: images (and, later, videos) decoded into arrays vfm works on."""

from vfm.io.image import IMAGE_EXTENSIONS, LoadedImage, is_image_path, load_image

__all__ = ["IMAGE_EXTENSIONS", "LoadedImage", "is_image_path", "load_image"]
