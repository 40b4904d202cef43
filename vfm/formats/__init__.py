"""Output formats as plain functions over result types."""

from vfm.formats.coco import instances_to_annotations, instances_to_document

__all__ = ["instances_to_annotations", "instances_to_document"]
