"""SAM3D (issue 19 item 5): point-cloud readers, boxes fitted to a synthetic scan, KITTI labels, BEV AP
by hand, and vfm lidar3d end to end with a tiny SAM."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vfm.cli.main import main

pytest.importorskip("shapely")


@pytest.fixture(scope="module")
def scan():
    from vfm.testing.synthetic_scan import synthetic_scan

    return synthetic_scan(seed=0)


# ------------------------------------------------------------------------------------------ readers
def _cloud(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, 5, (n, 3)).astype(np.float32), rng.random(n).astype(np.float32)


@pytest.mark.parametrize("fmt", ["bin", "pcd-ascii", "pcd-binary", "ply-ascii", "ply-binary", "ply-big-endian",
                                 "npy4", "npy3"])
def test_every_format_reads_the_same_points(fmt, tmp_path):
    from vfm.lidar.io import read_points, write_pcd, write_ply

    xyz, inten = _cloud()
    path = tmp_path / f"scan.{fmt.split('-')[0].rstrip('34')}"
    if fmt == "bin":
        np.c_[xyz, inten].astype("<f4").tofile(path)
    elif fmt.startswith("pcd"):
        write_pcd(path, xyz, inten, binary=fmt == "pcd-binary")
    elif fmt == "ply-big-endian":
        head = ("ply\nformat binary_big_endian 1.0\nelement vertex 200\nproperty float x\nproperty float y\n"
                "property float z\nproperty float intensity\nelement face 0\nproperty list uchar int vertex_indices\n"
                "end_header\n")
        path.write_bytes(head.encode() + np.c_[xyz, inten].astype(">f4").tobytes())
    elif fmt.startswith("ply"):
        write_ply(path, xyz, inten, binary=fmt == "ply-binary")
    else:
        np.save(path, np.c_[xyz, inten] if fmt == "npy4" else xyz.astype(np.float64))
    cloud = read_points(path)
    np.testing.assert_allclose(cloud.xyz, xyz, atol=1e-6)
    if fmt == "npy3":
        assert cloud.intensity is None
    else:
        np.testing.assert_allclose(cloud.intensity, inten, atol=1e-6)


def test_pcd_with_extra_fields_and_nan_points(tmp_path):
    """Fields in any order and of any type, rgb and ring skipped; NaN ("no return") points dropped and counted."""
    from vfm.lidar.io import read_points

    xyz, inten = _cloud(5)
    xyz[2] = np.nan
    rows = "\n".join(f"{int(inten[i] * 100)} {xyz[i, 2]} {xyz[i, 0]} {xyz[i, 1]} 7 4278190080" for i in range(5))
    (tmp_path / "a.pcd").write_text("VERSION .7\nFIELDS intensity z x y ring rgb\nSIZE 2 4 8 4 1 4\nTYPE U F F F U U\n"
                                    "COUNT 1 1 1 1 1 1\nWIDTH 5\nHEIGHT 1\nPOINTS 5\nDATA ascii\n" + rows + "\n")
    cloud = read_points(tmp_path / "a.pcd")
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(cloud.xyz, xyz[keep], atol=1e-5)
    np.testing.assert_allclose(cloud.intensity, np.floor(inten[keep] * 100))
    assert cloud.dropped == 1


@pytest.mark.parametrize("case, message", [
    ("empty", "is empty (0 bytes)"),
    ("truncated-bin", "not a whole number of KITTI points"),
    ("nan", "no point with finite x, y, z"),
    ("no-points-npy", "no point with finite x, y, z"),
    ("pcd-no-xyz", "have no 'z'"),
    ("pcd-compressed", "binary_compressed"),
    ("pcd-truncated", "is truncated"),
    ("ply-truncated", "is truncated"),
    ("npy-shape", "expected N x 3"),
    ("unknown-ext", "unknown format '.xyz'"),
    ("missing", "does not exist"),
])
def test_bad_point_clouds_are_one_line_errors(case, message, tmp_path, capsys):
    from vfm.lidar.io import write_pcd, write_ply

    xyz, inten = _cloud(10)
    path = tmp_path / {"truncated-bin": "a.bin", "empty": "a.bin", "nan": "a.npy", "no-points-npy": "a.npy",
                       "pcd-no-xyz": "a.pcd", "pcd-compressed": "a.pcd", "pcd-truncated": "a.pcd",
                       "ply-truncated": "a.ply", "npy-shape": "a.npy", "unknown-ext": "a.xyz", "missing": "nope.bin"}[case]
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated-bin":
        path.write_bytes(np.c_[xyz, inten].astype("<f4").tobytes()[:-6])
    elif case == "nan":
        np.save(path, np.full((4, 3), np.nan))
    elif case == "no-points-npy":
        np.save(path, np.zeros((0, 4), np.float32))
    elif case == "pcd-no-xyz":
        path.write_text("FIELDS x y intensity\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA ascii\n1 2 3\n")
    elif case == "pcd-compressed":
        path.write_text("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA binary_compressed\n")
    elif case == "pcd-truncated":
        write_pcd(path, xyz, inten, binary=True)
        path.write_bytes(path.read_bytes()[:-9])
    elif case == "ply-truncated":
        write_ply(path, xyz, inten, binary=True)
        path.write_bytes(path.read_bytes()[:-9])
    elif case == "npy-shape":
        np.save(path, np.zeros((5, 7)))
    elif case == "unknown-ext":
        path.write_text("1 2 3\n")
    assert main(["lidar3d", str(path), "--model", "unused-model-never-loaded"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------------ the method
def _z(b):
    return np.c_[b.centers[:, 2], b.centers[:, 2] + b.sizes[:, 2]]


def test_boxes_fitted_to_true_footprints_match_the_truth(scan):
    """With a stand-in segmenter that returns the true BEV footprints (grown as a dilated mask is), the
    fitted boxes are the true ones: centre within 0.1 m, yaw within 5 degrees, 3D IoU >= 0.9."""
    from vfm.lidar.bev import BEVGrid
    from vfm.lidar.boxes import iou_3d, wrap_half_pi
    from vfm.lidar.detect3d import Lidar3D
    from vfm.testing.synthetic_scan import footprint_masks

    cloud, truth = scan
    grid = BEVGrid()
    res = Lidar3D(lambda bev: footprint_masks(truth, grid), grid).detect(cloud)
    assert res.bev.shape == (600, 600, 3) and res.masks == len(truth) == len(res.boxes)
    assert res.ground is not None and abs(res.ground.z_at(0, 0) - (-1.73)) < 0.05
    iou = iou_3d(res.boxes.corners_bev(), _z(res.boxes), truth.corners_bev(), _z(truth))
    match = iou.argmax(axis=1)
    assert sorted(match) == list(range(len(truth)))
    for i, j in enumerate(match):
        assert iou[i, j] >= 0.9
        assert np.abs(res.boxes.centers[i] - truth.centers[j]).max() < 0.1
        l, w = truth.sizes[j, :2]
        if l / w > 1.2:  # a square footprint (the pedestrian) has no heading
            assert abs(np.degrees(wrap_half_pi(res.boxes.yaws[i] - truth.yaws[j]))) < 5
    assert [res.boxes.class_names[i] for i in np.argsort(match)] == ["Car", "Car", "Car", "Pedestrian", "Cyclist"]
    # every point of a box lies in (or within noise of) its true cuboid
    for i, j in enumerate(match):
        pts = cloud.xyz[res.boxes.point_indices[i]]
        d = pts[:, :2] - truth.centers[j, :2]
        c, s = np.cos(truth.yaws[j]), np.sin(truth.yaws[j])
        along, across = d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c
        assert (np.abs(along) <= truth.sizes[j, 0] / 2 + 0.2).all() and (np.abs(across) <= truth.sizes[j, 1] / 2 + 0.2).all()


def test_classes_keep_boxes_their_size_priors_hold(scan):
    from vfm.lidar.bev import BEVGrid
    from vfm.lidar.detect3d import Lidar3D
    from vfm.testing.synthetic_scan import footprint_masks

    cloud, truth = scan
    grid = BEVGrid()
    det = Lidar3D(lambda bev: footprint_masks(truth, grid), grid)
    assert det.detect(cloud, classes="vehicles").boxes.class_names == ["Car"] * 3
    assert det.detect(cloud, classes="pedestrian, cyclist").boxes.class_names == ["Pedestrian", "Cyclist"]
    from vfm.errors import PromptError

    with pytest.raises(PromptError, match="no size prior for class 'unicorn'"):
        det.detect(cloud, classes="unicorn")


def test_scan_outside_the_bev_range_is_one_line(scan, tmp_path, tiny_sam_dir, capsys):
    cloud, _ = scan
    path = tmp_path / "far.npy"
    np.save(path, cloud.xyz + np.array([500.0, 0, 0], np.float32))
    assert main(["lidar3d", str(path), "--model", str(tiny_sam_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert "lies in the BEV range" in err and "--range" in err and len(err.splitlines()) == 1
    assert main(["lidar3d", str(path), "--model", str(tiny_sam_dir), "--range", "10,0,0,10"]) == 1
    assert "first smaller" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ KITTI
def test_kitti_camera_frame_and_calibration(tmp_path):
    from vfm.formats.kitti import Calib, read_calib, read_labels, to_camera, write_labels
    from vfm.lidar.boxes import Boxes3D

    boxes = Boxes3D(np.array([[10.0, 2.0, -1.7]]), np.array([[4.0, 1.8, 1.5]]), np.array([0.3]), np.array([0.9]), ["Car"], [])
    rec = to_camera(boxes)[0]
    np.testing.assert_allclose(rec["location"], [-2.0, 1.7, 10.0], atol=1e-9)  # x_cam = -y, y_cam = -z, z_cam = x
    assert rec["dimensions"] == pytest.approx([1.5, 1.8, 4.0])
    assert rec["rotation_y"] == pytest.approx(-0.3 - np.pi / 2)
    assert rec["alpha"] == pytest.approx(rec["rotation_y"] - np.arctan2(-2.0, 10.0))
    # a calibration file: a mounting 0.27 m forward, and P2 gives the 2D box
    tr = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, -0.27]], float)
    p2 = np.array([[700, 0, 600, 0], [0, 700, 180, 0], [0, 0, 1, 0]], float)
    (tmp_path / "calib.txt").write_text(f"P2: {' '.join(map(str, p2.ravel()))}\nR0_rect: 1 0 0 0 1 0 0 0 1\n"
                                        f"Tr_velo_to_cam: {' '.join(map(str, tr.ravel()))}\n")
    calib = read_calib(tmp_path / "calib.txt")
    rec2 = to_camera(boxes, calib)[0]
    np.testing.assert_allclose(rec2["location"], [-2.0, 1.7, 9.73], atol=1e-9)
    x1, y1, x2, y2 = rec2["bbox"]
    assert 0 < x1 < x2 and 0 < y1 < y2  # the car is in front of the camera, so on the image
    write_labels(tmp_path / "000001.txt", [rec2])
    back = read_labels(tmp_path / "000001.txt")[0]
    assert back["type"] == "Car" and back["score"] == pytest.approx(0.9)
    np.testing.assert_allclose(back["location"], rec2["location"], atol=0.006)
    assert isinstance(Calib().velo_to_rect, np.ndarray)


def _label(cls, h, w, l, x, y, z, ry, score=None):
    line = f"{cls} 0.00 0 0.00 0 0 0 0 {h} {w} {l} {x} {y} {z} {ry}"
    return line + (f" {score}" if score is not None else "")


def test_bev_and_3d_ap_against_hand_computed_values(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    (gt / "a.txt").write_text("\n".join([_label("Car", 1.5, 2, 4, 0, 1.5, 10, 0), _label("Car", 1.5, 2, 4, 10, 1.5, 20, 0),
                                         _label("Pedestrian", 1.7, 0.6, 0.6, -5, 1.5, 8, 0),
                                         _label("DontCare", 1, 1, 1, 30, 1, 30, 0)]) + "\n")
    (gt / "b.txt").write_text(_label("Car", 1.5, 2, 4, 0, 1.5, 10, 0) + "\n")
    (pred / "a.txt").write_text("\n".join([
        _label("Car", 1.5, 2, 4, -20, 1.5, 40, 0, 0.95),   # false positive
        _label("Car", 1.5, 2, 4, 0, 1.5, 10, 0, 0.9),      # exact
        _label("Car", 1.5, 2, 4, 11, 1.5, 20, 0, 0.8),     # 1 m along its length: IoU (4-1)/(4+1) = 0.6
    ]) + "\n")
    (pred / "b.txt").write_text(_label("Car", 1.5, 2, 4, 0, 0.75, 10, 0, 0.85) + "\n")  # same footprint, 0.75 m up: 3D IoU 1/3
    (pred / "extra.txt").write_text("")
    assert main(["eval", "--task", "bev", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    car = res["classes"]["Car"]
    assert res["frames"] == 2 and car["gt"] == 3 and car["detections"] == 4 and "DontCare" not in res["classes"]
    # ranked FP, TP, TP(b), TP(0.6): precision 0, 1/2, 2/3, 3/4 at recall 0, 1/3, 2/3, 1 -> 0.75 at every recall point
    assert car["bev"]["0.5"] == pytest.approx(0.75, abs=1e-6)
    # at 0.7 the 0.6 one misses: 2/3 precision up to recall 2/3, i.e. 26 of the 40 points
    assert car["bev"]["0.7"] == pytest.approx(26 / 40 * 2 / 3, abs=1e-6)
    # 3D: b's box is a false positive (1/3): FP, TP, FP, TP(0.6) -> precision 1/2 up to recall 2/3 at 0.5 ...
    assert car["3d"]["0.5"] == pytest.approx(26 / 40 * 0.5, abs=1e-6)
    # ... and only the exact box at 0.7: precision 1/2 up to recall 1/3 (13 points)
    assert car["3d"]["0.7"] == pytest.approx(13 / 40 * 0.5, abs=1e-6)
    assert res["classes"]["Pedestrian"]["bev"]["0.5"] == 0.0
    assert res["unmatched_prediction_files"] == ["extra"]
    (pred / "a.txt").write_text("Car 1 2 3\n")
    assert main(["eval", "--task", "bev", "--gt", str(gt), "--pred", str(pred)]) == 1
    err = capsys.readouterr().err.strip()
    assert "line 1 has 4 values" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------------ end to end
def test_lidar3d_cli_end_to_end_with_a_tiny_sam(scan, tmp_path, tiny_sam_dir, capsys):
    from PIL import Image

    from vfm.formats.kitti import read_labels
    from vfm.lidar.bev import BEVGrid
    from vfm.lidar.io import write_pcd

    cloud, _ = scan
    np.c_[cloud.xyz, cloud.intensity].astype("<f4").tofile(tmp_path / "000007.bin")
    write_pcd(tmp_path / "000008.pcd", cloud.xyz, cloud.intensity)
    (tmp_path / "broken.bin").write_bytes(b"\0" * 10)
    out = tmp_path / "out"
    argv = ["lidar3d", str(tmp_path / "000007.bin"), str(tmp_path / "broken.bin"), str(tmp_path / "000008.pcd"),
            "--model", str(tiny_sam_dir), "--points-per-side", "4", "--pred-iou-thresh", "0",
            "--stability-score-thresh", "0", "--max-pixels", "1000000", "--out", str(out), "--json"]
    assert main(argv) == 1  # the broken scan is reported, the others are done
    captured = capsys.readouterr()
    assert "broken.bin" in captured.err and len(captured.err.strip().splitlines()) == 1
    docs = [json.loads(line) for line in captured.out.splitlines()]
    assert [d["scan"] for d in docs] == ["000007.bin", "000008.pcd"]
    assert docs[0]["boxes"] == docs[1]["boxes"]  # the same points from either format give the same boxes
    for stem, doc in zip(("000007", "000008"), docs):
        labels = read_labels(out / f"{stem}.txt")
        assert len(labels) == len(doc["boxes"])
        assert json.loads((out / f"{stem}.json").read_text()) == doc
        assert Image.open(out / f"{stem}_bev.png").size == (600, 600)
        assert doc["bev"]["resolution"] == 0.1 and doc["points_in_range"] == BEVGrid().inside(cloud.xyz).sum()
        assert doc["masks"] >= 1 and doc["ground_points"] > 0
    assert not (out / "broken.txt").exists()


def test_prompts_in_metres_give_one_box_each(scan, tmp_path, tiny_sam_dir, capsys):
    """--point / --box in the scan's frame become SAM prompts at the right BEV pixels."""
    from vfm.lidar.bev import BEVGrid
    from vfm.lidar.detect3d import bev_prompts

    grid = BEVGrid()
    p = bev_prompts(grid, [(12.0, 3.0)], [(10.0, 2.0, 14.0, 4.0)])
    np.testing.assert_allclose(p[0].points, [[270.0, 180.0]])  # col = (30 - y) / 0.1, row = (30 - x) / 0.1
    np.testing.assert_allclose(p[1].box, [260.0, 160.0, 280.0, 200.0])
    cloud, _ = scan
    np.save(tmp_path / "s.npy", np.c_[cloud.xyz, cloud.intensity])
    assert main(["lidar3d", str(tmp_path / "s.npy"), "--model", str(tiny_sam_dir), "--point", "12,3",
                 "--box", "10,2,14,4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["masks"] == 2 and len(doc["boxes"]) <= 2
    assert main(["lidar3d", str(tmp_path / "s.npy"), "--model", str(tiny_sam_dir), "--point", "80,3"]) == 1
    err = capsys.readouterr().err.strip()
    assert "outside the BEV range" in err and len(err.splitlines()) == 1
