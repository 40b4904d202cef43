"""`vfm convert` (issue 14 item 2): COCO -> every format -> COCO keeps images, class names and order,
boxes (to the pixel for box formats) and masks (IoU >= 0.8 through polygons: a contour traced on pixel
centres and filled again loses about half a pixel around the mask), and bad datasets are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vfm.cli.main import main

pytest.importorskip("pycocotools")
pytest.importorskip("cv2")


def _square_masks(h, w, boxes):
    out = []
    for x0, y0, x1, y1 in boxes:
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        m[y0 + (y1 - y0) // 2:y1, x0:x0 + (x1 - x0) // 3] = False  # an L shape: not just its box
        out.append(m)
    return out


@pytest.fixture(scope="module")
def coco_dataset(tmp_path_factory):
    from vfm.results.rle import encode_rle, rle_to_xywh

    root = tmp_path_factory.mktemp("convert")
    (root / "sub").mkdir()
    specs = {"a.png": (60, 80, [(5, 5, 40, 30), (45, 20, 75, 55)], ["dog", "cat"]),
             "sub/b.png": (50, 70, [(10, 12, 60, 44)], ["person"]),
             "c.png": (40, 40, [], [])}
    images, anns = [], []
    for i, (name, (h, w, boxes, labels)) in enumerate(specs.items(), start=1):
        Image.fromarray(np.full((h, w, 3), 90 + 30 * i, np.uint8)).save(root / name)
        images.append({"id": i, "file_name": name, "width": w, "height": h})
        for m, label in zip(_square_masks(h, w, boxes), labels):
            rle = encode_rle(m)
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": ["cat", "dog", "person"].index(label) + 1,
                         "segmentation": rle, "bbox": rle_to_xywh(rle), "area": int(m.sum()), "score": 0.5, "iscrowd": 0})
    doc = {"images": images, "categories": [{"id": k + 1, "name": n} for k, n in enumerate(["cat", "dog", "person"])],
           "annotations": anns}
    (root / "coco.json").write_text(json.dumps(doc))
    return root


def _objects(path):
    """{file_name: sorted [(class, bbox, mask)]} of a COCO file."""
    from vfm.results.rle import decode_rle

    doc = json.loads(path.read_text())
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    names = {i["id"]: i["file_name"] for i in doc["images"]}
    out = {n: [] for n in names.values()}
    for a in doc["annotations"]:
        mask = decode_rle(a["segmentation"]) if "segmentation" in a else None
        out[names[a["image_id"]]].append((cats[a["category_id"]], a["bbox"], mask))
    return [c["name"] for c in doc["categories"]], {k: sorted(v, key=lambda t: (t[0], t[1])) for k, v in out.items()}


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("fmt, masks", [("yolo", True), ("labelme", True), ("voc", False)])
def test_coco_to_format_and_back(fmt, masks, coco_dataset, tmp_path, capsys):
    src = coco_dataset / "coco.json"
    there, back = tmp_path / "there", tmp_path / "back"
    assert main(["convert", str(src), "--from", "coco", "--to", fmt, "--out", str(there), "--quiet"]) == 0
    inp = {"yolo": there / "yolo" / ("segment" if masks else "detect"), "labelme": there / "labelme",
           "voc": there / "voc"}[fmt]
    extra = ["--images", str(coco_dataset)] if fmt == "voc" else []
    assert main(["convert", str(inp), "--from", fmt, "--to", "coco", "--out", str(back), "--quiet", *extra]) == 0
    names0, want = _objects(src)
    names1, got = _objects(back / "coco.json")
    assert names1 == names0  # labels.txt beside VOC and LabelMe files keeps the order
    strip = (lambda n: n.split("/", 1)[1]) if fmt == "yolo" else (lambda n: n)  # YOLO adds images/<split>/
    got = {strip(k): v for k, v in got.items()}
    assert set(got) == set(want)
    for name, objects in want.items():
        assert [o[0] for o in got[name]] == [o[0] for o in objects]
        for (_, b1, m1), (_, b0, m0) in zip(got[name], objects):
            np.testing.assert_allclose(b1, b0, atol=1.01)
            if masks:
                assert _iou(m1, m0) >= 0.8
            else:
                assert m1 is None


def test_convert_chain_is_stable_and_writes_every_target(coco_dataset, tmp_path):
    """COCO -> LabelMe -> COCO -> LabelMe: the second LabelMe files equal the first (a fixed point)."""
    first, mid, second = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    assert main(["convert", str(coco_dataset / "coco.json"), "--from", "coco", "--to",
                 "coco,yolo,labelme,voc,cvat,labelstudio", "--out", str(first), "--quiet"]) == 0
    for rel in ("coco.json", "yolo/segment/data.yaml", "labelme/a.json", "voc/Annotations/sub/b.xml", "cvat.xml",
                "labelstudio.json"):
        assert (first / rel).is_file(), rel
    assert main(["convert", str(first / "labelme"), "--from", "labelme", "--to", "coco", "--out", str(mid), "--quiet"]) == 0
    assert main(["convert", str(mid / "coco.json"), "--from", "coco", "--to", "labelme", "--out", str(second),
                 "--images", str(coco_dataset), "--quiet"]) == 0
    for rel in ("a.json", "sub/b.json", "c.json"):
        d1, d2 = json.loads((first / "labelme" / rel).read_text()), json.loads((second / "labelme" / rel).read_text())
        assert [s["label"] for s in d1["shapes"]] == [s["label"] for s in d2["shapes"]]
        for s1, s2 in zip(d1["shapes"], d2["shapes"]):
            assert len(s1["points"]) == len(s2["points"])


@pytest.mark.parametrize("case, message", [
    ("yolo-class", "class 7 is not one of 0..2"),
    ("yolo-outside", "lies outside the 80x60 image"),
    ("coco-category", "names category_id 9"),
    ("voc-xml", "not well-formed XML"),
    ("labelme-kind", "is a 'circle'"),
    ("missing", "does not exist"),
    ("to", "--to 'pdf' is not one of"),
])
def test_bad_datasets_are_one_line_and_write_nothing(case, message, coco_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    args = {"from": "coco", "in": coco_dataset / "coco.json", "to": "coco"}
    if case.startswith("yolo"):
        d = tmp_path / "y"
        (d / "images" / "train").mkdir(parents=True)
        (d / "labels" / "train").mkdir(parents=True)
        Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(d / "images" / "train" / "x.png")
        (d / "data.yaml").write_text("names: [cat, dog, person]\n")
        line = "7 0.5 0.5 0.2 0.2" if case == "yolo-class" else "0 0.9 0.5 0.5 0.2"
        (d / "labels" / "train" / "x.txt").write_text(line + "\n")
        args.update({"from": "yolo", "in": d})
    elif case == "coco-category":
        doc = json.loads((coco_dataset / "coco.json").read_text())
        doc["annotations"][0]["category_id"] = 9
        (tmp_path / "c.json").write_text(json.dumps(doc))
        args["in"] = tmp_path / "c.json"
    elif case == "voc-xml":
        (tmp_path / "v").mkdir()
        (tmp_path / "v" / "x.xml").write_text("<annotation><object>")
        args.update({"from": "voc", "in": tmp_path / "v"})
    elif case == "labelme-kind":
        (tmp_path / "l").mkdir()
        (tmp_path / "l" / "x.json").write_text(json.dumps({"shapes": [{"label": "cat", "points": [[1, 1], [5, 5]],
                                                                        "shape_type": "circle"}],
                                                            "imagePath": "x.png", "imageWidth": 10, "imageHeight": 10}))
        args.update({"from": "labelme", "in": tmp_path / "l"})
    elif case == "missing":
        args["in"] = tmp_path / "nope.json"
    elif case == "to":
        args["to"] = "pdf"
    assert main(["convert", str(args["in"]), "--from", args["from"], "--to", args["to"], "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("masks", ["brush", "polygon"])
def test_coco_to_labelstudio_and_back(masks, coco_dataset, tmp_path):
    """Brush RLE is lossless (masks equal); polygons keep the largest contour (IoU >= 0.8); the class order
    comes back from the labelstudio_config.xml written beside the tasks."""
    from vfm.formats.labelstudio import write_labelstudio
    from vfm.formats.readers import read_dataset

    there, back = tmp_path / "there", tmp_path / "back"
    assert main(["convert", str(coco_dataset / "coco.json"), "--from", "coco", "--to", "labelstudio", "--out",
                 str(there), "--quiet"]) == 0
    if masks == "polygon":  # the same dataset written with polygons instead of brushes
        ds = read_dataset(coco_dataset / "coco.json", "coco")
        write_labelstudio(ds, ds.categories, "ground", there / "labelstudio.json", mask_format="polygon")
    assert "<BrushLabels" in (there / "labelstudio_config.xml").read_text()
    assert main(["convert", str(there / "labelstudio.json"), "--from", "labelstudio", "--to", "coco", "--out", str(back),
                 "--images", str(coco_dataset), "--quiet"]) == 0
    names0, want = _objects(coco_dataset / "coco.json")
    names1, got = _objects(back / "coco.json")
    assert names1 == names0 and set(got) == set(want)
    for name, objects in want.items():
        assert [o[0] for o in got[name]] == [o[0] for o in objects]
        for (_, b1, m1), (_, b0, m0) in zip(got[name], objects):
            if masks == "brush":
                assert np.array_equal(m1, m0)
                np.testing.assert_allclose(b1, b0, atol=1e-6)
            else:
                assert _iou(m1, m0) >= 0.8
                np.testing.assert_allclose(b1, b0, atol=1.01)


@pytest.mark.parametrize("tasks, message", [
    ({"not": "a list"}, "has no image URL"),
    ([{"data": {"image": "/data/local-files/?d=a.png"}, "annotations": [{"result": [
        {"type": "rectanglelabels", "original_width": 80, "original_height": 60,
         "value": {"x": 90, "y": 10, "width": 30, "height": 10, "rectanglelabels": ["cat"]}}]}]}], "outside the 80x60"),
    ([{"data": {"image": "/data/upload/1/0a1b2c3d-a.png"}, "predictions": [{"result": [
        {"type": "brushlabels", "original_width": 80, "original_height": 60,
         "value": {"format": "rle", "rle": [0, 0, 0, 9], "brushlabels": ["cat"]}}]}]}], "malformed"),
    ([{"data": {"image": "/data/upload/1/0a1b2c3d-nope.png"}}], "nope.png' of the dataset does not exist"),
    ([{"data": {"image": "x.png"}, "annotations": [{"result": [
        {"type": "polygonlabels", "original_width": 80, "original_height": 60,
         "value": {"points": [[1, 1], [2, 2]], "polygonlabels": ["cat"]}}]}]}], "polygon of 2 points"),
])
def test_bad_labelstudio_files_are_one_line(tasks, message, tmp_path, capsys):
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    assert main(["convert", str(tmp_path / "ls.json"), "--from", "labelstudio", "--to", "coco",
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_labelstudio_export_file_names():
    from vfm.formats.labelstudio_reader import file_name

    assert file_name("/data/local-files/?d=photos/a%20b.png") == "photos/a b.png"
    assert file_name("/data/upload/3/0a1b2c3d-dog.jpg") == "dog.jpg"
    assert file_name("https://example.com/x/y/cat.png?sig=1") == "cat.png"
