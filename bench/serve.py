"""Load test of `vfm serve`: C concurrent clients clicking on a cached embedding, over loopback.

    python bench/serve.py [--seconds 8] [--rounds 3] [--clients 1,8,32] [--size 1024]
                          [--variant NAME='serve flags' ...]

Starts `vfm serve` in a subprocess with a SAM ViT-B sized checkpoint (random weights), uploads one
image (its embedding is computed once), then for each round and each C (interleaved: 1, 8, 32, 1,
8, 32, ...) runs C client threads, each with its own keep-alive HTTP connection, posting one-point
/segment requests at random points for a bounded time. Prints per C the median over rounds of
requests/s, p50 and p99 latency (ms) and the total error count, and the C=8 / C=1 throughput ratio.
With several --variant options one server per variant runs and the variants are interleaved too
(round r: A C=1, B C=1, A C=8, B C=8, ...).
`--overhead` instead measures what the server adds to a click: a tiny SAM (decoder cost ~0) in a
`vfm serve --threads 1` subprocess vs the same checkpoint in-process (Segmenter.predict_batch +
instances_to_document + json.dumps, one thread), alternating request by request.
Targets (issue 7): zero errors, p50 at C=1 under 60 ms, throughput at C=8 no worse than at C=1.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from _common import bench_image, vit_b_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vfm.cli", "serve", "--segmenter", model, "--port", str(port),
           "--log-level", "warning", "--max-waiting", "256", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start in 120 s")


def upload(port: int, pixels: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    boundary = "vfmbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t = time.perf_counter()
    c.request("POST", "/v1/images", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    r = c.getresponse()
    doc = json.loads(r.read())
    if r.status != 200:
        raise SystemExit(f"upload failed: {doc}")
    print(f"upload + image embedding (once): {time.perf_counter() - t:.2f} s", flush=True)
    return doc["image_id"]


def run_clients(port: int, image_id: str, size: int, clients: int, seconds: float, seed: int) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        rng = np.random.RandomState(seed * 1000 + k)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], 0
        while time.perf_counter() < stop_at:
            x, y = rng.uniform(0, size, 2)
            body = json.dumps({"points": [[round(float(x), 1), round(float(y), 1)]], "labels": [1]})
            t = time.perf_counter()
            try:
                conn.request("POST", f"/v1/images/{image_id}/segment", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                ok = r.status == 200 and b'"annotations"' in data
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if ok:
                mine.append(time.perf_counter() - t)
            else:
                bad += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000
    return {"rps": len(latencies) / wall, "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"), "errors": errors[0], "n": len(lat)}


def overhead(args) -> None:
    import tempfile

    import torch

    from vfm.formats.coco import instances_to_document
    from vfm.tasks.prompts import Prompt
    from vfm.tasks.segment import Segmenter
    from vfm.testing.tiny_models import build_sam

    torch.set_num_threads(1)
    model = build_sam(Path(tempfile.mkdtemp()) / "tiny-sam", image_size=256, seed=0)
    port = free_port()
    proc = start_server(str(model), port, ["--threads", "1", "--device", "cpu", "--precision", "fp32"])
    try:
        pixels = bench_image(args.size)
        image_id = upload(port, pixels)
        seg = Segmenter.load(str(model), device="cpu", precision="fp32")
        _, emb = seg.embed(pixels)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        rng = np.random.RandomState(0)
        local, remote = [], []
        for i in range(args.requests + 5):
            x, y = (round(float(v), 1) for v in rng.uniform(0, args.size, 2))
            t = time.perf_counter()
            res = seg.predict_batch([Prompt(points=[[x, y]])], image=emb)
            res.data.pop("low_res_logits")
            json.dumps(instances_to_document(res))
            t1 = time.perf_counter()
            conn.request("POST", f"/v1/images/{image_id}/segment", json.dumps({"points": [[x, y]]}),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            t2 = time.perf_counter()
            assert r.status == 200
            if i >= 5:
                local.append((t1 - t) * 1000)
                remote.append((t2 - t1) * 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lm, rm = statistics.median(local), statistics.median(remote)
    print(f"tiny SAM, {args.size}px image, {args.requests} alternating clicks, medians:")
    print(f"  in-process predict + COCO doc + json: {lm:7.1f} ms")
    print(f"  over HTTP (vfm serve, keep-alive):    {rm:7.1f} ms")
    print(f"  server overhead: {rm - lm:+.1f} ms ({rm / lm:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="duration of each measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the client counts")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--model", default=None, help="segmenter (default: SAM ViT-B sized random checkpoint)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME='FLAGS'",
                    help="a server configuration, e.g. t1='--threads 1'; repeatable (default: one, no extra flags)")
    ap.add_argument("--overhead", action="store_true", help="measure the HTTP overhead per click instead (tiny model)")
    ap.add_argument("--requests", type=int, default=60, help="clicks for --overhead")
    args = ap.parse_args()
    if args.overhead:
        return overhead(args)
    counts = [int(c) for c in args.clients.split(",")]
    model = args.model or str(vit_b_checkpoint())
    variants = [v.partition("=")[::2] for v in args.variant] or [("default", "")]
    servers = {}
    try:
        for name, flags in variants:  # one at a time: each computes the embedding once
            port = free_port()
            servers[name] = (start_server(model, port, flags.split()), port)
            image_id = upload(port, bench_image(args.size))
            run_clients(port, image_id, args.size, 1, 1.0, seed=999)  # warm-up
        results = {(n, c): [] for n, _ in variants for c in counts}
        for r in range(args.rounds):
            for c in counts:
                for name, _ in variants:
                    port = servers[name][1]
                    res = run_clients(port, image_id, args.size, c, args.seconds, seed=r * 100 + c)
                    results[name, c].append(res)
                    print(f"  round {r + 1} {name:>8} C={c:>2}: {res['rps']:6.1f} req/s  p50 {res['p50']:7.1f} ms  "
                          f"p99 {res['p99']:7.1f} ms  errors {res['errors']}  ({res['n']} requests)", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    print(f"\nvfm serve, SAM ViT-B sized decoder, {args.size}px image, {os.cpu_count()} CPUs, "
          f"median of {args.rounds} interleaved rounds x {args.seconds:g} s:")
    print(f"{'variant':>16} {'C':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, flags in variants:
        med = {}
        for c in counts:
            rs = results[name, c]
            med[c] = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50", "p99")}
            print(f"{name:>16} {c:>3} {med[c]['rps']:8.1f} {med[c]['p50']:8.1f} {med[c]['p99']:8.1f} "
                  f"{sum(x['errors'] for x in rs):>7}")
        if 1 in med and 8 in med:
            print(f"{name:>16} throughput C=8 / C=1: {med[8]['rps'] / med[1]['rps']:.2f}x   (flags: {flags or 'none'})")


if __name__ == "__main__":
    main()
