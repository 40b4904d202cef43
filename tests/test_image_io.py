"""Image input: formats, EXIF orientation, modes, bad files, pixel limit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vfm.errors import ImageError, ImageTooLargeError
from vfm.io.image import array_to_rgb, load_image


def _rgb(h=20, w=30):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 8 % 256, yy * 12 % 256, np.full_like(xx, 77)], -1).astype(np.uint8)


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp"), ("GIF", "gif")])
def test_formats_decode_to_rgb(tmp_path, fmt, ext):
    src = _rgb()
    path = tmp_path / f"x.{ext}"
    kw = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(src).save(path, format=fmt, **kw)
    img = load_image(path)
    assert img.pixels.shape == (20, 30, 3) and img.pixels.dtype == np.uint8
    if fmt in ("PNG", "TIFF", "BMP"):
        np.testing.assert_array_equal(img.pixels, src)
    else:  # lossy / palette formats: close, not exact
        assert np.abs(img.pixels.astype(int) - src).mean() < 20


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 12), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    px = load_image(path).pixels
    assert px[0, 0, 0] > 200 and px[0, 0, 2] < 50


def test_bytes_and_file_objects(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_rgb()).save(buf, format="PNG")
    data = buf.getvalue()
    np.testing.assert_array_equal(load_image(data).pixels, _rgb())
    np.testing.assert_array_equal(load_image(io.BytesIO(data)).pixels, _rgb())


@pytest.mark.parametrize("orientation,expected_shape", [(1, (20, 30)), (3, (20, 30)), (6, (30, 20)), (8, (30, 20))])
def test_exif_orientation_applied(tmp_path, orientation, expected_shape):
    src = np.zeros((20, 30, 3), np.uint8)
    src[0, 0] = 255  # stored top-left pixel is white
    im = Image.fromarray(src)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    im.save(path, exif=exif.tobytes())
    px = load_image(path).pixels
    assert px.shape[:2] == expected_shape
    white = tuple(int(v) for v in np.argwhere(px[:, :, 0] == 255)[0])
    h, w = expected_shape
    # where the stored top-left corner ends up in display orientation
    expected = {1: (0, 0), 3: (h - 1, w - 1), 6: (0, w - 1), 8: (h - 1, 0)}[orientation]
    assert white == expected


def test_modes(tmp_path):
    gray = Image.fromarray(np.full((8, 9), 100, np.uint8), "L")
    assert (load_image(gray).pixels == 100).all()
    la = Image.fromarray(np.dstack([np.full((8, 9), 0, np.uint8), np.full((8, 9), 0, np.uint8)]), "LA")
    assert (load_image(la).pixels == 255).all()  # fully transparent → white background
    rgba = np.zeros((8, 9, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    px = load_image(Image.fromarray(rgba, "RGBA")).pixels
    assert tuple(px[1, 1]) == (200, 0, 0) and tuple(px[0, 0]) == (255, 255, 255)
    p = Image.fromarray(_rgb()).convert("P", palette=Image.ADAPTIVE, colors=16)
    assert load_image(p).pixels.shape == (20, 30, 3)
    p.info["transparency"] = 0
    assert load_image(p).pixels.shape == (20, 30, 3)
    cmyk = Image.new("CMYK", (5, 4), (0, 255, 255, 0))  # pure red in CMYK
    px = load_image(cmyk).pixels
    assert tuple(px[0, 0]) == (255, 0, 0)


def test_16bit_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "x16.png"
    Image.fromarray(a).save(path)  # Pillow writes I;16
    px = load_image(path).pixels[0, :, 0]
    assert list(px) == [0, 4, 128, 255]  # 1000 would clip to 255 without scaling


def test_float_images():
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), "F")
    assert list(load_image(f).pixels[0, :, 0]) == [0, 128, 255]
    assert list(array_to_rgb(np.array([[-1.0, 0.0, 1.0]]))[0, :, 0]) == [0, 128, 255]  # min-max stretch


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"this is not an image at all", "not a readable image"),
])
def test_bad_bytes(tmp_path, content, match):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=match):
        load_image(path)


def test_truncated_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, format="JPEG")
    path = tmp_path / "trunc.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_pixel_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ImageTooLargeError, match="10,000 pixels"):
        load_image(path, max_pixels=9_999)
    assert load_image(path, max_pixels=10_000).width == 100
    monkeypatch.setenv("VFM_MAX_PIXELS", "5000")
    with pytest.raises(ImageTooLargeError):
        load_image(path)


def test_bad_arrays():
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="empty"):
        load_image(np.zeros((0, 4, 3), np.uint8))
