"""The rearranged SAM decoder gives transformers' SamModel results for every prompt shape."""

from __future__ import annotations

import pytest
import torch

from vfm.models.sam_decoder import SamDecoder
from vfm.testing.tiny_models import _reinit, sam_config


def _model(full_decoder: bool):
    from transformers import SamModel

    torch.manual_seed(0)
    cfg = sam_config(vit_b=full_decoder)
    if full_decoder:  # the real decoder (256 channels, 8 heads); the encoder is not used here
        cfg.vision_config.num_hidden_layers = 1
    model = SamModel(cfg).eval()
    _reinit(model, 0)
    return model


@pytest.fixture(scope="module", params=[False, True], ids=["tiny", "vit-b-decoder"])
def model(request):
    return _model(request.param)


def _inputs(model, p: int, n_points: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    side = model.config.prompt_encoder_config.image_size
    low = side // 4
    points = torch.rand((p, n_points, 2), generator=g) * side
    labels = torch.randint(0, 2, (p, n_points), generator=g)
    xy0 = torch.rand((p, 2), generator=g) * side / 2
    boxes = torch.cat([xy0, xy0 + side / 3], dim=1)
    masks = torch.randn((p, 1, low, low), generator=g) * 4
    return points, labels, boxes, masks


CASES = {
    "one point": dict(points=True, n=1),
    "points": dict(points=True, n=3),
    "many points (projections on the image side)": dict(points=True, n=24),
    "box": dict(boxes=True),
    "points + box": dict(points=True, n=2, boxes=True),
    "mask": dict(masks=True),
    "points + mask": dict(points=True, n=2, masks=True),
    "box + mask": dict(boxes=True, masks=True),
}


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("p", [1, 3])
def test_matches_transformers_forward(model, case, multimask, p):
    spec = CASES[case]
    points, labels, boxes, masks = _inputs(model, p, spec.get("n", 1))
    points = points if spec.get("points") else None
    labels = labels if spec.get("points") else None
    boxes = boxes if spec.get("boxes") else None
    masks = masks if spec.get("masks") else None
    c = model.config.mask_decoder_config.hidden_size
    s = model.config.prompt_encoder_config.image_embedding_size
    emb = torch.randn((1, c, s, s), generator=torch.Generator().manual_seed(1))
    kw = {}
    if points is not None:
        kw.update(input_points=points[:, None], input_labels=labels[:, None])
    if boxes is not None:
        kw["input_boxes"] = boxes[:, None]
    if masks is not None:
        kw["input_masks"] = masks
    with torch.inference_mode():
        ref = model(image_embeddings=emb.expand(p, -1, -1, -1), multimask_output=multimask, **kw)
        low, iou = SamDecoder(model)(emb, points, labels, boxes, masks, multimask)
    want = ref.pred_masks[:, 0]
    assert low.shape == want.shape == (p, 3 if multimask else 1, 4 * s, 4 * s)
    torch.testing.assert_close(low, want, atol=2e-5 * float(want.abs().max()), rtol=1e-4)
    torch.testing.assert_close(iou, ref.iou_scores[:, 0], atol=1e-5, rtol=1e-4)
    # the thresholded masks are the same masks
    agree = ((low > 0) == (want > 0)).float().mean()
    assert agree > 0.9999


def test_image_state_is_reused_per_embedding_and_recomputed_for_another():
    model = _model(False)
    dec = SamDecoder(model)
    c = model.config.mask_decoder_config.hidden_size
    s = model.config.prompt_encoder_config.image_embedding_size
    a, b = torch.randn(1, c, s, s), torch.randn(1, c, s, s)
    sa = dec.image_state(a)
    assert dec.image_state(a) is sa
    sb = dec.image_state(b)
    assert sb is not sa and sb.source is b
    pts, labels = torch.tensor([[[10.0, 20.0]]]), torch.tensor([[1]])
    with torch.inference_mode():
        got_a, _ = dec(a, pts, labels, None, None, False)  # switching back recomputes a's state
        ref_a = model(image_embeddings=a, input_points=pts[:, None], input_labels=labels[:, None],
                      multimask_output=False).pred_masks[:, 0]
    torch.testing.assert_close(got_a, ref_a, atol=1e-5, rtol=1e-4)


def test_supports_sam_only(tiny_sam_dir, tiny_sam_hq_dir):
    from vfm.models.loading import load_promptable

    assert load_promptable(str(tiny_sam_dir), device="cpu").fast_decoder is not None
    assert load_promptable(str(tiny_sam_hq_dir), device="cpu").fast_decoder is None


def test_masks_in_chunks_of_tokens_are_the_same(model, monkeypatch):
    import vfm.models.sam_decoder as D

    points, labels, _, _ = _inputs(model, 5, 1)
    c = model.config.mask_decoder_config.hidden_size
    s = model.config.prompt_encoder_config.image_embedding_size
    emb = torch.randn((1, c, s, s), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole, iou = SamDecoder(model)(emb, points, labels, None, None, True)
        c2 = model.mask_decoder.upscale_conv2.out_channels
        monkeypatch.setattr(D, "UPSCALE_CHUNK_BYTES", 3 * 16 * c2 * 4)  # 3 tokens per chunk
        assert (s * s) % 3  # the last chunk is shorter
        chunked, iou2 = SamDecoder(model)(emb, points, labels, None, None, True)
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(iou2, iou)


def test_upscale_chain_gives_the_first_upscaling_product(model):
    """The upscaling's first product, built along the layers from LayerNorm statistics and the
    attention terms, equals the transposed convolution of the final image tokens."""
    points, labels, boxes, _ = _inputs(model, 3, 1)  # few tokens: the attention runs on the small side
    c = model.config.mask_decoder_config.hidden_size
    s = model.config.prompt_encoder_config.image_embedding_size
    emb = torch.randn((1, c, s, s), generator=torch.Generator().manual_seed(2))
    dec = SamDecoder(model)
    conv1 = model.mask_decoder.upscale_conv1
    for pts, lab, box in ((points, labels, None), (None, None, boxes)):
        with torch.inference_mode():
            st = dec.image_state(emb)
            tokens, dense = dec.prompt_tokens(pts, lab, box, None)
            _, keys, built = dec.transformer(st, tokens, dense, track_conv1=True)
            assert built is not None
            p = keys.shape[0]
            direct = conv1(keys.transpose(1, 2).reshape(p, c, s, s))  # P x c1 x 2s x 2s
            got = built.view(p, s, s, 2, 2, -1).permute(0, 5, 1, 3, 2, 4).reshape(direct.shape)
        torch.testing.assert_close(got, direct, atol=2e-5, rtol=1e-4)


def test_upscale_chain_is_off_with_a_mask_prompt(model):
    points, labels, _, masks = _inputs(model, 2, 1)
    c = model.config.mask_decoder_config.hidden_size
    s = model.config.prompt_encoder_config.image_embedding_size
    emb = torch.randn((1, c, s, s), generator=torch.Generator().manual_seed(3))
    dec = SamDecoder(model)
    with torch.inference_mode():
        tokens, dense = dec.prompt_tokens(points, labels, None, masks)
        conv1 = dec.transformer(dec.image_state(emb), tokens, dense, track_conv1=True)[2]
    assert dense is not None and conv1 is None
