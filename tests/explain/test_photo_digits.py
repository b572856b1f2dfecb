"""Photos of digits on paper, and pictures that hold no digit, through the upload path.

Every photo is generated here (tests/imagegen.py): a pen's coverage of the page, lit by a
lamp that falls off across it, with or without a shadow, sensor noise and JPEG. Since the
test draws the strokes, it knows where the ink is, and can compare the ink the pipeline
finds with it; the shipped MNIST model then has to read the photo of a digit it reads
when the digit is clean.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnn_core import catalog
from cnn_core.data import datasets
from cnn_core.data.decoding import decode_image
from cnn_core.explain import inference, photos, preprocess
from cnn_core.explain.photos import NoDigitKind
from cnn_core.explain.preprocess import prepare_upload
from tests import imagegen
from tests.factories import reference_center_of_mass

DIGIT_BOX = (0.35, 0.3, 0.4)  # the digit's square on the page: left, top, side
SEVEN_STROKES = [(0.35, 0.3), (0.62, 0.3), (0.45, 0.75)]  # a 7 written with a fine pen


SURE = 0.9


@pytest.fixture(scope="module")
def mnist_test():
    return datasets.load_dataset("mnist", source="embedded")


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped MNIST model, as a fresh lab's Predict page gets it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNN_LAB_HOME", str(tmp_path_factory.mktemp("lab")))
        choice = catalog.list_trained("mnist")[0]
        return inference.Predictor(catalog.load_trained(choice.key))


def clean_digit(mnist_test, shipped, label: int) -> np.ndarray:
    """The first test image of `label` that the model reads right and surely when clean,
    as pen coverage (0..1). Sure is 90%: the shipped model was trained with label
    smoothing 0.1, so even a perfect digit gets about 91%, not 100%."""
    for index in np.flatnonzero(mnist_test.y_test == label):
        image = mnist_test.x_test[index]
        if shipped.predict_proba(image)[0][label] > SURE:
            return image[..., 0] / 255
    raise AssertionError(f"no clean {label} in the embedded test set")


def upload_photo(image: Image.Image, fmt: str = "JPEG") -> preprocess.UploadSteps:
    data = imagegen.encode(image, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return prepare_upload(decode_image(data, f"photo.{fmt.lower()}"), (28, 28, 1), True)


def drawn_mask(coverage: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where the pen covers at least half of a pixel, at the working copy's size."""
    small = Image.fromarray(coverage.astype(np.float32), "F").resize(
        (shape[1], shape[0]), Image.Resampling.BOX
    )
    return np.asarray(small) >= 0.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def assert_mnist_like(steps: preprocess.UploadSteps) -> None:
    x = steps.model_input[..., 0]
    row, col = reference_center_of_mass(x)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5, (row, col)
    rows, cols = np.nonzero(x > 0.1)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == 20  # fitted into MNIST's 20×20 box


# ---------------------------------------------------------------- photos of digits


@pytest.mark.parametrize("shadow", [0.0, 0.55], ids=["even light", "shadow"])
@pytest.mark.parametrize("label", [4, 7])
def test_a_12_megapixel_photo_of_a_digit_is_read_like_the_clean_digit(
    mnist_test, shipped, label, shadow
):
    # The teacher's cases: a photographed 4 gave 9 (39.8%), a shadowed 7 gave 0 (96.5%).
    coverage = imagegen.stamp(clean_digit(mnist_test, shipped, label), imagegen.PHOTO_SIZE,
                              DIGIT_BOX)  # fmt: skip
    photo = imagegen.paper_photo(coverage, shadow=shadow, noise=6, seed=label)
    steps = upload_photo(photo)

    assert steps.no_digit is None and steps.inverted
    working = steps.paper.working
    assert max(working.shape) == photos.WORK_SIDE  # shrunk first
    # The ink found is the strokes drawn: nothing of the shadow, the lamp's fall-off or
    # the grain, and the strokes whole.
    assert iou(steps.paper.strokes, drawn_mask(coverage, working.shape)) > 0.8
    assert_mnist_like(steps)
    probs = shipped.predict_proba(steps.model_input)[0]
    assert int(np.argmax(probs)) == label, probs


