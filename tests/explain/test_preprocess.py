"""Tests for cnn_core.explain.preprocess against hand-made images whose answer is known."""

from __future__ import annotations

import io
import random
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFile

from cnn_core.data import decoding
from cnn_core.data.decoding import ImageRejected, decode_image
from cnn_core.explain import preprocess
from cnn_core.explain.preprocess import (
    canvas_to_gray,
    image_from_array,
    is_dark_on_light,
    prepare_digit,
    prepare_upload,
)
from tests.imagegen import encode, noise_rgb, pattern_rgb, png_header_only

CANVAS = 280  # the app's drawing canvas side


# ------------------------------------------------------------------------------ helpers


def reference_center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Computed independently of the module: weighted mean of the pixel indices."""
    rows, cols = np.indices(image.shape)
    weights = image.astype(np.float64)
    return (rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum()


def rectangle_canvas(top: int, left: int, height: int, width: int) -> np.ndarray:
    gray = np.zeros((CANVAS, CANVAS), np.uint8)
    gray[top : top + height, left : left + width] = 255
    return gray


def digit_on_paper(ink: int = 0, paper: int = 255, size=(160, 200)) -> np.ndarray:
    """A thick '7'-like stroke off-centre on a sheet, grayscale (H, W) uint8."""
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    draw.line([(40, 50), (110, 50), (70, 150)], fill=ink, width=12)
    return np.asarray(image)


# ------------------------------------------------------------------- MNIST procedure


RECTANGLES = [  # (top, left, height, width): off-centre, odd sizes, both orientations
    (30, 150, 60, 120),
    (200, 10, 70, 33),
    (5, 5, 100, 7),
    (101, 77, 13, 13),
    (0, 0, 1, 280),
]


def check_rectangle(top: int, left: int, height: int, width: int) -> None:
    steps = prepare_digit(rectangle_canvas(top, left, height, width))

    assert not steps.is_empty
    assert steps.bbox == (top, left, top + height, left + width)
    assert steps.cropped.shape == (height, width)
    longer, shorter = max(height, width), min(height, width)
    expected_shorter = max(1, int(shorter * 20 / longer + 0.5))
    expected_fitted = (20, expected_shorter) if height >= width else (expected_shorter, 20)
    assert steps.fitted.shape == expected_fitted
    assert steps.centered.shape == (28, 28)
    row, col = reference_center_of_mass(steps.centered)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)
    # Placing the fitted digit never cuts any of it off.
    assert int(steps.centered.sum()) == int(steps.fitted.sum())
    assert steps.model_input.dtype == np.float32
    assert steps.model_input.shape == (28, 28, 1)
    assert steps.model_input.min() >= 0 and steps.model_input.max() <= 1
    np.testing.assert_allclose(steps.model_input[..., 0] * 255, steps.centered, atol=1e-3)


@pytest.mark.parametrize("rectangle", RECTANGLES)
def test_rectangle_is_cropped_fitted_and_centred(rectangle):
    check_rectangle(*rectangle)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_rectangle_is_cropped_fitted_and_centred(data):
    height = data.draw(st.integers(1, CANVAS), label="height")
    width = data.draw(st.integers(1, CANVAS), label="width")
    top = data.draw(st.integers(0, CANVAS - height), label="top")
    left = data.draw(st.integers(0, CANVAS - width), label="left")
    check_rectangle(top, left, height, width)


def test_lopsided_digit_stays_whole_and_mass_centred():
    gray = np.zeros((CANVAS, CANVAS), np.uint8)
    gray[40:60, 60:200] = 255  # the heavy top bar of a '7'
    gray[60:240, 170:185] = 255  # its thin stem
    steps = prepare_digit(gray)
    assert steps.fitted.shape[0] == 20  # taller than wide
    assert int(steps.centered.sum()) == int(steps.fitted.sum())
    row, col = reference_center_of_mass(steps.centered)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)


def test_all_black_canvas_is_empty():
    steps = prepare_digit(np.zeros((CANVAS, CANVAS), np.uint8))
    assert steps.is_empty
    assert steps.bbox is None and steps.cropped is None and steps.fitted is None
    assert steps.centered.shape == (28, 28) and not steps.centered.any()
    assert steps.model_input.shape == (28, 28, 1) and steps.model_input.dtype == np.float32
    assert not steps.model_input.any()


def test_faint_marks_below_threshold_are_empty():
    gray = np.full((CANVAS, CANVAS), preprocess.INK_THRESHOLD, np.uint8)
    assert prepare_digit(gray).is_empty
    gray[10, 10] = preprocess.INK_THRESHOLD + 1
    assert prepare_digit(gray).bbox == (10, 10, 11, 11)


@pytest.mark.parametrize(
    "bad", [np.zeros((28, 28), np.float32), np.zeros((28, 28, 3), np.uint8), np.zeros(28, np.uint8)]
)
def test_prepare_digit_rejects_non_gray_arrays(bad):
    with pytest.raises(ValueError, match="2-D uint8"):
        prepare_digit(bad)


# ------------------------------------------------------------------------------ canvas


def test_fully_transparent_canvas_is_black_and_empty():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (CANVAS, CANVAS, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # untouched: whatever the colour, nothing is drawn
    gray = canvas_to_gray(rgba)
    assert gray.dtype == np.uint8 and gray.shape == (CANVAS, CANVAS)
    assert not gray.any()
    assert prepare_digit(gray).is_empty


def test_canvas_pixels_composite_onto_black():
    rgba = np.array(
        [
            [[255, 255, 255, 0], [0, 0, 0, 0], [255, 255, 255, 255]],  # untouched x2, stroke
            [[255, 255, 255, 128], [0, 0, 0, 255], [255, 0, 0, 255]],  # edge, black, red
        ],
        dtype=np.uint8,
    )
    expected = np.array([[0, 0, 255], [128, 0, 76]], np.uint8)  # red: 0.299 * 255 = 76.2
    np.testing.assert_array_equal(canvas_to_gray(rgba), expected)


def test_canvas_accepts_int64_values_and_rejects_other_shapes():
    rgba = np.zeros((4, 4, 4), np.int64)
    rgba[1, 2] = (255, 255, 255, 255)
    assert canvas_to_gray(rgba)[1, 2] == 255
    with pytest.raises(ValueError, match=r"\(H, W, 4\)"):
        canvas_to_gray(np.zeros((4, 4, 2), np.uint8))


def test_drawn_disk_on_transparent_canvas_ends_up_centred():
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((180, 20, 260, 100), fill=(255, 255, 255, 255))
    steps = prepare_digit(canvas_to_gray(np.asarray(image)))
    assert steps.bbox == (20, 180, 101, 261)
    assert steps.fitted.shape == (20, 20)
    row, col = reference_center_of_mass(steps.centered)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


# ------------------------------------------------------------------------ decode_image


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("PNG", {}), ("BMP", {}), ("GIF", {}), ("WEBP", {"lossless": True})],
)
def test_lossless_formats_round_trip_exactly(fmt, options):
    original = pattern_rgb()
    decoded = decode_image(encode(original, fmt, **options), f"pattern.{fmt.lower()}")
    assert decoded.mode == "RGB" and decoded.size == original.size
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(original))


def test_jpeg_round_trips_closely():
    original = pattern_rgb(64, 48)
    decoded = decode_image(encode(original, "JPEG", quality=95), "pattern.jpg")
    assert decoded.mode == "RGB" and decoded.size == (64, 48)
    difference = np.abs(np.asarray(decoded, np.int16) - np.asarray(original, np.int16))
    assert difference.mean() < 6


def test_multi_picture_jpeg_from_a_phone_is_accepted():
    first, second = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = decode_image(data, "phone.jpg")
    np.testing.assert_allclose(decoded.getpixel((4, 4)), (255, 0, 0), atol=6)


def test_grayscale_png_stays_grayscale():
    gray = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    decoded = decode_image(encode(gray, "PNG"), "gray.png")
    assert decoded.mode == "L"
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(gray))


@pytest.mark.parametrize(("fmt", "options"), [("GIF", {}), ("WEBP", {"lossless": True})])
def test_animated_image_gives_its_first_frame(fmt, options):
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    data = encode(red, fmt, save_all=True, append_images=[blue], duration=100, **options)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    decoded = decode_image(data, f"anim.{fmt.lower()}")
    assert decoded.getpixel((4, 4)) == (255, 0, 0)


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.array([[0, 257, 1000, 32896, 65535]], np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    decoded = decode_image(encode(image, "PNG"), "depth.png")
    assert decoded.mode == "L"
    # 1000 / 65535 * 255 = 3.9: clipping would have made it 255.
    np.testing.assert_array_equal(np.asarray(decoded), [[0, 1, 4, 128, 255]])


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", np.array([[0, 65535, 1000]], np.int32), [[0, 255, 4]]),
        ("F", np.array([[0.0, 0.5, 1.0]], np.float32), [[0, 128, 255]]),
        ("F", np.array([[0.0, 100.0, 300.0]], np.float32), [[0, 100, 255]]),
    ],
)
def test_wide_modes_become_8_bit_gray(mode, values, expected):
    image = Image.fromarray(values)
    assert image.mode == mode
    converted = decoding.normalize_mode(image)
    assert converted.mode == "L"
    np.testing.assert_array_equal(np.asarray(converted), expected)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # no cyan, full magenta+yellow: red
    decoded = decode_image(encode(cmyk, "JPEG", quality=95), "print.jpg")
    assert decoded.mode == "RGB"
    np.testing.assert_allclose(decoded.getpixel((8, 8)), (255, 0, 0), atol=6)


def test_palette_png_transparency_becomes_white_paper():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)  # index 0 transparent, 1 black ink
    image.putpixel((1, 2), 1)
    decoded = decode_image(encode(image, "PNG", transparency=0), "digit.png")
    pixels = np.asarray(decoded.convert("RGB"))
    assert tuple(pixels[2, 1]) == (0, 0, 0)
    assert (pixels[0, 0] == 255).all() and (pixels[3, 3] == 255).all()


def test_la_png_is_composited_on_white():
    la = np.array([[[0, 0], [0, 255], [0, 128], [200, 255]]], np.uint8)
    decoded = decode_image(encode(Image.fromarray(la, "LA"), "PNG"), "la.png")
    assert decoded.mode == "L"
    np.testing.assert_allclose(np.asarray(decoded), [[255, 0, 127, 200]], atol=1)


def test_rgba_png_is_composited_on_white():
    rgba = np.array([[[0, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], np.uint8)
    decoded = decode_image(encode(Image.fromarray(rgba), "PNG"), "rgba.png")
    assert decoded.mode == "RGB"
    expected = [[[255, 255, 255], [255, 0, 0], [127, 127, 255]]]
    np.testing.assert_allclose(np.asarray(decoded), expected, atol=1)


def test_exif_orientation_6_is_applied():
    stored = Image.new("RGB", (40, 20), (255, 255, 255))
    stored.paste((255, 0, 0), (0, 0, 10, 10))  # a red mark at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = decode_image(encode(stored, "JPEG", exif=exif, quality=95), "phone.jpg")
    assert decoded.size == (20, 40)
    red, green, _ = decoded.getpixel((15, 4))  # the mark is now at the top-right
    assert red > 200 and green < 60
    assert decoded.getpixel((4, 4))[1] > 200  # and the top-left is white


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_rejected(fmt):
    data = encode(noise_rgb(), fmt)
    with pytest.raises(ImageRejected, match=rf"cut\.{fmt.lower()}: .*truncated or corrupted"):
        decode_image(data[: len(data) // 2], f"cut.{fmt.lower()}")


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (bytes(random.Random(0).randbytes(4000)), "x.png", "not an image Pillow can read"),
        (b"", "empty.png", "empty"),
        (b"shopping list:\n- milk\n- eggs\n", "notes.txt", "not an image Pillow can read"),
        (encode(Image.new("RGB", (8, 8)), "TIFF"), "scan.tif", "not an image Pillow can read"),
    ],
)
def test_non_images_are_rejected_with_the_file_name(data, name, reason):
    with pytest.raises(ImageRejected, match=reason) as caught:
        decode_image(data, name)
    assert str(caught.value).startswith(f"{name}: ")
    assert isinstance(caught.value, ValueError)


def test_too_many_pixels_is_rejected_before_decoding(monkeypatch):
    data = encode(Image.new("L", (3000, 3000)), "PNG")
    decoded_any = []
    original_load = ImageFile.ImageFile.load

    def spy_load(self):
        decoded_any.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    with pytest.raises(ImageRejected, match=r"big\.png: the image is 3000×3000 = 9 million"):
        decode_image(data, "big.png", max_pixels=1_000_000)
    assert decoded_any == []
    # The same file passes with the default limit, and the spy does see that decode.
    assert decode_image(data, "big.png").size == (3000, 3000)
    assert decoded_any


def test_huge_declared_size_gets_the_size_in_the_message():
    with pytest.raises(ImageRejected) as caught:
        decode_image(png_header_only(12000, 12000), "photo.png")
    assert str(caught.value) == (
        "photo.png: the image is 12000×12000 = 144 million pixels, over the 40 million pixel "
        "limit. Resize it below that and upload again."
    )


@pytest.mark.parametrize(
    ("side", "reason"),
    [
        (11, "11×11 = 121 pixels, over the 100 pixel limit"),  # Pillow would only warn
        (20, "over Pillow's safety limit"),  # Pillow raises its error while opening
    ],
)
def test_pillow_pixel_limit_applies_without_global_changes(monkeypatch, recwarn, side, reason):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # restored by monkeypatch
    filters_before = list(warnings.filters)
    with pytest.raises(ImageRejected, match=f"bomb.png: .*{reason}"):
        decode_image(encode(Image.new("L", (side, side)), "PNG"), "bomb.png")
    assert warnings.filters == filters_before
    # The rejection replaces Pillow's warning; nothing leaks into the server's log.
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == 100


def test_bomb_warning_while_decoding_becomes_rejection(monkeypatch):
    def warn_on_load(self):
        warnings.warn("too big", Image.DecompressionBombWarning, stacklevel=2)

    monkeypatch.setattr(ImageFile.ImageFile, "load", warn_on_load)
    with pytest.raises(ImageRejected, match="sneaky.png: .*safety limit"):
        decode_image(encode(Image.new("L", (8, 8)), "PNG"), "sneaky.png")


def test_too_many_bytes_is_rejected_before_opening():
    data = encode(noise_rgb(64), "PNG")
    assert len(data) > 10_000
    with pytest.raises(ImageRejected, match=r"noise\.png: the file is .* over the .* limit"):
        decode_image(data, "noise.png", max_bytes=10_000)
    junk = b"\0" * (2 * 2**20)
    with pytest.raises(ImageRejected, match="2 MB, over the 1 MB limit"):
        decode_image(junk, "junk.bin", max_bytes=2**20)


def test_non_bytes_is_a_type_error():
    with pytest.raises(TypeError, match="bytes"):
        decode_image("a path.png", "a path.png")


VALID_FILES = [encode(noise_rgb(24, seed=2), fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_files_raise_only_image_rejected(data):
    original = data.draw(st.sampled_from(VALID_FILES))
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    damaged = damaged[: data.draw(st.integers(1, len(damaged)))]
    try:
        image = decode_image(bytes(damaged), "damaged")
    except ImageRejected as exc:
        assert str(exc).startswith("damaged: ")
    else:
        assert image.mode in ("L", "RGB")


# ---------------------------------------------------------------------- prepare_upload


def test_dark_digit_on_white_paper_is_inverted_like_the_canvas():
    paper = Image.fromarray(digit_on_paper(ink=0, paper=255))
    steps = prepare_upload(paper, (28, 28, 1), mnist_style=True)
    assert steps.inverted
    assert not steps.is_empty
    assert steps.model_input.shape == (28, 28, 1) and steps.model_input.dtype == np.float32
    # Reference: the same strokes drawn light on black need no inversion and give the
    # same model input.
    light = prepare_upload(
        Image.fromarray(digit_on_paper(ink=255, paper=0)), (28, 28, 1), mnist_style=True
    )
    assert not light.inverted
    np.testing.assert_allclose(steps.model_input, light.model_input, atol=1 / 255)
    row, col = reference_center_of_mass(steps.model_input[..., 0])
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


def test_grey_paper_photo_is_inverted_and_its_background_removed():
    rng = np.random.default_rng(3)
    photo = np.clip(rng.normal(170, 4, (120, 100)), 0, 255).astype(np.uint8)  # grey paper
    photo[30:90, 45:57] = 40  # a dark '1'
    steps = prepare_upload(Image.fromarray(photo), (28, 28, 1), mnist_style=True)
    assert steps.inverted
    assert steps.digit.bbox == (30, 45, 90, 57)  # the paper is not mistaken for ink
    assert steps.digit.fitted.shape == (20, 4)


@pytest.mark.parametrize(
    ("background", "ink", "expected"),
    [(255, 0, True), (0, 255, False), (110, 30, True), (60, 200, False)],
)
def test_dark_on_light_detection(background, ink, expected):
    gray = np.full((50, 50), background, np.uint8)
    gray[10:40, 20:30] = ink
    assert is_dark_on_light(gray) is expected


def test_vignetted_photo_of_paper_is_dark_on_light():
    rows, cols = np.indices((60, 60))
    distance = np.hypot(rows - 30, cols - 30) / 42
    gray = (215 - 70 * distance**2).astype(np.uint8)  # paper, darker in the corners
    gray[15:45, 27:33] = 30
    assert np.median(np.concatenate([gray[0], gray[-1]])) < 200
    assert is_dark_on_light(gray)


def test_blank_paper_upload_is_empty():
    steps = prepare_upload(Image.new("L", (50, 40), 240), (28, 28, 1), mnist_style=True)
    assert steps.is_empty
    assert not steps.model_input.any()


def test_transparent_png_of_dark_digit_goes_through_as_ink_on_paper():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(50, 15), (50, 85)], fill=(0, 0, 0, 255), width=10)
    decoded = decode_image(encode(image, "PNG"), "digit.png")
    steps = prepare_upload(decoded, (28, 28, 1), mnist_style=True)
    assert steps.inverted and not steps.is_empty
    assert steps.digit.fitted.shape[0] == 20


def test_colour_image_for_a_colour_model_is_resized_whole():
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[:, :50] = (255, 0, 0)
    pixels[:, 50:] = (0, 0, 255)
    steps = prepare_upload(Image.fromarray(pixels), (32, 32, 3), mnist_style=False)
    assert steps.original.shape == (60, 100, 3) and steps.converted.shape == (60, 100, 3)
    assert steps.resized.shape == (32, 32, 3)
    assert not steps.inverted and steps.digit is None and not steps.is_empty
    x = steps.model_input
    assert x.shape == (32, 32, 3) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    # The whole image, no letterbox: red on the left edge, blue on the right edge,
    # from top to bottom.
    np.testing.assert_allclose(x[:, 0], [[1, 0, 0]] * 32, atol=0.02)
    np.testing.assert_allclose(x[:, -1], [[0, 0, 1]] * 32, atol=0.02)


def shoe_on_white() -> np.ndarray:
    """A dark shoe-like shape photographed on white paper, filling most of the frame."""
    pixels = np.full((56, 56), 235, np.uint8)
    pixels[30:48, 6:50] = 40  # sole and body
    pixels[14:30, 6:24] = 50  # ankle
    return pixels


def test_a_whole_picture_for_a_light_on_dark_model_is_turned_light_on_dark():
    """Fashion-MNIST's clothes are light on black; a photo of dark cloth on white is not."""
    steps = prepare_upload(Image.fromarray(shoe_on_white()), (28, 28, 1), mnist_style=False,
                           light_on_dark=True)  # fmt: skip
    assert steps.inverted and steps.digit is None and steps.paper is None
    assert steps.resized.shape == (28, 28)
    assert steps.resized[20, 14] > 180 and steps.resized[3, 14] < 40  # shoe light, paper dark
    # Already light on dark (a Fashion-MNIST image itself): left as it is.
    same = prepare_upload(Image.fromarray(steps.resized), (28, 28, 1), mnist_style=False,
                          light_on_dark=True)  # fmt: skip
    assert not same.inverted
    np.testing.assert_array_equal(same.resized, steps.resized)
    # A model of dark-on-light pictures, or a colour model, gets the picture unchanged.
    kept = prepare_upload(Image.fromarray(shoe_on_white()), (28, 28, 1), mnist_style=False)
    assert not kept.inverted and kept.resized[3, 14] > 200


