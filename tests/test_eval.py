"""`vfm eval`: COCO AP with pycocotools COCOeval, categories matched by name, images by file_name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vfm.cli.main import main
from vfm.eval import evaluate
from vfm.results.rle import encode_rle


def disk(h, w, cx, cy, r):
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


def ann(i, image_id, cat, mask, score=None):
    rle = encode_rle(mask)
    ys, xs = np.nonzero(mask)
    a = {"id": i, "image_id": image_id, "category_id": cat, "segmentation": rle,
         "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)],
         "area": float(mask.sum()), "iscrowd": 0}
    if score is not None:
        a["score"] = score
    return a


@pytest.fixture
def gt_pred(tmp_path):
    h, w = 60, 80
    m1, m2, m3 = disk(h, w, 20, 20, 10), disk(h, w, 55, 35, 12), disk(h, w, 40, 30, 15)
    gt = {"images": [{"id": 1, "file_name": "a.png", "width": w, "height": h},
                     {"id": 2, "file_name": "b.png", "width": w, "height": h}],
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
          "annotations": [ann(1, 1, 1, m1), ann(2, 1, 2, m2), ann(3, 2, 1, m3)]}
    # Predictions as `vfm label` writes them: other image ids, categories in another order and case.
    pred = {"images": [{"id": 7, "file_name": "b.png", "width": w, "height": h},
                       {"id": 9, "file_name": "a.png", "width": w, "height": h}],
            "categories": [{"id": 1, "name": "Dog"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "bird"}],
            "annotations": [ann(1, 9, 2, m1, 0.9), ann(2, 9, 1, m2, 0.8), ann(3, 7, 2, m3, 0.7),
                            ann(4, 7, 3, m1, 0.5)]}
    gp, pp = tmp_path / "gt.json", tmp_path / "pred.json"
    gp.write_text(json.dumps(gt))
    pp.write_text(json.dumps(pred))
    return gp, pp, gt, pred


def test_perfect_predictions_score_1_with_categories_matched_by_name(gt_pred):
    gp, pp, _, _ = gt_pred
    for iou in ("segm", "bbox"):
        res = evaluate(gp, pp, iou_type=iou)
        assert res.stats[0] == pytest.approx(1.0) and res.stats[1] == pytest.approx(1.0)
        assert res.matched_images == 2 and res.dropped == {"category": 1, "image": 0}
        assert res.per_category == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0)}


def test_wrong_class_and_shifted_mask_lower_the_ap(gt_pred, tmp_path):
    gp, _, gt, pred = gt_pred
    pred["annotations"][1]["category_id"] = 2  # the dog predicted as cat
    shifted = np.roll(disk(60, 80, 40, 30, 15), 12, axis=1)
    pred["annotations"][2]["segmentation"] = encode_rle(shifted)
    pp = tmp_path / "worse.json"
    pp.write_text(json.dumps(pred))
    res = evaluate(gp, pp, iou_type="segm")
    assert 0.0 <= res.stats[0] < 0.7 and res.per_category["dog"] == pytest.approx(0.0)


def test_results_list_predictions(gt_pred, tmp_path):
    gp, _, gt, _ = gt_pred
    results = [dict(a, score=0.9) for a in gt["annotations"]]
    for r in results:
        del r["id"]
    pp = tmp_path / "results.json"
    pp.write_text(json.dumps(results))
    assert evaluate(gp, pp, iou_type="segm").stats[0] == pytest.approx(1.0)


def test_cli_prints_the_ap_table(gt_pred, capsys):
    gp, pp, _, _ = gt_pred
    assert main(["eval", "--gt", str(gp), "--pred", str(pp), "--iou-type", "bbox"]) == 0
    out = capsys.readouterr().out
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000" in out
    assert "COCO bbox evaluation on 2 shared image(s)" in out and "dropped predictions: 1" in out
    assert main(["eval", "--gt", str(gp), "--pred", str(pp), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["per_category_ap"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0)}


def test_vfm_label_output_evaluates_against_itself(tmp_path):
    """A dataset as `vfm label` writes it (category 'object', no GT ids shared) is a valid PRED."""
    gt_like = {"images": [{"id": 1, "file_name": "x.png", "width": 10, "height": 10}],
               "categories": [{"id": 1, "name": "object", "supercategory": ""}],
               "annotations": [ann(1, 1, 1, disk(10, 10, 5, 5, 3), 0.9)]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(gt_like))
    assert evaluate(path, path).stats[0] == pytest.approx(1.0)


@pytest.mark.parametrize("case, message", [
    ("no_shared_images", "share no images"),
    ("missing", "does not exist"),
    ("not_json", "not valid JSON"),
    ("boxes_only_segm", "use --iou-type bbox"),
])
def test_errors_are_one_line(case, message, gt_pred, tmp_path, capsys):
    gp, pp, gt, pred = gt_pred
    if case == "no_shared_images":
        for img in pred["images"]:
            img["file_name"] = "other_" + img["file_name"]
            img["id"] += 100
        for a in pred["annotations"]:
            a["image_id"] += 100
        pp.write_text(json.dumps(pred))
    elif case == "missing":
        pp = tmp_path / "nope.json"
    elif case == "not_json":
        pp.write_text("{oops")
    else:
        for a in pred["annotations"]:
            del a["segmentation"]
        pp.write_text(json.dumps(pred))
    rc = main(["eval", "--gt", str(gp), "--pred", str(pp)])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and len(err.strip().splitlines()) == 1, err
