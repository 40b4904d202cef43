"""`vfm convert IN --from coco|yolo|voc|labelme|labelstudio --to coco,yolo,labelme,voc,cvat,labelstudio --out OUT`.

Reads a box / mask dataset whole (vfm.formats.readers; COCO is the hub) and writes it with the same
writers as `vfm label`: OUT/coco.json, OUT/yolo/ (Ultralytics layout, the images linked), OUT/labelme/,
OUT/voc/, OUT/cvat.xml, OUT/labelstudio.json (+ labelstudio_config.xml). Class names and their order are kept (COCO ids 1..K,
YOLO classes 0..K-1); masks become polygons where the target format has no masks (their largest
outer contour). A dataset that does not read whole (missing image, class id out of range, box
outside its image, malformed file) is a one-line error naming the file, and nothing is written.
"""

from __future__ import annotations

import argparse

from vfm.errors import PromptError

TARGETS = ("coco", "yolo", "labelme", "voc", "cvat", "labelstudio")


def add_parser(sub) -> None:
    from vfm.formats.readers import FORMATS

    p = sub.add_parser("convert", help="convert a box/mask dataset between COCO, YOLO, VOC, LabelMe, CVAT, Label Studio",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="COCO JSON file, YOLO dataset folder (data.yaml), VOC or LabelMe folder")
    p.add_argument("--from", dest="source_format", required=True, choices=FORMATS, help="the format of IN")
    p.add_argument("--to", required=True, help=f"comma-separated outputs from {', '.join(TARGETS)}")
    p.add_argument("--out", required=True, metavar="OUT", help="output folder")
    p.add_argument("--images", metavar="DIR", default=None,
                   help="where IN's images are (default: COCO's folder, VOC's JPEGImages/, LabelMe's imagePath)")
    p.add_argument("--yolo-images", choices=["link", "symlink", "copy"], default="link",
                   help="how YOLO's images/ get the files (default link: a hard link, else a copy)")
    p.add_argument("--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from vfm.cli.common import out_dir
    from vfm.formats.readers import read_dataset

    targets = [t.strip() for t in args.to.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise PromptError(f"--to '{unknown[0] if unknown else args.to}' is not one of {', '.join(TARGETS)}")
    ds = read_dataset(args.input, args.source_format, images=args.images)
    out = out_dir(args.out)
    write(ds, targets, Path(out), yolo_images=args.yolo_images)
    if not args.quiet:
        n = sum(len(a) for *_, a in ds.images)
        print(f"{len(ds.images)} image(s), {n} object(s), {len(ds.categories)} class(es) -> {', '.join(targets)} in {out}")
    return 0


def write(ds, targets: list[str], out, *, yolo_images: str = "link") -> None:
    if "coco" in targets:
        from vfm.formats.coco_dataset import write_coco

        write_coco(ds, ds.categories, out / "coco.json", info={"description": "vfm convert"})
    if "yolo" in targets:
        from vfm.formats.yolo import write_yolo

        has_masks = any("segmentation" in a for *_, anns in ds.images for a in anns)
        write_yolo(ds, ds.categories, out, ds.image_root, segment=has_masks, images=yolo_images)
    if "labelme" in targets:
        from vfm.formats.labelme import write_labelme

        write_labelme(ds, out, ds.image_root, ds.categories)
    if "voc" in targets:
        from vfm.formats.voc import write_voc

        write_voc(ds, ds.categories, out, ds.image_root)
    if "cvat" in targets:
        from vfm.formats.cvat import write_cvat

        write_cvat(ds, ds.categories, out / "cvat.xml", task_name="vfm convert")
    if "labelstudio" in targets:
        from vfm.formats.labelstudio import write_labelstudio

        from vfm.formats._atomic import atomic_file
        from vfm.formats.labelstudio import labeling_config

        has_masks = any("segmentation" in a for *_, anns in ds.images for a in anns)
        task = "ground" if has_masks else "detect"
        write_labelstudio(ds, ds.categories, task, out / "labelstudio.json")
        with atomic_file(out / "labelstudio_config.xml") as fh:  # the project's config; its label order is the class order
            fh.write(labeling_config(ds.categories, task))
