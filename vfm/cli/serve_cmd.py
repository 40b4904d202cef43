"""`vfm serve [--host 127.0.0.1] [--port 8000] [--segmenter M] [--detector M] [--classifier M]
[--api-key KEY | env VFM_API_KEY] [--max-upload-mb N] [--max-pixels N]
[--label-studio-url URL --label-studio-token T] [--label-studio-root DIR]`.

An HTTP server with the click-to-segment web page at / , the JSON API under /v1 (OpenAPI schema
at /openapi.json, docs at /docs), /healthz, /readyz and /metrics, and Label Studio's ML backend
protocol (/health, /setup, /predict, /webhook: "Connect model" in a Label Studio project). Models
load on first use (--preload loads them at start).
"""

from __future__ import annotations

import argparse

from vfm.errors import PromptError
from vfm.server.config import (DEFAULT_CAPTIONER, DEFAULT_CLASSIFIER, DEFAULT_DETECTOR, DEFAULT_SEGMENTER, DEFAULT_TRACKER,
                               DEFAULT_VLM)


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="HTTP API and click-to-segment web page",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, help=f"SAM-family model (default {DEFAULT_SEGMENTER})")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"detector for detect/ground (default {DEFAULT_DETECTOR})")
    p.add_argument("--classifier", default=DEFAULT_CLASSIFIER, help=f"CLIP/SigLIP for classify/tag (default {DEFAULT_CLASSIFIER})")
    p.add_argument("--text-segmenter", default=None, metavar="M",
                   help="a SAM 3 model (sam3) for text -> masks (POST /ground, the page's text box) instead of --detector + "
                        "--segmenter")
    p.add_argument("--tracker", default=DEFAULT_TRACKER, help=f"SAM 2.1 / EdgeTAM / SAM 3 for video tracking; SAM 3 also tracks \"text\" (default {DEFAULT_TRACKER})")
    p.add_argument("--captioner", default=DEFAULT_CAPTIONER,
                   help=f"captioning model for POST /v1/caption; a Florence-2 one also grounds answers (default {DEFAULT_CAPTIONER})")
    p.add_argument("--vlm", default=DEFAULT_VLM, help=f"chat VLM for POST /v1/ask and the page's ask box (default {DEFAULT_VLM})")
    p.add_argument("--max-new-tokens", type=int, default=1024, metavar="N",
                   help="largest max_new_tokens a caption or answer may ask for (default 1024)")
    p.add_argument("--max-video-upload-mb", type=float, default=1024.0, help="largest accepted video upload in MB (default 1024)")
    p.add_argument("--video-dir", default=None, metavar="DIR",
                   help="keep uploaded videos and tracking results here (default: a temporary folder, removed at exit)")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="an index made by vfm index: enables POST /v1/search and the page's search box")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on /v1 (default: env VFM_API_KEY)")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest accepted upload in MB (default 50)")
    p.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (default 100M)")
    p.add_argument("--cache-mb", type=float, default=1024.0, help="memory for cached embeddings in MB (default 1024)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="model calls running at once per model (default: 1 on CPU, where one call already "
                        "uses every core; 2 on a GPU)")
    p.add_argument("--max-waiting", type=int, default=64, help="requests that may wait per model before 503 (default 64)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="image encoder precision")
    from vfm.cli.common import add_backend_options

    add_backend_options(p)
    p.add_argument("--no-browser-decoding", dest="browser_decoding", action="store_false",
                   help="decode every click on the server (default: the page gets the prompt decoder as ONNX and each "
                        "image's embedding, and decodes clicks itself with onnxruntime-web)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); 1 keeps click latency steady on a busy CPU")
    p.add_argument("--preload", action="store_true", help="load the models at start instead of on first use")
    caps = p.add_argument_group("limits per request (answered with 413/422 and the reason)")
    caps.add_argument("--max-points-per-side", type=int, default=64, metavar="N", help="/everything grid (default 64)")
    caps.add_argument("--max-crop-layers", type=int, default=2, metavar="N", help="/everything crop_n_layers (default 2)")
    caps.add_argument("--max-prompts", type=int, default=256, metavar="N",
                      help="/segment boxes and points per request (default 256)")
    caps.add_argument("--max-classes", type=int, default=1000, metavar="N",
                      help="class names per /detect, /ground, /classify request (default 1000)")
    caps.add_argument("--max-json-kb", type=float, default=1024.0, metavar="KB", help="JSON body size (default 1024)")
    caps.add_argument("--max-json-depth", type=int, default=32, metavar="N", help="JSON nesting depth (default 32)")
    caps.add_argument("--shutdown-grace", type=float, default=3.0, metavar="S",
                      help="seconds SIGTERM waits for running requests before abandoning them (default 3)")
    ls = p.add_argument_group("Label Studio ML backend (where task images are read from)")
    ls.add_argument("--label-studio-url", default=None, metavar="URL",
                    help="Label Studio's address, for /data/upload/... images (default: env LABEL_STUDIO_URL, else "
                         "the hostname Label Studio sends to /setup)")
    ls.add_argument("--label-studio-token", default=None, metavar="TOKEN",
                    help="its personal access token or legacy token (default: env LABEL_STUDIO_API_KEY, else the "
                         "token Label Studio sends to /setup)")
    ls.add_argument("--label-studio-root", default=None, metavar="DIR",
                    help="read /data/local-files/?d=PATH from DIR/PATH on this machine (default: env "
                         "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, else fetched from Label Studio)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def build_config(args):
    from vfm.server.config import ServerConfig

    if not 0 < args.port < 65536:
        raise PromptError(f"--port {args.port} is not a port number (1-65535)")
    if args.max_upload_mb <= 0:
        raise PromptError(f"--max-upload-mb must be positive, got {args.max_upload_mb:g}")
    if args.max_pixels is not None and args.max_pixels <= 0:
        raise PromptError(f"--max-pixels must be positive, got {args.max_pixels}")
    if (args.concurrency is not None and args.concurrency < 1) or args.max_waiting < 0:
        raise PromptError("--concurrency must be at least 1 and --max-waiting at least 0")
    for name in ("max_points_per_side", "max_prompts", "max_classes", "max_json_depth"):
        if getattr(args, name) < 1:
            raise PromptError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.max_crop_layers < 0 or args.max_json_kb <= 0 or args.shutdown_grace < 0:
        raise PromptError("--max-crop-layers and --shutdown-grace must be 0 or more and --max-json-kb positive")
    ls = ServerConfig.label_studio_from_env()
    for name in ("label_studio_url", "label_studio_token", "label_studio_root"):
        if getattr(args, name) is not None:
            ls[name] = getattr(args, name)
    if ls["label_studio_url"] is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(ls["label_studio_url"])
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PromptError(f"--label-studio-url '{ls['label_studio_url']}' is not an http(s) URL; "
                              "give e.g. http://localhost:8080")
    if ls["label_studio_root"] is not None:
        from pathlib import Path

        if not Path(ls["label_studio_root"]).expanduser().is_dir():
            raise PromptError(f"--label-studio-root '{ls['label_studio_root']}' is not a folder; give Label Studio's "
                              "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
    if args.text_segmenter is not None:  # a model that is not SAM 3 is one line before anything listens
        from vfm.models.registry import is_concept_model

        if not is_concept_model(args.text_segmenter):
            raise PromptError(f"--text-segmenter {args.text_segmenter} is not a SAM 3 model; give sam3 (or drop it to ground "
                              "with --detector + --segmenter)")
    if args.db is not None:  # a missing or corrupt index is one line before anything listens
        from vfm.search.db import IndexDB

        IndexDB(args.db).close()
    from vfm.models.backends import check_backend
    from vfm.models.vlm.defaults import MAX_NEW_TOKENS_LIMIT

    check_backend(args.backend, args.precision)

    if not 1 <= args.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
        raise PromptError(f"--max-new-tokens {args.max_new_tokens} must be in 1..{MAX_NEW_TOKENS_LIMIT}")
    return ServerConfig(
        segmenter=args.segmenter, detector=args.detector, classifier=args.classifier, tracker=args.tracker,
        text_segmenter=args.text_segmenter, captioner=args.captioner, vlm=args.vlm, max_new_tokens=args.max_new_tokens,
        max_video_upload_mb=args.max_video_upload_mb, video_dir=args.video_dir,
        api_key=args.api_key or ServerConfig.api_key_from_env(), max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels, device=args.device, precision=args.precision, backend=args.backend,
        browser_decoding=args.browser_decoding,
        embedding_cache_bytes=int(args.cache_mb * 1048576), concurrency=args.concurrency,
        max_waiting=args.max_waiting, preload=args.preload,
        max_points_per_side=args.max_points_per_side, max_crop_layers=args.max_crop_layers, max_prompts=args.max_prompts,
        max_classes=args.max_classes, max_json_bytes=int(args.max_json_kb * 1024), max_json_depth=args.max_json_depth,
        shutdown_grace_s=args.shutdown_grace, db=args.db, **ls,
    )


def listen_socket(host: str, port: int):
    """A bound socket for uvicorn, so a busy port or a bad address is one line before anything loads."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise PromptError(f"--host '{host}' is not an address this machine has ({exc.strerror}); "
                          "use 127.0.0.1, 0.0.0.0 or one of its interface addresses") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "another server is using it: stop it or pick another --port" if exc.errno == 98 else "pick another --host/--port"
        raise PromptError(f"cannot listen on {host}:{port} ({exc.strerror}); {hint}") from None
    sock.set_inheritable(True)
    return sock


def run(args) -> int:
    import uvicorn

    from vfm.server.app import create_app

    config = build_config(args)
    if args.threads is not None:
        if args.threads < 1:
            raise PromptError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    sock = listen_socket(args.host, args.port)
    try:
        app = create_app(config)
        if config.preload:  # a model that cannot load is one line and exit 1, before the banner
            app.state.models.preload()
        print(f"vfm serve: http://{args.host}:{args.port}/ (API docs at /docs)"
              + (" — API key required" if config.api_key else ""), flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=False,
                                               timeout_graceful_shutdown=config.shutdown_grace_s))
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
