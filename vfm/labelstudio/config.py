"""A Label Studio labeling config (the project's ``<View>`` XML), read for what an ML backend needs.

Only the tags vfm answers for are kept: ``<Image name=... value="$key">`` objects and the
``BrushLabels`` / ``PolygonLabels`` / ``RectangleLabels`` / ``KeyPointLabels`` controls that point at
them (``toName``), with their ``<Label value=...>`` children. A label's ``predicted_values``
attribute (comma-separated) lists the text prompts that find it; by default its value is the prompt.
A ``KeyPointLabels`` / ``RectangleLabels`` label whose ``alias`` is a signed integer k follows Label
Studio's Advanced SAM backend: it prompts the k-th label of the mask tag, positively (k > 0) or
negatively (k < 0). Tag and attribute names are matched case-insensitively, as Label Studio does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from vfm.errors import PromptError

#: control tag (lower case) -> the ``type`` of its results
KINDS = {"brushlabels": "brushlabels", "polygonlabels": "polygonlabels", "rectanglelabels": "rectanglelabels",
         "keypointlabels": "keypointlabels"}
MASK_KINDS = ("brushlabels", "polygonlabels")


class LabelConfigError(PromptError):
    """The labeling config cannot be used (unparsable, or no image / label tags vfm can fill)."""


@dataclass(frozen=True)
class Label:
    value: str
    prompts: tuple[str, ...]
    alias: str | None = None  # Label Studio's SAM convention: "k" / "-k" = positive / negative for the k-th mask label


@dataclass(frozen=True)
class Control:
    kind: str  # a result type: brushlabels, polygonlabels, rectanglelabels, keypointlabels
    name: str  # from_name
    to_name: str
    labels: tuple[Label, ...]

    @property
    def label_values(self) -> list[str]:
        return [lab.value for lab in self.labels]

    def ontology_entries(self) -> list[str]:
        """``prompt: label`` entries for vfm's Ontology (every prompt of every label)."""
        return [p if p == lab.value else f"{p}: {lab.value}" for lab in self.labels for p in lab.prompts]


@dataclass
class LabelConfig:
    images: dict[str, str]  # Image tag name -> task data key
    controls: list[Control] = field(default_factory=list)

    @classmethod
    def parse(cls, xml: str | None) -> "LabelConfig":
        if not isinstance(xml, str) or not xml.strip():
            raise LabelConfigError("the request has no labeling config; Label Studio sends it as 'label_config' "
                                   "(/predict) or 'schema' (/setup)")
        if "<!doctype" in xml.lower() or "<!entity" in xml.lower():
            raise LabelConfigError("the labeling config declares a DOCTYPE or entities; remove them")
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as exc:
            raise LabelConfigError(f"the labeling config is not valid XML ({exc}); fix it in the project's "
                                   "Settings > Labeling Interface") from None
        images: dict[str, str] = {}
        found: list[tuple[str, str, list[str], list[Label]]] = []
        for el in root.iter():
            tag = el.tag.lower() if isinstance(el.tag, str) else ""
            attrs = {k.lower(): v for k, v in el.attrib.items()}
            if tag == "image" and attrs.get("name"):
                value = attrs.get("value", "")
                if not value.startswith("$") or len(value) < 2:
                    raise LabelConfigError(f"<Image name=\"{attrs['name']}\"> needs value=\"$key\" naming the task "
                                           f"field that holds the image URL, got value=\"{value}\"")
                images[attrs["name"]] = value[1:]
            elif tag in KINDS and attrs.get("name"):
                labels = []
                for child in el:
                    if not isinstance(child.tag, str) or child.tag.lower() != "label":
                        continue  # other children (e.g. <Header>) carry no labels
                    cattrs = {k.lower(): v for k, v in child.attrib.items()}
                    value = (cattrs.get("value") or "").strip()
                    if not value:
                        continue
                    prompts = [p.strip() for p in cattrs.get("predicted_values", "").split(",") if p.strip()]
                    labels.append(Label(value, tuple(prompts) or (value,), cattrs.get("alias")))
                targets = [t.strip() for t in attrs.get("toname", "").split(",") if t.strip()]
                found.append((KINDS[tag], attrs["name"], targets, labels))
        if not images:
            raise LabelConfigError("the labeling config has no <Image name=... value=\"$image\"/> tag; vfm labels images")
        controls = []
        for kind, name, targets, labels in found:
            for target in targets:
                if target in images:
                    controls.append(Control(kind, name, target, tuple(labels)))
        if not any(c.kind != "keypointlabels" for c in controls):
            raise LabelConfigError("the labeling config has no BrushLabels, PolygonLabels or RectangleLabels tag "
                                   f"pointing at an Image ({', '.join(images)}) via toName; add one for vfm's masks or boxes")
        return cls(images, controls)

    # ------------------------------------------------------------------ lookups
    def control(self, name: str) -> Control:
        for c in self.controls:
            if c.name == name:
                return c
        known = ", ".join(sorted({c.name for c in self.controls}))
        raise LabelConfigError(f"from_name '{name}' is not a label tag of the labeling config (it has: {known})")

    def image_key(self, to_name: str) -> str:
        if to_name not in self.images:
            raise LabelConfigError(f"to_name '{to_name}' is not an Image of the labeling config "
                                   f"(it has: {', '.join(self.images)})")
        return self.images[to_name]

    def mask_output(self, to_name: str, label: str | None = None) -> Control | None:
        """The first BrushLabels / PolygonLabels on ``to_name`` that has ``label`` (or lists no labels)."""
        for c in self.controls:
            if c.kind in MASK_KINDS and c.to_name == to_name and (label is None or not c.labels or label in c.label_values):
                return c
        return None

    def preannotation_output(self) -> Control:
        """Where text → masks / boxes go: the first mask tag with labels, else the first RectangleLabels."""
        for kinds in (MASK_KINDS, ("rectanglelabels",)):
            for c in self.controls:
                if c.kind in kinds and c.labels:
                    return c
        raise LabelConfigError("no BrushLabels, PolygonLabels or RectangleLabels tag of the labeling config lists "
                               "<Label value=...> children; vfm needs label names to look for")
