"""An annotator's smart-tool regions (Label Studio's interactive ``context``) → one SAM prompt.

Label Studio sends the regions just drawn with a smart ``KeyPointLabels`` / ``RectangleLabels`` tool
as ``params.context.result``: x / y / width / height in percent of the image. Every keypoint is a
point (negative when ``is_positive`` is false — Alt-click in Label Studio — or when its label's
``alias`` is negative, the Advanced SAM convention); the newest rectangle is the box. The answer
goes to the first BrushLabels / PolygonLabels tag on the same image that has the chosen label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vfm.errors import PromptError
from vfm.labelstudio.config import Control, LabelConfig, LabelConfigError

PROMPT_KINDS = ("keypointlabels", "rectanglelabels")


@dataclass
class Interaction:
    """The prompt in percent of the image (Label Studio's units); :meth:`prompt` turns it into pixels."""

    to_name: str
    points: np.ndarray | None  # Nx2, percent
    labels: np.ndarray | None  # N ints, 1 positive / 0 negative
    box: np.ndarray | None  # XYXY, percent
    label: str
    output: Control

    def prompt(self, width: int, height: int):
        from vfm.tasks.prompts import Prompt

        scale = np.array([width, height], dtype=np.float64) / 100
        points = self.points * scale if self.points is not None else None
        box = self.box * np.tile(scale, 2) if self.box is not None else None
        return Prompt(points=points, labels=self.labels, box=box)


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PromptError(f"the smart region's {what} must be a number (percent of the image), got {value!r}")
    return float(value)


def _signed_alias(alias: str | None) -> int | None:
    try:
        k = int(str(alias).strip())
    except (TypeError, ValueError):
        return None
    return k or None


def _target_label(config: LabelConfig, control: Control, value: str, to_name: str) -> tuple[str, bool, Control]:
    """(output label, positive?, output tag) for a region labelled ``value`` with ``control``."""
    lab = next((lab for lab in control.labels if lab.value == value), None)
    if control.labels and lab is None:
        raise LabelConfigError(f"label '{value}' is not a label of {control.kind} '{control.name}'")
    k = _signed_alias(lab.alias) if lab is not None else None
    if k is not None:
        out = config.mask_output(to_name)
        if out is None or abs(k) > len(out.labels):
            raise LabelConfigError(f"label '{value}' of '{control.name}' has alias {k}, but the image's mask tag has "
                                   f"{len(out.labels) if out else 0} labels; alias k picks the k-th mask label")
        return out.labels[abs(k) - 1].value, k > 0, out
    out = config.mask_output(to_name, value)
    if out is None:
        raise LabelConfigError(f"no BrushLabels or PolygonLabels tag on image '{to_name}' has the label '{value}'; "
                               f"add <Label value=\"{value}\"/> to one so vfm can return the mask")
    return value, True, out


def parse_interaction(config: LabelConfig, regions: object) -> Interaction:
    if not isinstance(regions, list) or not regions:
        raise PromptError("the interactive context has no result regions")
    points, flags, box = [], [], None
    chosen: tuple[str, Control] | None = None
    to_name = None
    for region in regions:
        if not isinstance(region, dict) or region.get("type") not in PROMPT_KINDS:
            continue  # brushes or other regions carried along are not prompts
        control = config.control(str(region.get("from_name")))
        if control.kind != region["type"]:
            raise LabelConfigError(f"from_name '{control.name}' is a {control.kind} tag, but the region is {region['type']}")
        if region.get("to_name") != control.to_name:
            raise LabelConfigError(f"to_name '{region.get('to_name')}' does not match tag '{control.name}' "
                                   f"(toName '{control.to_name}')")
        if to_name not in (None, control.to_name):
            raise PromptError("the smart regions point at two different images; prompt one image at a time")
        to_name = control.to_name
        if region.get("image_rotation") not in (None, 0):
            raise PromptError("rotated images (image_rotation) are not supported; reset the rotation and click again")
        value = region.get("value")
        if not isinstance(value, dict):
            raise PromptError("a smart region has no 'value' object")
        names = value.get(control.kind)
        label = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None
        if label is None:
            raise PromptError(f"the {control.kind} region carries no label; pick a label before clicking")
        out_label, positive, out = _target_label(config, control, label, control.to_name)
        x, y = _number(value.get("x"), "x"), _number(value.get("y"), "y")
        if control.kind == "keypointlabels":
            positive = positive and region.get("is_positive", True) is not False
            points.append((x, y))
            flags.append(1 if positive else 0)
        else:
            w, h = _number(value.get("width"), "width"), _number(value.get("height"), "height")
            angle = _number(value.get("rotation", 0) or 0, "rotation")
            if angle % 360:
                raise PromptError("rotated rectangles cannot prompt SAM (it takes axis-aligned boxes); draw it unrotated")
            box = np.array([x, y, x + w, y + h])
        if positive:
            chosen = (out_label, out)
    if to_name is None:
        raise PromptError("the interactive context has no KeyPointLabels or RectangleLabels region; "
                          "click or draw with a smart tool")
    if chosen is None:
        raise PromptError("only negative clicks were sent; add a positive click or a box first")
    return Interaction(to_name, np.array(points) if points else None, np.array(flags) if flags else None, box,
                       chosen[0], chosen[1])
