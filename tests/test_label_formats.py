"""`vfm label` on tiny offline Grounding DINO + SAM: every output format read back, errors, sources, config."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main
from vfm.formats.ls_brush import decode_brush, encode_brush

CLASSES = "cat, dog"


def write_folder(root, n=4):
    """n synthetic images in nested folders, one corrupt .jpg and one non-image file."""
    (root / "sub" / "deeper").mkdir(parents=True)
    names = []
    for i in range(n):
        rel = ["a.png", "sub/b.jpg", "sub/deeper/c.png", "d.webp", "e.png"][i]
        Image.fromarray(make_image(128 + 8 * i, 160, seed=i)).save(root / rel, quality=95)
        names.append(rel)
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "readme.txt").write_text("not an image")
    return names


def label_args(src, out, gdino, sam, *extra):
    return ["label", str(src), "--classes", CLASSES, "--detector", str(gdino), "--segmenter", str(sam),
            "--box-threshold", "0.99", "--precision", "fp32", "--out", str(out), "--quiet", *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_gdino_dir, tiny_sam_dir):
    root = tmp_path_factory.mktemp("label")
    src = root / "images"
    src.mkdir()
    names = write_folder(src)
    out = root / "out"
    rc = main(label_args(src, out, tiny_gdino_dir, tiny_sam_dir, "--format", "coco,yolo,labelstudio,masks"))
    assert rc == 0
    return {"src": src, "out": out, "names": names}


def coco(run):
    from pycocotools.coco import COCO

    return COCO(str(run["out"] / "coco.json"))


def test_coco_loads_with_pycocotools_and_matches_the_grounder(run, tiny_gdino_dir, tiny_segmenter):
    from vfm.formats.coco import instances_to_annotations
    from vfm.io.image import load_image
    from vfm.tasks.detect import Detector
    from vfm.tasks.ground import Grounder

    c = coco(run)
    imgs = c.loadImgs(c.getImgIds())
    # Stable ids in sorted relative-path order (the corrupt image keeps its id but is not listed).
    assert [(i["id"], i["file_name"]) for i in imgs] == [(1, "a.png"), (2, "d.webp"), (3, "sub/b.jpg"), (5, "sub/deeper/c.png")]
    assert [(cat["id"], cat["name"]) for cat in c.loadCats(c.getCatIds())] == [(1, "cat"), (2, "dog")]
    anns = c.dataset["annotations"]
    assert anns and [a["id"] for a in anns] == list(range(1, len(anns) + 1))
    assert [a["image_id"] for a in anns] == sorted(a["image_id"] for a in anns)
    grounder = Grounder(Detector.load(str(tiny_gdino_dir), device="cpu", precision="fp32"), tiny_segmenter)
    for img in imgs:
        assert (img["height"], img["width"]) == load_image(run["src"] / img["file_name"]).pixels.shape[:2]
        expected = instances_to_annotations(grounder.ground(run["src"] / img["file_name"], CLASSES, box_threshold=0.99))
        got = c.loadAnns(c.getAnnIds(imgIds=[img["id"]]))
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g["segmentation"] == e["segmentation"] and g["bbox"] == e["bbox"] and g["score"] == e["score"]
            assert c.loadCats(g["category_id"])[0]["name"] == e["category_name"] and g["iscrowd"] == 0
            assert g["area"] == c.annToMask(g).sum()


def test_errors_and_summary(run):
    errors = [json.loads(line) for line in (run["out"] / "errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["file_name"]) for e in errors] == [(4, "sub/broken.jpg")]
    assert "corrupt" in errors[0]["error"] or "not a readable image" in errors[0]["error"]
    summary = json.loads((run["out"] / "summary.json").read_text())
    n_ann = len(json.loads((run["out"] / "coco.json").read_text())["annotations"])
    assert summary == {"images": 5, "labeled": 4, "errors": 1, "pending": 0, "skipped_files": 1, "annotations": n_ann}


def test_yolo_detection_and_segmentation_files(run):
    import cv2

    c = coco(run)
    det = run["out"] / "yolo" / "detect"
    seg = run["out"] / "yolo" / "segment"
    assert '0: "cat"' in (det / "data.yaml").read_text() and "nc: 2" in (seg / "data.yaml").read_text()
    for img in c.loadImgs(c.getImgIds()):
        stem = img["file_name"].rsplit(".", 1)[0]
        anns = c.loadAnns(c.getAnnIds(imgIds=[img["id"]]))
        w, h = img["width"], img["height"]
        for tree in (det, seg):  # the image beside its label (no --split: everything in train)
            assert (tree / "images" / "train" / img["file_name"]).read_bytes() == (run["src"] / img["file_name"]).read_bytes()
        lines = [ln.split() for ln in (det / "labels" / "train" / f"{stem}.txt").read_text().splitlines()]
        unique = list(dict.fromkeys((a["category_id"], tuple(a["bbox"])) for a in anns))  # repeats written once
        assert len(lines) == len(unique)
        for parts, (cat_id, (x, y, aw, ah)) in zip(lines, unique):
            cls, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:])
            assert cls == cat_id - 1
            np.testing.assert_allclose([cx * w, cy * h, bw * w, bh * h], [x + aw / 2, y + ah / 2, aw, ah], atol=1e-3 * max(w, h))
        seg_lines = [ln.split() for ln in (seg / "labels" / "train" / f"{stem}.txt").read_text().splitlines()]
        big = [a for a in anns if a["area"] > 200]
        assert len(seg_lines) >= len(big)
        for parts in seg_lines:
            pts = np.array(list(map(float, parts[1:]))).reshape(-1, 2)
            assert len(pts) >= 3 and (pts >= 0).all() and (pts <= 1).all()
        # Each line is the largest outer contour of its mask, in annotation order.
        from vfm.formats.yolo import mask_polygon

        expected = []
        for a in anns:
            poly = mask_polygon(c.annToMask(a).astype(bool))
            if poly is not None:
                expected.append([a["category_id"] - 1, poly / [w, h]])
        assert len(seg_lines) == len(expected)
        for parts, (cls, poly) in zip(seg_lines, expected):
            assert int(parts[0]) == cls
            np.testing.assert_allclose(np.array(list(map(float, parts[1:]))).reshape(-1, 2), poly, atol=1e-6)


def test_mask_polygon_traces_a_clean_shape():
    import cv2

    from vfm.formats.yolo import mask_polygon

    yy, xx = np.mgrid[0:90, 0:120]
    mask = (xx - 60) ** 2 / 40 ** 2 + (yy - 45) ** 2 / 25 ** 2 < 1
    mask[0:5, 0:5] = True  # a small second blob: only the largest contour is kept
    poly = mask_polygon(mask)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(filled, [poly.round().astype(np.int32)], 1)
    big = mask.copy()
    big[0:5, 0:5] = False
    assert (filled.astype(bool) & big).sum() / (filled.astype(bool) | big).sum() > 0.95
    assert mask_polygon(np.zeros((5, 5), bool)) is None


def test_labelstudio_brush_rle_decodes_to_the_coco_masks(run):
    c = coco(run)
    tasks = json.loads((run["out"] / "labelstudio.json").read_text())
    assert [t["id"] for t in tasks] == c.getImgIds()
    for t in tasks:
        img = c.loadImgs(t["id"])[0]
        # Label Studio's document root is SOURCE's parent (the folder "images"): d= starts with its name
        assert t["data"]["image"] == "/data/local-files/?d=images/" + img["file_name"]
        result = t["predictions"][0]["result"]
        anns = c.loadAnns(c.getAnnIds(imgIds=[img["id"]]))
        assert len(result) == len(anns)
        for item, ann in zip(result, anns):
            assert item["type"] == "brushlabels" and item["from_name"] == "label" and item["to_name"] == "image"
            assert (item["original_width"], item["original_height"]) == (img["width"], img["height"])
            assert item["value"]["format"] == "rle"
            assert item["value"]["brushlabels"] == [c.loadCats(ann["category_id"])[0]["name"]]
            mask = decode_brush(item["value"]["rle"], img["height"], img["width"])
            np.testing.assert_array_equal(mask, c.annToMask(ann).astype(bool))
    xml = (run["out"] / "labelstudio_config.xml").read_text()
    assert '<BrushLabels name="label" toName="image">' in xml and '<Label value="dog"/>' in xml


def test_labelstudio_polygons_and_custom_names(run, tmp_path):
    from vfm.engine.state import Store
    from vfm.formats.labelstudio import write_labelstudio

    store = Store(run["out"])
    try:
        write_labelstudio(store, ["cat", "dog"], "ground", tmp_path / "ls.json", mask_format="polygon",
                          from_name="tag", to_name="img", image_prefix="s3://bucket/")
    finally:
        store.close()
    tasks = json.loads((tmp_path / "ls.json").read_text())
    assert tasks[0]["data"]["image"] == "s3://bucket/a.png"
    items = [i for t in tasks for i in t["predictions"][0]["result"]]
    assert items and all(i["type"] == "polygonlabels" and i["from_name"] == "tag" and i["to_name"] == "img" for i in items)
    for i in items:
        pts = np.array(i["value"]["points"])
        assert pts.shape[1] == 2 and (pts >= 0).all() and (pts <= 100).all()


def test_mask_pngs_are_instance_id_maps(run):
    c = coco(run)
    index = [json.loads(line) for line in (run["out"] / "masks" / "index.jsonl").read_text().splitlines()]
    assert [e["file_name"] for e in index] == [i["file_name"] for i in c.loadImgs(c.getImgIds())]
    for entry, img in zip(index, c.loadImgs(c.getImgIds())):
        ids = np.array(Image.open(run["out"] / "masks" / entry["png"]))
        anns = c.loadAnns(c.getAnnIds(imgIds=[img["id"]]))
        assert ids.shape == (img["height"], img["width"]) and ids.max() <= len(anns)
        assert entry["categories"] == [c.loadCats(a["category_id"])[0]["name"] for a in anns]
        for k, ann in enumerate(anns, start=1):
            m = c.annToMask(ann).astype(bool)
            assert not (ids == k)[~m].any()  # instance k only where its mask is
        if anns:  # the smallest mask is painted last, so it is fully visible
            k = int(np.argmin([a["area"] for a in anns])) + 1
            assert ((ids == k) == c.annToMask(anns[k - 1]).astype(bool)).all()


def test_brush_rle_known_bytes_and_literal_chunks():
    # 1x1 background: 4 values of 0 -> header(32+5+16 bits) + repeat chunk '1' '00' '011' '00000000', zero-padded.
    bits = f"{4:032b}" + "00111" + "0010" + "0011" + "0111" + "1111" + "1" + "00" + "011" + "00000000"
    bits += "0" * (-len(bits) % 8)
    assert encode_brush(np.zeros((1, 1), bool)) == [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    # A literal chunk (flag 0): 8 values given one by one, as Label Studio's decoder accepts.
    vals = [0, 0, 0, 255, 7, 7, 7, 0]
    bits = f"{8:032b}" + "00111" + "0010" + "0011" + "0111" + "1111" + "0" + "00" + "111" + "".join(f"{v:08b}" for v in vals)
    bits += "0" * (-len(bits) % 8)
    out = decode_brush([int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)], 1, 2)
    assert out.tolist() == [[True, False]]
    rng = np.random.RandomState(0)
    for h, w in [(3, 5), (64, 48), (300, 17)]:
        for m in (rng.rand(h, w) > 0.6, np.ones((h, w), bool), np.zeros((h, w), bool)):
            np.testing.assert_array_equal(decode_brush(encode_brush(m), h, w), m)
    big = np.zeros((200, 400), bool)  # a run longer than 2**16 values is split into chunks
    big[150:, 300:] = True
    np.testing.assert_array_equal(decode_brush(encode_brush(big), 200, 400), big)


def test_list_file_and_glob_sources_give_the_same_names(run, tmp_path):
    from vfm.engine.source import open_source

    folder = list(open_source(str(run["src"])))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(run["src"] / n) for n, _ in folder) + "\n# comment\n\n")
    from_list = [(n.split("images/", 1)[-1], p) for n, p in open_source(str(listing))]
    assert from_list == folder
    rel_list = run["src"] / "files.txt"
    try:
        rel_list.write_text("a.png\nsub/b.jpg\nreadme.txt\n")
        scan = open_source(str(rel_list))
        assert [n for n, _ in scan] == ["a.png", "sub/b.jpg"] and scan.skipped == 1
    finally:
        rel_list.unlink()
    globbed = list(open_source(str(run["src"]) + "/**/*.png"))
    assert [n for n, _ in globbed] == ["a.png", "sub/deeper/c.png"]


def test_changed_options_are_refused_until_overwrite(run, tiny_gdino_dir, tiny_sam_dir, tmp_path, capsys):
    src = tmp_path / "few"
    src.mkdir()
    Image.fromarray(make_image(128, 160, seed=9)).save(src / "x.png")
    out = tmp_path / "out"
    assert main(label_args(src, out, tiny_gdino_dir, tiny_sam_dir)) == 0
    capsys.readouterr()
    changed = label_args(src, out, tiny_gdino_dir, tiny_sam_dir)
    changed[changed.index("0.99")] = "0.5"
    rc = main(changed)
    err = capsys.readouterr().err
    assert rc == 1 and "--box-threshold" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    # Same options but other outputs or workers: accepted (datasets are regenerated from the store).
    assert main(label_args(src, out, tiny_gdino_dir, tiny_sam_dir, "--format", "yolo")) == 0
    assert (out / "yolo" / "detect" / "labels" / "train" / "x.txt").is_file()
    with sqlite3.connect(out / "state.sqlite") as db:
        assert db.execute("SELECT attempts FROM images").fetchall() == [(1,)]  # nothing redone
    args = label_args(src, out, tiny_gdino_dir, tiny_sam_dir, "--overwrite")
    args[args.index("0.99")] = "0.995"
    assert main(args) == 0
    assert json.loads((out / "coco.json").read_text())["images"][0]["file_name"] == "x.png"


@pytest.mark.parametrize("argv, message", [
    (["label", "/nonexistent/folder", "--classes", "cat", "--out", "{out}"], "does not exist"),
    (["label", "{empty}", "--classes", "cat", "--out", "{out}"], "holds no image files"),
    (["label", "{empty}", "--task", "detect", "--out", "{out}"], "needs the classes"),
    (["label", "{empty}", "--classes", "cat", "--format", "coco,pdf", "--out", "{out}"], "--format"),
    (["label", "{empty}", "--classes", "cat", "--task", "detect", "--format", "masks", "--out", "{out}"], "boxes only"),
    (["label", "{empty}", "--classes", "cat", "--box-threshold", "2", "--out", "{out}"], "outside 0..1"),
])
def test_bad_input_is_one_line(argv, message, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    argv = [a.format(out=tmp_path / "out", empty=empty) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_labelstudio_local_files_settings_are_printed(run, tiny_gdino_dir, tiny_sam_dir, tmp_path, capsys):
    out = tmp_path / "ls"
    argv = label_args(run["src"], out, tiny_gdino_dir, tiny_sam_dir, "--format", "labelstudio")
    argv.remove("--quiet")
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={run['src'].parent}" in text
    assert "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true" in text and f"absolute path {run['src']}" in text
