"""Size priors that name a fitted box (SAM3D's "prior knowledge" filters, one per KITTI class).

Ranges are metres of (length, width, height) of boxes fitted to LiDAR points, wide enough for what
a partial scan of the class gives and narrow enough to tell the classes apart; the first class
whose three ranges hold a box names it. ``--classes`` keeps only boxes that one of the named
classes holds; without it a box no class holds is called "Object".
"""

from __future__ import annotations

from vfm.errors import PromptError

PRIORS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "Car": ((2.5, 6.5), (1.3, 2.6), (1.0, 2.5)),
    "Pedestrian": ((0.2, 1.3), (0.2, 1.1), (1.0, 2.1)),
    "Cyclist": ((1.2, 2.3), (0.3, 1.1), (1.0, 2.1)),
    "Truck": ((6.5, 20.0), (2.0, 3.5), (2.2, 4.5)),
}
ALIASES = {"car": "Car", "cars": "Car", "vehicle": "Car", "vehicles": "Car", "pedestrian": "Pedestrian",
           "pedestrians": "Pedestrian", "person": "Pedestrian", "people": "Pedestrian", "cyclist": "Cyclist",
           "cyclists": "Cyclist", "bicycle": "Cyclist", "truck": "Truck", "trucks": "Truck"}


def parse_lidar_classes(classes) -> list[str] | None:
    """User class names -> prior names (KITTI's spelling), or None for every box."""
    if classes is None:
        return None
    from vfm.tasks.classes import parse_classes

    out = []
    for name in parse_classes(classes):
        key = ALIASES.get(name.lower())
        if key is None:
            raise PromptError(f"no size prior for class '{name}'; lidar3d knows {', '.join(PRIORS)} "
                              "(also: vehicle, person, bicycle)")
        if key not in out:
            out.append(key)
    return out


def classify_size(length: float, width: float, height: float, classes: list[str] | None) -> str | None:
    """The first class (of ``classes``, or all) whose ranges hold the box; "Object" / None when none does."""
    for name in classes or PRIORS:
        (l0, l1), (w0, w1), (h0, h1) = PRIORS[name]
        if l0 <= length <= l1 and w0 <= width <= w1 and h0 <= height <= h1:
            return name
    return None if classes else "Object"