@pytest.mark.parametrize("label", [1, 8])
def test_a_marker_digit_filling_the_frame_is_read(mnist_test, shipped, label):
    # Strokes wider than the lighting's window: the paper's estimate dips under them, as
    # under a blob, but they stay strokes.
    size = (1200, 900)
    coverage = imagegen.stamp(clean_digit(mnist_test, shipped, label), size, (0.15, 0.0, 1.0))
    steps = upload_photo(imagegen.paper_photo(coverage, shadow=0.4, noise=5))
    assert steps.no_digit is None
    assert int(np.argmax(shipped.predict_proba(steps.model_input)[0])) == label


def test_a_fine_pen_seven_is_thickened_to_mnist_strokes_and_read(shipped):
    coverage = imagegen.pen_strokes(SEVEN_STROKES, 0.006, imagegen.PHOTO_SIZE)
    steps = upload_photo(imagegen.paper_photo(coverage, shadow=0.6, noise=5, seed=3))

    assert steps.no_digit is None
    fitted = steps.digit.fitted >= 128
    # MNIST's strokes are 10-22% of the digit's longer side (5th-95th percentile); the
    # pen's 0.6% of the page would have become a faint hairline in 20×20.
    assert 0.10 <= photos.stroke_thickness(fitted) / max(fitted.shape) <= 0.25
    assert_mnist_like(steps)
    assert int(np.argmax(shipped.predict_proba(steps.model_input)[0])) == 7


def test_a_small_mnist_digit_upload_is_left_as_it_was(mnist_test, shipped):
    # Light ink on black at 28×28, as the dataset's own files: no paper to remove.
    image = (clean_digit(mnist_test, shipped, 3) * 255).astype(np.uint8)
    steps = upload_photo(Image.fromarray(image), "PNG")
    assert not steps.inverted and steps.no_digit is None
    reference = preprocess.prepare_digit(image).model_input
    assert np.abs(steps.model_input - reference).mean() < 0.03


def test_a_big_photo_is_processed_in_well_under_a_second():
    coverage = imagegen.pen_strokes(SEVEN_STROKES, 0.02, imagegen.PHOTO_SIZE)
    image = decode_image(imagegen.encode(imagegen.paper_photo(coverage, noise=5), "JPEG"))
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        prepare_upload(image, (28, 28, 1), True)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.6, timings


# ------------------------------------------------------------ pictures of no digit


def blank_page(noise: float = 0.0, shadow: float = 0.0) -> Image.Image:
    width, height = imagegen.PHOTO_SIZE
    return imagegen.paper_photo(np.zeros((height, width), np.float32), noise=noise,
                                shadow=shadow, seed=5)  # fmt: skip


