"""Pascal VOC XML boxes, one file per image, with the devkit's 1-based inclusive pixel indices.

    OUT/voc/Annotations/<path>.xml   <annotation> filename, path, size, <object> name, bndbox ...
    OUT/voc/labels.txt                the class names, one per line (the category order)

A box [x0, x1) in vfm's pixel-edge coordinates is ``xmin = round(x0) + 1``, ``xmax = round(x1)``
(the last pixel, 1-based), the convention of the VOC devkit and of supervision's reader. ``pose``
Unspecified, ``truncated`` and ``difficult`` 0; the score is left out (VOC has no field for it).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from vfm.formats._atomic import atomic_dir, stem_path
from vfm.formats.shapes import image_shapes


def voc_xml(shapes, name: str, image_path: str, width: int, height: int) -> bytes:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = os.path.dirname(name)
    ET.SubElement(root, "filename").text = os.path.basename(name)
    ET.SubElement(root, "path").text = image_path
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "vfm"
    size = ET.SubElement(root, "size")
    for tag, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(int(v))
    ET.SubElement(root, "segmented").text = "0"
    for s in shapes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = s.label
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        x0, y0, x1, y1 = s.box
        for tag, v in (("xmin", round(x0) + 1), ("ymin", round(y0) + 1), ("xmax", round(x1)), ("ymax", round(y1))):
            ET.SubElement(box, tag).text = str(int(v))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def write_voc(store, categories: list[str], out_dir: str | os.PathLike, source_root: str) -> int:
    n = 0
    with atomic_dir(Path(out_dir) / "voc") as d:
        (d / "labels.txt").write_text("".join(c + "\n" for c in categories), encoding="utf-8")
        for _id, name, _s, w, h, result, _e in store.rows("done"):
            target = d / "Annotations" / stem_path(name, ".xml")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(voc_xml(image_shapes(result, masks=False), name,
                                       str(Path(source_root) / name), w, h))
            n += 1
    return n
