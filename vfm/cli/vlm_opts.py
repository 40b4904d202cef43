"""Options and output shared by `vfm caption` and `vfm ask`: generation settings, --ground, streaming."""

from __future__ import annotations

import argparse
import sys

from vfm.models.vlm.defaults import DEFAULT_GROUNDER, DEFAULT_MAX_NEW_TOKENS, DEFAULT_SEGMENTER, MAX_NEW_TOKENS_LIMIT


def add_generation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, metavar="N",
                   help=f"stop after N new tokens (default {DEFAULT_MAX_NEW_TOKENS}, at most {MAX_NEW_TOKENS_LIMIT})")
    p.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="sample with temperature T > 0 (default: greedy, the same answer every run)")


def add_ground_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ground", action="store_true",
                   help="locate the answer's phrases in the image: boxes (Florence-2 phrase grounding) and masks (SAM)")
    p.add_argument("--grounder", default=None, metavar="M",
                   help=f"Florence-2 model that grounds the phrases (default: --model when it is Florence-2, else {DEFAULT_GROUNDER})")
    p.add_argument("--segmenter", default=DEFAULT_SEGMENTER, metavar="M",
                   help=f"promptable segmenter for the grounded boxes' masks (default {DEFAULT_SEGMENTER}; 'none': boxes only)")


def add_answer_options(p: argparse.ArgumentParser, run) -> None:
    """What `vfm caption` and `vfm ask` share after their own arguments: generation, --ground, runtime
    (fp32 by default: the text equals transformers' own), output."""
    from vfm.cli.common import add_output_options, add_runtime_options

    add_generation_options(p)
    add_ground_options(p)
    add_runtime_options(p)
    p.set_defaults(precision="fp32")
    add_output_options(p, masks=False, coco=False)
    p.set_defaults(func=run)


def streamer(args):
    """A callback printing the answer as it is generated (plain-text output only), or None."""
    if args.json or args.quiet:
        return None

    def on_text(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    return on_text


class Grounding:
    """The grounder and segmenter of --ground, loaded once at first use."""

    def __init__(self, args, vlm):
        self.args, self.vlm = args, vlm
        self.grounder = self.segmenter = None

    def __call__(self, answer, image):
        from vfm.tasks.answer_grounding import ground_answer

        if self.grounder is None:
            self.grounder = self._grounder()
            if str(self.args.segmenter).lower() != "none":
                from vfm.tasks.segment import Segmenter

                self.segmenter = Segmenter.load(self.args.segmenter, device=self.args.device)
        return ground_answer(answer, image, self.grounder, self.segmenter)

    def _grounder(self):
        from vfm.tasks.vlm import VisionLanguage

        if self.args.grounder is None and self.vlm.adapter.grounds:
            return self.vlm
        return VisionLanguage.load(self.args.grounder or DEFAULT_GROUNDER, task="read", device=self.args.device,
                                   precision=self.args.precision)


def emit_answer(args, answer, image, path: str, out_dir, streamed: bool) -> None:
    """The --json document, or the streamed text's closing newline (and the grounded phrases)."""
    from vfm.cli.common import print_json, write_json

    doc = answer.to_document()
    if image is not None and "image" in doc:
        doc["image"]["file_name"] = image.name
    if out_dir is not None:
        write_json(out_dir / "result.json", doc)
        if answer.grounding is not None:
            from vfm.formats.png import draw_overlay, write_mask_pngs

            if answer.grounding.has_masks:
                write_mask_pngs(answer.grounding, out_dir)
            draw_overlay(image.pixels, answer.grounding).save(out_dir / "overlay.png")
    if args.json:
        print_json(doc)
        return
    if args.quiet:
        return
    if not streamed:
        sys.stdout.write(answer.text)
    sys.stdout.write("\n")
    if answer.grounding is not None:
        for i, ann in enumerate(doc["annotations"]):
            x, y, w, h = ann["bbox"]
            print(f"  [{i}] {ann['category_name']} bbox(xywh)=({x:g}, {y:g}, {w:g}, {h:g})")
    sys.stderr.write(f"{answer.tokens} tokens in {answer.seconds:.2f} s ({answer.model})\n")
    if out_dir is not None:
        print(f"wrote result.json{' and overlay.png' if answer.grounding is not None else ''} to {out_dir}")
