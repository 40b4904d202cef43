"""The BEV picture with the fitted boxes drawn on it (each class its own colour, with its score)."""

from __future__ import annotations

import numpy as np

from vfm.lidar.bev import BEVGrid
from vfm.lidar.boxes import Boxes3D

COLOURS = {"Car": (255, 80, 80), "Pedestrian": (80, 200, 255), "Cyclist": (255, 210, 60), "Truck": (255, 120, 255),
           "Object": (230, 230, 230)}


def draw_bev(bev: np.ndarray, grid: BEVGrid, boxes: Boxes3D, scale: int = 1):
    from PIL import Image, ImageDraw

    img = Image.fromarray(bev)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for corners, name, score in zip(boxes.corners_bev(), boxes.class_names, boxes.scores):
        px = [((grid.y_range[1] - y) / grid.resolution * scale, (grid.x_range[1] - x) / grid.resolution * scale)
              for x, y in corners]
        colour = COLOURS.get(name, COLOURS["Object"])
        draw.polygon(px, outline=colour, width=max(1, scale))
        draw.text((min(p[0] for p in px), min(p[1] for p in px) - 10), f"{name} {score:.2f}", fill=colour)
    return img