def test_only_digit_datasets_read_uploads_as_digits():
    from cnn_core.data import datasets

    assert datasets.holds_digits("mnist")
    assert not datasets.holds_digits("fashion_mnist") and not datasets.holds_digits("cifar10")
    assert datasets.holds_digits("user:my-letters")  # the canvas draws for light-on-dark ones


def test_colour_image_for_a_gray_model_is_converted():
    image = Image.new("RGB", (40, 30), (255, 0, 0))
    steps = prepare_upload(image, (28, 28, 1), mnist_style=False)
    assert steps.converted.shape == (30, 40)
    assert steps.model_input.shape == (28, 28, 1)
    np.testing.assert_allclose(steps.model_input, 76 / 255, atol=1 / 255)


@pytest.mark.parametrize(
    ("shape", "mnist_style", "message"),
    [
        ((32, 32, 3), True, "mnist_style=False"),
        ((28, 28), False, "1 or 3 channels"),
        ((28, 28, 2), False, "1 or 3 channels"),
    ],
)
def test_prepare_upload_rejects_shapes_it_cannot_make(shape, mnist_style, message):
    with pytest.raises(ValueError, match=message):
        prepare_upload(Image.new("L", (10, 10)), shape, mnist_style)


# ------------------------------------------------------------------------------ display


