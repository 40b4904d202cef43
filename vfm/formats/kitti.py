"""KITTI object labels: ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]`` per line.

Boxes are in the rectified camera frame: (x, y, z) the bottom centre (y points down), h w l in
metres, ``ry`` the rotation about the camera's y axis (0 = the object's length along +x). vfm's
LiDAR boxes (vfm.lidar.boxes) are moved there with a KITTI calibration file (``Tr_velo_to_cam``,
``R0_rect``, and ``P2`` for the 2D box); without one, with KITTI's axes and no offset (x_cam = -y,
y_cam = -z, z_cam = x), which is what ``--calib`` gives for an identity mounting. Truncation and
occlusion are written as 0, the 2D box as 0 0 0 0 without ``P2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vfm.errors import VfmError
from vfm.lidar.boxes import Boxes3D

DEFAULT_TR = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])


class LabelError(VfmError):
    """A KITTI label or calibration file is malformed."""

    http_status = 422


@dataclass(frozen=True)
class Calib:
    tr_velo_to_cam: np.ndarray = field(default_factory=DEFAULT_TR.copy)  # 3 x 4
    r0_rect: np.ndarray = field(default_factory=lambda: np.eye(3))
    p2: np.ndarray | None = None  # 3 x 4

    @property
    def velo_to_rect(self) -> np.ndarray:
        """4 x 4 LiDAR -> rectified camera."""
        m = np.eye(4)
        m[:3, :4] = self.r0_rect @ self.tr_velo_to_cam
        return m


def read_calib(path: str | Path) -> Calib:
    p = Path(path)
    if not p.is_file():
        raise LabelError(f"calibration file '{path}' does not exist")
    values = {}
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        if ":" not in line:
            continue
        key, rest = line.split(":", 1)
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError:
            raise LabelError(f"calibration file '{path}': '{key.strip()}' holds a value that is not a number") from None
    tr = values.get("Tr_velo_to_cam", values.get("Tr_velo_cam"))
    r0 = values.get("R0_rect", values.get("R_rect"))
    if tr is None or tr.size != 12:
        raise LabelError(f"calibration file '{path}' has no 12-number Tr_velo_to_cam line (a KITTI calib_velo_to_cam "
                         "or object calib file)")
    if r0 is not None and r0.size != 9:
        raise LabelError(f"calibration file '{path}': R0_rect must hold 9 numbers, it holds {r0.size}")
    p2 = values.get("P2")
    if p2 is not None and p2.size != 12:
        raise LabelError(f"calibration file '{path}': P2 must hold 12 numbers, it holds {p2.size}")
    return Calib(tr.reshape(3, 4), np.eye(3) if r0 is None else r0.reshape(3, 3), None if p2 is None else p2.reshape(3, 4))


def to_camera(boxes: Boxes3D, calib: Calib | None = None) -> list[dict]:
    """LiDAR boxes -> KITTI label records (camera frame)."""
    calib = calib or Calib()
    m = calib.velo_to_rect
    out = []
    for i in range(len(boxes)):
        c = m @ np.r_[boxes.centers[i], 1.0]
        heading = m[:3, :3] @ np.array([np.cos(boxes.yaws[i]), np.sin(boxes.yaws[i]), 0.0])
        ry = _wrap_pi(np.arctan2(-heading[2], heading[0]))
        l, w, h = boxes.sizes[i]
        rec = {"type": boxes.class_names[i], "truncated": 0.0, "occluded": 0,
               "alpha": _wrap_pi(ry - np.arctan2(c[0], c[2])), "bbox": [0.0, 0.0, 0.0, 0.0],
               "dimensions": [float(h), float(w), float(l)], "location": [float(c[0]), float(c[1]), float(c[2])],
               "rotation_y": float(ry), "score": float(boxes.scores[i])}
        if calib.p2 is not None:
            rec["bbox"] = _image_box(rec, calib.p2)
        out.append(rec)
    return out


def _wrap_pi(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def camera_corners(rec: dict) -> np.ndarray:
    """8 x 3 corners of a camera-frame box."""
    h, w, l = rec["dimensions"]
    x, y, z = rec["location"]
    ry = rec["rotation_y"]
    u = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * l / 2
    v = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    dy = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    c, s = np.cos(ry), np.sin(ry)
    return np.stack([x + c * u + s * v, y + dy, z - s * u + c * v], axis=1)


def _image_box(rec: dict, p2: np.ndarray) -> list[float]:
    pts = camera_corners(rec)
    if (pts[:, 2] <= 0.1).any():  # behind or at the camera: no finite 2D box
        return [0.0, 0.0, 0.0, 0.0]
    uvw = (p2 @ np.c_[pts, np.ones(8)].T).T
    uv = uvw[:, :2] / uvw[:, 2:3]
    return [float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())]


def footprint_xz(rec: dict) -> np.ndarray:
    """4 x 2 BEV corners (x, z) of a camera-frame box."""
    return camera_corners(rec)[:4][:, [0, 2]]


def format_line(rec: dict, *, score: bool = True) -> str:
    vals = [rec["type"], f"{rec['truncated']:.2f}", str(int(rec["occluded"])), f"{rec['alpha']:.2f}",
            *(f"{v:.2f}" for v in rec["bbox"]), *(f"{v:.2f}" for v in rec["dimensions"]),
            *(f"{v:.2f}" for v in rec["location"]), f"{rec['rotation_y']:.2f}"]
    if score:
        vals.append(f"{rec['score']:.4f}")
    return " ".join(vals)


def write_labels(path: str | Path, records: list[dict]) -> None:
    """Write a label file whole or not at all (a temporary file renamed into place)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(format_line(r) + "\n" for r in records), encoding="utf-8")
    tmp.replace(path)


def read_labels(path: str | Path) -> list[dict]:
    """Records of a KITTI label file (15 values per line, a 16th is the score)."""
    out = []
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (15, 16):
            raise LabelError(f"KITTI label '{path}' line {n} has {len(parts)} values; expected 15 (ground truth) or "
                             "16 (with a score): type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]")
        try:
            v = [float(x) for x in parts[1:]]
        except ValueError:
            raise LabelError(f"KITTI label '{path}' line {n} has a value that is not a number") from None
        if not np.isfinite(v).all() or min(v[7:10]) < 0:
            raise LabelError(f"KITTI label '{path}' line {n} has a non-finite value or a negative size")
        out.append({"type": parts[0], "truncated": v[0], "occluded": int(v[1]), "alpha": v[2], "bbox": v[3:7],
                    "dimensions": v[7:10], "location": v[10:13], "rotation_y": v[13],
                    "score": v[14] if len(v) == 15 else 1.0})
    return out
