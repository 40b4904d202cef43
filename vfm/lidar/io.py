"""Read a LiDAR scan into N x 3 float32 points (x, y, z, metres) and, where the file has it, intensity.

Formats, chosen by extension:

- ``.bin``: KITTI velodyne, float32 x, y, z, intensity per point (little endian), no header.
- ``.pcd``: PCL's point cloud data, ``DATA ascii`` or ``DATA binary`` (``binary_compressed`` is a
  one-line error: convert it with ``pcl_convert_pcd_ascii_binary``); fields ``x y z`` and optionally
  ``intensity`` (or ``i``, ``reflectance``); other fields are skipped, any TYPE/SIZE/COUNT.
- ``.ply``: ``ascii``, ``binary_little_endian`` or ``binary_big_endian``; the ``vertex`` element's
  ``x y z`` and optionally ``intensity`` (or ``scalar_intensity``, ``reflectance``).
- ``.npy``: an N x 3 or N x 4 (x, y, z, intensity) float array.

Points with a NaN or infinite coordinate (PCD and PLY "no return" points) are dropped and counted
in :attr:`PointCloud.dropped`; a scan with no finite point is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfm.errors import VfmError

INTENSITY_NAMES = ("intensity", "i", "reflectance", "scalar_intensity", "remission")
FORMATS = (".bin", ".pcd", ".ply", ".npy")
MAX_HEADER = 64 * 1024


class PointCloudError(VfmError):
    """A point cloud could not be read: missing, truncated, malformed or with no usable point."""

    http_status = 415


@dataclass
class PointCloud:
    xyz: np.ndarray  # N x 3 float32
    intensity: np.ndarray | None  # N float32, or None when the file has none
    name: str = ""
    dropped: int = 0  # points with a non-finite coordinate left out

    def __len__(self) -> int:
        return len(self.xyz)


def read_points(path: str | Path) -> PointCloud:
    p = Path(path)
    if not p.is_file():
        raise PointCloudError(f"point cloud '{path}' does not exist")
    ext = p.suffix.lower()
    readers = {".bin": _read_bin, ".pcd": _read_pcd, ".ply": _read_ply, ".npy": _read_npy}
    if ext not in readers:
        raise PointCloudError(f"point cloud '{path}': unknown format '{ext or 'no extension'}'; "
                              f"vfm reads {', '.join(FORMATS)}")
    data = p.read_bytes()
    if not data:
        raise PointCloudError(f"point cloud '{path}' is empty (0 bytes)")
    xyz, intensity = readers[ext](data, str(path))
    return _finite(xyz, intensity, str(path), p.name)


def _finite(xyz, intensity, path: str, name: str) -> PointCloud:
    xyz = np.ascontiguousarray(xyz, dtype=np.float32).reshape(-1, 3)
    ok = np.isfinite(xyz).all(axis=1)
    if intensity is not None:
        intensity = np.nan_to_num(np.asarray(intensity, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    if not ok.any():
        raise PointCloudError(f"point cloud '{path}' has no point with finite x, y, z "
                              f"({len(xyz)} point(s) in the file); nothing to detect in")
    if not ok.all():
        xyz = xyz[ok]
        intensity = None if intensity is None else intensity[ok]
    return PointCloud(xyz, intensity, name=name, dropped=int((~ok).sum()))


def _read_bin(data: bytes, path: str):
    if len(data) % 16:
        raise PointCloudError(f"point cloud '{path}' is {len(data)} bytes, not a whole number of KITTI points "
                              "(16 bytes: float32 x, y, z, intensity); the file is truncated or not a KITTI .bin")
    pts = np.frombuffer(data, dtype="<f4").reshape(-1, 4)
    return pts[:, :3], pts[:, 3]


def _read_npy(data: bytes, path: str):
    import io

    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for a bad file
        raise PointCloudError(f"point cloud '{path}' is not a readable .npy array ({type(exc).__name__})") from None
    if arr.ndim != 2 or arr.shape[1] not in (3, 4) or not np.issubdtype(arr.dtype, np.number):
        raise PointCloudError(f"point cloud '{path}' holds a {arr.dtype} array of shape {arr.shape}; "
                              "expected N x 3 (x, y, z) or N x 4 (x, y, z, intensity) numbers")
    return arr[:, :3], (arr[:, 3] if arr.shape[1] == 4 else None)


# ------------------------------------------------------------------------------------------ PCD
_PCD_TYPES = {("F", 4): "f4", ("F", 8): "f8", ("I", 1): "i1", ("I", 2): "i2", ("I", 4): "i4", ("I", 8): "i8",
              ("U", 1): "u1", ("U", 2): "u2", ("U", 4): "u4", ("U", 8): "u8"}


def _header(data: bytes, path: str, end_marker: str) -> tuple[list[str], int]:
    """Header lines up to and including the one starting with ``end_marker``; offset of the body."""
    lines, pos = [], 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0 or nl > MAX_HEADER:
            raise PointCloudError(f"point cloud '{path}' has no complete header (no '{end_marker}' line)")
        line = data[pos:nl].decode("ascii", errors="replace").strip()
        pos = nl + 1
        if line and not line.startswith("#"):
            lines.append(line)
            if line.split()[0].lower() == end_marker:
                return lines, pos


def _read_pcd(data: bytes, path: str):
    lines, body = _header(data, path, "data")
    head = {}
    for line in lines:
        key, *vals = line.split()
        head[key.upper()] = vals
    try:
        fields = head["FIELDS"]
        sizes = [int(v) for v in head["SIZE"]]
        types = [t.upper() for t in head["TYPE"]]
        counts = [int(v) for v in head.get("COUNT", ["1"] * len(fields))]
        n = int(head["POINTS"][0]) if "POINTS" in head else int(head["WIDTH"][0]) * int(head["HEIGHT"][0])
        mode = head["DATA"][0].lower()
    except (KeyError, IndexError, ValueError):
        raise PointCloudError(f"point cloud '{path}': PCD header lacks FIELDS, SIZE, TYPE, POINTS or DATA, "
                              "or has a malformed value") from None
    if not len(fields) == len(sizes) == len(types) == len(counts):
        raise PointCloudError(f"point cloud '{path}': PCD header has {len(fields)} FIELDS but {len(sizes)} SIZE, "
                              f"{len(types)} TYPE and {len(counts)} COUNT entries")
    lower = [f.lower() for f in fields]
    missing = [a for a in "xyz" if a not in lower]
    if missing:
        raise PointCloudError(f"point cloud '{path}': PCD fields {' '.join(fields)} have no '{missing[0]}'; "
                              "vfm needs x, y and z")
    columns = []
    for f, s, t, c in zip(lower, sizes, types, counts):
        if (t, s) not in _PCD_TYPES:
            raise PointCloudError(f"point cloud '{path}': PCD field '{f}' has TYPE {t} SIZE {s}, which PCD does not define")
        columns += [(f if c == 1 else f"{f}_{k}", _PCD_TYPES[(t, s)]) for k in range(c)]
    if mode == "ascii":
        text = data[body:].decode("ascii", errors="replace").split()
        if len(text) < n * len(columns):
            raise PointCloudError(f"point cloud '{path}' is truncated: the header says {n} points of {len(columns)} "
                                  f"values, the body holds {len(text)} values")
        try:
            table = np.array(text[: n * len(columns)], dtype=np.float64).reshape(n, len(columns))
        except ValueError:
            raise PointCloudError(f"point cloud '{path}' has a value that is not a number in its ASCII body") from None
        col = {name: table[:, i] for i, (name, _) in enumerate(columns)}
    elif mode == "binary":
        dtype = np.dtype([(f"c{i}_{name}", "<" + t) for i, (name, t) in enumerate(columns)])
        need = n * dtype.itemsize
        if len(data) - body < need:
            raise PointCloudError(f"point cloud '{path}' is truncated: {n} points need {need} bytes, "
                                  f"the body has {len(data) - body}")
        rec = np.frombuffer(data, dtype=dtype, count=n, offset=body)
        col = {name: rec[f"c{i}_{name}"] for i, (name, _) in enumerate(columns)}
    elif mode == "binary_compressed":
        raise PointCloudError(f"point cloud '{path}' is a binary_compressed PCD, which vfm does not read; convert it "
                              "(pcl_convert_pcd_ascii_binary IN OUT 1) to binary")
    else:
        raise PointCloudError(f"point cloud '{path}': unknown PCD DATA '{mode}' (ascii, binary)")
    return _columns(col, path)


def _columns(col: dict, path: str):
    xyz = np.stack([np.asarray(col[a], dtype=np.float64) for a in "xyz"], axis=1)
    name = next((k for k in INTENSITY_NAMES if k in col), None)
    return xyz, (None if name is None else np.asarray(col[name], dtype=np.float32))


# ------------------------------------------------------------------------------------------ PLY
_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _read_ply(data: bytes, path: str):
    if not data.startswith(b"ply"):
        raise PointCloudError(f"point cloud '{path}' is not a PLY file (it does not start with 'ply')")
    lines, body = _header(data, path, "end_header")
    fmt, elements = None, []  # [(name, count, [(prop, type)])]
    for line in lines[1:]:
        words = line.split()
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            elements.append((words[1], int(words[2]) if words[2].isdigit() else -1, []))
        elif words[0] == "property" and elements:
            if words[1] == "list":
                elements[-1][2].append((words[-1], "list"))
            elif len(words) == 3 and words[1] in _PLY_TYPES:
                elements[-1][2].append((words[2].lower(), _PLY_TYPES[words[1]]))
            else:
                raise PointCloudError(f"point cloud '{path}': PLY property line '{line}' is malformed")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise PointCloudError(f"point cloud '{path}': PLY format '{fmt}' is not ascii, binary_little_endian "
                              "or binary_big_endian")
    names = [e[0] for e in elements]
    if "vertex" not in names:
        raise PointCloudError(f"point cloud '{path}': PLY has no vertex element")
    if any(count < 0 for _, count, _ in elements):
        raise PointCloudError(f"point cloud '{path}': PLY element count is not a whole number")
    vi = names.index("vertex")
    if any(t == "list" for _, _, props in elements[: vi + 1] for _, t in props):
        raise PointCloudError(f"point cloud '{path}': PLY elements before or in 'vertex' have list properties, "
                              "which vfm does not read; save the points as a vertex-only PLY")
    _, n, props = elements[vi]
    missing = [a for a in "xyz" if a not in [p for p, _ in props]]
    if missing:
        raise PointCloudError(f"point cloud '{path}': PLY vertex has no '{missing[0]}' property")
    if fmt == "ascii":
        rows = data[body:].decode("ascii", errors="replace").splitlines()
        skip = sum(count for _, count, _ in elements[:vi])
        rows = [r for r in rows if r.strip()][skip: skip + n]
        if len(rows) < n:
            raise PointCloudError(f"point cloud '{path}' is truncated: the header says {n} vertices, the body holds {len(rows)}")
        try:
            table = np.array([r.split()[: len(props)] for r in rows], dtype=np.float64)
        except ValueError:
            raise PointCloudError(f"point cloud '{path}' has a malformed vertex line in its ASCII body") from None
        if table.ndim != 2 or table.shape[1] != len(props):
            raise PointCloudError(f"point cloud '{path}': a vertex line has fewer than {len(props)} values")
        col = {p: table[:, i] for i, (p, _) in enumerate(props)}
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        offset = body
        for _, count, eprops in elements[:vi]:
            offset += count * np.dtype([(f"p{i}", order + t) for i, (_, t) in enumerate(eprops)]).itemsize
        dtype = np.dtype([(f"p{i}", order + t) for i, (_, t) in enumerate(props)])
        if len(data) - offset < n * dtype.itemsize:
            raise PointCloudError(f"point cloud '{path}' is truncated: {n} vertices need {n * dtype.itemsize} bytes, "
                                  f"the body has {max(len(data) - offset, 0)}")
        rec = np.frombuffer(data, dtype=dtype, count=n, offset=offset)
        col = {p: rec[f"p{i}"] for i, (p, _) in enumerate(props)}
    return _columns(col, path)


def _table(xyz: np.ndarray, intensity: np.ndarray | None) -> np.ndarray:
    cols = [np.asarray(xyz, np.float32)]
    if intensity is not None:
        cols.append(np.asarray(intensity, np.float32).reshape(-1, 1))
    return np.hstack(cols)


def _write(path: str | Path, head: str, table: np.ndarray, binary: bool) -> None:
    with open(path, "wb") as f:
        f.write(head.encode("ascii"))
        if binary:
            f.write(table.astype("<f4").tobytes())
        else:
            f.write("\n".join(" ".join(repr(float(v)) for v in row) for row in table).encode("ascii") + b"\n")


def write_pcd(path: str | Path, xyz: np.ndarray, intensity: np.ndarray | None = None, *, binary: bool = True) -> None:
    """Write points as a PCD file (x y z [intensity] float32), ascii or binary: for tests and exports."""
    table = _table(xyz, intensity)
    fields = "x y z" + (" intensity" if intensity is not None else "")
    k = table.shape[1]
    head = (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {fields}\nSIZE {' '.join(['4'] * k)}\n"
            f"TYPE {' '.join(['F'] * k)}\nCOUNT {' '.join(['1'] * k)}\nWIDTH {len(table)}\nHEIGHT 1\n"
            f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(table)}\nDATA {'binary' if binary else 'ascii'}\n")
    _write(path, head, table, binary)


def write_ply(path: str | Path, xyz: np.ndarray, intensity: np.ndarray | None = None, *, binary: bool = True) -> None:
    """Write points as a vertex-only PLY (float x y z [intensity])."""
    table = _table(xyz, intensity)
    props = "".join(f"property float {p}\n" for p in ["x", "y", "z"] + (["intensity"] if intensity is not None else []))
    head = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\ncomment vfm\nelement vertex {len(table)}\n"
            f"{props}end_header\n")
    _write(path, head, table, binary)
