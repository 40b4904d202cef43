"""`vfm label SOURCE --boxes-from DATASET` (issue 14 item 3): an existing box dataset becomes a mask
dataset, each box a SAM prompt, its classes kept; the masks are those vfm segment gives for the box."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def boxes_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("boxes-from")
    src = root / "photos"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(make_image(96, 128, seed=1)).save(src / "a.png")
    Image.fromarray(make_image(80, 120, seed=2)).save(src / "sub" / "b.png")
    Image.fromarray(make_image(64, 64, seed=3)).save(src / "c.png")  # no boxes in the dataset
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 128, "height": 96},
                       {"id": 2, "file_name": "sub/b.png", "width": 120, "height": 80}],
            "categories": [{"id": 1, "name": "forklift"}, {"id": 2, "name": "pallet"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [10, 12, 50, 40]},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [70, 30, 40, 50]},
                            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 60, 60]}]}
    (root / "boxes.json").write_text(json.dumps(coco))
    return root, src, coco


@pytest.mark.parametrize("via", ["coco", "yolo"])
def test_boxes_become_the_masks_of_their_prompts(via, boxes_dataset, tiny_sam_dir, tiny_segmenter, tmp_path):
    from vfm.results.rle import decode_rle
    from vfm.tasks.prompts import Prompt

    root, src, coco = boxes_dataset
    dataset = root / "boxes.json"
    if via == "yolo":  # the same boxes through vfm convert's YOLO writer
        assert main(["convert", str(dataset), "--from", "coco", "--to", "yolo", "--images", str(src),
                     "--out", str(tmp_path / "y"), "--quiet"]) == 0
        dataset = tmp_path / "y" / "yolo" / "detect"
    out = tmp_path / "out"
    assert main(["label", str(src), "--boxes-from", str(dataset), "--segmenter", str(tiny_sam_dir), "--precision", "fp32",
                 "--format", "coco,labelme", "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "coco.json").read_text())
    assert [c["name"] for c in doc["categories"]] == ["forklift", "pallet"]
    names = {i["id"]: i["file_name"] for i in doc["images"]}
    assert sorted(names.values()) == ["a.png", "c.png", "sub/b.png"]
    by_image = {}
    for a in doc["annotations"]:
        by_image.setdefault(names[a["image_id"]], []).append(a)
    assert "c.png" not in by_image and len(by_image["a.png"]) == 2 and len(by_image["sub/b.png"]) == 1
    for name, anns in by_image.items():
        image_id = next(i["id"] for i in coco["images"] if i["file_name"] == name)
        truth = [a for a in coco["annotations"] if a["image_id"] == image_id]
        prompts = [Prompt(box=[x, y, x + w, y + h]) for x, y, w, h in (a["bbox"] for a in truth)]
        want = tiny_segmenter.predict_batch(prompts, image=str(src / name), return_logits=False)
        for k, (a, t) in enumerate(zip(anns, truth)):
            assert doc["categories"][a["category_id"] - 1]["name"] == coco["categories"][t["category_id"] - 1]["name"]
            np.testing.assert_array_equal(decode_rle(a["segmentation"]), want.mask(k))
    assert (out / "labelme" / "a.json").is_file()


def test_boxes_from_bad_input(boxes_dataset, tiny_sam_dir, tmp_path, capsys):
    root, src, coco = boxes_dataset
    bad = dict(coco, annotations=coco["annotations"] + [{"id": 9, "image_id": 2, "category_id": 1,
                                                         "bbox": [100, 60, 50, 50]}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["label", str(src), "--boxes-from", str(tmp_path / "bad.json"), "--segmenter", str(tiny_sam_dir),
                 "--out", str(tmp_path / "o1"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "annotation 9" in err and "outside the 120x80 image" in err and len(err.splitlines()) == 1
    assert main(["label", str(src), "--boxes-from", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o2")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["label", str(src), "--boxes-from", str(root / "boxes.json"), "--classes", "cat",
                 "--out", str(tmp_path / "o3")]) == 1
    assert "dataset's own classes" in capsys.readouterr().err
    assert main(["label", str(src), "--boxes-from", str(root / "boxes.json"), "--task", "semantic",
                 "--out", str(tmp_path / "o4")]) == 1
    assert "does not go with --task semantic" in capsys.readouterr().err
