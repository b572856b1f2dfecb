"""A fuzz test of the Predict page's upload path with 570 generated and mutated files.

Every file goes through what the page calls for an upload: `decode_image`, then
`prepare_upload` and `Predictor.predict_proba` for a digit model (the shipped MNIST one)
and for a colour model. Each file must either predict (finite probabilities that sum to 1,
or for the digit model a "No digit found" saying why) or be rejected with a sentence that
names the file and says what to do; any other
exception fails the test. The corpus is seeded, so the counts are the same on every run:
`./test.sh tests/explain/test_upload_fuzz.py -s` prints them as a table for RELIABILITY.md.
"""

from __future__ import annotations

import contextlib
import io
import random
import struct
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from cnn_core import catalog
from cnn_core.data import decoding
from cnn_core.data.decoding import ImageRejected
from cnn_core.explain import inference, preprocess
from cnn_core.models import zoo
from tests.imagegen import encode, png_chunk, png_from_samples, png_header_only, seven_on_paper

SEED = 20261122
TRUNCATED_FILES = 150
CORRUPTED_FILES = 180
SPLICED_FILES = 40
RANDOM_FILES = 36
MUTATION_BASE_MAX_BYTES = 200_000  # bigger bases only slow the fuzz down
CONFIGURED_PILLOW_CAP = 1_000_000  # a classroom server's lower Image.MAX_IMAGE_PIXELS
EXTENSIONS = ("png", "jpg", "jpeg", "gif", "bmp", "webp")
ORIENTATION_TAG = 0x0112
# Each sentence ends by saying what to do; see the messages in cnn_core/data/decoding.py.
FIX_WORDS = ("Upload", "Resize", "Save")
COLOUR_LAYERS = [{"type": "conv", "filters": 4, "kernel": 3}, {"type": "maxpool", "size": 2}]

# How the stored pixels are turned so that the displayed picture is upright, written from
# the EXIF specification with numpy (independently of Pillow) for the orientations 1-8.
STORE_FOR_ORIENTATION: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: a.swapaxes(0, 1),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, 1),  # stored turned left: shown after a turn right
    7: lambda a: np.rot90(a.swapaxes(0, 1), 2),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, -1),
}