def test_image_from_array_handles_model_and_uint8_arrays():
    x = np.zeros((28, 28, 1), np.float32)
    x[3, 4] = 1.0
    x[5, 6] = 0.5
    gray = image_from_array(x)
    assert gray.mode == "L" and gray.size == (28, 28)
    assert gray.getpixel((4, 3)) == 255 and gray.getpixel((6, 5)) == 128
    colour = image_from_array(np.full((4, 5, 3), 7, np.uint8))
    assert colour.mode == "RGB" and colour.getpixel((0, 0)) == (7, 7, 7)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        image_from_array(np.zeros((4, 4, 2)))


def test_square_on_black_keeps_the_shape_of_a_tall_thin_stroke():
    stroke = np.full((20, 2), 255, np.uint8)
    square = preprocess.square_on_black(stroke)
    assert square.shape == (20, 20)
    assert square.sum() == stroke.sum()  # nothing stretched, nothing lost
    assert (square[:, 9:11] == 255).all()  # centred
    wide = preprocess.square_on_black(np.full((3, 7), 9, np.uint8))
    assert wide.shape == (7, 7) and (wide[2:5] == 9).all() and not wide[:2].any()


# ------------------------------------------------------------ drawings of no digit


def canvas_drawing(draw_on) -> np.ndarray:
    image = Image.new("L", (CANVAS, CANVAS), 0)
    draw_on(ImageDraw.Draw(image))
    return np.asarray(image)


