"""`vfm models`: the model aliases, what each is, and whether it is in the local cache."""

from __future__ import annotations

from vfm.cli.common import print_json
from vfm.errors import PromptError

#: The tasks of the registry's aliases (`vfm models --task`).
TASKS = ("segment", "ground", "track", "detect", "classify", "semantic", "depth", "embed", "caption", "ask", "read")


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list model aliases and whether each is cached locally")
    p.add_argument("--task", default=None, help=f"only models for this task ({', '.join(TASKS)})")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from vfm.models.registry import FAMILY_TASKS, is_cached, list_models

    if args.task is not None and args.task not in TASKS:
        raise PromptError(f"--task '{args.task}' is not one of {', '.join(TASKS)}")
    specs = list_models(args.task)
    rows = [
        {"alias": s.alias, "task": s.task, "tasks": list(FAMILY_TASKS.get(s.family, (s.task,))), "family": s.family, "hub_id": s.hub_id, "cached": is_cached(s.hub_id),
         "description": s.description}
        for s in specs
    ]
    if args.json:
        print_json(rows)  # "task": the alias's main task, "tasks": all its family serves
        return 0
    if not rows:
        print(f"no models for task '{args.task}'")
        return 0
    wa = max(len(r["alias"]) for r in rows)
    for r in rows:  # every task the family serves (CLIP: classify and embed)
        r["shown"] = ",".join(r["tasks"])
    wt = max(len(r["shown"]) for r in rows)
    wh = max(len(r["hub_id"]) for r in rows)
    print(f"{'alias':<{wa}}  {'task':<{wt}}  {'hub id':<{wh}}  cached  description")
    for r in rows:
        print(f"{r['alias']:<{wa}}  {r['shown']:<{wt}}  {r['hub_id']:<{wh}}  {'yes' if r['cached'] else 'no ':<6}  {r['description']}")
    print("\nAny hub id (org/name) or a local directory saved with save_pretrained also works as --model.")
    return 0
