"""Train / val / test splits of a labeling run: ``--split train=0.8,val=0.2[,test=0.1]``.

    fractions = parse_split("train=0.8,val=0.2")   # {"train": 0.8, "val": 0.2}
    split_of("sub/img.jpg", fractions)             # "train" | "val" | "test"

An image's split is decided by a hash of its relative path (``file_name``), never by scan order or
chance: SHA-256 of the UTF-8 name, its first 8 bytes read as a number ``u`` in [0, 1), then the first
split (in the order train, val, test, whatever order the flag gives them) whose cumulative fraction
is above ``u``. So the same image lands in the same split in every run, in every format, after a
resume, and when images are added or removed; the share of each split tends to its fraction.

Without ``--split`` every image is in ``train`` (``DEFAULT``). The frames of a video
(`vfm label --task track`, names ``VIDEO/NNNNN.jpg``) are split by ``VIDEO``, so a video is never
in two splits and its near-identical frames cannot leak from train into val.
"""

from __future__ import annotations

import hashlib
from typing import Iterator

#: Split names in assignment order; train and val are required, test is optional.
SPLITS = ("train", "val", "test")
DEFAULT = {"train": 1.0}


def parse_split(text: str) -> dict[str, float]:
    """``"train=0.8,val=0.2"`` -> ``{"train": 0.8, "val": 0.2}`` (train, val, test order); ValueError if malformed."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in SPLITS:
            raise ValueError(f"'{text}' is not a list of {'=F, '.join(SPLITS)}=F (e.g. train=0.8,val=0.2)")
        if name in fractions:
            raise ValueError(f"'{text}' names {name} twice")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"'{text}': {name}={value.strip()} is not a number") from None
        if not 0 < fraction < 1:
            raise ValueError(f"'{text}': {name}={value.strip()} is outside 0..1 (each fraction is above 0 and below 1)")
        fractions[name] = fraction
    missing = [name for name in ("train", "val") if name not in fractions]
    if missing:
        raise ValueError(f"'{text}' has no {' or '.join(missing)}; give at least train=F,val=F")
    total = sum(fractions.values())
    if abs(total - 1) > 1e-6:
        raise ValueError(f"'{text}' adds up to {total:g}; the fractions must add up to 1")
    return {name: fractions[name] for name in SPLITS if name in fractions}


def unit_hash(name: str) -> float:
    """A number in [0, 1) from SHA-256 of ``name`` (the same on every machine and Python)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_of(name: str, fractions: dict[str, float]) -> str:
    """The split of the image whose relative path is ``name``."""
    u = unit_hash(name)
    edge = 0.0
    last = next(reversed(fractions))
    for split, fraction in fractions.items():
        edge += fraction
        if u < edge:
            return split
    return last  # u just below 1 with fractions summing to 1 - 1e-9


def split_by_video(store) -> bool:
    """True for the store of a video run, whose frames are split by video (see :func:`split_unit`)."""
    get_meta = getattr(store, "get_meta", None)
    return get_meta is not None and get_meta("kind") == "video"


def split_unit(name: str, by_video: bool) -> str:
    """What decides an image's split: its name, or for a video's frame the video's folder."""
    return name.rsplit("/", 1)[0] if by_video else name


class SplitRows:
    """A store seen through one split: ``rows()`` yields only that split's images (ids unchanged)."""

    def __init__(self, store, fractions: dict[str, float], split: str):
        self.store, self.fractions, self.split = store, fractions, split
        self.by_video = split_by_video(store)

    def rows(self, status: str | None = "done") -> Iterator[tuple]:
        for row in self.store.rows(status):
            if split_of(split_unit(row[1], self.by_video), self.fractions) == self.split:
                yield row
