"""search: the entries of the server's index (made by `vfm index`, given with `vfm mcp --db`) nearest to a
text, an image or an entry, as `vfm search --json`."""

from __future__ import annotations

from vfm.mcp.tools.base import IMAGE, Answer, Tool, count


async def run(args, ctx) -> Answer:
    from vfm.errors import PromptError

    given = [k for k in ("text", "image", "id") if args.get(k) is not None]
    if len(given) != 1:
        raise PromptError("search: give exactly one query: 'text', 'image' or 'id'" +
                          (f" (got {', '.join(given)})" if given else ""))
    if not ctx.db:
        raise PromptError("search: this server has no index; start it with vfm mcp --db PATH (an index made by "
                          "vfm index FOLDER --db PATH)")
    pixels = (await ctx.image(args["image"])).pixels if args.get("image") is not None else None
    k = int(args.get("k", 10))

    def work(searcher):
        searcher.refresh()  # a `vfm index` run may have added images since the last call
        return searcher.query(text=args.get("text"), image=pixels,
                              entry_id=None if args.get("id") is None else int(args["id"]), k=k, kind=args.get("kind"))

    result = await ctx.models.run([("index", ctx.db)], work)
    return Answer(result, _sheet(result, args))


def _sheet(result, args):
    """The contact sheet `vfm search --out` writes, as an image."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    from vfm.search.sheet import write_sheet

    if not result["hits"]:
        return None
    title = args.get("text") or ("image query" if args.get("image") is not None else f"entry {args.get('id')}")
    with tempfile.TemporaryDirectory(prefix="vfm-mcp-") as d:
        path = write_sheet(result["hits"], Path(d) / "sheet.png", title=f"{title}: top {len(result['hits'])}")
        with Image.open(path) as im:
            return im.convert("RGB")


TOOL = Tool(
    name="search",
    description="Search the server's image index (built by `vfm index`) by a text, an image or an entry id: the "
                "k nearest images (and objects, if the index has them) by embedding similarity. Returns "
                '{"query", "k", "hits": [{"rank", "score", "id", "kind", "file_name", "path", "width", "height", '
                '"bbox"?, "segmentation"?, "category"?}], "timing_ms", "index"} and a contact sheet of the hits.',
    arguments={
        "text": {"type": "string", "minLength": 1, "description": "a text query, e.g. \"a red car at night\""},
        "image": dict(IMAGE, description="an image query: " + IMAGE["description"].removeprefix("the image: ")),
        "id": count("query by an entry of the index (a hit's id)", 1),
        "k": count("number of results (default 10)", 1, 1000),
        "kind": {"type": "string", "enum": ["image", "object"], "description": "only whole images, or only objects"},
    },
    run=run,
)
