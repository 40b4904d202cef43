"""Checkpoints in Meta's own formats (segment_anything, SAM-HQ, SAM 2, MobileSAM), converted to transformers models on load."""
