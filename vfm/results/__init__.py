"""The result types every task returns and every exporter consumes."""

from vfm.results.instances import Instances
from vfm.results.rle import decode_rle, encode_rle, encode_rles, masks_to_xyxy, rle_area, rle_to_xywh

__all__ = ["Instances", "decode_rle", "encode_rle", "encode_rles", "masks_to_xyxy", "rle_area", "rle_to_xywh"]