def stripes(size=(1200, 900)) -> np.ndarray:
    """Dense ink lines over the whole page, half of it ink."""
    cols = np.arange(size[0])
    line = ((cols // 12) % 2 == 0).astype(np.float32)
    return np.tile(line, (size[1], 1))


NOT_DIGITS = {  # name: (picture, the reason it must be refused)
    "blank white": (lambda: Image.new("RGB", imagegen.PHOTO_SIZE, "white"), NoDigitKind.NO_INK),
    "blank noisy paper in a shadow": (lambda: blank_page(8, 0.5), NoDigitKind.NO_INK),
    "a single dot": (
        lambda: imagegen.paper_photo(imagegen.ink_dot(imagegen.PHOTO_SIZE), noise=5),
        NoDigitKind.TOO_SMALL,
    ),
    "a close-up of a dot": (
        lambda: imagegen.paper_photo(imagegen.ink_dot((400, 300), 0.1), noise=5),
        NoDigitKind.BLOB,
    ),
    "a close-up of a big dot": (  # wider than the lighting's window: only its rim is ink
        lambda: imagegen.paper_photo(imagegen.ink_dot((1200, 900), 0.25), noise=5, shadow=0.3),
        NoDigitKind.BLOB,
    ),
    "a scribble": (
        lambda: imagegen.paper_photo(imagegen.scribble(imagegen.PHOTO_SIZE), noise=5),
        NoDigitKind.SCATTERED,
    ),
    "a page of stripes": (lambda: imagegen.paper_photo(stripes()), NoDigitKind.TOO_MUCH_INK),
}


@pytest.mark.parametrize("name", sorted(NOT_DIGITS))
def test_a_picture_without_a_digit_says_no_digit_found(name):
    make, kind = NOT_DIGITS[name]
    steps = upload_photo(make())
    assert steps.no_digit is not None and steps.no_digit.kind == kind, steps.no_digit
    assert steps.is_empty and not steps.model_input.any()
    message = steps.no_digit.message
    assert message.startswith("No digit found: ") and message.endswith(".")


def test_specks_scattered_over_a_page_are_no_digit():
    steps = upload_photo(imagegen.paper_photo(imagegen.speckle(imagegen.PHOTO_SIZE), noise=5))
    assert steps.no_digit is not None
    assert steps.no_digit.kind in (NoDigitKind.TOO_SMALL, NoDigitKind.SCATTERED)


def test_a_digit_beside_specks_of_dust_is_still_found(mnist_test, shipped):
    size = (1200, 900)
    coverage = imagegen.stamp(clean_digit(mnist_test, shipped, 2), size, DIGIT_BOX)
    dust = imagegen.speckle(size, seed=2, count=15)  # blots too small to be ink
    rng = np.random.default_rng(4)
    for _ in range(20):  # pepper: single dark pixels of the sensor
        coverage[rng.integers(0, size[1]), rng.integers(0, size[0])] = 1
    steps = upload_photo(imagegen.paper_photo(np.maximum(coverage, dust), noise=4))
    assert steps.no_digit is None
    assert int(np.argmax(shipped.predict_proba(steps.model_input)[0])) == 2


# ---------------------------------------------------------------- the measures used


def test_otsu_threshold_maximises_the_between_class_variance():
    rng = np.random.default_rng(0)
    values = np.clip(np.concatenate([rng.normal(0.1, 0.05, 5000), rng.normal(0.7, 0.1, 800)]),
                     0, 1)  # fmt: skip
    # Reference, by hand: the cut among the 256 bin edges with the smallest weighted
    # within-class variance (which is the same as the largest between-class variance).
    best, best_cut = np.inf, None
    for cut in np.linspace(0, 1, 257)[1:-1]:
        low, high = values[values < cut], values[values >= cut]
        if low.size and high.size:
            within = low.size * low.var() + high.size * high.var()
            if within < best:
                best, best_cut = within, cut
    assert abs(photos.otsu_threshold(values) - best_cut) <= 1 / 256
    assert photos.otsu_threshold(np.full(100, 0.3)) == 1.0  # nothing to split


@pytest.mark.parametrize("width", [3, 6, 11, 20])
def test_stroke_thickness_of_a_drawn_bar(width):
    mask = np.zeros((200, 200), bool)
    mask[40:160, 90 : 90 + width] = True
    assert abs(photos.stroke_thickness(mask) - width) <= 1
    disk = np.hypot(*np.indices((61, 61)) - 30) <= 30
    assert abs(photos.stroke_thickness(disk, widest=True) - 61) <= 2


@pytest.mark.parametrize(("text", "loops"), [("1", 0), ("0", 1), ("8", 2), ("88", 4)])
def test_count_loops_counts_the_holes_of_digits(text, loops):
    image = Image.new("L", (60 * len(text), 100), 0)
    draw = ImageDraw.Draw(image)
    for i, char in enumerate(text):
        left = 60 * i
        if char == "1":
            draw.line([(left + 30, 10), (left + 30, 90)], fill=255, width=8)
        if char in "08":
            draw.ellipse([left + 10, 10, left + 50, 90 if char == "0" else 50], outline=255,
                         width=6)  # fmt: skip
        if char == "8":
            draw.ellipse([left + 8, 48, left + 52, 92], outline=255, width=6)
    assert photos.count_loops(np.asarray(image) > 0, min_area=20) == loops
