"""The auto-labeling engine behind `vfm label`: a folder in, a dataset out.

``source`` scans SOURCE lazily into the SQLite ``state`` store in OUT (stable image ids), ``tasks``
builds the per-image function from the options, ``runner`` / ``ray_runner`` run it (one process,
N processes, or Ray Data) committing one row per image, and the writers in ``vfm.formats`` stream
the rows back out into COCO / YOLO / Label Studio / PNG datasets, finalized atomically.
"""
