"""An answer you can see (BuboGPT's idea): the phrases of a caption or answer located in the image.

Florence-2's caption-to-phrase grounding reads the answer text and returns a box for each phrase it
finds (named by the phrase); a promptable segmenter (SAM) then turns each box into a mask. The
grounder is the answering model itself when it is Florence-2, else ``--grounder``
(default florence-2-base).
"""

from __future__ import annotations

import numpy as np

from vfm.io.image import LoadedImage
from vfm.results.answer import Answer
from vfm.results.instances import Instances

from vfm.models.vlm.defaults import DEFAULT_GROUNDER, DEFAULT_SEGMENTER  # noqa: F401


def phrases(grounder, image: LoadedImage, text: str, hint: str = "use a Florence-2 grounder") -> Instances:
    """The boxes of ``text``'s phrases; PromptError (ending with ``hint``) when ``grounder`` is not Florence-2."""
    from vfm.errors import PromptError

    if not grounder.adapter.grounds:
        raise PromptError(f"grounding an answer needs Florence-2 phrase grounding; '{grounder.name}' has none ({hint})")
    return grounder.ground_text(image, text)


def ground_answer(answer: Answer, image: LoadedImage, grounder, segmenter=None) -> Answer:
    """Set ``answer.grounding``: boxes (+ masks with a ``segmenter``) of the answer's phrases."""
    found = phrases(grounder, image, answer.text)
    answer.grounding = masks_for(found, image, segmenter) if segmenter is not None else found
    return answer


def masks_for(found: Instances, image: LoadedImage, segmenter) -> Instances:
    from vfm.tasks.prompts import Prompt

    h, w = image.height, image.width
    valid = np.flatnonzero((found.xyxy[:, 2] > found.xyxy[:, 0]) & (found.xyxy[:, 3] > found.xyxy[:, 1]))
    found = found[valid]
    if len(found) == 0:
        empty = Instances.empty((h, w), labeled=True)
        return empty
    prompts = [Prompt(box=b) for b in found.xyxy]
    masks = segmenter.predict_batch(prompts, multimask=False, image=image, return_logits=False)
    return Instances(image_size=(h, w), xyxy=found.xyxy, scores=masks.scores, masks=masks.mask_array(),
                     class_ids=found.class_ids, class_names=found.class_names, prompts=[p.to_json() for p in prompts])
