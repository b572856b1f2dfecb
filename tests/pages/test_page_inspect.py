"""The Inspect page through AppTest, with the shipped MNIST model and a tiny run of three epochs."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.data import datasets
from cnn_core.data.dataset import USER_PREFIX
from cnn_core.explain import units
from cnn_core.runs import run_folder
from tests.factories import open_page

PRETRAINED = "pretrained:mnist"


def shipped_layers() -> tuple[list[str], dict[str, str]]:
    """The shipped model's conv layers, and its conv and pooling layers with their output
    shapes, as Keras itself reports them."""
    import keras

    from cnn_core import catalog

    model = catalog.load_trained(PRETRAINED)
    conv = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    maps = {
        layer.name: " × ".join(str(side) for side in layer.output.shape[1:])
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D))
    }
    return conv, maps


CONV_LAYERS, MAP_LAYERS = shipped_layers()


def download_keys(at: AppTest, prefix: str) -> list[str]:
    """The PNG buttons whose key starts with prefix, sorted (columns fill two at a time)."""
    return sorted(b.key for b in at.get("download_button") if b.key and b.key.startswith(prefix))


def input_caption(at: AppTest) -> str:
    return next(c for img in at.get("image") for c in img.captions if "the model says" in c)


def one_stroke() -> np.ndarray:
    """A vertical bar in the middle of a black 28×28 square: a 1, as the canvas would give it."""
    x = np.zeros((28, 28, 1), np.float32)
    x[5:23, 13:15] = 1.0
    return x


def test_filters_of_every_conv_layer_with_a_switchable_colour_scale(lab_home):
    at = open_page("inspect", inspect_tab="Filters")
    assert download_keys(at, "png-filters-") == [f"png-filters-{n}" for n in CONV_LAYERS]
    headings = [m.value for m in at.markdown if m.value.startswith("**conv")]
    assert sorted(h.split("**")[1] for h in headings) == CONV_LAYERS
    assert any("conv1**: 32 filters of 3×3, each over 1 input channel" in h for h in headings)
    shared = [tuple(img.value) for img in at.get("image")]
    at.radio(key="inspect_scale").set_value("per_filter").run()
    assert not at.exception
    per_filter = [tuple(img.value) for img in at.get("image")]
    assert len(per_filter) == len(shared) == 1 + len(CONV_LAYERS)  # the input, then the filters
    assert per_filter[0] == shared[0]  # the same input image
    assert not set(per_filter[1:]) & set(shared[1:])  # every layer's filters redrawn


def test_feature_maps_of_every_conv_and_pooling_layer_with_its_shape(lab_home):
    at = open_page("inspect", inspect_tab="Feature maps")
    headings = [m.value for m in at.markdown if m.value.startswith("**") and "output" in m.value]
    assert {h.split("**")[1]: h.split("output ")[1] for h in headings} == MAP_LAYERS
    assert download_keys(at, "png-maps-") == sorted(f"png-maps-{n}" for n in MAP_LAYERS)
    assert any(c.value.startswith("The weights of conv1 filter 0,") for c in at.caption)
    # A pooled map shows the conv filter that made the map it pools.
    at.selectbox(key=f"inspect_map_layer-{PRETRAINED}").set_value("pool1").run()
    at.number_input(key=f"inspect_map_channel-{PRETRAINED}-pool1").set_value(5).run()
    assert not at.exception
    assert any("map 5 of conv2, made by conv2 filter 5" in c.value for c in at.caption)


def test_saliency_and_grad_cam_for_a_chosen_class(lab_home):
    at = open_page(
        "inspect", inspect_tab="Saliency and Grad-CAM", inspect_input=("your drawing", one_stroke())
    )
    assert "the model says 1" in input_caption(at)
    assert any(c.value.startswith("Explaining 1 ") for c in at.caption)
    before = [tuple(img.value) for img in at.get("image")]
    at.selectbox(key=f"inspect_class-{PRETRAINED}").set_value(7).run()
    assert not at.exception
    assert any(c.value.startswith("Explaining 7 ") for c in at.caption)
    after = [tuple(img.value) for img in at.get("image")]
    assert after[1] != before[1]
    assert download_keys(at, "png-explanation") == ["png-explanation"]
    at.selectbox(key=f"inspect_cam_layer-{PRETRAINED}").set_value("conv1").run()
    assert not at.exception
    assert [tuple(img.value) for img in at.get("image")][1] != after[1]


def test_the_latest_drawing_from_predict_is_inspected(lab_home):
    at = open_page("inspect", inspect_input=("your drawing", one_stroke()))
    assert at.radio(key="inspect_source").value == "drawing"
    assert input_caption(at).startswith("your image (your drawing): the model says 1")
    at.radio(key="inspect_source").set_value("test").run()
    ds = datasets.load_dataset("mnist")
    at.number_input(key="inspect_index-mnist").set_value(7).run()
    assert input_caption(at).startswith(f"test image 7 (true class {ds.y_test[7]})")


def test_a_drawing_that_does_not_fit_the_model_falls_back_to_a_test_image(lab_home):
    at = open_page("inspect", inspect_input=("photo.png", np.zeros((32, 32, 3), np.float32)))
    assert "inspect_source" not in [r.key for r in at.radio]  # no choice to offer
    assert any("does not fit" in c.value and "28 × 28 × 1" in c.value for c in at.caption)
    assert input_caption(at).startswith("test image 0 ")
    at.button(key="inspect_random").click().run()
    assert not at.exception
    assert 0 <= at.number_input(key="inspect_index-mnist").value < 2000


def test_activation_maximisation_runs_only_behind_its_button(lab_home):
    at = open_page("inspect", inspect_tab="What a filter looks for")
    assert not download_keys(at, "png-pattern")
    assert any("takes a few seconds" in c.value for c in at.caption)
    at.selectbox(key=f"inspect_am_layer-{PRETRAINED}").set_value("conv2").run()
    at.number_input(key=f"inspect_am_filter-{PRETRAINED}-conv2").set_value(3).run()
    at.button(key="inspect_am_run").click().run()
    assert not at.exception
    assert download_keys(at, "png-pattern") == ["png-pattern"]
    assert any("What conv2 filter 3 looks for" in c.value for c in at.caption)
    assert any("mean activation rose" in c.value for c in at.caption)


def test_a_dataset_without_models_shows_a_message(tiny):
    # Every built-in dataset ships a model; a learner's own dataset has none until trained.
    at = open_page("inspect", tiny)  # "user:tiny"
    assert "No trained model" in at.info[0].value


def test_replay_shows_each_epoch_of_a_run(replay_run):
    at = open_page("inspect", f"{USER_PREFIX}tiny", inspect_tab="Filters")
    key = f"run:{replay_run}"
    assert at.selectbox(key="inspect_model").value == key
    slider = at.select_slider(key=f"inspect_epoch-{key}")
    assert slider.options == ["0 (before training)", "1", "2", "3"] and slider.value == 3
    final = [tuple(img.value) for img in at.get("image")]
    slider.set_value(1).run()
    assert not at.exception
    first = [tuple(img.value) for img in at.get("image")]
    assert len(first) == len(final) == 2  # the input and the one conv layer's filters
    assert first[1] != final[1]  # the filters after epoch 1 are not the final ones
    at.select_slider(key=f"inspect_epoch-{key}").set_value(0).run()
    assert not at.exception
    untrained = [tuple(img.value) for img in at.get("image")]
    assert untrained[1] not in (first[1], final[1])  # the untrained filters, as initialised


def test_a_model_that_cannot_be_loaded_shows_a_message(replay_run):
    run_folder.run_paths(replay_run).checkpoint(1).write_bytes(b"not a keras file")
    at = open_page("inspect", f"{USER_PREFIX}tiny")
    at.select_slider(key=f"inspect_epoch-run:{replay_run}").set_value(1).run()
    assert not at.exception
    assert "cannot be loaded" in at.error[0].value


def test_grad_cam_of_a_class_the_model_rules_out_says_so(lab_home):
    """The maps of a class at 0.0% are stretched to full colour like any other: the page
    says that the model all but rules the class out, and the figure carries a colour bar."""
    from cnn_core import catalog

    probs = catalog.load_trained(PRETRAINED).predict(one_stroke()[None], verbose=0)[0]
    unlikely = int(np.argmin(probs))
    assert probs[unlikely] < 0.01  # the shipped model is sure of its 1
    at = open_page(
        "inspect", inspect_tab="Saliency and Grad-CAM", inspect_input=("your drawing", one_stroke())
    )
    assert not at.warning  # the predicted class needs no such note
    at.selectbox(key=f"inspect_class-{PRETRAINED}").set_value(unlikely).run()
    assert not at.exception
    warning = at.warning[0].value
    assert f"The model gives {unlikely} {probs[unlikely]:.1%}" in warning
    assert "what little speaks for" in warning
    assert any("colour bar" in m.value for m in at.markdown)


def test_weights_beside_a_map_use_the_filters_colours(lab_home):
    at = open_page("inspect", inspect_tab="Feature maps")
    note = next(c.value for c in at.caption if c.value.startswith("The weights of conv"))
    assert "mid-grey = 0, bright = positive, dark = negative" in note
    assert not any("blue positive" in c.value for c in at.caption)


def test_a_flat_feature_map_says_so_instead_of_a_scale_from_0_to_0(lab_home):
    at = open_page("inspect", inspect_tab="Feature maps")
    at.selectbox(key=f"inspect_map_layer-{PRETRAINED}").set_value("conv1").run()
    other = next(c.value for c in at.caption if c.value.startswith("conv1, map 0"))
    assert "flat colour" not in other
    at.number_input(key=f"inspect_map_channel-{PRETRAINED}-conv1").set_value(14).run()
    assert not at.exception
    # The shipped model's conv1 map 14 stays at 0 on test image 0 (its ReLU cuts all of it),
    # map 0 does not.
    scale = next(c.value for c in at.caption if c.value.startswith("conv1, map 14"))
    assert "everywhere, so it is one flat colour" in scale


# ---------------------------------------------------------------- the whole network


def shipped_model_and_test_image(dataset: str, index: int):
    import keras

    from cnn_core import catalog

    model = catalog.load_trained(f"pretrained:{dataset}")
    x = datasets.load_dataset(dataset).x_test[index].astype(np.float32) / 255.0
    taps = keras.Model(model.inputs, [layer.output for layer in model.layers[1:]])
    outputs = {layer.name: np.asarray(out[0], np.float64)
               for layer, out in zip(model.layers[1:], taps.predict(x[None], verbose=0),
                                     strict=True)}  # fmt: skip
    return model, outputs


def metric(at: AppTest, label: str) -> float:
    (value,) = [m.value for m in at.metric if m.label == label]
    return float(value)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10"])
def test_the_whole_network_and_one_unit_for_every_shipped_model(lab_home, dataset):
    if not datasets.is_available(dataset):
        pytest.skip(f"no {dataset} here")
    key = f"pretrained:{dataset}"
    model, outputs = shipped_model_and_test_image(dataset, 4)
    at = open_page("inspect", dataset, **{f"inspect_index-{dataset}": 4})
    assert not at.exception and not at.error
    # One row per layer, from the input to the probabilities.
    rows = [m.value.split("**")[1] for m in at.markdown if m.value.startswith("**")
            and "  \n" in m.value]  # fmt: skip
    assert rows == [layer.name for layer in model.layers]
    convs = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]
    last_conv = convs[-1]
    at.selectbox(key=f"unit_layer-{key}").set_value(last_conv).run()
    at.number_input(key=f"unit_channel-{key}-{last_conv}").set_value(3).run()
    at.number_input(key=f"unit_row-{key}-{last_conv}").set_value(1).run()
    at.number_input(key=f"unit_col-{key}-{last_conv}").set_value(2).run()
    assert not at.exception
    expected = outputs[last_conv][1, 2, 3]
    assert metric(at, "The network's own value") == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert metric(at, "Computed here, step by step") == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert any(c.value.startswith("✓ The same number") for c in at.caption)
    assert any(c.value.startswith("Receptive field: rows") for c in at.caption)
    then = units.elementwise_chain(model, last_conv)
    if then:  # the unit goes on through the batch norm after it, to that layer's value
        table = [d.value for d in at.dataframe if "layer" in d.value.columns][-1]
        assert list(table["layer"].unique()) == then
        assert table["value"].iloc[-1] == pytest.approx(outputs[then[-1]][1, 2, 3], rel=1e-3,
                                                         abs=1e-4)  # fmt: skip
    # The output layer: the probability of a class, through the softmax.
    output = model.layers[-1].name
    at.selectbox(key=f"unit_layer-{key}").set_value(output).run()
    best = int(np.argmax(outputs[output]))
    at.selectbox(key=f"unit_index-{key}-{output}").set_value(best).run()
    assert metric(at, "Computed here, step by step") == pytest.approx(
        outputs[output][best], abs=1e-4
    )
    assert any(str(row).startswith("softmax") for row in at.dataframe[-1].value["step"])


def number_input_value(page, label_start: str) -> int:
    box = page.locator("[data-testid='stNumberInput']").filter(has_text=label_start).first
    return int(box.locator("input").input_value())


@pytest.mark.browser
def test_clicking_a_pixel_of_a_map_in_chromium_explains_that_unit(app_server, page):
    """The map chart's own selection event chooses the unit; the value shown is the
    network's activation there, and the step-by-step value equals it."""
    page.goto(app_server["url"] + "/inspect")
    page.get_by_text("Every number behind one unit").wait_for(timeout=60_000)
    before = (number_input_value(page, "Row ("), number_input_value(page, "Column ("))
    chart = page.locator("[data-testid='stVegaLiteChart']").last
    chart.scroll_into_view_if_needed()
    box = chart.locator("canvas, svg").first.bounding_box()
    # Well inside the plot, away from the strongest unit chosen at first (and the axes).
    for fx, fy in ((0.25, 0.2), (0.7, 0.7)):
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_timeout(1500)
        after = (number_input_value(page, "Row ("), number_input_value(page, "Column ("))
        if after != before:
            break
    assert after != before, "a click on the map did not choose a unit"
    channel = number_input_value(page, "Map (")
    values = page.locator("[data-testid='stMetric'] [data-testid='stMetricValue']")
    page.get_by_text("✓ The same number").wait_for()
    computed, own = (float(values.nth(i).inner_text()) for i in range(2))
    _, outputs = shipped_model_and_test_image("mnist", 0)
    expected = outputs[CONV_LAYERS[0]][after[0], after[1], channel]
    assert own == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert computed == pytest.approx(own, rel=1e-4, abs=1e-5)


def test_any_input_map_of_a_convolution_unit_can_be_opened(lab_home):
    from cnn_core import catalog

    at = open_page("inspect")
    at.selectbox(key=f"unit_layer-{PRETRAINED}").set_value("conv2").run()
    channel, row, col = (at.number_input(key=f"unit_{k}-{PRETRAINED}-conv2").value
                         for k in ("channel", "row", "col"))  # fmt: skip
    at.selectbox(key="unit_other_map-conv2").set_value(7).run()
    assert not at.exception
    x = datasets.load_dataset("mnist").x_test[0].astype(np.float32) / 255.0
    found = units.explain_unit(catalog.load_trained(PRETRAINED), x, "conv2", (row, col, channel))
    share = sum(t["product"] for t in found.terms if t["channel"] == 7)
    assert any(m.value.startswith(f"Input map 7: its products add up to {share:.4g}")
               for m in at.markdown)  # fmt: skip
