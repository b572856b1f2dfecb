"""The Predict page: drawing, uploading and the gallery (AppTest), and the canvas in Chromium."""

import base64
import json
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from devtools.browser import digit_one_png, poll_until, stroke_points
from tests import imagegen
from tests.factories import REPO, open_page
from tests.imagegen import encode


def draw_on_canvas(at: AppTest, png: bytes) -> AppTest:
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    at.session_state["canvas-0"] = {
        "drawing": {"raw": {"objects": []}, "data": url},
        "backgroundFit": None,
    }
    return at.run()


def test_empty_canvas_shows_a_hint_not_a_prediction(lab_home):
    at = open_page("predict")
    assert not at.exception
    assert any("Draw a digit" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Prediction"]
    assert "shipped model" in at.caption[0].value


def test_a_drawn_one_is_predicted_with_every_step_shown(lab_home):
    at = draw_on_canvas(open_page("predict"), digit_one_png())
    assert not at.exception
    prediction = next(m for m in at.metric if m.label == "Prediction")
    assert prediction.value == "1"
    captions = [img.captions[0] for img in at.get("image")]
    assert captions[:4] == ["canvas", "cropped", "20×20 fit", "28×28 centred"]
    # The bars: one per class in class order, the tallest the predicted one at its percentage.
    (chart,) = at.get("vega_lite_chart")
    bars = convert_arrow_bytes_to_pandas_df(chart.proto.data.data)
    assert list(bars["class"]) == [str(digit) for digit in range(10)]
    tallest = bars.loc[bars["probability"].idxmax()]
    assert tallest["class"] == "1"
    assert not prediction.delta  # no arrow: the certainty is not a change
    sentence = next(c.value for c in at.caption if c.value.startswith("The model must answer"))
    assert f"1 at {tallest['probability']:.1%}" in sentence
    assert json.loads(chart.proto.spec)["encoding"]["x"]["field"] == "probability"


def test_a_dot_on_the_canvas_is_not_blown_up_into_a_digit(lab_home):
    # It was enlarged to a disk and read as 0 (96.8%).
    dot = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(dot).ellipse([130, 130, 150, 150], fill=(255, 255, 255, 255))
    at = draw_on_canvas(open_page("predict"), encode(dot, "PNG"))
    assert not at.exception
    assert at.warning[0].value.startswith("No digit found: the drawing is one solid blob")
    assert not [m for m in at.metric if m.label == "Prediction"]


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    mime = {"png": "image/png", "jpg": "image/jpeg"}
    chosen = [(name, data, mime[name.rsplit(".", 1)[1]]) for name, data in files]
    return at.file_uploader(key="uploads").set_value(chosen).run()


def chart_bars(chart) -> dict[str, float]:
    bars = convert_arrow_bytes_to_pandas_df(chart.proto.data.data)
    return dict(zip(bars["class"], bars["probability"], strict=True))


def test_uploads_predict_with_bars_and_steps_and_bad_files_get_a_message(lab_home):
    paper = digit_one_png(ink=(20, 20, 20, 255), paper=(250, 250, 250, 255))  # dark on light
    at = upload(open_page("predict"), ("one.png", paper), ("notes.png", b"not an image at all"))
    assert not at.exception
    assert "notes.png" in at.error[0].value
    predictions = [m.value for m in at.metric if m.label == "Prediction"]
    assert predictions == ["1"]
    # As on the Draw tab: every class's bar, and the steps the picture went through.
    (chart,) = at.get("vega_lite_chart")
    bars = chart_bars(chart)
    assert list(bars) == [str(digit) for digit in range(10)] and max(bars, key=bars.get) == "1"
    captions = [img.captions[0] for img in at.get("image")]
    assert captions[:5] == ["photo (grey)", "paper removed", "ink", "cropped", "28×28 centred"]
    assert any("turned into light on dark" in m.value for m in at.markdown)
    assert any(c.value.startswith("The model must answer with one of its 10") for c in at.caption)


def test_a_shadowed_photo_of_a_seven_is_read_as_seven(lab_home):
    from cnn_core.data import datasets

    ds = datasets.load_dataset("mnist", source="embedded")
    seven = ds.x_test[int(np.flatnonzero(ds.y_test == 7)[0])][..., 0] / 255
    size = (1600, 1200)
    photo = imagegen.paper_photo(imagegen.stamp(seven, size, (0.35, 0.3, 0.4)), shadow=0.55,
                                 noise=6)  # fmt: skip
    at = upload(open_page("predict"), ("seven.jpg", encode(photo, "JPEG", quality=90)))
    assert not at.exception and not at.warning
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["7"]
    assert len(at.get("vega_lite_chart")) == 1


def test_a_blank_page_says_no_digit_found_instead_of_a_prediction(lab_home):
    blank = encode(Image.new("RGB", (800, 600), (250, 250, 250)), "JPEG")
    at = upload(open_page("predict"), ("blank.jpg", blank))
    assert not at.exception and not at.error
    assert at.warning[0].value.startswith("No digit found: the picture is blank paper")
    assert not [m for m in at.metric if m.label == "Prediction"]
    assert not at.get("vega_lite_chart")
    assert [img.captions[0] for img in at.get("image")][:2] == ["photo (grey)", "paper removed"]
    assert "inspect_input" not in at.session_state


def test_gallery_marks_right_and_wrong_answers(lab_home):
    at = open_page("predict")
    captions = [img.captions[0] for img in at.get("image")]
    assert len(captions) == 16
    assert all(c[0] in "✓✗" for c in captions)
    assert sum(c.startswith("✓") for c in captions) >= 12  # the shipped model is ~99% right
    # Each tile names its guess, certainty and label the same way, so a mistake's tile
    # wraps like the others (it was one line longer).
    for caption in captions:
        mark, guess, percent, dot, is_, truth = caption.split(" ")
        assert (mark == "✓") == (guess == truth) and (dot, is_) == ("·", "is")
    assert len({len(c) for c in captions if not c.split(" ")[2].startswith("100")}) == 1


def test_a_stroke_predicts_the_drawing_but_not_the_gallery_again(lab_home, monkeypatch):
    from cnn_core.explain import inference

    batches = []
    predict_in_batches = inference.predict_in_batches

    def counted(model, x, *args, **kwargs):
        batches.append(len(x))
        return predict_in_batches(model, x, *args, **kwargs)

    monkeypatch.setattr(inference, "predict_in_batches", counted)
    at = open_page("predict")
    before = [img.captions[0] for img in at.get("image")]
    assert batches == [16]
    at = draw_on_canvas(at, digit_one_png())
    assert next(m for m in at.metric if m.label == "Prediction").value == "1"
    assert batches == [16]
    assert [img.captions[0] for img in at.get("image")][-16:] == before
    at.button(key="gallery_shuffle").click().run()
    assert batches == [16, 16]


def test_a_dataset_without_models_says_where_to_train(tiny):
    at = open_page("predict", tiny)  # an own dataset, ready to train on, with no run yet
    assert not at.exception
    assert "No trained model" in at.info[0].value and "Train page" in at.info[0].value


def fashion_picture(label: int) -> np.ndarray | None:
    """The first Fashion-MNIST test image of a class, or None where the files are not here."""
    from cnn_core.data import datasets

    if not datasets.is_available("fashion_mnist"):
        return None
    ds = datasets.load_dataset("fashion_mnist")
    return ds.x_test[int(np.flatnonzero(ds.y_test == label)[0]), ..., 0]


def predict_without_fashion_files(monkeypatch, tmp_path, picture: np.ndarray) -> AppTest:
    """The Predict page on Fashion-MNIST with none of its sources on this computer (no
    Debian package; the lab's data folder and Keras cache are lab_home's empty ones), after
    uploading `picture`."""
    from cnn_core.data import datasets

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", tmp_path / "none")
    assert not datasets.is_available("fashion_mnist")
    at = open_page("predict", "fashion_mnist")
    assert at.session_state["chosen_model"] == "pretrained:fashion_mnist"
    return upload(at, ("clothes.png", encode(Image.fromarray(picture), "PNG")))


def test_the_shipped_fashion_model_predicts_uploads_without_the_fashion_files(
    lab_home, tmp_path, monkeypatch
):
    from cnn_core.data import datasets

    dress = fashion_picture(3)
    if dress is None:  # a drawn dress: a light trapezoid on black
        dress = np.zeros((28, 28), np.uint8)
        for row in range(3, 26):
            half = 3 + row // 4
            dress[row, 14 - half : 14 + half] = 190
    at = predict_without_fashion_files(monkeypatch, tmp_path, dress)
    assert not at.exception and not at.error
    (prediction,) = [m.value for m in at.metric if m.label == "Prediction"]
    assert prediction in datasets.FASHION_CLASSES
    (chart,) = at.get("vega_lite_chart")
    assert list(chart_bars(chart)) == list(datasets.FASHION_CLASSES)
    assert any("test images are not available" in i.value for i in at.info)  # the gallery


def test_a_fashion_mnist_test_image_uploaded_is_read_as_its_class(lab_home, tmp_path, monkeypatch):
    trousers = fashion_picture(1)
    if trousers is None:
        pytest.skip("no Fashion-MNIST here")
    at = predict_without_fashion_files(monkeypatch, tmp_path, trousers)
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["Trouser"]
    # The same trousers as a photo of dark cloth on white paper: turned light on dark.
    at = predict_without_fashion_files(monkeypatch, tmp_path, 255 - trousers)
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["Trouser"]
    assert any("turned light on dark" in m.value for m in at.markdown)


def test_an_unavailable_dataset_says_how_to_get_it_not_only_to_train(
    lab_home, tmp_path, monkeypatch
):
    from cnn_core.data import datasets
    from cnn_core.models import shipped

    monkeypatch.setattr(datasets, "is_available", lambda name: name != "cifar10")
    # Every built-in dataset ships a model: without the shipped files (a copy of the lab
    # without assets/pretrained/), CIFAR-10 has none, and no images here to train one.
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path / "no-shipped-models")
    at = open_page("predict", "cifar10")
    assert not at.exception
    message = at.info[0].value
    assert datasets.download_hint("cifar10") in message
    assert "not on this computer" in message


