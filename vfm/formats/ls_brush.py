"""Label Studio's brush RLE (NOT COCO RLE): the ``rle`` list of a ``brushlabels`` result.

Label Studio stores a brush mask as the RGBA image flattened (H*W*4 bytes; label_studio_converter
repeats the 0/255 mask value into all four channels) and packed with thi.ng's rle-pack, which its
front end decodes. The bit stream (most significant bit first, zero-padded to whole bytes) is::

    32 bits  number of values (H*W*4)
     5 bits  word size - 1            (7: 8-bit values)
    4x4 bits run-length field sizes - 1  ([3, 4, 8, 16] bits)
    then per chunk: 1 bit repeat flag, 2 bits size index k, rle_sizes[k] bits n (chunk length n+1),
                    then one value (repeat) or n+1 values (literal), each 8 bits.

``encode_brush`` writes only repeat chunks (masks are long runs); ``decode_brush`` reads both kinds,
following the reference decoder.
"""

from __future__ import annotations

import numpy as np

WORD = 8
RLE_SIZES = (3, 4, 8, 16)


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(values)]]))
    return lengths, values[starts]


def encode_brush(mask: np.ndarray) -> list[int]:
    """HxW bool mask -> Label Studio brush ``rle`` (list of byte values)."""
    m = np.asarray(mask, dtype=bool)
    flat = np.repeat(np.where(m.reshape(-1), 255, 0).astype(np.uint8), 4)
    bits = [f"{len(flat):032b}", f"{WORD - 1:05b}"] + [f"{s - 1:04b}" for s in RLE_SIZES]
    if len(flat):
        lengths, values = _runs(flat)
        limit = 1 << RLE_SIZES[-1]
        for length, value in zip(lengths.tolist(), values.tolist()):
            while length > 0:
                chunk = min(length, limit)
                n = chunk - 1
                k = next(i for i, s in enumerate(RLE_SIZES) if n < (1 << s))
                bits.append(f"1{k:02b}{n:0{RLE_SIZES[k]}b}{value:08b}")
                length -= chunk
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return [int(s[i:i + 8], 2) for i in range(0, len(s), 8)]


class _Bits:
    def __init__(self, data: list[int]):
        self.bits = "".join(f"{b:08b}" for b in data)
        self.pos = 0

    def read(self, n: int) -> int:
        out = int(self.bits[self.pos:self.pos + n] or "0", 2)
        self.pos += n
        return out


def decode_brush(rle: list[int], height: int, width: int) -> np.ndarray:
    """Label Studio brush ``rle`` -> HxW bool mask (alpha channel > 0); ValueError if it is not one."""
    if not all(isinstance(b, int) and 0 <= b < 256 for b in rle):
        raise ValueError("brush RLE values must be bytes (integers 0-255)")
    src = _Bits(rle)
    num = src.read(32)
    word = src.read(5) + 1
    sizes = [src.read(4) + 1 for _ in range(4)]
    if num != height * width * 4:
        raise ValueError(f"brush RLE holds {num} values, expected {height * width * 4} for {height}x{width} RGBA")
    out = np.zeros(num, dtype=np.uint16)
    i = 0
    while i < num:
        x = src.read(1)
        j = min(num, i + 1 + src.read(sizes[src.read(2)]))  # a malformed run cannot write past the end
        if x:
            out[i:j] = src.read(word)
            i = j
        else:
            while i < j:
                out[i] = src.read(word)
                i += 1
    return out.reshape(height, width, 4)[:, :, 3] > 0
