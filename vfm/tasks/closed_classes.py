"""``--classes`` for closed-set models: a filter on the checkpoint's own label names.

    selected = select_classes(model.class_names, "person, car", model.name)
    result = keep_classes(result, selected)      # only those classes; ids index the given list

Names match the checkpoint's ``id2label`` case-insensitively; ``prompt: class`` entries (vfm.tasks.ontology)
rename a model class. A name the model does not know is a one-line error listing the known ones.
"""

from __future__ import annotations

import numpy as np

from vfm.errors import PromptError
from vfm.results.instances import Instances


def select_classes(class_names: list[str], classes, model_name: str, *, task: str = "detects"):
    """(ontology, model class index of each prompt) for a class filter, or None for no filter."""
    if classes is None:
        return None
    from vfm.tasks.ontology import Ontology

    onto = Ontology.parse(classes)
    lookup = {n.lower(): i for i, n in reversed(list(enumerate(class_names)))}
    missing = [p for p in onto.prompts if p.lower() not in lookup]
    if missing:
        known = ", ".join(n for n in class_names if n != "N/A")
        raise PromptError(f"model '{model_name}' has no class '{missing[0]}'; it {task} a fixed set: {known[:300]}"
                          f"{'...' if len(known) > 300 else ''} (open-vocabulary names need grounding-dino or owlv2)")
    return onto, np.array([lookup[p.lower()] for p in onto.prompts], dtype=np.int64)


def keep_classes(result: Instances, selected) -> Instances:
    """``result`` (class ids = model classes) with only the selected classes, ids and names of the ontology."""
    if selected is None:
        return result
    onto, model_ids = selected
    kept = result[np.isin(np.asarray(result.class_ids, dtype=np.int64), model_ids)]
    prompt_of = {int(m): p for p, m in enumerate(model_ids)}
    ids = onto.class_ids([prompt_of[int(i)] for i in kept.class_ids]) if len(kept) else np.zeros(0, np.int64)
    kept.class_ids, kept.class_names = np.asarray(ids, dtype=np.int64), [onto.classes[i] for i in ids]
    return kept
