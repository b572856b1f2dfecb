"""Photos of digits on paper: separating ink from paper, and saying when no digit is there.

Lighting is evened out by a closing, ink is what lies above the paper's grain (Otsu),
specks are dropped, fine pens thickened to MNIST's stroke; blank pages, dots, blobs and
scribbles are "No digit found".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image
from scipy import ndimage  # installed with scikit-learn, which requires it

MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for Gaussian noise

BBox = tuple[int, int, int, int]  # (top, left, bottom, right); bottom and right exclusive


# ------------------------------------------------------------------- photos of digits
#
# A photo of a digit on paper is not a canvas: the paper is grey and unevenly lit (a
# shadow across the page), the sensor adds noise, and the picture may hold no digit at all.
# `separate_ink` does what a scanner does before a digit is cut out: it estimates the
# paper's lighting, divides it out, thresholds the result (Otsu, never below the paper's
# noise), keeps the digit's strokes and refuses what cannot be a digit.

WORK_SIDE = 768  # longer side of the working copy: strokes survive, 12 MP photos stay fast
LIGHTING_KERNEL = 0.15  # closing window, of the shorter side: wider than any pen stroke
BLUR_FROM_SIDE = 200  # working copies this large are blurred by one pixel against grain
MIN_CONTRAST = 0.2  # ink is at least 20% darker than the paper around it
NOISE_FLOOR_SIGMAS = 6  # and further from the paper's level than its grain reaches (the
# grain is measured after a blur that correlates neighbours, which hides some of it)
SOFT_EDGE_SIGMAS = 3  # the strokes' soft edges start this far above the paper's grain
PAPER_PERCENTILE = 25  # of the contrast: paper covers more than this of any digit's photo
SPECK_SIDE = 0.01  # pieces smaller than (1% of the shorter side)² are dust, not ink
MIN_SPECK_PIXELS = 4
JOIN_MARGIN = 0.25  # a piece this near the digit (of its longer side) belongs to it
MIN_DIGIT_SIDE = 0.05  # of the image's shorter side; below it the ink is a dot
MIN_DIGIT_PIXELS = 6
MAX_BLOB_THICKNESS = 0.5  # a stroke thicker than half the digit's size is a blob
MAX_PIECES = 6  # a digit is written in at most a few strokes
MAX_INK_OUTSIDE = 0.5  # more ink elsewhere than in the digit: a page of scribbles or text
MAX_LOOPS = 2  # an 8 has two enclosed holes; a scribble has many
MIN_LOOP_AREA = 0.004  # of the digit's box: smaller holes are gaps in the ink, not loops
HOLE_RIM = 3  # at least this many pixels of paper around the digit are compared with it
MAX_INK_FRACTION = 0.4  # a digit leaves most of the picture to the paper
MNIST_STROKE = 0.15  # MNIST's median stroke is ~16% of the digit's longer side
THIN_STROKE = 0.11  # strokes thinner than this (a fine pen) are thickened to MNIST_STROKE
INK_LEVEL_PERCENTILE = 90  # of the strokes' contrast: mapped to full white


class NoDigitKind(StrEnum):
    """Why an image holds no digit a digit model could read."""

    NO_INK = "no ink"
    TOO_SMALL = "too small"
    BLOB = "a blob, not strokes"
    SCATTERED = "scattered"
    TOO_MUCH_INK = "too much ink"


NO_DIGIT_ADVICE = {
    NoDigitKind.NO_INK: (
        "the picture is blank paper, with nothing darker than the paper around it. "
        "Write the digit with a darker pen, or photograph it closer."
    ),
    NoDigitKind.TOO_SMALL: (
        "the only ink is a dot or specks, too small to be a digit. Write the digit larger, "
        "or photograph it so that it fills most of the frame."
    ),
    NoDigitKind.BLOB: (
        "the ink is one solid blob, not the strokes of a digit. Write the digit with a pen "
        "line, not a filled shape."
    ),
    NoDigitKind.SCATTERED: (
        "the ink is scattered over the picture in many pieces or loops (a scribble, text or "
        "a pattern), not one digit. Photograph one digit on plain paper, filling the frame."
    ),
    NoDigitKind.TOO_MUCH_INK: (
        "most of the picture is dark, so ink and paper cannot be told apart. Photograph a "
        "digit on plain, light paper (or draw it light on a dark background)."
    ),
}


DRAWING_ADVICE = {  # the same reasons, said to someone drawing on the canvas
    NoDigitKind.NO_INK: "nothing is drawn yet. Draw a digit on the black square.",
    NoDigitKind.TOO_SMALL: "the drawing is a dot, too small to be a digit. Draw the digit "
    "larger, filling most of the square.",
    NoDigitKind.BLOB: "the drawing is one solid blob, not the strokes of a digit. Draw the "
    "digit as a line (Clear, then draw again).",
    NoDigitKind.SCATTERED: "the drawing is a scribble of many pieces or loops, not one digit. "
    "Clear it and draw one digit.",
    NoDigitKind.TOO_MUCH_INK: "most of the square is covered in ink. Clear it and draw one "
    "digit with a thinner stroke.",
}


@dataclass(frozen=True)
class NoDigit:
    """A typed "no digit found": what is wrong and what to do, for the page to show.

    Attributes:
        kind: the reason, for code and tests.
        message: one sentence for the learner ("No digit found: …").
    """

    kind: NoDigitKind

    @property
    def message(self) -> str:
        """What to tell someone who uploaded a picture."""
        return f"No digit found: {NO_DIGIT_ADVICE[self.kind]}"

    @property
    def drawing_message(self) -> str:
        """What to tell someone drawing on the canvas."""
        return f"No digit found: {DRAWING_ADVICE[self.kind]}"


@dataclass(frozen=True, eq=False)
class InkSteps:
    """How the ink was separated from the paper of a photo, for display.

    Attributes:
        working: (h, w) uint8 grayscale, the upload shrunk to at most WORK_SIDE.
        paper_removed: (h, w) uint8, how much darker than the paper (or, for light ink on
            a dark ground, brighter than the ground) each pixel is; light on black.
        strokes: (h, w) bool, the pixels found to be the digit's ink (above the
            threshold, dust and stray marks left out); all False when no digit is found.
        ink: (h, w) uint8, the digit's strokes alone, light on black, thickened to
            MNIST's stroke width when they were thinner; all zeros when no digit is found.
        threshold: the contrast (0..1) above which a pixel counted as ink.
        no_digit: why no digit was found; None when one was.
    """

    working: np.ndarray
    paper_removed: np.ndarray
    strokes: np.ndarray
    ink: np.ndarray
    threshold: float
    no_digit: NoDigit | None


def separate_ink(gray: np.ndarray, dark_on_light: bool) -> InkSteps:
    """Separate a digit's ink from the paper of a photo, or say why there is no digit.

    Args:
        gray: (H, W) uint8 grayscale photo or scan, any size.
        dark_on_light: the ink is darker than its background (a pen on paper).

    Returns:
        The InkSteps; `ink` is ready for `prepare_digit` when `no_digit` is None.
    """
    working = _shrink(np.asarray(gray, np.uint8), WORK_SIDE)
    contrast, paper = _contrast_to_paper(working, dark_on_light)
    threshold = _ink_threshold(contrast)
    pieces = _ink_pieces(contrast > threshold, min(working.shape))
    digit, verdict = _find_digit(pieces, working.shape)
    if verdict is None and _paper_dips_under(digit, paper, dark_on_light):
        verdict = NoDigit(NoDigitKind.BLOB)
    paper_removed = _to_uint8(contrast)
    if verdict is not None:
        none = np.zeros(working.shape, bool)
        return InkSteps(working, paper_removed, none, np.zeros_like(working), threshold, verdict)
    ink = _stroke_image(contrast, digit)
    return InkSteps(working, paper_removed, _pen_edges(contrast, digit), ink, threshold, None)


def _paper_dips_under(digit: np.ndarray, paper: np.ndarray, dark_on_light: bool) -> bool:
    """Whether the paper's estimate under the digit is darker than anywhere around it, in a
    blob's shape: then a blob wider than the lighting's window was taken for paper, and only its rim
    was left as ink (which reads as a 0). A shadow across a digit also reaches the paper
    around it, so it does not dip under the digit alone.
    """
    rows, cols = np.nonzero(digit)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    rim = max(HOLE_RIM, round(0.1 * max(bottom - top, right - left)))
    around = np.zeros(paper.shape, bool)
    around[max(top - rim, 0) : bottom + rim, max(left - rim, 0) : right + rim] = True
    around[top:bottom, left:right] = False
    if not around.any():  # the digit fills the picture: nothing to compare with
        return False
    level = paper if dark_on_light else 255 - paper  # light ink: the ground rises instead
    darkest_around = float(np.percentile(level[around], 5))
    dip = level[top:bottom, left:right] < (1 - MIN_CONTRAST) * darkest_around
    if not dip.any():
        return False
    # The ink and the dip together are the blob: as thick as it is wide. A thick bar (a
    # marker's 1 filling the frame) dips too, but stays a stroke.
    shape = dip | digit[top:bottom, left:right]
    side = max(bottom - top, right - left)
    return stroke_thickness(shape, widest=True) > MAX_BLOB_THICKNESS * side


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    height, width = gray.shape
    scale = side / max(height, width)
    if scale >= 1:
        return gray
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap first averages whole blocks (fast for 12 MP photos); the averaging keeps
    # thin strokes as fainter lines instead of skipping them.
    return np.asarray(
        Image.fromarray(gray).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    )


def _contrast_to_paper(gray: np.ndarray, dark_on_light: bool) -> tuple[np.ndarray, np.ndarray]:
    """0..1 float32: how far each pixel is from the local paper (or ground), toward ink;
    and the paper's estimated brightness.

    Paper's lighting multiplies its brightness (a shadow halves paper and ink alike), so a
    pen on paper is measured as 1 - pixel / paper. The paper is estimated by a grey closing
    (dilation, then erosion) with a window wider than any stroke: it removes the dark
    strokes and keeps the slow change of the lighting, as a scanner's background
    estimation does. Light ink on a dark ground uses an opening and a difference instead.
    """
    values = gray.astype(np.float32)
    if min(gray.shape) >= BLUR_FROM_SIDE:
        values = ndimage.gaussian_filter(values, 1.0)
    background = _background(values, closing=dark_on_light)
    if dark_on_light:
        contrast = 1 - values / np.maximum(background, 1)
    else:
        contrast = (values - background) / np.maximum(255 - background, 1)
    return np.clip(contrast, 0, 1).astype(np.float32), background


def _background(values: np.ndarray, closing: bool) -> np.ndarray:
    # At full working size, not on a shrunken copy: averaging cells first would turn
    # dense hatching or text into an even grey "paper". Square windows make the closing
    # two 1-D passes per direction, so it costs a few milliseconds.
    window = max(3, round(LIGHTING_KERNEL * min(values.shape)))
    morph = ndimage.grey_closing if closing else ndimage.grey_opening
    # Mirrored at the edges: a shadow's corner there keeps its width, and is not filled in
    # as if it were a stroke.
    return morph(values, size=(window, window), mode="reflect")


def _ink_threshold(contrast: np.ndarray) -> float:
    """Otsu's threshold on the contrast, but never within the paper's own grain."""
    floor = _paper_level(contrast) + max(MIN_CONTRAST, NOISE_FLOOR_SIGMAS * _grain(contrast))
    return max(otsu_threshold(contrast), floor)


def _paper_level(contrast: np.ndarray) -> float:
    # A low quantile rather than the median: a page of dense ink (which is then refused
    # as too much ink) must not move the paper's level up to the ink's.
    return float(np.percentile(contrast, PAPER_PERCENTILE))


def _grain(contrast: np.ndarray) -> float:
    """The paper's noise (standard deviation), from the differences of neighbouring
    pixels, which even areas of ink and the edges of strokes hardly change."""
    steps = np.abs(np.diff(contrast, axis=1))
    return MAD_TO_SIGMA * float(np.median(steps)) / np.sqrt(2) if steps.size else 0.0


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the cut that maximises the between-class
    variance of the two sides.

    Args:
        values: an array of floats in [0, 1].
        bins: histogram bins.

    Returns:
        The threshold; values above it form the upper class. 1.0 for a constant image.
    """
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    if between.max(initial=-1.0) <= 0:
        return 1.0
    return float(edges[int(np.argmax(between)) + 1])


