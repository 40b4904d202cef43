"""Request counters and latency percentiles per route (JSON, or Prometheus text with ?format=prometheus)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

import numpy as np

WINDOW = 2048  # latencies kept per route for percentiles


class Metrics:
    def __init__(self):
        self.started = time.time()
        self._lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.latency: dict[str, deque] = defaultdict(lambda: deque(maxlen=WINDOW))
        self.cancelled = 0  # requests whose work stopped because the client left (vfm.server.cancel)

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[route] += 1
            self.statuses[route][status] += 1
            self.latency[route].append(seconds)

    def routes(self) -> dict:
        out = {}
        with self._lock:
            for route, n in sorted(self.requests.items()):
                lat = np.asarray(self.latency[route]) * 1000
                out[route] = {
                    "requests": n,
                    "status": {str(k): v for k, v in sorted(self.statuses[route].items())},
                    "latency_ms": {q: round(float(np.percentile(lat, p)), 2) for q, p in
                                   (("p50", 50), ("p90", 90), ("p99", 99))} if len(lat) else {},
                }
        return out


def prometheus_text(doc: dict) -> str:
    """The JSON metrics document as Prometheus exposition text."""
    lines = ["# TYPE vfm_requests_total counter"]
    for route, r in doc["routes"].items():
        for status, n in r["status"].items():
            lines.append(f'vfm_requests_total{{route="{route}",status="{status}"}} {n}')
    lines.append("# TYPE vfm_request_latency_ms gauge")
    for route, r in doc["routes"].items():
        for q, v in r["latency_ms"].items():
            lines.append(f'vfm_request_latency_ms{{route="{route}",quantile="{q}"}} {v}')
    c = doc["cache"]
    for key in ("embedding_hits", "embedding_misses"):
        lines += [f"# TYPE vfm_{key}_total counter", f"vfm_{key}_total {c[key]}"]
    for key in ("embeddings_cached", "embedding_bytes", "images", "image_bytes", "logits"):
        lines += [f"# TYPE vfm_{key} gauge", f"vfm_{key} {c[key]}"]
    lines.append("# TYPE vfm_model_loaded gauge")
    for role, m in doc["models"].items():
        lines.append(f'vfm_model_loaded{{role="{role}"}} {int(m["loaded"])}')
    lines.append(f"vfm_uptime_seconds {doc['uptime_s']}")
    return "\n".join(lines) + "\n"
