"""`vfm label --workers 2` and `--ray` (local Ray cluster) give the single-process run's annotations."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_sam_dir):
    from vfm.testing.tiny_detectors import build_grounding_dino

    root = tmp_path_factory.mktemp("parallel")
    gdino = build_grounding_dino(root / "tiny-gdino", seed=0)
    src = root / "images"
    src.mkdir()
    for i in range(5):
        Image.fromarray(make_image(128 + 8 * i, 160, seed=40 + i)).save(src / f"p{i}.png")
    (src / "bad.png").write_bytes(b"nope")
    single = root / "single"
    assert main(argv(src, single, gdino, tiny_sam_dir)) == 0
    return {"src": src, "gdino": gdino, "sam": tiny_sam_dir, "single": single}


def argv(src, out, gdino, sam, *extra):
    return ["label", str(src), "--classes", "cat, dog", "--detector", str(gdino), "--segmenter", str(sam),
            "--box-threshold", "0.99", "--precision", "fp32", "--format", "coco,labelstudio", "--out", str(out),
            "--quiet", *extra]


def assert_same_dataset(out, single):
    got = json.loads((out / "coco.json").read_text())
    want = json.loads((single / "coco.json").read_text())
    assert got["images"] == want["images"] and got["categories"] == want["categories"]
    assert len(got["annotations"]) == len(want["annotations"]) > 0
    for g, w in zip(got["annotations"], want["annotations"]):
        assert g["id"] == w["id"] and g["image_id"] == w["image_id"] and g["category_id"] == w["category_id"]
        assert g["segmentation"] == w["segmentation"] and g["bbox"] == w["bbox"]
        assert g["score"] == pytest.approx(w["score"], abs=1e-5)
    assert (out / "errors.jsonl").read_text() == (single / "errors.jsonl").read_text()
    assert json.loads((out / "summary.json").read_text()) == json.loads((single / "summary.json").read_text())


@pytest.mark.slow
def test_workers_2_equals_single_process(setup, tmp_path):
    out = tmp_path / "w2"
    assert main(argv(setup["src"], out, setup["gdino"], setup["sam"], "--workers", "2")) == 0
    assert_same_dataset(out, setup["single"])


@pytest.mark.slow
def test_ray_local_cluster_equals_single_process(setup, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        assert main(argv(setup["src"], out, setup["gdino"], setup["sam"], "--ray")) == 0
        assert_same_dataset(out, setup["single"])
        # A model that does not load on the actors: one line, exit 1 (not a dead-actor traceback).
        bad = argv(setup["src"], tmp_path / "bad", tmp_path / "missing-detector", setup["sam"], "--ray")
        assert main(bad) == 1
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_workers_that_cannot_load_the_models_fail_in_one_line(setup, tmp_path, capsys):
    """multiprocessing would respawn a worker whose initializer raises forever; the run must stop instead."""
    bad = argv(setup["src"], tmp_path / "bad", tmp_path / "missing-detector", setup["sam"], "--workers", "2")
    assert main(bad) == 1
    err = capsys.readouterr().err
    assert "unknown model" in err and len(err.strip().splitlines()) == 1


DRIVER = """
import json, sys
from vfm.cli.main import main

if __name__ == "__main__":
    code = main(json.loads(sys.argv[1]))
    heavy = [m for m in ("torch", "torchvision", "transformers.models") if m in sys.modules]
    print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.slow
def test_workers_driver_imports_no_torch(setup, tmp_path):
    # The driver only schedules, collects and writes datasets: on torch 2.14.1's CUDA build,
    # `import torch` + torchvision alone are ~0.65 GB RSS, which the driver must not pay (issue 17).
    import subprocess
    import sys

    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    out = tmp_path / "w2-driver"
    args = argv(setup["src"], out, setup["gdino"], setup["sam"], "--workers", "2")
    proc = subprocess.run([sys.executable, str(script), json.dumps(args)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}
    assert_same_dataset(out, setup["single"])