@dataclass(frozen=True)
class _Pieces:
    """The connected pieces of ink after the dust is removed."""

    labels: np.ndarray  # (h, w) int32, 0 for paper
    areas: np.ndarray  # area of piece i + 1
    boxes: list[BBox]  # bounding box of piece i + 1
    had_ink: bool  # some ink was found, perhaps only dust


def _ink_pieces(mask: np.ndarray, shorter_side: int) -> _Pieces:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    speck = max(MIN_SPECK_PIXELS, (SPECK_SIDE * shorter_side) ** 2)
    keep = np.flatnonzero(areas >= speck) + 1
    relabel = np.zeros(count + 1, np.int32)
    relabel[keep] = np.arange(1, keep.size + 1)
    labels = relabel[labels]
    slices = ndimage.find_objects(labels)
    boxes = [(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in slices]
    return _Pieces(labels, areas[keep - 1], boxes, bool(count))


def _find_digit(pieces: _Pieces, shape: tuple[int, int]) -> tuple[np.ndarray, NoDigit | None]:
    """The digit's mask (the largest piece and the pieces near it), or why there is none."""
    empty = np.zeros(shape, bool)
    if not pieces.boxes:
        return empty, NoDigit(NoDigitKind.TOO_SMALL if pieces.had_ink else NoDigitKind.NO_INK)
    if pieces.areas.sum() > MAX_INK_FRACTION * shape[0] * shape[1]:
        return empty, NoDigit(NoDigitKind.TOO_MUCH_INK)
    members = _digit_members(pieces)
    digit = np.isin(pieces.labels, np.asarray(members) + 1)
    box = _union_box([pieces.boxes[i] for i in members])
    side = max(box[2] - box[0], box[3] - box[1])
    verdict = _judge_digit(digit[box[0] : box[2], box[1] : box[3]], side, min(shape))
    inside = pieces.areas[members].sum()
    if verdict is None and (
        len(members) > MAX_PIECES or pieces.areas.sum() - inside > MAX_INK_OUTSIDE * inside
    ):
        verdict = NoDigit(NoDigitKind.SCATTERED)
    return digit, verdict


def _digit_members(pieces: _Pieces) -> list[int]:
    """The largest piece, grown by every piece whose box comes near the digit's box."""
    members = [int(np.argmax(pieces.areas))]
    grown = True
    while grown:
        box = _union_box([pieces.boxes[i] for i in members])
        margin = JOIN_MARGIN * max(box[2] - box[0], box[3] - box[1])
        near = [
            i for i, other in enumerate(pieces.boxes)
            if i not in members and _boxes_near(box, other, margin)
        ]  # fmt: skip
        members += near
        grown = bool(near)
    return members


def _boxes_near(box: BBox, other: BBox, margin: float) -> bool:
    return (
        other[0] < box[2] + margin and other[2] > box[0] - margin
        and other[1] < box[3] + margin and other[3] > box[1] - margin
    )  # fmt: skip


def _union_box(boxes: list[BBox]) -> BBox:
    return (
        min(b[0] for b in boxes), min(b[1] for b in boxes),
        max(b[2] for b in boxes), max(b[3] for b in boxes),
    )  # fmt: skip


def _judge_digit(digit: np.ndarray, side: int, shorter_side: int) -> NoDigit | None:
    """Whether the ink cut out to its box could be a digit; None when it could."""
    if side < max(MIN_DIGIT_PIXELS, MIN_DIGIT_SIDE * shorter_side):
        return NoDigit(NoDigitKind.TOO_SMALL)
    if stroke_thickness(digit, widest=True) > MAX_BLOB_THICKNESS * side:
        return NoDigit(NoDigitKind.BLOB)
    if count_loops(digit, MIN_LOOP_AREA * digit.size) > MAX_LOOPS:
        return NoDigit(NoDigitKind.SCATTERED)
    return None


def stroke_thickness(mask: np.ndarray, widest: bool = False) -> float:
    """The width of the strokes of a binary image, in pixels.

    From the distance of each ink pixel to the paper: along a stroke's middle line it is
    half the stroke's width.

    Args:
        mask: (h, w) bool, the ink.
        widest: the widest place (a blob's diameter) instead of the typical stroke.

    Returns:
        The width; 0 for no ink.
    """
    if not mask.any():
        return 0.0
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))
    if widest:
        return 2 * float(distance.max())
    ridge = (distance == ndimage.maximum_filter(distance, size=3)) & (distance > 0)
    # A middle-line pixel's distance reaches the first paper pixel, half a pixel past the
    # stroke's edge on each side for odd widths and none for even ones: -0.5 on average.
    return 2 * float(np.median(distance[ridge])) - 0.5