CATEGORIES = (  # the table's rows, in order; every one must be exercised
    "plain RGB/gray", "1x1", "1x10000", "16-bit", "CMYK", "palette", "LA", "RGBA",
    "animated GIF", "animated PNG/WebP", "EXIF-rotated", "wrong extension", "bomb",
    "non-image", "truncated", "corrupted", "spliced header",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One uploaded file and what must happen to it."""

    category: str
    name: str
    data: bytes
    expect: str  # "predicted", "rejected" or "either"
    pillow_cap: int | None = None  # Image.MAX_IMAGE_PIXELS while it is decoded


@dataclass(frozen=True)
class Setup:
    """A model as the Predict page holds it."""

    label: str
    predictor: inference.Predictor
    input_shape: tuple[int, int, int]
    mnist_style: bool


# ------------------------------------------------------------------- valid files


def valid(category: str, stem: str, image: Image.Image, fmt: str, **options) -> Sample:
    ext = {"JPEG": "jpg", "MPO": "jpg"}.get(fmt, fmt.lower())
    return Sample(category, f"{stem}.{ext}", encode(image, fmt, **options), "predicted")


def plain_files() -> list[Sample]:
    out = []
    for width, height in ((28, 28), (64, 80), (300, 200)):
        seven = seven_on_paper(width, height)
        stem = f"seven-{width}x{height}"
        for fmt, options in (("PNG", {}), ("JPEG", {"quality": 90}), ("GIF", {}), ("BMP", {}),
                             ("WEBP", {}), ("WEBP", {"lossless": True})):  # fmt: skip
            out.append(valid("plain RGB/gray", stem, seven, fmt, **options))
        out += [valid("plain RGB/gray", f"{stem}-gray", seven.convert("L"), fmt)
                for fmt in ("PNG", "JPEG", "BMP")]  # fmt: skip
        out.append(valid("plain RGB/gray", f"{stem}-1bit", seven.convert("1"), "PNG"))
    phone = seven_on_paper(48, 48)
    out.append(valid("plain RGB/gray", "phone-mpo", phone, "MPO", save_all=True,
                     append_images=[phone.rotate(90)]))  # fmt: skip
    return out


def tiny_and_thin_files() -> list[Sample]:
    dot = Image.new("RGB", (1, 1), (30, 30, 30))
    out = [valid("1x1", f"dot-{mode}", dot.convert(mode), "PNG")
           for mode in ("L", "RGB", "RGBA", "P", "1", "LA")]  # fmt: skip
    out.append(valid("1x1", "dot-16bit", Image.fromarray(np.array([[40000]], np.uint16)), "PNG"))
    out += [valid("1x1", f"dot-{mode}", dot.convert(mode), "JPEG") for mode in ("L", "RGB", "CMYK")]
    out += [valid("1x1", "dot", dot, fmt) for fmt in ("GIF", "BMP", "WEBP")]
    ramp = np.linspace(0, 255, 10_000).astype(np.uint8)
    for width, height in ((1, 10_000), (10_000, 1)):
        line = Image.fromarray(ramp.reshape(height, width)).convert("RGB")
        out += [valid("1x10000", f"line-{width}x{height}", line, fmt)
                for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")]  # fmt: skip
    return out


def sixteen_bit_files() -> list[Sample]:
    seven = np.asarray(seven_on_paper(40, 30).convert("L"), np.uint16) * 257
    ramp = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    out = [valid("16-bit", "seven-16bit", Image.fromarray(seven), "PNG"),
           valid("16-bit", "ramp-16bit", Image.fromarray(ramp), "PNG")]  # fmt: skip
    planes = {0: [seven], 2: [seven, ramp, seven], 4: [seven, ramp], 6: [seven, seven, ramp, ramp]}
    for colour_type, channels in planes.items():
        data = png_from_samples(np.stack(channels, axis=-1), colour_type)
        out.append(Sample("16-bit", f"seven-16bit-type{colour_type}.png", data, "predicted"))
    return out


def cmyk_files() -> list[Sample]:
    seven = seven_on_paper(64, 80).convert("CMYK")
    out = [valid("CMYK", f"seven-cmyk-q{quality}", seven, "JPEG", quality=quality)
           for quality in (50, 95)]  # fmt: skip
    out.append(valid("CMYK", "seven-cmyk-progressive", seven, "JPEG", progressive=True))
    out.append(valid("CMYK", "magenta-cmyk", Image.new("CMYK", (16, 16), (0, 255, 0, 0)), "JPEG"))
    return out


def palette_files() -> list[Sample]:
    seven = seven_on_paper(64, 80)
    few = seven.quantize(4)
    two = seven.convert("L").convert("P", palette=Image.Palette.ADAPTIVE, colors=2)
    return [
        valid("palette", "seven-p", few, "PNG"),
        valid("palette", "seven-p-transparent", few, "PNG", transparency=0),
        valid("palette", "seven-p-alphas", few, "PNG", transparency=bytes([0, 128, 255, 64])),
        valid("palette", "seven-p2", two, "PNG", bits=1),
        valid("palette", "seven-p", few, "GIF"),
        valid("palette", "seven-p-transparent", few, "GIF", transparency=0),
        valid("palette", "seven-p", few, "BMP"),
    ]


def alpha_files() -> list[Sample]:
    ink = np.asarray(seven_on_paper(64, 80).convert("L"))
    ramp = np.linspace(0, 255, ink.size).reshape(ink.shape).astype(np.uint8)
    alphas = {"opaque": np.full_like(ink, 255), "ink-only": 255 - ink, "ramp": ramp}
    out = []
    for label, alpha in alphas.items():
        la = Image.fromarray(np.stack([ink, alpha], axis=-1), "LA")
        out.append(valid("LA", f"seven-la-{label}", la, "PNG"))
        rgba = Image.fromarray(np.stack([ink, ink, ink, alpha], axis=-1), "RGBA")
        out += [valid("RGBA", f"seven-rgba-{label}", rgba, fmt) for fmt in ("PNG", "WEBP")]
    out.append(valid("LA", "seven-la", la, "WEBP", lossless=True))
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    out.append(valid("RGBA", "all-transparent", clear, "PNG"))
    keyed = seven_on_paper(64, 80)
    out.append(valid("RGBA", "seven-colour-key", keyed, "PNG", transparency=(255, 255, 255)))
    return out


def animated_files() -> list[Sample]:
    seven = seven_on_paper(48, 60)
    frames = [seven.rotate(angle, fillcolor="white") for angle in (20, 40, 60, 80)]
    gif = "animated GIF"
    return [
        valid(gif, "two-frames", seven, "GIF", save_all=True, append_images=frames[:1],
              duration=100, loop=0),
        valid(gif, "five-frames-disposal", seven, "GIF", save_all=True, append_images=frames,
              duration=[50, 60, 70, 80, 90], disposal=2),
        valid(gif, "small-later-frames", seven, "GIF", save_all=True,
              append_images=[f.crop((0, 0, 20, 20)) for f in frames]),
        valid("animated PNG/WebP", "apng", seven, "PNG", save_all=True, append_images=frames),
        valid("animated PNG/WebP", "animated", seven, "WEBP", save_all=True,
              append_images=frames, duration=80),
    ]  # fmt: skip


def exif_files() -> list[Sample]:
    upright = np.asarray(seven_on_paper(64, 48))
    out = []
    for orientation, store in STORE_FOR_ORIENTATION.items():
        stored = Image.fromarray(np.ascontiguousarray(store(upright)))
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = orientation
        for fmt in ("JPEG", "PNG", "WEBP"):
            out.append(valid("EXIF-rotated", f"phone-o{orientation}", stored, fmt, exif=exif))
    for bad in (0, 9, 65535):  # out-of-range values: shown as stored
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = bad
        out.append(valid("EXIF-rotated", f"phone-o{bad}", Image.fromarray(upright), "JPEG",
                         exif=exif))  # fmt: skip
    garbage = b"Exif\0\0" + random.Random(SEED).randbytes(60)
    out.append(valid("EXIF-rotated", "phone-bad-exif", Image.fromarray(upright), "JPEG",
                     exif=garbage))  # fmt: skip
    return out


def valid_files() -> list[Sample]:
    return (
        plain_files() + tiny_and_thin_files() + sixteen_bit_files() + cmyk_files()
        + palette_files() + alpha_files() + animated_files() + exif_files()
    )  # fmt: skip


def wrong_extension_files(bases: list[Sample]) -> list[Sample]:
    out = []
    for base in bases[:18]:  # the plain files: every format at every size
        stem, ext = base.name.rsplit(".", 1)
        wrong = EXTENSIONS[(EXTENSIONS.index(ext) + 2) % len(EXTENSIONS)]
        out.append(Sample("wrong extension", f"{stem}-was-{ext}.{wrong}", base.data, "predicted"))
    return out


# -------------------------------------------------------------------------- bombs


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """A real PNG whose IHDR claims another size (with a correct checksum)."""
    body = struct.pack(">II", width, height) + data[24:33]
    return data[:8] + png_chunk(b"IHDR", body) + data[33:]


def patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    at = data.index(b"\xff\xc0") + 5  # marker, length (2), precision (1)
    return data[:at] + struct.pack(">HH", height, width) + data[at + 4 :]


def patch_gif_size(data: bytes, width: int, height: int) -> bytes:
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def patch_bmp_size(data: bytes, width: int, height: int) -> bytes:
    return data[:18] + struct.pack("<ii", width, height) + data[26:]


def bomb_files() -> list[Sample]:
    small = seven_on_paper(16, 16)
    huge = 60_000  # 3.6 billion pixels: Pillow's own error, raised while opening
    zeros = encode(Image.new("L", (7_000, 7_000)), "PNG")  # 49 million pixels in 48 kB
    files = {
        "header-40m.png": png_header_only(6_325, 6_325),  # just over our 40 million
        "header-144m.png": png_header_only(12_000, 12_000),  # Pillow would only warn
        "header-3600m.png": png_header_only(huge, huge),
        "patched.png": patch_png_size(encode(small, "PNG"), huge, huge),
        "patched-64m.jpg": patch_jpeg_size(encode(small, "JPEG"), 8_000, 8_000),
        "patched.jpg": patch_jpeg_size(encode(small, "JPEG"), huge, huge),
        "patched.gif": patch_gif_size(encode(small, "GIF"), 65_535, 65_535),
        "patched.bmp": patch_bmp_size(encode(small, "BMP"), 30_000, 30_000),
        "zeros-7000x7000.png": zeros,
    }
    out = [Sample("bomb", name, data, "rejected") for name, data in files.items()]
    # A server with a lower Pillow cap: Pillow warns above it and raises above twice it.
    for width, fmt in ((1_100, "PNG"), (2_100, "PNG"), (1_500, "GIF"), (1_500, "JPEG")):
        data = encode(Image.new("L", (width, 1_000)), fmt)
        name = f"capped-{width}x1000.{fmt.lower()}"
        out.append(Sample("bomb", name, data, "rejected", CONFIGURED_PILLOW_CAP))
    return out


# ---------------------------------------------------------------------- non-images


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # A fixed date: the corpus must not change with the clock.
        archive.writestr(zipfile.ZipInfo("digit.png", (2026, 1, 1, 0, 0, 0)), b"not really")
    return buffer.getvalue()


def non_image_files(rng: random.Random) -> list[Sample]:
    named = {
        "empty.png": b"",
        "one-byte.jpg": b"\xff",
        "notes.png": b"shopping list:\n- milk\n- eggs\n",
        "page.jpg": b"<!doctype html><html><body><img src=x></body></html>",
        "drawing.png": b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
        "scan.jpg": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        "archive.png": zip_bytes(),
        "program.gif": b"\x7fELF\x02\x01\x01" + bytes(57),
        "data.webp": b'{"pixels": [[0, 1], [1, 0]]}',
        "scan.png": encode(seven_on_paper(16, 16), "TIFF"),  # a real image, not accepted
        "icon.png": encode(seven_on_paper(16, 16), "ICO"),
        "png-signature.png": b"\x89PNG\r\n\x1a\n",
        "jpeg-start.jpg": b"\xff\xd8\xff",
        "gif-signature.gif": b"GIF89a",
        "bmp-start.bmp": b"BM",
        "riff-webp.webp": b"RIFF\x04\0\0\0WEBP",
        "zeros.png": bytes(4096),
    }
    out = [Sample("non-image", name, data, "rejected") for name, data in named.items()]
    for n in range(RANDOM_FILES):
        data = rng.randbytes(rng.choice((1, 16, 300, 4_000, 60_000)))
        out.append(Sample("non-image", f"random-{n}.{EXTENSIONS[n % 6]}", data, "rejected"))
    return out


# ---------------------------------------------------------------------- mutations


def truncate(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    # A third of the cuts fall in the first 100 bytes, where the headers are.
    end = min(len(data) - 1, 100) if rng.random() < 1 / 3 else len(data) - 1
    cut = rng.randint(1, max(1, end))
    return f"cut{cut}", data[:cut]


def corrupt(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    damaged = bytearray(data)
    kind = rng.choice(("flip", "zero-run", "insert", "delete"))
    at = rng.randrange(len(damaged))
    size = rng.randint(1, 64)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
    elif kind == "zero-run":
        damaged[at : at + size] = bytes(len(damaged[at : at + size]))
    elif kind == "insert":
        damaged[at:at] = rng.randbytes(size)
    else:
        del damaged[at : at + size]
    return f"{kind}{at}", bytes(damaged)


def mutated_files(rng: random.Random, bases: list[Sample]) -> list[Sample]:
    pool = [b for b in bases if 1 < len(b.data) <= MUTATION_BASE_MAX_BYTES]
    out = []
    for category, count, mutate in (("truncated", TRUNCATED_FILES, truncate),
                                    ("corrupted", CORRUPTED_FILES, corrupt)):  # fmt: skip
        for _ in range(count):
            base = rng.choice(pool)
            label, data = mutate(rng, base.data)
            out.append(Sample(category, f"{label}-{base.name}", data, "either"))
    for _ in range(SPLICED_FILES):
        head, tail = rng.sample(pool, 2)
        cut = rng.randint(8, min(200, len(head.data)))
        data = head.data[:cut] + tail.data[min(cut, len(tail.data) - 1) :]
        out.append(Sample("spliced header", f"head-of-{head.name}-on-{tail.name}", data, "either"))
    return out


def build_corpus() -> list[Sample]:
    rng = random.Random(SEED)
    bases = valid_files()
    return (
        bases + wrong_extension_files(bases) + bomb_files() + non_image_files(rng)
        + mutated_files(rng, bases)
    )  # fmt: skip


# ------------------------------------------------------------------- the upload path


@pytest.fixture(scope="module")
def setups(tmp_path_factory) -> list[Setup]:
    """The shipped MNIST model as a fresh lab's Predict page gets it, and a colour model."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNN_LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        choice = catalog.list_trained("mnist")[0]
        digits_model = catalog.load_trained(choice.key)
    mnist_style = choice.ink_on_dark and tuple(choice.input_shape) == (28, 28, 1)
    assert mnist_style, "the shipped MNIST model should take the digit procedure"
    colour_model = zoo.build_model("custom", (32, 32, 3), 10, COLOUR_LAYERS)
    return [
        Setup("digits", inference.Predictor(digits_model), choice.input_shape, mnist_style),
        Setup("colour", inference.Predictor(colour_model), (32, 32, 3), False),
    ]


def pillow_cap(pixels: int | None) -> contextlib.AbstractContextManager:
    if pixels is None:
        return contextlib.nullcontext()
    return mock.patch.object(Image, "MAX_IMAGE_PIXELS", pixels)


def check_message(message: str, name: str) -> None:
    assert message.startswith(f"{name}: "), f"the message does not name the file: {message!r}"
    assert "\n" not in message and "Traceback" not in message, f"not a sentence: {message!r}"
    assert message.endswith("."), f"not a sentence: {message!r}"
    assert any(word in message for word in FIX_WORDS), f"says nothing to do: {message!r}"


def check_probabilities(probs: np.ndarray) -> None:
    assert probs.ndim == 1 and np.isfinite(probs).all() and (probs >= 0).all(), probs
    assert abs(float(probs.sum()) - 1) < 1e-4, probs.sum()


def predict_like_the_page(data: bytes, name: str, setups: list[Setup]) -> str:
    """Returns "predicted" or "rejected"; raises on anything the page would not survive."""
    try:
        image = decoding.decode_image(data, name)
    except ImageRejected as exc:
        check_message(str(exc), name)
        return "rejected"
    for setup in setups:
        steps = preprocess.prepare_upload(image, setup.input_shape, setup.mnist_style)
        if steps.no_digit is not None:  # the page says why instead of predicting
            assert steps.no_digit.message.startswith("No digit found: ")
            continue
        check_probabilities(setup.predictor.predict_proba(steps.model_input)[0])
    return "predicted"


def upload(sample: Sample, setups: list[Setup]) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pillow_cap(sample.pillow_cap):
            outcome = predict_like_the_page(sample.data, sample.name, setups)
    bombs = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert not bombs, f"Pillow's bomb warning escaped instead of a rejection: {bombs[0].message}"
    return outcome


def count_table(counts: dict[str, Counter]) -> str:
    lines = ["| Files | Count | Predicted | Rejected with a message |", "|---|---:|---:|---:|"]
    for category in CATEGORIES:
        c = counts[category]
        lines.append(f"| {category} | {c.total()} | {c['predicted']} | {c['rejected']} |")
    total = sum(counts.values(), Counter())
    lines.append(f"| **all** | **{total.total()}** | **{total['predicted']}** | "
                 f"**{total['rejected']}** |")  # fmt: skip
    return "\n".join(lines)


def test_every_upload_predicts_or_gets_a_message(setups):
    counts: dict[str, Counter] = {category: Counter() for category in CATEGORIES}
    problems = []
    for sample in build_corpus():
        try:
            outcome = upload(sample, setups)
        except Exception as exc:  # what the page would show as a crash
            problems.append(f"{sample.name} ({sample.category}): {type(exc).__name__}: {exc}")
            continue
        counts[sample.category][outcome] += 1
        if sample.expect not in ("either", outcome):
            problems.append(f"{sample.name} ({sample.category}): {outcome}, not {sample.expect}")
    print(f"\nUpload fuzz, seed {SEED}:\n{count_table(counts)}")
    assert not problems, f"{len(problems)} files went wrong:\n" + "\n".join(problems[:30])
    total = sum(counts.values(), Counter())
    assert total.total() >= 500
    assert total["predicted"] > 0 and total["rejected"] > 0
    assert not [category for category in CATEGORIES if not counts[category].total()]


def test_corpus_is_the_same_on_every_run():
    first, second = build_corpus(), build_corpus()
    assert [(s.name, s.data) for s in first] == [(s.name, s.data) for s in second]


# -------------------------------------------------------------------- EXIF rotation


def jpeg_with_orientation(upright: np.ndarray, orientation: int) -> bytes:
    stored = STORE_FOR_ORIENTATION[orientation](upright)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return encode(Image.fromarray(np.ascontiguousarray(stored)), "JPEG", exif=exif, quality=95)


@pytest.mark.parametrize("orientation", sorted(STORE_FOR_ORIENTATION))
def test_exif_rotated_jpeg_decodes_upright(orientation):
    quadrants = np.zeros((32, 48, 3), np.uint8)  # 16-pixel blocks: JPEG keeps them flat
    quadrants[:16, :16] = (220, 0, 0)
    quadrants[:16, 16:] = (0, 0, 220)
    quadrants[16:, :32] = (0, 180, 0)
    quadrants[16:, 32:] = (250, 250, 250)
    decoded = decoding.decode_image(jpeg_with_orientation(quadrants, orientation), "a.jpg")
    pixels = np.asarray(decoded, np.int16)
    assert pixels.shape == quadrants.shape
    assert np.abs(pixels - quadrants).mean() < 4


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_digit_predicts_as_the_upright_one(setups, orientation):
    digits = setups[0]
    upright = np.asarray(seven_on_paper(120, 160).convert("L"))

    def model_input(data: bytes) -> np.ndarray:
        image = decoding.decode_image(data, "seven.jpg")
        return preprocess.prepare_upload(image, digits.input_shape, True).model_input

    expected = model_input(jpeg_with_orientation(upright, 1))
    rotated = model_input(jpeg_with_orientation(upright, orientation))
    as_stored = model_input(encode(Image.fromarray(STORE_FOR_ORIENTATION[orientation](upright)),
                                   "JPEG", quality=95))  # fmt: skip
    assert np.abs(rotated - expected).mean() < 0.02
    assert np.abs(as_stored - expected).mean() > 0.05  # without EXIF the seven is turned
    probs = digits.predictor.predict_proba(np.stack([expected, rotated]))
    assert np.argmax(probs[0]) == np.argmax(probs[1])


# ------------------------------------------------------------------ bomb messages


def test_a_bomb_just_over_the_cap_shows_the_exact_counts():
    with pytest.raises(ImageRejected) as caught:
        decoding.decode_image(png_header_only(6_325, 6_325), "photo.png")
    assert str(caught.value) == (
        "photo.png: the image is 6325×6325 = 40,005,625 pixels, over the 40,000,000 pixel "
        "limit. Resize it below that and upload again."
    )


def test_pillow_bomb_warning_becomes_a_rejection_not_a_log_line():
    data = encode(Image.new("L", (1_100, 1_000)), "PNG")  # over the cap, under twice it
    with warnings.catch_warnings(record=True) as caught, pillow_cap(CONFIGURED_PILLOW_CAP):
        warnings.simplefilter("always")
        with pytest.raises(ImageRejected, match=r"1100×1000 = 1\.1 million pixels, over the 1"):
            decoding.decode_image(data, "capped.png")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