@pytest.mark.parametrize(
    ("name", "draw_on", "kind"),
    [
        ("a tap", lambda d: d.ellipse([137, 137, 143, 143], fill=255), "too small"),
        ("a dot", lambda d: d.ellipse([130, 130, 150, 150], fill=255), "a blob, not strokes"),
        ("a filled square", lambda d: d.rectangle([60, 60, 200, 200], fill=255),
         "a blob, not strokes"),
        ("a scribble", lambda d: d.line([(60, 60), (220, 200), (60, 200), (220, 60), (140, 30),
                                         (140, 250), (30, 140), (250, 140), (60, 60)],
                                        fill=255, width=10), "scattered"),
    ],
)  # fmt: skip
def test_drawings_that_cannot_be_digits_are_named(name, draw_on, kind):
    verdict = preprocess.judge_drawing(canvas_drawing(draw_on))
    assert verdict is not None and verdict.kind == kind, (name, verdict)
    assert verdict.drawing_message.startswith("No digit found: ")


@pytest.mark.parametrize(
    "draw_on",
    [
        lambda d: d.line([(140, 40), (140, 240)], fill=255, width=20),  # a 1
        lambda d: (d.ellipse([90, 30, 190, 130], outline=255, width=18),  # an 8
                   d.ellipse([80, 125, 200, 250], outline=255, width=18)),
        lambda d: d.line([(70, 50), (210, 50), (120, 240)], fill=255, width=8),  # a 7, thin
        lambda d: (d.line([(80, 40), (80, 150), (200, 150)], fill=255, width=20),  # a 4 in
                   d.line([(170, 60), (170, 250)], fill=255, width=20)),  # two strokes
    ],
    ids=["1", "8", "7", "4"],
)  # fmt: skip
def test_drawn_digits_are_not_refused(draw_on):
    assert preprocess.judge_drawing(canvas_drawing(draw_on)) is None
