"""`vfm label --format labelme,voc,cvat` (issue 14 item 2, the writers): each file read back gives the
COCO file's boxes, masks and class names; VOC through supervision's own reader."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from vfm.testing.tiny_clip import build_mask2former

    root = tmp_path_factory.mktemp("formats")
    model = build_mask2former(root / "m2f", seed=0)
    src = root / "images"
    (src / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "sub/b.png"]):
        Image.fromarray(make_image(72 + 8 * i, 100, seed=10 + i)).save(src / rel)
    out = root / "out"
    assert main(["label", str(src), "--task", "instance", "--semantic-model", str(model), "--box-threshold", "0",
                 "--precision", "fp32", "--format", "coco,labelme,voc,cvat", "--out", str(out), "--quiet"]) == 0
    coco = json.loads((out / "coco.json").read_text())
    return {"src": src, "out": out, "coco": coco, "model": model, "root": root}


def _per_image(coco):
    from vfm.results.rle import decode_rle

    names = {c["id"]: c["name"] for c in coco["categories"]}
    by = {img["file_name"]: [] for img in coco["images"]}
    files = {img["id"]: img["file_name"] for img in coco["images"]}
    for a in coco["annotations"]:
        by[files[a["image_id"]]].append((names[a["category_id"]], a["bbox"], decode_rle(a["segmentation"])))
    return by


def test_labelme_files_hold_the_coco_objects(run):
    from vfm.formats.yolo import mask_polygon

    per_image = _per_image(run["coco"])
    assert sum(len(v) for v in per_image.values()) > 2
    for name, objects in per_image.items():
        path = run["out"] / "labelme" / (os.path.splitext(name)[0] + ".json")
        doc = json.loads(path.read_text())
        assert doc["imageData"] is None and doc["version"] and doc["flags"] == {}
        assert (path.parent / doc["imagePath"]).resolve() == (run["src"] / name).resolve()
        h, w = np.asarray(Image.open(run["src"] / name)).shape[:2]
        assert (doc["imageHeight"], doc["imageWidth"]) == (h, w)
        assert len(doc["shapes"]) == len(objects)
        for shape, (label, _bbox, mask) in zip(doc["shapes"], objects):
            assert shape["label"] == label and shape["shape_type"] == "polygon" and shape["group_id"] is None
            np.testing.assert_allclose(shape["points"], mask_polygon(mask), atol=0.005)


def test_voc_boxes_read_by_supervision(run):
    sv = pytest.importorskip("supervision")
    per_image = _per_image(run["coco"])
    labels = (run["out"] / "voc" / "labels.txt").read_text().splitlines()
    assert labels == [c["name"] for c in run["coco"]["categories"]]
    for name, objects in per_image.items():
        folder = os.path.dirname(name)
        ds = sv.DetectionDataset.from_pascal_voc(images_directory_path=str(run["src"] / folder),
                                                 annotations_directory_path=str(run["out"] / "voc" / "Annotations" / folder))
        key = next(k for k in ds.image_paths if os.path.basename(k) == os.path.basename(name))
        det = ds.annotations[key]
        assert len(det) == len(objects)
        got = sorted(zip([ds.classes[i] for i in det.class_id], det.xyxy.tolist()))
        want = sorted((label, [round(x), round(y), round(x + bw), round(y + bh)]) for label, (x, y, bw, bh), _ in objects)
        assert [g[0] for g in got] == [w[0] for w in want]
        np.testing.assert_array_equal([g[1] for g in got], [w[1] for w in want])


def test_cvat_masks_decode_to_the_coco_masks(run):
    from vfm.formats.cvat import mask_from_rle

    root = ET.parse(run["out"] / "cvat.xml").getroot()
    assert root.findtext("version") == "1.1"
    assert [lab.findtext("name") for lab in root.iter("label")] == [c["name"] for c in run["coco"]["categories"]]
    per_image = _per_image(run["coco"])
    images = root.findall("image")
    assert [i.get("name") for i in images] == list(per_image)
    for img in images:
        wh = (int(img.get("width")), int(img.get("height")))
        masks = img.findall("mask")
        assert len(masks) == len(per_image[img.get("name")])
        for el, (label, _bbox, mask) in zip(masks, per_image[img.get("name")]):
            runs = [int(v) for v in el.get("rle").split(",")]
            got = mask_from_rle(runs, int(el.get("left")), int(el.get("top")), int(el.get("width")),
                                int(el.get("height")), wh)
            assert el.get("label") == label and el.get("source") == "auto"
            np.testing.assert_array_equal(got, mask)
            assert 0 <= float(el.find("attribute").text) <= 1


def test_cvat_rle_known_values():
    from vfm.formats.cvat import mask_from_rle, mask_rle

    m = np.zeros((4, 5), bool)
    m[1, 1:3] = True
    m[2, 2] = True
    runs, box = mask_rle(m)
    assert box == (1, 1, 2, 2) and runs == [0, 2, 1, 1]  # box rows: [1 1], [0 1]
    np.testing.assert_array_equal(mask_from_rle(runs, *box, (5, 4)), m)
    m2 = np.zeros((3, 3), bool)
    m2[0, 2] = m2[2, 0] = True
    runs, box = mask_rle(m2)
    assert box == (0, 0, 3, 3) and runs == [2, 1, 3, 1, 2]  # every pixel of the box, trailing background too


def test_cvat_polygons_and_tag_refusal(run, capsys):
    out = run["root"] / "poly"
    assert main(["label", str(run["src"]), "--task", "instance", "--semantic-model", str(run["model"]),
                 "--box-threshold", "0", "--precision", "fp32", "--format", "cvat", "--cvat-shapes", "polygon",
                 "--out", str(out), "--quiet"]) == 0
    root = ET.parse(out / "cvat.xml").getroot()
    assert root.findall(".//polygon") and not root.findall(".//mask")
    assert main(["label", str(run["src"]), "--task", "tag", "--format", "voc", "--out", str(run["root"] / "t")]) == 1
    assert "image-level tags" in capsys.readouterr().err


def test_boxes_without_masks_are_rectangles_and_voc_indices():
    from vfm.formats.labelme import labelme_document
    from vfm.formats.shapes import Shape
    from vfm.formats.voc import voc_xml

    shapes = [Shape("forklift", (10.0, 20.0, 30.5, 40.0), 0.75)]
    doc = labelme_document(shapes, "../img.jpg", 64, 48)
    assert doc["shapes"][0]["shape_type"] == "rectangle" and doc["shapes"][0]["points"] == [[10.0, 20.0], [30.5, 40.0]]
    box = ET.fromstring(voc_xml(shapes, "sub/img.jpg", "/data/sub/img.jpg", 64, 48)).find("object/bndbox")
    # pixel edges [10, 30.5) -> 1-based first pixel 11, last pixel round(30.5) = 30 (banker's rounding of .5)
    assert [int(box.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")] == [11, 21, 30, 40]