def count_loops(mask: np.ndarray, min_area: float) -> int:
    """How many holes of at least `min_area` pixels the ink encloses (an 8 has two)."""
    paper, count = ndimage.label(~np.pad(mask, 1))  # 4-connected paper around 8-connected ink
    areas = np.bincount(paper.ravel(), minlength=count + 1)
    outside = paper[0, 0]
    return int(sum(1 for i in range(1, count + 1) if i != outside and areas[i] >= min_area))


def _stroke_image(contrast: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The digit alone, light on black, with strokes as wide as MNIST's when thinner.

    The contrast is kept (its soft edges are the antialiasing) within a pixel of the
    chosen strokes, so the rest of the page is black; a fine pen's strokes are widened,
    since a network trained on MNIST never saw a digit drawn in hairlines.
    """
    rows, cols = np.nonzero(digit)
    side = max(np.ptp(rows), np.ptp(cols)) + 1
    level = _ink_level(contrast, digit)
    # The paper's grain is taken off, so the pixels around a stroke stay black.
    paper = _paper_level(contrast) + SOFT_EDGE_SIGMAS * _grain(contrast)
    soft = np.clip((contrast - paper) / max(level - paper, 1e-6), 0, 1)
    near = ndimage.binary_dilation(digit, structure=np.ones((3, 3), bool))
    ink = soft * near
    width = stroke_thickness(digit)
    if width < THIN_STROKE * side:
        radius = (MNIST_STROKE * side - max(width, 1)) / 2
        widened = ndimage.distance_transform_edt(~digit) <= radius
        ink = np.maximum(ink, widened)
    return _to_uint8(ink)


def _pen_edges(contrast: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The digit's pieces cut at half the ink's contrast, where a pen covers half of a
    pixel (Otsu's cut, made for finding the pieces, lies nearer the paper)."""
    half = (_paper_level(contrast) + _ink_level(contrast, digit)) / 2
    return digit & (contrast >= half)


def _ink_level(contrast: np.ndarray, digit: np.ndarray) -> float:
    return float(np.percentile(contrast[digit], INK_LEVEL_PERCENTILE))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)
