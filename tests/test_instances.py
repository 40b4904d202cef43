"""The central result type: validation, selection, RLE, COCO, supervision."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from vfm.formats.coco import instances_to_document
from vfm.results import Instances, decode_rle, encode_rle, masks_to_xyxy


def _masks():
    m = np.zeros((3, 10, 12), bool)
    m[0, 2:5, 3:6] = True  # rows 2..4, cols 3..5
    m[1, 0:10, 0:12] = True
    m[2, 9, 11] = True
    return m


def test_boxes_use_pixel_edges_like_pycocotools():
    m = _masks()
    boxes = masks_to_xyxy(m)
    np.testing.assert_array_equal(boxes[0], [3, 2, 6, 5])
    for i in range(3):
        x, y, w, h = mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m[i].astype(np.uint8))))
        np.testing.assert_allclose(boxes[i], [x, y, x + w, y + h])
    assert masks_to_xyxy(np.zeros((1, 4, 4), bool)).tolist() == [[0, 0, 0, 0]]


def test_rle_round_trip_with_pycocotools():
    m = _masks()[0]
    rle = encode_rle(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [10, 12]
    np.testing.assert_array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}), m)
    np.testing.assert_array_equal(decode_rle(rle), m)


@pytest.mark.parametrize("kwargs,match", [
    (dict(xyxy=np.zeros((2, 3))), "xyxy must have shape"),
    (dict(scores=[0.1]), "scores has length 1, expected 2"),
    (dict(masks=np.zeros((2, 5, 5), bool)), r"masks must have shape \(2, 10, 12\)"),
    (dict(class_names=["a"]), "class_names has length 1"),
    (dict(data={"x": [1, 2, 3]}), "data\\['x'\\] has length 3"),
])
def test_validation_messages(kwargs, match):
    base = dict(image_size=(10, 12), xyxy=np.zeros((2, 4)), scores=[0.1, 0.2])
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Instances(**base)


def test_selection_and_lazy_forms():
    inst = Instances.from_masks(_masks(), [0.9, 0.5, 0.7], class_names=["a", "b", "c"], data={"k": np.arange(3)})
    sel = inst[inst.scores > 0.6]
    assert len(sel) == 2 and sel.class_names == ["a", "c"] and sel.data["k"].tolist() == [0, 2]
    assert inst[1].class_names == ["b"]
    rl = inst.drop_masks()
    assert rl.masks is None and len(rl.rles) == 3
    np.testing.assert_array_equal(rl.mask_array(), inst.masks)
    np.testing.assert_array_equal(rl.areas, [9, 120, 1])
    both = Instances.concatenate([inst, rl])
    assert len(both) == 6 and both.class_names[3:] == ["a", "b", "c"]
    with pytest.raises(IndexError):
        inst[5]


def test_coco_document_shape():
    inst = Instances.from_masks(_masks(), [0.9, 0.5, 0.7], prompts=[{"points": [[1, 2]], "labels": [1]}, None, None])
    doc = json.loads(json.dumps(instances_to_document(inst)))
    assert doc["image"] == {"width": 12, "height": 10}
    a = doc["annotations"][0]
    assert a["bbox"] == [3, 2, 3, 3] and a["area"] == 9 and a["score"] == pytest.approx(0.9)
    assert a["prompt"] == {"points": [[1, 2]], "labels": [1]}
    decoded = mask_utils.decode({"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()})
    np.testing.assert_array_equal(decoded, _masks()[0])


def test_box_only_document_has_no_segmentation():
    inst = Instances(image_size=(10, 12), xyxy=[[1, 2, 5, 6]], scores=[0.5], class_ids=[1], class_names=["cat"])
    doc = instances_to_document(inst, categories=["dog", "cat"])
    a = doc["annotations"][0]
    assert "segmentation" not in a and a["bbox"] == [1, 2, 4, 4] and a["area"] == 16
    assert a["category_id"] == 2 and a["category_name"] == "cat"  # COCO ids start at 1
    assert doc["categories"] == [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}]
    no_list = instances_to_document(inst)["annotations"][0]  # no category list: class id + 1
    assert no_list["category_id"] == 2


def test_supervision_round_trip():
    sv = pytest.importorskip("supervision")
    inst = Instances.from_masks(_masks(), [0.9, 0.5, 0.7], class_ids=[0, 1, 0], class_names=["a", "b", "a"])
    det = inst.to_supervision()
    assert isinstance(det, sv.Detections) and len(det) == 3
    np.testing.assert_array_equal(det.mask, inst.masks)
    back = Instances.from_supervision(det)
    np.testing.assert_allclose(back.xyxy, inst.xyxy)
    assert back.class_names == ["a", "b", "a"] and back.class_ids.tolist() == [0, 1, 0]
    boxes_only = sv.Detections(xyxy=np.array([[0, 0, 2, 2]], float), confidence=np.array([0.3]))
    with pytest.raises(ValueError, match="image_size"):
        Instances.from_supervision(boxes_only)
    assert len(Instances.from_supervision(boxes_only, image_size=(5, 5))) == 1


def test_class_less_results_draw_with_supervisions_default_annotators():
    sv = pytest.importorskip("supervision")
    inst = Instances.from_masks(_masks(), [0.9, 0.5, 0.7])  # no classes, as vfm segment gives
    det = inst.to_supervision()
    assert det.class_id.tolist() == [0, 0, 0]
    scene = np.zeros(inst.image_size + (3,), np.uint8)
    out = sv.MaskAnnotator().annotate(scene.copy(), det)
    out = sv.BoxAnnotator().annotate(out, det)
    assert out.shape == scene.shape and out.any()  # drawn, no "Could not resolve color by class"


def test_rles_of_column_major_masks_are_the_same():
    from vfm.results.rle import encode_rles

    masks = _masks()
    f = np.ascontiguousarray(masks.transpose(0, 2, 1)).transpose(0, 2, 1)  # column-major per mask
    assert not f.flags.c_contiguous and f.dtype == bool
    assert encode_rles(f) == encode_rles(masks) == encode_rles(masks.astype(np.uint8))
    inst = Instances.from_masks(f, [0.5] * len(f))
    np.testing.assert_array_equal(inst.areas, masks.reshape(len(masks), -1).sum(1))
