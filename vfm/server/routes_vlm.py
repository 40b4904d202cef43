"""Captions and questions about an uploaded image: POST /v1/caption, POST /v1/ask (as vfm caption / ask --json)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from vfm.server.parsing import check_fields, flag, optional_int, optional_number, optional_string, read_json

router = APIRouter(prefix="/v1", tags=["vision-language"])


def _settings(body: dict, cap: int) -> tuple[int, float | None]:
    from vfm.errors import PromptError
    from vfm.models.vlm.generation import check_generation
    from vfm.models.vlm.defaults import DEFAULT_MAX_NEW_TOKENS

    n = optional_int(body, "max_new_tokens")
    n = min(DEFAULT_MAX_NEW_TOKENS, cap) if n is None else n
    if n > cap:
        raise PromptError(f"max_new_tokens {n} is over this server's limit of {cap} (--max-new-tokens)")
    temperature = optional_number(body, "temperature")
    check_generation(n, temperature)
    return n, temperature


async def _answer(request: Request, holder, job, body: dict) -> dict:
    app = request.app
    stored = app.state.store.get(_image_id(body))
    answer = await holder.run(lambda vlm: job(vlm, stored.image))
    if flag(body, "ground"):  # the captioner grounds the phrases, the segmenter masks them (each under its own bound)
        from vfm.tasks.answer_grounding import masks_for, phrases

        hint = "start the server with a Florence-2 --captioner"
        found = await app.state.models.captioner.run(lambda g: phrases(g, stored.image, answer.text, hint))
        answer.grounding = await app.state.models.segmenter.run(lambda seg: masks_for(found, stored.image, seg))
    doc = answer.to_document()
    if "image" in doc and stored.file_name:
        doc["image"]["file_name"] = stored.file_name
    return doc


def _image_id(body: dict) -> str:
    from vfm.errors import PromptError

    image_id = optional_string(body, "image_id")
    if not image_id:
        raise PromptError("'image_id' is required: upload the image with POST /v1/images first")
    return image_id


@router.post("/caption", summary="A caption of an uploaded image (--captioner: Florence-2, BLIP or a chat VLM)")
async def caption(request: Request):
    """Body ``{"image_id", "detailed"?, "max_new_tokens"?, "temperature"?, "ground"?}`` → `vfm caption --json`."""
    body = await read_json(request)
    check_fields(body, ("image_id", "detailed", "max_new_tokens", "temperature", "ground"))
    detailed = flag(body, "detailed")
    n, temperature = _settings(body, request.app.state.config.max_new_tokens)
    return await _answer(request, request.app.state.models.captioner,
                         lambda vlm, image: vlm.caption(image, detailed=detailed, max_new_tokens=n, temperature=temperature),
                         body)


@router.post("/ask", summary="The answer to a question about an uploaded image (--vlm: a chat VLM or BLIP VQA)")
async def ask(request: Request):
    """Body ``{"image_id", "question", "max_new_tokens"?, "temperature"?, "ground"?}`` → `vfm ask --json`."""
    from vfm.models.vlm.base import check_question

    body = await read_json(request)
    check_fields(body, ("image_id", "question", "max_new_tokens", "temperature", "ground"))
    question = check_question(optional_string(body, "question"))
    n, temperature = _settings(body, request.app.state.config.max_new_tokens)
    return await _answer(request, request.app.state.models.vlm,
                         lambda vlm, image: vlm.ask(image, question, max_new_tokens=n, temperature=temperature), body)
