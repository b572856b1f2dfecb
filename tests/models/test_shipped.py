"""The shipped models are read straight into the catalog's one record, TrainedModel."""

from cnn_core import catalog
from cnn_core.models import shipped


def test_a_shipped_model_is_a_trained_model_with_its_catalog_key():
    found = shipped.list_pretrained("mnist")
    assert found and all(isinstance(m, catalog.TrainedModel) for m in found)
    m = found[0]
    assert catalog.TrainedModel is shipped.TrainedModel
    assert m.key == "pretrained:mnist-simple_convnet" and m.shipped
    assert m.model == "simple_convnet" and m.dataset == "mnist"
    assert m.input_shape == (28, 28, 1) and m.class_names == tuple("0123456789")
    assert m.ink_on_dark and m.test_accuracy == 0.978
    assert m.label == "Pretrained simple_convnet (97.8% test accuracy)"
    assert shipped.weights_path(m).is_file()
    assert shipped.list_pretrained("cifar10") == []


def test_the_catalog_lists_and_loads_the_shipped_record_itself(lab_home):
    m = shipped.list_pretrained()[0]
    assert catalog.list_trained("mnist") == [m]
    model = catalog.load_trained(m.key)
    assert model.output_shape == (None, 10)


def test_a_run_is_not_shipped():
    run = catalog.TrainedModel("run:x", "Your run: x", "mnist", (28, 28, 1), ("0", "1"),
                               True, None)  # fmt: skip
    assert not run.shipped and run.model == ""
