"""layer_lists.layers_from_table: the layer editor's table rows as layer dicts."""

import math

import pandas as pd

from cnn_core.models import layer_lists


def test_whole_floats_become_ints_and_empty_cells_are_dropped():
    rows = [
        {"type": "conv", "filters": 32.0, "kernel": 3.0, "padding": "same", "rate": math.nan},
        {"type": "maxpool", "filters": math.nan, "kernel": None, "size": 2.0},
        {"type": "dropout", "rate": 0.25, "filters": None},
    ]
    layers = layer_lists.layers_from_table(rows)
    assert layers == [
        {"type": "conv", "filters": 32, "kernel": 3, "padding": "same"},
        {"type": "maxpool", "size": 2},
        {"type": "dropout", "rate": 0.25},
    ]
    assert type(layers[0]["filters"]) is int and type(layers[1]["size"]) is int


def test_a_dropout_rate_stays_a_float_and_fractions_are_kept_for_the_checker():
    layers = layer_lists.layers_from_table([{"type": "dropout", "rate": 1.0},
                                            {"type": "conv", "filters": 2.5}])  # fmt: skip
    assert layers == [{"type": "dropout", "rate": 1.0}, {"type": "conv", "filters": 2.5}]
    assert type(layers[0]["rate"]) is float
    # validate_layers still names the fraction, so the editor shows why.
    try:
        layer_lists.validate_layers(layers[1:], (28, 28, 1), 10)
    except ValueError as exc:
        assert "2.5" in str(exc)
    else:
        raise AssertionError("a fractional filter count passed")


def test_the_editors_table_round_trips_the_default_layers():
    frame = pd.DataFrame(layer_lists.default_custom_layers())
    layers = layer_lists.layers_from_table(frame.to_dict("records"))
    assert layers == layer_lists.default_custom_layers()
    layer_lists.validate_layers(layers, (28, 28, 1), 10)


def test_no_rows_is_no_layers():
    assert layer_lists.layers_from_table([]) == []
