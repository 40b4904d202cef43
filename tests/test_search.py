"""Embeddings, index, search and dedupe (issue #15) on tiny random-weight checkpoints, offline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vfm.cli.main import main

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from vfm.testing.tiny_clip import build_clip, build_siglip, build_siglip2
    from vfm.testing.tiny_dinov2 import build_dinov2, build_dinov3

    root = tmp_path_factory.mktemp("embed_models")
    return {"clip": build_clip(root / "clip"), "siglip": build_siglip(root / "siglip"),
            "siglip2": build_siglip2(root / "siglip2"), "dinov2": build_dinov2(root / "dinov2"),
            "dinov3": build_dinov3(root / "dinov3")}


def _images(folder: Path, n: int, seed: int = 0, start: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        arr = rng.integers(0, 255, (30 + i % 7, 40 + i % 5, 3), dtype=np.uint8)
        p = folder / f"img{i:03d}.png"
        Image.fromarray(arr).save(p)
        out.append(p)
    return out


def _pixels(paths):
    from vfm.io.image import load_image

    return [load_image(str(p)).pixels for p in paths]


# ---------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("family", ["clip", "siglip", "siglip2"])
def test_contrastive_embeddings_equal_transformers(models, tmp_path, family):
    from transformers import AutoModel, AutoProcessor

    from vfm.tasks.embed import Embedder

    paths = _images(tmp_path, 5)
    pixels = _pixels(paths)
    emb = Embedder.load(str(models[family]))
    got = emb.embed_images(pixels)
    model = AutoModel.from_pretrained(models[family]).eval()
    proc = AutoProcessor.from_pretrained(models[family])
    with torch.no_grad():
        ref = model.get_image_features(**proc(images=pixels, return_tensors="pt"))
        ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
        ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
        texts = ["a red car", "two dogs"]
        padding = True if family == "clip" else "max_length"
        tok = proc.tokenizer(texts, padding=padding, return_tensors="pt")
        tref = model.get_text_features(**{k: v for k, v in tok.items() if k in ("input_ids", "attention_mask")})
        tref = tref if isinstance(tref, torch.Tensor) else tref.pooler_output
        tref = torch.nn.functional.normalize(tref, dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=2e-6)
    np.testing.assert_allclose(emb.embed_texts(texts), tref, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("family", ["dinov2", "dinov3"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_dino_embeddings_equal_transformers(models, tmp_path, family, pooling):
    from transformers import AutoImageProcessor, AutoModel

    from vfm.errors import PromptError
    from vfm.tasks.embed import Embedder

    paths = _images(tmp_path, 4)
    pixels = _pixels(paths)
    emb = Embedder.load(str(models[family]), pooling=pooling)
    model = AutoModel.from_pretrained(models[family]).eval()
    proc = AutoImageProcessor.from_pretrained(models[family])
    with torch.no_grad():
        out = model(**proc(images=pixels, return_tensors="pt"))
    if pooling == "cls":
        ref = out.pooler_output
    else:
        skip = 1 + getattr(model.config, "num_register_tokens", 0)
        ref = out.last_hidden_state[:, skip:].mean(dim=1)
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(emb.embed_images(pixels), ref, atol=2e-6)
    assert not emb.has_text
    with pytest.raises(PromptError, match="image-only"):
        emb.embed_texts(["a cat"])


def test_embed_cli_npy_parquet_json(models, tmp_path, capsys):
    import pyarrow.parquet as pq

    paths = _images(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rc = main(["embed", str(tmp_path / "imgs"), "--model", str(models["clip"]), "--text", "a red car",
               "--out", str(tmp_path / "e.npy")])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.png" in err and err.count("\n") == 1
    arr = np.load(tmp_path / "e.npy")
    names = (tmp_path / "e.names.txt").read_text().splitlines()
    assert arr.shape == (4, 24) and names == ["img000.png", "img001.png", "img002.png", "text:a red car"]
    from vfm.tasks.embed import Embedder

    np.testing.assert_allclose(arr[:3], Embedder.load(str(models["clip"])).embed_images(_pixels(paths)), atol=1e-6)
    assert main(["embed", *map(str, paths), "--model", str(models["dinov2"]), "--out", str(tmp_path / "e.parquet"),
                 "--pooling", "mean"]) == 0
    table = pq.read_table(tmp_path / "e.parquet").to_pylist()
    assert [r["name"] for r in table] == ["img000.png", "img001.png", "img002.png"] and len(table[0]["embedding"]) == 32
    capsys.readouterr()
    assert main(["embed", str(paths[0]), "--model", str(models["siglip"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "image" and doc["dim"] == 32 and abs(np.linalg.norm(doc["embedding"]) - 1) < 1e-5


@pytest.mark.parametrize("argv, message", [
    (["embed", "--model", "{dinov2}", "--text", "a cat"], "image-only"),
    (["embed", "--model", "{clip}"], "nothing to embed"),
    (["embed", "{img}", "--model", "{clip}", "--out", "x.csv"], ".npy or .parquet"),
    (["embed", "{img}", "--model", "no-such-model"], "unknown model"),
    (["embed", "{img}", "--model", "{clip}", "--pooling", "mean"], "DINOv2"),
])
def test_embed_bad_input_is_one_line(models, tmp_path, capsys, argv, message):
    img = _images(tmp_path, 1)[0]
    argv = [a.format(dinov2=models["dinov2"], clip=models["clip"], img=img) for a in argv]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------------- index + search
def _db_state(db: Path):
    con = sqlite3.connect(db / "index.sqlite")
    files = con.execute("SELECT id, name, sha256, status FROM files ORDER BY id").fetchall()
    entries = con.execute("SELECT id, file_id, kind, vector FROM entries ORDER BY id").fetchall()
    con.close()
    return files, [(e[0], e[1], e[2], np.frombuffer(e[3], np.float32)) for e in entries]


def _same_index(a: Path, b: Path, atol=1e-6):
    fa, ea = _db_state(a)
    fb, eb = _db_state(b)
    assert fa == fb
    assert [e[:3] for e in ea] == [e[:3] for e in eb]
    for x, y in zip(ea, eb):
        np.testing.assert_allclose(x[3], y[3], atol=atol)


def test_search_equals_bruteforce_numpy(models, tmp_path, capsys):
    paths = _images(tmp_path / "imgs", 20)
    db = tmp_path / "db"
    assert main(["index", str(tmp_path / "imgs"), "--model", str(models["clip"]), "--db", str(db), "--quiet"]) == 0
    from vfm.search.query import Searcher
    from vfm.tasks.embed import Embedder

    emb = Embedder.load(str(models["clip"]))
    vecs = emb.embed_images(_pixels(paths))
    q = emb.embed_texts(["a photo of noise"])[0]
    order = np.argsort(-(vecs @ q), kind="stable")[:7]
    s = Searcher(str(db))
    res = s.query(text="a photo of noise", k=7)
    assert [h["file_name"] for h in res["hits"]] == [paths[i].name for i in order]
    np.testing.assert_allclose([h["score"] for h in res["hits"]], (vecs @ q)[order], atol=1e-5)
    assert res["index"]["kind"] == "flat" and set(res["timing_ms"]) == {"embed", "search"}
    # by id: the entry itself is left out, the rest is the numpy ranking of its vector
    res = s.query(entry_id=3, k=5)
    own = vecs[2]
    order = [i for i in np.argsort(-(vecs @ own), kind="stable") if i != 2][:5]
    assert [h["file_name"] for h in res["hits"]] == [paths[i].name for i in order]
    # by image
    res = s.query(image=_pixels([paths[5]])[0], k=1)
    assert res["hits"][0]["file_name"] == paths[5].name and res["hits"][0]["score"] > 0.9999
    s.close()
    capsys.readouterr()
    assert main(["search", "--db", str(db), "noise", "--k", "4", "--out", str(tmp_path / "sr"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["hits"]) == 4
    sheet = Image.open(tmp_path / "sr" / "sheet.png")
    assert sheet.size == (4 * 192, 28 + 192 + 28)
    assert json.loads((tmp_path / "sr" / "results.json").read_text())["hits"] == doc["hits"]


def test_incremental_add_change_delete(models, tmp_path, capsys):
    src = tmp_path / "imgs"
    _images(src, 6)
    db = tmp_path / "db"
    argv = ["index", str(src), "--model", str(models["clip"]), "--db", str(db), "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["added"] == 6 and first["vectors"] == 6
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["unchanged"] == 6 and again["added"] == again["changed"] == again["removed"] == 0
    # add two, change one (new bytes), touch one (same bytes, new mtime), delete one
    _images(src, 2, seed=5, start=10)
    Image.fromarray(np.full((33, 44, 3), 200, np.uint8)).save(src / "img001.png")
    os.utime(src / "img002.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    (src / "img003.png").unlink()
    assert main(argv) == 0
    third = json.loads(capsys.readouterr().out)
    assert (third["added"], third["changed"], third["removed"], third["unchanged"]) == (2, 1, 1, 4)
    assert third["vectors"] == 7
    # the updated index equals one built from scratch on the final folder, up to entry numbering
    fresh = tmp_path / "fresh"
    assert main(["index", str(src), "--model", str(models["clip"]), "--db", str(fresh), "--quiet"]) == 0
    from vfm.search.query import Searcher

    a, b = Searcher(str(db)), Searcher(str(fresh))
    ra, rb = a.query(text="bright", k=7), b.query(text="bright", k=7)
    assert [h["file_name"] for h in ra["hits"]] == [h["file_name"] for h in rb["hits"]]
    np.testing.assert_allclose([h["score"] for h in ra["hits"]], [h["score"] for h in rb["hits"]], atol=1e-6)
    a.close(), b.close()


def test_sigkill_during_index_then_rerun_equals_uninterrupted(models, tmp_path):
    src = tmp_path / "imgs"
    n_images = 240  # enough that the indexer cannot finish between two 50 ms polls (60 once could)
    _images(src, n_images)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cmd = [sys.executable, "-m", "vfm.cli.main", "index", str(src), "--model", str(models["clip"]), "--batch", "2",
           "--quiet"]
    proc = subprocess.Popen(cmd + ["--db", str(killed)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some, not all, images are committed
        time.sleep(0.05)
        try:
            con = sqlite3.connect(killed / "index.sqlite", timeout=1)
            n = con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            con.close()
        except sqlite3.Error:
            continue
        if n >= 6:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files, _ = _db_state(killed)
    assert 0 < len(files) < n_images
    subprocess.run(cmd + ["--db", str(killed)], env=env, check=True)
    subprocess.run(cmd + ["--db", str(clean)], env=env, check=True)
    _same_index(killed, clean, atol=0)
    assert len(list(killed.glob("vectors-*.faiss"))) == 1 and not list(killed.glob("*.tmp"))


def test_workers_and_ray_equal_single_process(models, tmp_path):
    src = tmp_path / "imgs"
    _images(src, 24)
    base = ["index", str(src), "--model", str(models["clip"]), "--quiet", "--batch", "4"]
    assert main(base + ["--db", str(tmp_path / "one")]) == 0
    assert main(base + ["--db", str(tmp_path / "two"), "--workers", "2"]) == 0
    _same_index(tmp_path / "one", tmp_path / "two", atol=1e-5)
    pytest.importorskip("ray")
    import ray

    try:
        assert main(base + ["--db", str(tmp_path / "ray"), "--ray", "--workers", "2"]) == 0
    finally:
        ray.shutdown()
    _same_index(tmp_path / "one", tmp_path / "ray", atol=1e-5)


def test_objects_from_coco_are_searchable(models, tmp_path, capsys):
    from vfm.results.rle import encode_rle

    src = tmp_path / "imgs"
    paths = _images(src, 3)
    mask = np.zeros((30, 40), bool)
    mask[5:20, 10:30] = True
    rle = encode_rle(mask)
    coco = {"images": [{"id": 1, "file_name": "img000.png", "width": 40, "height": 30},
                       {"id": 2, "file_name": "img001.png", "width": 45, "height": 31}],
            "categories": [{"id": 1, "name": "blob"}, {"id": 2, "name": "box"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 15], "segmentation": rle,
                             "area": 300, "score": 0.9},
                            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 12, 9], "area": 108}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    db = tmp_path / "db"
    assert main(["index", str(src), "--model", str(models["clip"]), "--db", str(db), "--objects",
                 str(tmp_path / "coco.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vectors"] == 5
    from vfm.search.query import Searcher
    from vfm.search.worker import masked_crop
    from vfm.tasks.embed import Embedder

    s = Searcher(str(db))
    pixels = _pixels(paths)
    crop = masked_crop(pixels[0], {"bbox": [10, 5, 20, 15], "segmentation": rle})
    assert crop.shape == (15, 20, 3)
    res = s.query(image=crop, k=1, kind="object")
    hit = res["hits"][0]
    assert hit["kind"] == "object" and hit["category"] == "blob" and hit["bbox"] == [10, 5, 20, 15]
    assert hit["segmentation"]["counts"] == rle["counts"] and hit["score"] > 0.9999
    np.testing.assert_allclose(Embedder.load(str(models["clip"])).embed_images([crop])[0],
                               s.id_vector(hit["id"]), atol=1e-6)
    s.close()
    capsys.readouterr()
    assert main(["search", "--db", str(db), "--id", str(hit["id"]), "--kind", "object", "--k", "3",
                 "--out", str(tmp_path / "sheet")]) == 0
    assert (tmp_path / "sheet" / "sheet.png").is_file()
    # the same db with other --objects is refused, not silently mixed
    capsys.readouterr()
    assert main(["index", str(src), "--model", str(models["clip"]), "--db", str(db)]) == 1
    assert "--objects" in capsys.readouterr().err


def test_bad_input_one_line_errors(models, tmp_path, capsys):
    src = tmp_path / "imgs"
    _images(src, 3)
    db = tmp_path / "db"
    dino_db = tmp_path / "dino"
    assert main(["index", str(src), "--model", str(models["clip"]), "--db", str(db), "--quiet"]) == 0
    assert main(["index", str(src), "--model", str(models["dinov2"]), "--db", str(dino_db), "--quiet"]) == 0
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "index.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    cases = [
        (["search", "--db", str(dino_db), "a cat"], "image-only"),
        (["index", str(src), "--model", str(models["siglip"]), "--db", str(db)], "was built with model"),
        (["search", "--db", str(tmp_path / "missing"), "x"], "does not exist"),
        (["search", "--db", str(corrupt), "x"], "corrupt"),
        (["search", "--db", str(db), "x", "--k", "0"], "--k must be"),
        (["search", "--db", str(db)], "exactly one query"),
        (["search", "--db", str(db), "--id", "999"], "not an entry"),
        (["index", str(tmp_path / "nowhere"), "--model", str(models["clip"]), "--db", str(tmp_path / "d2")], "does not exist"),
        (["dedupe", "--db", str(db), "--threshold", "2"], "cosine"),
        (["dedupe"], "SOURCE"),
    ]
    for argv, message in cases:
        assert main(argv) != 0, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    # an empty folder gives an empty index, not a crash
    assert main(["index", str(tmp_path / "empty"), "--model", str(models["clip"]), "--db", str(tmp_path / "e"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vectors"] == 0
    # a folder that is not an index and holds other files is never written into
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["index", str(src), "--model", str(models["clip"]), "--db", str(other)]) == 1
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]


# ---------------------------------------------------------------------------------- dedupe
def test_dedupe_exact_and_near(models, tmp_path, capsys):
    src = tmp_path / "imgs"
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    src.mkdir()
    Image.fromarray(base).save(src / "a.png")
    shutil.copy(src / "a.png", src / "a_copy.png")
    Image.fromarray(np.kron(base, np.ones((2, 2, 1), np.uint8))).save(src / "a_big.png")  # same picture, 2x
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(src / f"other{i}.png")
    db = tmp_path / "db"
    assert main(["index", str(src), "--model", str(models["dinov2"]), "--db", str(db), "--quiet"]) == 0
    from vfm.search.db import IndexDB
    from vfm.search.dedupe import find_duplicates

    d = IndexDB(db)
    vecs = {n: v for n, v in zip([r[0] for r in d.db.execute("SELECT name FROM files ORDER BY id")],
                                 np.concatenate([v for _, v in d.iter_vectors()]))}
    t = float(vecs["a.png"] @ vecs["a_big.png"]) - 1e-4
    others = max(float(vecs[x] @ vecs[y]) for x in vecs for y in vecs if x != y and {x, y} != {"a.png", "a_big.png"}
                 and "a_copy.png" not in (x, y) and not ({x, y} <= {"a.png", "a_copy.png", "a_big.png"}))
    assert others < t, "the tiny model must tell the others apart for this test to mean anything"
    result = find_duplicates(d, threshold=t, keep="largest")
    d.close()
    assert [[f["file_name"] for f in c["files"]] for c in result["exact"]] == [["a.png", "a_copy.png"]]
    assert [[f["file_name"] for f in c["files"]] for c in result["near"]] == [["a.png", "a_big.png", "a_copy.png"]]
    assert result["near"][0]["keep"] == "a_big.png" and result["removable"] == ["a.png", "a_copy.png"]
    capsys.readouterr()
    assert main(["dedupe", str(src), "--model", str(models["dinov2"]), "--threshold", str(t), "--keep", "first",
                 "--out", str(tmp_path / "dd")]) == 0
    assert capsys.readouterr().out.split() == ["a_big.png", "a_copy.png"]
    assert sorted(p.name for p in (tmp_path / "dd").iterdir()) == ["cluster_0001.png", "cluster_0002.png", "dedupe.json"]
    assert sorted(p.name for p in src.iterdir()) == sorted(["a.png", "a_copy.png", "a_big.png", "other0.png", "other1.png",
                                                            "other2.png"])


# ---------------------------------------------------------------------------------- FAISS side
def _synthetic_db(path: Path, n: int, d: int, seed: int = 0):
    from vfm.search.db import IndexDB

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    db = IndexDB(path, create=True)
    db.check_embedder({"model": "synthetic", "family": "synthetic", "dim": d, "pooling": "none", "identity": "s",
                       "text": False})
    db.put_vectors([f"v{i}" for i in range(n)], x)
    return db, x, rng


def test_approximate_recall_at_10_on_100k_random_unit_vectors(tmp_path):
    from vfm.search import vectors

    db, x, rng = _synthetic_db(tmp_path / "db", 100_000, 32)
    approx = vectors.rebuild(db, "ivf", db.max_entry_id(), 0)
    assert approx.kind == "ivf" and approx.nprobe < faiss.extract_index_ivf(approx.index).nlist
    q = rng.standard_normal((200, 32), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    _, got = approx.search(q, 10)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10] + 1  # entry ids are 1-based, in insertion order
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(got, truth)])
    assert recall >= 0.95, recall
    # exact: the same ranking as numpy
    flat = vectors.rebuild(db, "flat", db.max_entry_id(), 0)
    _, got = flat.search(q[:20], 10)
    np.testing.assert_array_equal(got, truth[:20])
    db.close()


def test_faiss_file_follows_sqlite(tmp_path):
    from vfm.search import vectors

    db, x, _ = _synthetic_db(tmp_path / "db", 300, 8)
    v1 = vectors.sync(db)
    assert v1.count == 300 and v1.kind == "flat"
    db.put_vectors(["extra"], x[:1])  # an append: the file grows without a rebuild
    v2 = vectors.sync(db)
    assert v2.count == 301 and v2.file != v1.file and not (tmp_path / "db" / v1.file).exists()
    db.db.execute("DELETE FROM entries WHERE id=5")
    db._bump_deletions(1)
    v3 = vectors.sync(db)
    assert v3.count == 300
    _, ids = v3.search(x[4:5], 3)
    assert 5 not in ids[0].tolist()
    assert vectors.choose_kind(vectors.EXACT_MAX) == "flat" and vectors.choose_kind(vectors.EXACT_MAX + 1) == "ivf"
    db.close()


def test_coco_polygons_become_masks_and_malformed_coco_is_one_line(tmp_path):
    from vfm.errors import PromptError
    from vfm.search.worker import masked_crop, read_coco_objects

    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}], "categories": [{"id": 1, "name": "tri"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20],
                            "segmentation": [[5, 5, 25, 5, 5, 25]]}]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    obj = read_coco_objects(str(tmp_path / "c.json"))["a.png"][0]
    crop = masked_crop(np.full((30, 40, 3), 200, np.uint8), obj)
    assert crop.shape == (20, 20, 3) and crop[2, 2, 0] == 200 and crop[18, 18, 0] == 127  # inside / outside the triangle
    for bad in ("not json", json.dumps({"images": []}), json.dumps({"images": [{"id": 1}], "annotations": [{"image_id": 1}]})):
        (tmp_path / "b.json").write_text(bad)
        with pytest.raises(PromptError, match="--objects"):
            read_coco_objects(str(tmp_path / "b.json"))


def test_objects_on_the_fly_from_segment_everything(models, tiny_sam_dir, tmp_path, capsys):
    """--objects without a file: segment-everything masks (tiny SAM) become object entries with their RLE."""
    from vfm.engine.tasks import LabelTask, to_result
    from vfm.io.image import load_image

    src = tmp_path / "imgs"
    src.mkdir()
    img = np.zeros((64, 80, 3), np.uint8)
    img[10:40, 15:50] = (220, 40, 40)
    img[35:60, 45:75] = (30, 200, 60)
    Image.fromarray(img).save(src / "shapes.png")
    db = tmp_path / "db"
    assert main(["index", str(src), "--model", str(models["clip"]), "--db", str(db), "--objects", "--segmenter",
                 str(tiny_sam_dir), "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    task = LabelTask.from_config({"task": "everything", "segmenter": str(tiny_sam_dir), "points_per_side": 4,
                                  "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "precision": "fp32"})
    want = to_result(task.fn(load_image(str(src / "shapes.png"))))["annotations"]
    assert want, "the tiny SAM must find some mask for this test to mean anything"
    assert doc["vectors"] == 1 + len(want)
    from vfm.search.db import IndexDB

    d = IndexDB(db)
    rows = d.db.execute("SELECT bbox, rle FROM entries WHERE kind='object' ORDER BY id").fetchall()
    d.close()
    assert [json.loads(b) for b, _ in rows] == [a["bbox"] for a in want]
    assert [json.loads(r)["counts"] for _, r in rows] == [a["segmentation"]["counts"] for a in want]
