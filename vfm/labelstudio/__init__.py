"""vfm as Label Studio's ML backend: the labeling config, task images, smart-tool prompts, predictions.

The HTTP routes are in :mod:`vfm.server.routes_labelstudio`; the file formats Label Studio imports
(``vfm label --format labelstudio``) are in :mod:`vfm.formats.labelstudio`.
"""
