"""Kill `vfm label` with SIGKILL at several points, rerun the same command: the same dataset, nothing twice."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import main

N_IMAGES = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_sam_dir):
    from vfm.testing.tiny_detectors import build_grounding_dino

    root = tmp_path_factory.mktemp("resume")
    gdino = build_grounding_dino(root / "tiny-gdino", seed=0)
    src = root / "images"
    (src / "nested").mkdir(parents=True)
    for i in range(N_IMAGES):
        sub = src / "nested" if i % 2 else src
        Image.fromarray(make_image(128 + 4 * i, 160, seed=20 + i)).save(sub / f"img{i:02d}.png")
    (src / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    baseline = root / "baseline"
    assert main(args(src, baseline, gdino, tiny_sam_dir)) == 0
    return {"src": src, "gdino": gdino, "sam": tiny_sam_dir, "baseline": baseline, "root": root}


def args(src, out, gdino, sam):
    return ["label", str(src), "--classes", "cat, dog", "--detector", str(gdino), "--segmenter", str(sam),
            "--box-threshold", "0.99", "--precision", "fp32", "--format", "coco,yolo,labelstudio,masks",
            "--out", str(out), "--quiet"]


def finished(db_path) -> int:
    if not os.path.exists(db_path):
        return -1
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM images WHERE status != 'pending'").fetchone()[0]
    except sqlite3.Error:
        return -1


def run_and_kill(argv, db_path, after: int, timeout: float = 300) -> int:
    """Start `vfm label` and SIGKILL it once ``after`` images are committed; returns the count at the kill."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-m", "vfm.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            n = finished(db_path)
            if n >= after or proc.poll() is not None:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return finished(db_path)
    finally:
        if proc.poll() is None:
            proc.kill()


def same_tree(a, b, out_a=None, out_b=None) -> None:
    """Same files, byte for byte; a YOLO data.yaml names its own OUT, so there ``out_a`` reads as ``out_b``."""
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
    files = [f for f in cmp.common_files if f != "data.yaml"]
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors, mismatch
    if "data.yaml" in cmp.common_files:
        text_a = open(os.path.join(a, "data.yaml")).read()
        assert str(out_a) in text_a
        assert text_a.replace(str(out_a), str(out_b)) == open(os.path.join(b, "data.yaml")).read()
    for sub in cmp.common_dirs:
        same_tree(os.path.join(a, sub), os.path.join(b, sub), out_a, out_b)


@pytest.mark.slow
def test_sigkill_at_several_points_then_rerun_gives_the_uninterrupted_dataset(setup, tmp_path):
    out = tmp_path / "out"
    db = out / "state.sqlite"
    argv = args(setup["src"], out, setup["gdino"], setup["sam"])
    counts = [run_and_kill(argv, db, after=0), run_and_kill(argv, db, after=2), run_and_kill(argv, db, after=5)]
    assert counts[0] < N_IMAGES + 1 and counts == sorted(counts)  # each run was killed before the end
    assert not (out / "coco.json").exists() or counts[-1] == N_IMAGES + 1
    assert main(argv) == 0
    for name in ("coco.json", "labelstudio.json", "labelstudio_config.xml", "errors.jsonl", "summary.json"):
        assert (out / name).read_bytes() == (setup["baseline"] / name).read_bytes(), name
    same_tree(out / "yolo", setup["baseline"] / "yolo", out.absolute(), setup["baseline"].absolute())
    same_tree(out / "masks", setup["baseline"] / "masks")
    with sqlite3.connect(db) as conn:  # every image labeled exactly once
        assert conn.execute("SELECT COUNT(*), MIN(attempts), MAX(attempts) FROM images").fetchone() == (N_IMAGES + 1, 1, 1)
    doc = json.loads((out / "coco.json").read_text())
    ids = [a["id"] for a in doc["annotations"]]
    assert ids == list(range(1, len(ids) + 1)) and len({i["id"] for i in doc["images"]}) == N_IMAGES


@pytest.mark.slow
def test_kill_before_finalize_leaves_no_partial_file(setup, tmp_path):
    """A kill after the last image but before the datasets are written: rerun writes them, nothing redone."""
    out = tmp_path / "out"
    argv = args(setup["src"], out, setup["gdino"], setup["sam"])
    run_and_kill(argv, out / "state.sqlite", after=N_IMAGES + 1)
    (out / "coco.json.tmp").write_text('{"images": [')  # what a kill in the middle of writing leaves
    assert main(argv) == 0
    assert (out / "coco.json").read_bytes() == (setup["baseline"] / "coco.json").read_bytes()
    assert not (out / "coco.json.tmp").exists()
    with sqlite3.connect(out / "state.sqlite") as conn:
        assert conn.execute("SELECT MAX(attempts) FROM images").fetchone() == (1,)


def test_interrupted_scan_resumes_with_the_same_ids(tmp_path, monkeypatch):
    from vfm.engine import state
    from vfm.engine.source import open_source
    from vfm.engine.state import Store

    src = tmp_path / "src"
    src.mkdir()
    for i in range(7):
        (src / f"{i}.png").write_bytes(b"")
    fresh = Store(tmp_path / "a")
    fresh.ingest(open_source(str(src)))
    expected = [(r[0], r[1]) for r in fresh.rows(status=None)]
    fresh.close()
    monkeypatch.setattr(state, "SCAN_BATCH", 2)

    def dies_after_five():
        for k, item in enumerate(open_source(str(src))):
            if k == 5:
                raise KeyboardInterrupt
            yield item

    store = Store(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        store.ingest(dies_after_five())
    assert store.count() == 4 and store.get_meta("scanned") is None  # two batches committed
    store.ingest(open_source(str(src)))
    assert [(r[0], r[1]) for r in store.rows(status=None)] == expected
    store.close()


@pytest.mark.slow
def test_sigkill_during_a_workers_run_then_single_process_rerun(setup, tmp_path):
    out = tmp_path / "out"
    argv = args(setup["src"], out, setup["gdino"], setup["sam"])
    killed_at = run_and_kill(argv + ["--workers", "2"], out / "state.sqlite", after=2)
    assert killed_at < N_IMAGES + 1
    assert main(argv) == 0
    assert (out / "coco.json").read_bytes() == (setup["baseline"] / "coco.json").read_bytes()
    with sqlite3.connect(out / "state.sqlite") as conn:
        assert conn.execute("SELECT MAX(attempts) FROM images").fetchone() == (1,)