def test_a_model_that_is_not_a_digit_model_sends_drawings_to_upload(replay_run):
    # The run's model reads 12×12 images of three bands: the canvas would feed it nonsense.
    at = open_page("predict", "user:tiny")
    assert at.session_state["chosen_model"] == f"run:{replay_run}"
    assert any("Use Upload for this model" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Prediction"]
    band = np.zeros((12, 12), np.uint8)
    band[4:8, :] = 240  # the middle band: class "b"
    png = encode(Image.fromarray(band), "PNG")
    at = upload(at, ("band.png", png))
    assert not at.exception and not at.error and not at.warning
    assert [m.value for m in at.metric if m.label == "Prediction"] == ["b"]
    (chart,) = at.get("vega_lite_chart")
    assert max(chart_bars(chart), key=chart_bars(chart).get) == "b"
    assert [img.captions[0] for img in at.get("image")][:2] == ["upload", "model input"]
    # Nothing about digits or ink for a model of other pictures.
    upload_text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "digit" not in upload_text.replace("Use Upload", "") and "ink" not in upload_text


@pytest.mark.browser
def test_drawing_a_one_in_chromium_shows_the_prediction(app_server, page):
    page.goto(app_server["url"] + "/predict")
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for()
    first, *rest = stroke_points(canvas.bounding_box())
    page.mouse.move(*first)
    page.mouse.down()
    for point in rest:
        page.mouse.move(*point)
    page.mouse.up()
    page.get_by_text("What the model receives").wait_for(timeout=30_000)
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    metric.wait_for()
    assert metric.locator("[data-testid='stMetricValue']").inner_text().strip() == "1"
    page.get_by_test_id("stSidebarUserContent").get_by_text("Dataset").wait_for()  # app.py ran
    page.locator(".vega-embed canvas, .vega-embed svg").first.wait_for()  # the probability bars


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> list[tuple[float, float]]:
    return [(cx + rx * math.sin(2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
            for i in range(n + 1)]  # fmt: skip


# One pen stroke per digit, as a learner draws it, in fractions of the canvas: the digit it
# is meant to be is the reference, not what some model once answered.
DRAWN_DIGITS = {
    "0": ellipse(0.5, 0.5, 0.2, 0.3),
    "2": [(0.3, 0.32), (0.38, 0.22), (0.52, 0.18), (0.66, 0.24), (0.68, 0.36), (0.3, 0.8),
          (0.72, 0.8)],
    "4": [(0.62, 0.82), (0.62, 0.18), (0.28, 0.6), (0.76, 0.6)],
    "7": [(0.3, 0.22), (0.7, 0.22), (0.45, 0.82)],
}  # fmt: skip


def draw_stroke(page, box: dict, points: list[tuple[float, float]], steps: int = 6) -> None:
    """The mouse pressed along the points, with steps between each pair (as a hand moves)."""
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=steps)
    page.mouse.up()


@pytest.mark.browser
@pytest.mark.parametrize("digit", list(DRAWN_DIGITS))
def test_hand_drawn_digits_in_chromium_are_read_as_drawn(app_server, page, digit):
    page.goto(app_server["url"] + "/predict")
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for()
    draw_stroke(page, canvas.bounding_box(), DRAWN_DIGITS[digit])
    page.get_by_text("What the model receives").wait_for(timeout=30_000)
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    metric.wait_for()
    assert metric.locator("[data-testid='stMetricValue']").inner_text().strip() == digit


@pytest.mark.browser
def test_uploading_a_digit_in_chromium_shows_its_prediction(app_server, page, tmp_path):
    path = tmp_path / "digit.png"
    path.write_bytes(digit_one_png(ink=(0, 0, 0, 255), paper=(255, 255, 255, 255)))
    page.goto(app_server["url"] + "/predict")
    page.get_by_role("tab", name="Upload").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
    page.get_by_text("digit.png").first.wait_for()
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    metric.wait_for(timeout=30_000)
    assert metric.locator("[data-testid='stMetricValue']").inner_text().strip() == "1"
    page.get_by_text("paper removed").wait_for()


def test_the_chosen_model_is_kept_across_pages_and_shown_in_the_sidebar(lab_home):
    at = open_page("predict")
    model_key = at.session_state["chosen_model"]
    assert model_key.startswith("pretrained:")
    at.switch_page("pages/evaluate.py").run()
    assert at.selectbox(key="evaluate_model").value == model_key
    # AppTest drops the sidebar after switch_page, so check it on a fresh run of app.py
    # that carries the same session values.
    home = AppTest.from_file(str(REPO / "app.py"), default_timeout=90)
    for name in ("dataset", "chosen_model", "chosen_model_label", "chosen_model_dataset"):
        home.session_state[name] = at.session_state[name]
    home.run()
    assert any(c.value.startswith("Model: Pretrained") for c in home.sidebar.caption)
    # On another dataset that model is not the one in use: the sidebar does not name it.
    home.session_state["dataset"] = "fashion_mnist"
    home.run()
    assert not [c.value for c in home.sidebar.caption if c.value.startswith("Model:")]


@pytest.mark.browser
def test_switching_to_a_dataset_of_images_names_its_model_and_sends_drawings_to_upload(
    app_server, page, monkeypatch
):
    # A trained run on 12×12 images of bands, in the running server's lab home.
    from tests.factories import train_tiny_run

    monkeypatch.setenv("CNN_LAB_HOME", str(app_server["home"]))
    train_tiny_run(epochs=1)
    page.goto(app_server["url"] + "/predict")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Model: Pretrained").wait_for(timeout=60_000)
    sidebar.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="Own images: tiny").click()
    page.get_by_text("Use Upload for this model").wait_for(timeout=60_000)
    # The same run's sidebar names the new dataset's model, not the digit model from before.
    sidebar.get_by_text("Model: Your run").wait_for()
    assert sidebar.get_by_text("Model: Pretrained").count() == 0


@pytest.mark.browser
def test_every_gallery_tile_is_the_same_size_in_chromium(app_server, page):
    # A mistake's tile was larger: Streamlit sized each image by its caption's width.
    page.goto(app_server["url"] + "/predict")
    page.get_by_role("tab", name="Test gallery").click()
    images = page.get_by_role("tabpanel").locator("[data-testid='stImageContainer'] img")
    poll_until(lambda: images.count() == 16, 60, "the 16 gallery images")
    poll_until(lambda: all(images.nth(i).evaluate("i => i.complete") for i in range(16)), 30,
               "the gallery images loaded")  # fmt: skip
    sizes = {(round(b["width"]), round(b["height"])) for b in
             (images.nth(i).bounding_box() for i in range(16))}  # fmt: skip
    assert sizes == {(84, 84)}, sizes


def test_look_inside_an_upload_opens_the_whole_network_on_that_image(lab_home):
    paper = digit_one_png(ink=(20, 20, 20, 255), paper=(250, 250, 250, 255))
    at = upload(open_page("predict"), ("one.png", paper))
    kept_name, _ = at.session_state["inspect_input"]
    at.button(key="look_inside-0").click().run()
    assert not at.exception
    assert at.session_state["inspect_tab"] == "The whole network"
    assert at.radio(key="inspect_source").value == "drawing"
    assert any(c.startswith(f"your image ({kept_name})") for img in at.get("image")
               for c in img.captions)  # fmt: skip
    assert any(s.value == "Every number behind one unit" for s in at.subheader)
