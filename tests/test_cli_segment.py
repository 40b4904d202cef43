"""`vfm segment` as a user runs it: a subprocess, JSON on stdout, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils


def vfm(*args, check=False):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "vfm.cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=240)


def test_json_document(tiny_sam_dir, image_path):
    r = vfm("segment", image_path, "--model", tiny_sam_dir, "--point", "50,40", "--point", "120,90,0",
            "--box", "10,10,150,100", "--box", "0,0,60,60", "--precision", "fp32", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["image"] == {"width": 200, "height": 120, "file_name": "image.png"}
    anns = doc["annotations"]
    assert len(anns) == 2  # one prompt per box, each with the same points
    for ann, box in zip(anns, [[10, 10, 150, 100], [0, 0, 60, 60]]):
        assert set(ann) >= {"segmentation", "bbox", "area", "score", "prompt"}
        assert ann["prompt"] == {"points": [[50, 40], [120, 90]], "labels": [1, 0], "box": box}
        seg = ann["segmentation"]
        assert seg["size"] == [120, 200] and isinstance(seg["counts"], str)
        m = mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})
        assert m.shape == (120, 200) and int(m.sum()) == ann["area"]
        x, y, w, h = ann["bbox"]
        if ann["area"]:
            ys, xs = np.nonzero(m)
            assert [x, y, w, h] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_multimask_and_out_dir(tiny_sam_dir, image_path, tmp_path):
    out = tmp_path / "out"
    r = vfm("segment", image_path, "--model", tiny_sam_dir, "--point", "50,40", "--multimask", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["annotations"]) == 3
    names = sorted(p.name for p in out.iterdir())
    assert names == ["mask_000.png", "mask_001.png", "mask_002.png", "overlay.png", "result.json"]
    overlay = np.asarray(Image.open(out / "overlay.png"))
    assert overlay.shape == (120, 200, 3)
    mask = np.asarray(Image.open(out / "mask_000.png"))
    assert set(np.unique(mask)) <= {0, 255}


def test_scribble_and_human_output(tiny_sam_dir, image_path):
    r = vfm("segment", image_path, "--model", tiny_sam_dir, "--scribble", "20,20;80,20;80,60")
    assert r.returncode == 0, r.stderr
    assert "1 mask(s) for 200x120 image" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["--point", "500,40"], "outside the 200x120 image"),
    (["--point", "a,b"], "not a list of numbers"),
    (["--point", "1,2,3"], "LABEL must be 1"),
    (["--box", "1,2,3"], "expected X0,Y0,X1,Y1"),
    ([], "give at least one --point"),
])
def test_prompt_errors_are_one_line(tiny_sam_dir, image_path, args, needle):
    r = vfm("segment", image_path, "--model", tiny_sam_dir, *args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr


def test_input_errors_are_one_line(tiny_sam_dir, tmp_path, image_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cases = [
        (["segment", tmp_path / "missing.jpg", "--model", tiny_sam_dir, "--point", "1,1"], "does not exist"),
        (["segment", corrupt, "--model", tiny_sam_dir, "--point", "1,1"], "image"),
        (["segment", image_path, "--model", "no-such-model", "--point", "1,1"], "unknown model"),
        (["segment", image_path, "--model", "sam-vit-base", "--point", "1,1"], "hf download facebook/sam-vit-base"),
        (["segment", image_path, "--model", tiny_sam_dir, "--point", "1,1", "--max-pixels", "100"], "more than the limit"),
        (["segment", image_path, "--model", tiny_sam_dir, "--point", "1,1", "--device", "cuda"], "CUDA is not available"),
        (["segment", image_path, "--bogus-flag"], "unrecognized arguments"),
    ]
    for args, needle in cases:
        r = vfm(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0, args
        assert len(lines) == 1 and needle in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr
