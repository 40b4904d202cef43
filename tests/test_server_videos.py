"""Videos and tracking jobs over a real uvicorn server on loopback: upload, frames, a track job
polled to the end with progress, its results equal to `vfm track`'s, cancellation, and 4xx errors."""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest
import requests
from PIL import Image

from vfm.server import ServerConfig, create_app
from vfm.server.testing import serve_in_thread
from vfm.testing.synthetic_video import frame_and_masks, object_box, object_centre, write_video

pytest.importorskip("av")

W, H, N = 160, 96, 12


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", N, W, H)


@pytest.fixture(scope="module")
def server(tiny_sam_dir, gdino_dir, tiny_sam2_video_dir, tmp_path_factory):
    config = ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), tracker=str(tiny_sam2_video_dir),
                          device="cpu", precision="fp32", max_video_upload_mb=2,
                          video_dir=str(tmp_path_factory.mktemp("videos")))
    app = create_app(config)
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def video_id(server, clip):
    r = requests.post(f"{server}/v1/videos", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
    assert r.status_code == 200, r.text
    info = r.json()
    assert (info["width"], info["height"], info["frames"], info["fps"]) == (W, H, N, 10.0)
    assert info["file_name"] == "clip.mp4"
    return info["video_id"]


def wait(server, job_id, timeout=120):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        job = requests.get(f"{server}/v1/jobs/{job_id}").json()
        seen.append(job["progress"]["done"])
        if job["status"] in ("done", "failed", "cancelled"):
            return job, seen
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def prompts():
    ids = frame_and_masks(0, W, H)[1]
    return [{"frame": 0, "object": 1, "points": [list(object_centre(ids, 1))], "labels": [1]},
            {"frame": 0, "object": 2, "box": list(object_box(ids, 2))},
            {"frame": 6, "object": 1, "points": [list(object_centre(frame_and_masks(6, W, H)[1], 1))]}]


def test_upload_is_idempotent_and_frames_are_served(server, video_id, clip):
    again = requests.post(f"{server}/v1/videos", data=clip.read_bytes(), headers={"Content-Type": "video/mp4"})
    assert again.status_code == 200 and again.json()["video_id"] == video_id
    r = requests.get(f"{server}/v1/videos/{video_id}/frames/5.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    frame = np.asarray(Image.open(io.BytesIO(r.content)))
    assert frame.shape == (H, W, 3)
    assert np.abs(frame.astype(int) - frame_and_masks(5, W, H)[0].astype(int)).mean() < 8
    assert requests.get(f"{server}/v1/videos/{video_id}/frames/{N - 1}.jpg").status_code == 200  # waits for it
    assert requests.get(f"{server}/v1/videos/{video_id}/frames/{N}.jpg").status_code == 404
    assert requests.get(f"{server}/v1/videos/{video_id}").json()["frames_ready"] == N


def test_track_job_matches_the_cli(server, video_id, clip, tiny_sam2_video_dir, tmp_path):
    r = requests.post(f"{server}/v1/videos/{video_id}/track", json={"prompts": prompts()})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["progress"]["total"] == N
    job, seen = wait(server, job["job_id"])
    assert job["status"] == "done", job
    assert seen == sorted(seen) and job["progress"] == {**job["progress"], "done": N, "total": N, "fraction": 1.0}
    res = job["results"]
    assert res["frames"] == N and set(res["files"]) == {"tracks.jsonl", "mot.txt", "ytvis.json", "overlay.mp4", "masks.zip"}
    served = requests.get(server + res["files"]["tracks.jsonl"]).text.splitlines()
    # the same tracks as the CLI on the same file and prompts
    from vfm.cli.main import main

    (tmp_path / "p.json").write_text(json.dumps(prompts()))
    assert main(["track", str(clip), "--model", str(tiny_sam2_video_dir), "--prompts", str(tmp_path / "p.json"),
                 "--out", str(tmp_path / "o"), "--no-overlay", "--quiet"]) == 0
    assert served == (tmp_path / "o" / "tracks.jsonl").read_text().splitlines()
    z = zipfile.ZipFile(io.BytesIO(requests.get(server + res["files"]["masks.zip"]).content))
    assert sorted(z.namelist()) == [f"masks/{i:05d}.png" for i in range(N)]
    png = requests.get(server + res["masks"].format(frame=3))
    assert png.status_code == 200
    assert png.content == (tmp_path / "o" / "masks" / "00003.png").read_bytes()
    assert requests.get(server + res["files"]["overlay.mp4"]).headers["content-type"] == "video/mp4"


def test_cancel(server, video_id):
    jobs = [requests.post(f"{server}/v1/videos/{video_id}/track", json={"prompts": prompts()[:1]}).json() for _ in range(2)]
    # the second waits behind the first: cancelled while queued it never runs
    r = requests.delete(f"{server}/v1/jobs/{jobs[1]['job_id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = requests.delete(f"{server}/v1/jobs/{jobs[0]['job_id']}")
    job, _ = wait(server, jobs[0]["job_id"])
    assert job["status"] in ("cancelled", "done")  # done if it finished before the cancel arrived
    if job["status"] == "cancelled":
        assert requests.get(f"{server}/v1/jobs/{job['job_id']}/files/tracks.jsonl").status_code == 404
    assert wait(server, jobs[1]["job_id"])[0]["status"] == "cancelled"


@pytest.mark.parametrize("body, status, message", [
    ({"prompts": [{"frame": 99, "object": 1, "points": [[10, 10]]}]}, 422, "past the end"),
    ({"prompts": [{"frame": 0, "object": 1, "box": [0, 0, 500, 500]}]}, 422, "outside"),
    ({"prompts": [{"frame": 0, "points": [[1, 1]]}, {"frame": 0, "box": [0, 0, 5, 5]}]}, 422, "prompted twice"),
    ({"prompts": []}, 422, "give 'prompts'"),
    ({"prompts": [{"frame": 0, "mask": {"size": [2, 2], "counts": [1, 1]}}]}, 422, "do not add up"),
    ({"prompts": [{"frame": 0, "mask": {"size": [10, 10], "counts": [100]}}]}, 422, "mask is 10x10, the frame is 160x96"),
    ({"prompts": [{"frame": 0, "mask": {"size": [96, 160], "counts": [15360]}}]}, 422, "mask is empty"),
    ({"prompts": [{"frame": 0, "points": [[1, 1]]}], "colour": 1}, 422, "unknown field"),
    ({"prompts": "frame 0"}, 422, "must be a list"),
    ({"text": "cat"}, 422, "needs SAM 3"),
    ({"text": []}, 422, "'text' must be"),
    ({"prompts": [{"frame": 0, "points": [[1, 1]]}], "threshold": 0.3}, 422, "go with 'text'"),
])
def test_bad_track_requests(server, video_id, body, status, message):
    r = requests.post(f"{server}/v1/videos/{video_id}/track", json=body)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_bad_uploads_and_ids(server):
    r = requests.post(f"{server}/v1/videos", files={"file": ("x.mp4", b"not a video at all", "video/mp4")})
    assert r.status_code == 415 and "not a video" in r.json()["error"]
    r = requests.post(f"{server}/v1/videos", data=b"", headers={"Content-Type": "video/mp4"})
    assert r.status_code == 415 and "empty" in r.json()["error"]
    r = requests.post(f"{server}/v1/videos", data=b"\0" * (3 << 20), headers={"Content-Type": "video/mp4"})
    assert r.status_code == 413 and "--max-video-upload-mb" in r.json()["error"]
    for path in ("/v1/videos/nope", "/v1/videos/nope/frames/0.jpg", "/v1/jobs/nope", "/v1/jobs/nope/files/mot.txt"):
        r = requests.get(server + path)
        assert r.status_code == 404 and r.json()["error"], path
    assert requests.post(f"{server}/v1/videos/nope/track", json={"prompts": prompts()}).status_code == 404
    assert requests.delete(f"{server}/v1/jobs/nope").status_code == 404


@pytest.fixture(scope="module")
def sam3_server(tiny_sam_dir, gdino_dir, tiny_sam3_video_dir, tmp_path_factory):
    config = ServerConfig(segmenter=str(tiny_sam_dir), detector=str(gdino_dir), tracker=str(tiny_sam3_video_dir),
                          device="cpu", precision="fp32", video_dir=str(tmp_path_factory.mktemp("videos3")))
    with serve_in_thread(create_app(config)) as url:
        yield url


def test_text_track_job_matches_the_cli(sam3_server, clip, tiny_sam3_video_dir, tmp_path):
    """A server started with --tracker sam3 tracks "text" as `vfm track --text` does."""
    r = requests.post(f"{sam3_server}/v1/videos", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
    video_id = r.json()["video_id"]
    body = {"text": ["cat"], "threshold": 0.2, "new_object_threshold": 0.25}
    for bad, message in (({**body, "prompts": prompts()}, "on its own"), ({**body, "threshold": 2}, "from 0 to 1"),
                         ({"text": " "}, "'text' is empty")):
        r = requests.post(f"{sam3_server}/v1/videos/{video_id}/track", json=bad)
        assert r.status_code == 422 and message in r.json()["error"], r.text
    r = requests.post(f"{sam3_server}/v1/videos/{video_id}/track", json=body)
    assert r.status_code == 202, r.text
    job, _ = wait(sam3_server, r.json()["job_id"])
    assert job["status"] == "done", job
    res = job["results"]
    assert res["objects"] and set(res["categories"].values()) == {"cat"}
    served = requests.get(sam3_server + res["files"]["tracks.jsonl"]).text.splitlines()
    from vfm.cli.main import main

    assert main(["track", str(clip), "--model", str(tiny_sam3_video_dir), "--text", "cat", "--threshold", "0.2",
                 "--new-object-threshold", "0.25", "--out", str(tmp_path / "o"), "--no-overlay", "--quiet",
                 "--device", "cpu", "--precision", "fp32"]) == 0
    assert served == (tmp_path / "o" / "tracks.jsonl").read_text().splitlines()
