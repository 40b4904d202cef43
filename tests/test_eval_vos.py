"""DAVIS J, F and J&F against values computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vfm.cli.main import main
from vfm.eval_vos import boundary_f, boundary_map, evaluate_vos, region_j
from vfm.video.outputs import davis_palette


def dot(r, c, shape=(20, 20)):
    m = np.zeros(shape, bool)
    m[r, c] = True
    return m


def test_region_j_by_hand():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[0:2, 0:2] = True  # 4 pixels
    b[0:2, 0:3] = True  # 6 pixels, 4 shared
    assert region_j(a, b) == pytest.approx(4 / 6)
    assert region_j(a, np.zeros_like(a)) == 0.0
    assert region_j(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_boundary_map_of_one_pixel():
    # a pixel differs from its right / lower / lower-right neighbour: its 2x2 block up-left of it
    b = boundary_map(dot(5, 5))
    assert sorted(zip(*np.nonzero(b))) == [(4, 4), (4, 5), (5, 4), (5, 5)]


def test_boundary_f_by_hand():
    # 20x20: tolerance ceil(0.008 * 28.28) = 1 pixel. Boundaries are 2x2 blocks (cols c-1..c).
    gt = dot(5, 5)
    assert boundary_f(dot(5, 5), gt) == 1.0
    assert boundary_f(dot(5, 6), gt) == 1.0  # cols 5-6 vs 4-5: every pixel within 1
    assert boundary_f(dot(5, 7), gt) == pytest.approx(0.5)  # cols 6-7 vs 4-5: half matched each way
    assert boundary_f(dot(5, 8), gt) == 0.0  # 2 pixels apart
    assert boundary_f(np.zeros_like(gt), gt) == 0.0  # P = 1, R = 0
    assert boundary_f(gt, np.zeros_like(gt)) == 0.0  # P = 0, R = 1
    assert boundary_f(np.zeros_like(gt), np.zeros_like(gt)) == 1.0


def _write(folder, maps):
    folder.mkdir(parents=True, exist_ok=True)
    for i, ids in enumerate(maps):
        im = Image.fromarray(ids.astype(np.uint8), mode="P")
        im.putpalette(davis_palette().reshape(-1).tolist())
        im.save(folder / f"{i:05d}.png")


def test_sequence_means_and_first_last_left_out(tmp_path, capsys):
    gt = [dot(5, 5).astype(np.uint8) for _ in range(4)]
    # frame 0 and 3 are left out whatever they hold; frames 1, 2: J 0 and 1, F 0.5 and 1
    pred = [np.zeros((20, 20), np.uint8), dot(5, 7).astype(np.uint8), dot(5, 5).astype(np.uint8), np.zeros((20, 20), np.uint8)]
    _write(tmp_path / "gt", gt)
    _write(tmp_path / "pred", pred)
    res = evaluate_vos(tmp_path / "gt", tmp_path / "pred")
    obj = res.objects["1"]
    assert obj["J"] == {"mean": 0.5, "recall": 0.5, "decay": -1.0}
    assert obj["F"]["mean"] == pytest.approx(0.75)
    assert res.jf == pytest.approx(0.625) and res.frames == 2
    all_frames = evaluate_vos(tmp_path / "gt", tmp_path / "pred", skip_first_last=False)
    assert all_frames.j_mean == pytest.approx(0.25)
    # the CLI, with DAVIS's one-subfolder-per-sequence layout and two sequences
    for root in ("G", "P"):
        _write(tmp_path / root / "seq-a", gt)
    _write(tmp_path / "G" / "seq-b", gt)
    _write(tmp_path / "P" / "seq-b", pred)
    assert main(["eval", "--task", "vos", "--gt", str(tmp_path / "G"), "--pred", str(tmp_path / "P"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["objects"]) == {"seq-a/1", "seq-b/1"}
    assert doc["J"]["mean"] == pytest.approx((1.0 + 0.5) / 2)
    assert doc["J&F"] == pytest.approx(((1 + 0.5) / 2 + (1 + 0.75) / 2) / 2)


def test_decay_quarters():
    from vfm.eval_vos import _stats

    values = np.arange(9, dtype=float)  # edges 0, 2, 4, 6, 8: first quarter [0, 1, 2], last [6, 7, 8]
    assert _stats(values)["decay"] == pytest.approx(1.0 - 7.0)


def test_bad_folders(tmp_path, capsys):
    _write(tmp_path / "gt", [dot(5, 5).astype(np.uint8)] * 4)
    _write(tmp_path / "short", [dot(5, 5).astype(np.uint8)] * 2)
    (tmp_path / "empty").mkdir()
    for gt, pred, message in [(tmp_path / "gt", tmp_path / "empty", "has no PNG masks"),
                              (tmp_path / "short", tmp_path / "short", "fewer than 3"),
                              (tmp_path / "gt", tmp_path / "short", "is missing"),
                              (tmp_path / "nope", tmp_path / "gt", "is not a folder")]:
        assert main(["eval", "--task", "vos", "--gt", str(gt), "--pred", str(pred)]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
