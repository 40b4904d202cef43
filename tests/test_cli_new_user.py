"""What a new user hit (issue 22): README commands, first-run traps, one-line errors, the same words
across commands, ``prompt: class`` mapping, several images per command, outputs that match help."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_image
from vfm.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def vfm(*args, timeout=240, **env):
    return subprocess.run([sys.executable, "-m", "vfm.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, timeout=timeout, cwd=ROOT)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def gdino(tmp_path_factory):
    from vfm.testing.tiny_detectors import build_grounding_dino

    return build_grounding_dino(tmp_path_factory.mktemp("models") / "tiny-gdino", seed=0)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three images in a folder (one in a subfolder) and a corrupt one beside it."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    for i, rel in enumerate(["a.jpg", "b.png", "sub/c.png"]):
        Image.fromarray(make_image(96 + 8 * i, 128, seed=i)).save(root / rel, quality=95)
    bad = tmp_path_factory.mktemp("bad") / "broken.jpg"
    bad.write_bytes((root / "a.jpg").read_bytes()[:200])
    return root, bad


# ---------------------------------------------------------------------- 1. README commands
def _bash_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    part = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", part, re.S)


def _extras(name: str, table: dict) -> set[str]:
    """Requirements of an extra, following vfm[...] self-references."""
    out = set()
    for req in table[name]:
        m = re.match(r"vfm\[(.*)\]", req)
        if m:
            for sub in m.group(1).split(","):
                out |= _extras(sub.strip(), table)
        else:
            out.add(re.split(r"[<>=\[; ]", req, maxsplit=1)[0].lower())
    return out


def test_readme_setup_installs_what_the_readme_test_command_needs():
    setup = _bash_blocks("Set up")[0].strip()
    extras = re.search(r'-e "\.\[([^\]]*)\]"', setup).group(1).split(",")
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = set().union(*(_extras(e.strip(), table) for e in extras))
    assert _extras("test", table) <= installed and "pytest" in installed  # the test extra comes with set-up
    assert "sentencepiece" in installed  # SigLIP's tokenizer
    test_cmd = _bash_blocks("Run the tests")[0].strip()
    assert test_cmd == "python -m pytest -q"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in ci and 'torch==2.14.1 torchvision==0.29.1 -e ".[all' in ci


def test_readme_main_command_parses_and_asks_for_what_the_readme_promises():
    cmd = _bash_blocks("Run the main job")[0].strip()
    argv = shlex.split(cmd)
    assert argv[0] == "vfm"
    args = build_parser().parse_args(argv[1:])
    from vfm.cli.label_cmd import parse_formats

    assert {"coco", "yolo", "labelstudio"} <= set(parse_formats(args.format))


# ---------------------------------------------------------------------- 2. failed first run
def test_a_run_that_failed_before_any_image_does_not_lock_out(photos, gdino, tiny_sam_dir, tmp_path, capsys):
    src, _ = photos
    out = tmp_path / "out"
    first = ["label", str(src), "--classes", "cat", "--out", str(out), "--quiet", "--precision", "fp32",
             "--detector", "no-such-org/no-such-detector", "--segmenter", str(tiny_sam_dir)]
    assert main(first) == 1
    assert "--detector no-such-org/no-such-detector" in one_line(capsys.readouterr().err)
    retry = first[:-4] + ["--detector", str(gdino), "--segmenter", str(tiny_sam_dir), "--box-threshold", "0.99"]
    assert main(retry) == 0, capsys.readouterr().err
    doc = json.loads((out / "coco.json").read_text())
    assert len(doc["images"]) == 3
    # Once images are committed the options are locked again.
    assert main(retry[:-2] + ["--box-threshold", "0.5"]) == 1
    assert "--overwrite" in one_line(capsys.readouterr().err)


def test_a_failed_first_run_on_another_source_rescans(photos, gdino, tiny_sam_dir, tmp_path, capsys):
    src, _ = photos
    out = tmp_path / "out"
    assert main(["label", str(src / "sub"), "--classes", "cat", "--out", str(out), "--quiet",
                 "--detector", "no/such", "--segmenter", str(tiny_sam_dir)]) == 1
    assert main(["label", str(src), "--classes", "cat", "--out", str(out), "--quiet", "--precision", "fp32",
                 "--detector", str(gdino), "--segmenter", str(tiny_sam_dir), "--box-threshold", "0.99"]) == 0
    names = [i["file_name"] for i in json.loads((out / "coco.json").read_text())["images"]]
    assert names == ["a.jpg", "b.png", "sub/c.png"]
    capsys.readouterr()


# ---------------------------------------------------------------------- 3. one-line errors
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_preload_with_a_model_that_cannot_load_is_one_line_and_no_banner():
    r = vfm("serve", "--preload", "--segmenter", "no-such-org/no-such-sam", "--port", _free_port())
    assert r.returncode == 1
    assert "--segmenter no-such-org/no-such-sam" in one_line(r.stderr) and "serving" not in r.stdout + r.stderr
    assert "http://" not in r.stdout


def test_serve_on_a_busy_port_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = vfm("serve", "--port", busy.getsockname()[1])
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "cannot listen" in line and "--port" in line and "http://" not in r.stdout


@pytest.mark.parametrize("cmd", ["segment", "detect", "classify", "label"])
def test_out_that_cannot_be_created_is_one_line(cmd, photos, gdino, tiny_sam_dir, clip_dir, capsys):
    src, _ = photos
    argv = {
        "segment": ["segment", str(src / "a.jpg"), "--model", str(tiny_sam_dir), "--point", "5,5"],
        "detect": ["detect", str(src / "a.jpg"), "--model", str(gdino), "--classes", "cat"],
        "classify": ["classify", str(src / "a.jpg"), "--model", str(clip_dir), "--classes", "cat, dog"],
        "label": ["label", str(src), "--classes", "cat", "--detector", str(gdino), "--segmenter", str(tiny_sam_dir)],
    }[cmd]
    assert main(argv + ["--out", "/proc/vfm-nope/out"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "/proc/vfm-nope" in line and "internal error" not in line


@pytest.mark.parametrize("flag, argv", [
    ("--model", ["detect", "{img}", "--classes", "cat", "--model", "nobody/nothing"]),
    ("--detector", ["ground", "{img}", "--classes", "cat", "--detector", "nobody/nothing", "--segmenter", "{sam}"]),
    ("--segmenter", ["ground", "{img}", "--classes", "cat", "--detector", "{gdino}", "--segmenter", "nobody/nothing"]),
    ("--classifier", ["everything", "{img}", "--model", "{sam}", "--points-per-side", "2", "--classes", "cat",
                      "--classifier", "not-an-alias"]),
])
def test_model_errors_name_the_flag_the_user_used(flag, argv, photos, gdino, tiny_sam_dir, capsys):
    src, _ = photos
    argv = [a.format(img=src / "a.jpg", sam=tiny_sam_dir, gdino=gdino) for a in argv]
    assert main(argv) == 1
    line = one_line(capsys.readouterr().err)
    bad = argv[argv.index(flag) + 1]
    assert f"{flag} {bad}:" in line
    others = {"--model", "--detector", "--segmenter", "--classifier"} - {flag}
    assert not any(f"{o} " in line for o in others)


def test_hub_check_gives_up_in_seconds_when_the_resolver_hangs(monkeypatch):
    from vfm.models import registry

    def hanging(*_a, **_k):  # a DNS lookup that never answers
        time.sleep(30)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(registry.socket, "create_connection", hanging)
    registry.hub_online.cache_clear()
    try:
        start = time.monotonic()
        assert registry.hub_online(timeout=0.5) is False
        assert time.monotonic() - start < 10  # generous: the point is "not 30 s"
    finally:
        registry.hub_online.cache_clear()


# ---------------------------------------------------------------------- 4. the same words
def test_classify_takes_classes_and_labels_alike(photos, clip_dir, capsys):
    src, _ = photos
    docs = []
    for flag in ("--classes", "--labels"):
        assert main(["classify", str(src / "a.jpg"), "--model", str(clip_dir), flag, "cat, dog", "--json"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[0] == docs[1] and {d["name"] for d in docs[0]["labels"]} == {"cat", "dog"}


def test_tag_takes_classes_as_its_vocabulary(photos, clip_dir, capsys):
    src, _ = photos
    assert main(["tag", str(src / "a.jpg"), "--model", str(clip_dir), "--classes", "beach, dog: canine", "--threshold", "0",
                 "--json"]) == 0
    assert {d["name"] for d in json.loads(capsys.readouterr().out)["labels"]} == {"beach", "canine"}


def test_negative_numbers_are_values_not_options(photos, tiny_sam_dir, capsys):
    src, _ = photos
    rc = main(["segment", str(src / "a.jpg"), "--model", str(tiny_sam_dir), "--point", "-5,100"])
    assert rc == 1  # parsed as a point, then refused as outside the image (not a usage error)
    assert "outside" in one_line(capsys.readouterr().err)


def test_models_task_is_checked_and_lists_only_what_runs(capsys):
    from vfm.cli.models_cmd import TASKS
    from vfm.models.registry import FAMILY_TASKS, list_models

    assert main(["models", "--task", "foo"]) == 1
    assert "segment, ground, track, detect, classify" in one_line(capsys.readouterr().err)
    assert {t for s in list_models() for t in FAMILY_TASKS[s.family]} == set(TASKS)  # read: Florence-2's second task
    assert all(s.task in FAMILY_TASKS[s.family] for s in list_models())
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # every listed task has a command that runs it (embed: vfm embed / index / search, issue 15)
    from vfm.cli.main import COMMANDS

    runs = {"segment": "segment", "detect": "detect", "classify": "classify", "semantic": "semantic", "depth": "depth",
            "embed": "embed", "track": "track", "ground": "ground", "caption": "caption", "ask": "ask", "read": "read"}
    assert all(runs[t] in COMMANDS for r in rows for t in r["tasks"])


def test_cli_help_imports_neither_torch_nor_transformers():
    for argv in (["--help"], ["detect", "--help"], ["label", "--help"], ["detect"]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "vfm.cli", *argv], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
        modules = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
        assert not {"torch", "transformers", "torchvision"} & modules, argv


# ---------------------------------------------------------------------- 5. prompt -> class
def test_ontology_parsing_and_errors():
    from vfm.errors import PromptError
    from vfm.tasks.ontology import Ontology

    o = Ontology.parse("person: astronaut, forklift, man: Person, woman: person")
    assert o.prompts == ("person", "forklift", "man", "woman")
    assert o.classes == ("astronaut", "forklift", "Person")
    assert o.class_of == (0, 1, 2, 2) and o.mapped
    assert not Ontology.parse("cat, dog").mapped
    np.testing.assert_allclose(o.merge_scores(np.array([0.1, 0.2, 0.3, 0.4]), how="sum"), [0.1, 0.2, 0.7])
    np.testing.assert_allclose(o.merge_scores(np.array([0.1, 0.2, 0.3, 0.4]), how="max"), [0.1, 0.2, 0.4])
    for bad, msg in [("cat:, dog", "empty side"), (": cat", "empty side"), ("cat: a, cat: b", "two classes")]:
        with pytest.raises(PromptError, match=msg):
            Ontology.parse(bad)


def test_detect_with_a_mapping_finds_the_prompt_and_names_the_class(photos, gdino, capsys):
    src, _ = photos
    base = ["detect", str(src / "a.jpg"), "--model", str(gdino), "--box-threshold", "0.0", "--text-threshold", "0.0",
            "--max-detections", "5", "--precision", "fp32", "--json"]
    assert main(base + ["--classes", "cat, dog"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(base + ["--classes", "cat: feline, dog"]) == 0
    mapped = json.loads(capsys.readouterr().out)
    assert mapped["categories"] == [{"id": 1, "name": "feline"}, {"id": 2, "name": "dog"}]
    assert [a["bbox"] for a in mapped["annotations"]] == [a["bbox"] for a in plain["annotations"]]
    rename = {"cat": "feline", "dog": "dog"}
    assert [a["category_name"] for a in mapped["annotations"]] == [rename[a["category_name"]] for a in plain["annotations"]]
    assert [a["category_id"] for a in mapped["annotations"]] == [a["category_id"] for a in plain["annotations"]]


def test_classify_merges_the_prompts_of_one_class(photos, clip_dir, capsys):
    src, _ = photos
    assert main(["classify", str(src / "a.jpg"), "--model", str(clip_dir), "--classes", "cat, dog, wolf", "--json"]) == 0
    plain = {d["name"]: d["score"] for d in json.loads(capsys.readouterr().out)["labels"]}
    assert main(["classify", str(src / "a.jpg"), "--model", str(clip_dir), "--classes", "cat, dog: canine, wolf: canine",
                 "--json"]) == 0
    merged = {d["name"]: d["score"] for d in json.loads(capsys.readouterr().out)["labels"]}
    assert set(merged) == {"cat", "canine"}
    assert merged["canine"] == pytest.approx(plain["dog"] + plain["wolf"], abs=2e-6)  # CLIP: softmax total
    assert merged["cat"] == pytest.approx(plain["cat"], abs=1e-6)


def test_label_names_coco_categories_by_the_class_side(photos, gdino, tiny_sam_dir, tmp_path, capsys):
    src, _ = photos
    out = tmp_path / "out"
    assert main(["label", str(src), "--classes", "cat: feline, dog", "--out", str(out), "--quiet", "--precision", "fp32",
                 "--detector", str(gdino), "--segmenter", str(tiny_sam_dir), "--box-threshold", "0.0",
                 "--text-threshold", "0.0", "--format", "coco,labelstudio"]) == 0
    doc = json.loads((out / "coco.json").read_text())
    assert [(c["id"], c["name"]) for c in doc["categories"]] == [(1, "feline"), (2, "dog")]
    assert doc["annotations"] and {a["category_id"] for a in doc["annotations"]} <= {1, 2}
    assert '"feline"' in (out / "labelstudio_config.xml").read_text().replace("'", '"')
    capsys.readouterr()


# ---------------------------------------------------------------------- 6. several images
def test_detect_several_images_writes_one_document_per_image(photos, gdino, tmp_path, capsys):
    src, bad = photos
    out = tmp_path / "out"
    rc = main(["detect", str(src / "a.jpg"), str(bad), str(src / "sub"), str(src / "*.png"), "--model", str(gdino),
               "--classes", "cat", "--box-threshold", "0.5", "--precision", "fp32", "--json", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 1  # the broken image failed; the others were done
    assert "broken.jpg" in one_line(cap.err)
    docs = [json.loads(line) for line in cap.out.splitlines()]
    assert [d["image"]["file_name"] for d in docs] == ["a.jpg", "c.png", "b.png"]
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "c"]
    for d in docs:
        folder = out / Path(d["image"]["file_name"]).stem
        assert json.loads((folder / "result.json").read_text()) == d and (folder / "overlay.png").is_file()


@pytest.mark.parametrize("cmd", ["classify", "tag", "everything", "ground"])
def test_other_commands_take_several_images(cmd, photos, gdino, tiny_sam_dir, clip_dir, capsys):
    src, _ = photos
    extra = {
        "classify": ["--model", str(clip_dir), "--classes", "cat, dog"],
        "tag": ["--model", str(clip_dir), "--top-k", "3"],
        "everything": ["--model", str(tiny_sam_dir), "--points-per-side", "2", "--pred-iou-thresh", "0",
                       "--stability-score-thresh", "0"],
        "ground": ["--detector", str(gdino), "--segmenter", str(tiny_sam_dir), "--classes", "cat", "--box-threshold", "0.5"],
    }[cmd]
    assert main([cmd, str(src), *extra, "--precision", "fp32", "--json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["image"]["file_name"] for d in docs] == ["a.jpg", "b.png", "sub/c.png"]
    assert [(d["image"]["width"], d["image"]["height"]) for d in docs] == [(128, 96), (128, 104), (128, 112)]


def test_a_folder_without_images_is_one_line(tmp_path, gdino, capsys):
    (tmp_path / "notes.txt").write_text("hi")
    assert main(["detect", str(tmp_path), "--model", str(gdino), "--classes", "cat"]) == 1
    assert "holds no image files" in one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- 7. outputs match help
def test_eval_scores_single_image_documents(photos, gdino, tmp_path, capsys):
    src, _ = photos
    assert main(["detect", str(src / "a.jpg"), str(src / "b.png"), "--model", str(gdino), "--classes", "cat, dog",
                 "--box-threshold", "0.5", "--precision", "fp32", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    docs = [json.loads(line) for line in lines]
    assert sum(len(d["annotations"]) for d in docs) > 0
    # Ground truth: the predictions themselves, as a COCO dataset with other ids and category order.
    gt = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}]}
    cat_id = {"dog": 7, "cat": 3}
    for i, d in enumerate(docs):
        gt["images"].append({"id": 10 + i, "file_name": d["image"]["file_name"], "width": d["image"]["width"],
                             "height": d["image"]["height"]})
        for a in d["annotations"]:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": 10 + i, "bbox": a["bbox"],
                                      "area": a["bbox"][2] * a["bbox"][3], "iscrowd": 0,
                                      "category_id": cat_id[a["category_name"]]})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "one.json").write_text(lines[0])
    assert main(["eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.jsonl"), "--iou-type", "bbox",
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["images"] == 2 and res["dropped"] == {"category": 0, "image": 0}
    assert res["stats"]["AP @[IoU=0.50 | area=all | maxDets=100]"] == pytest.approx(1.0)
    assert main(["eval", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "one.json"), "--iou-type", "bbox",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 1


def test_segment_overlay_draws_the_box_prompt(photos, tiny_sam_dir, tmp_path, capsys):
    src, _ = photos
    with_box, points_only = tmp_path / "box", tmp_path / "pts"
    base = ["segment", str(src / "a.jpg"), "--model", str(tiny_sam_dir), "--point", "60,40", "--precision", "fp32"]
    assert main(base + ["--box", "20,20,100,80", "--out", str(with_box)]) == 0
    assert main(base + ["--out", str(points_only)]) == 0
    capsys.readouterr()
    img = np.asarray(Image.open(with_box / "overlay.png").convert("RGB")).astype(int)
    edge = img[20, 30:90]  # the box's top edge: black and white dashes
    assert (edge.sum(axis=1) == 0).any() and (edge.min(axis=1) == 255).any()


def test_everything_out_writes_the_mask_pngs_its_help_promises(photos, tiny_sam_dir, tmp_path, capsys):
    src, _ = photos
    out = tmp_path / "out"
    assert main(["everything", str(src / "a.jpg"), "--model", str(tiny_sam_dir), "--points-per-side", "2",
                 "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pngs = sorted(out.glob("mask_*.png"))
    assert len(pngs) == len(doc["annotations"]) > 0
    assert (out / "overlay.png").is_file() and json.loads((out / "result.json").read_text()) == doc


def test_classify_and_tag_help_do_not_promise_masks():
    for cmd in ("classify", "tag"):
        r = subprocess.run([sys.executable, "-m", "vfm.cli", cmd, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert "--out" in r.stdout and "mask" not in r.stdout.lower()
