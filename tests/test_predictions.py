"""Predictions over a split (cached on disk) and the helpers that pick examples from it."""

from __future__ import annotations

import numpy as np
import pytest

from mechmnistic import predict
from mechmnistic.analysis.activations import activations_are_cached, layer_activations
from mechmnistic.analysis.predictions import (
    example,
    indices_of_digit,
    misclassified,
    model_labels,
    predictions_are_cached,
    split_logits,
    split_predictions,
)
from mechmnistic.cache import is_cached
from mechmnistic.errors import MechMNISTicError
from mechmnistic.labels import apply_label_function


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(tmp_path))
    return tmp_path


def test_predictions_match_the_model_and_its_card(bundled, mnist_test, fresh_cache):
    model = bundled("mlp-1x64")
    assert not is_cached(model, "predictions", {"split": "test"})
    result = split_predictions(model, "test")
    assert is_cached(model, "predictions", {"split": "test"}), "written to the on-disk cache"
    assert list(fresh_cache.rglob("*.npz")), "under MECHMNISTIC_CACHE"
    assert result.logits.shape == (10_000, 10) and result.logits.dtype == np.float32
    np.testing.assert_array_equal(result.predicted, predict(model, mnist_test.images))
    np.testing.assert_array_equal(result.labels, mnist_test.labels)
    assert result.accuracy == pytest.approx(model.card.metrics["test_accuracy"], abs=1e-9)
    again = split_predictions(model, "test")
    np.testing.assert_array_equal(again.logits, result.logits)


def test_the_last_layers_activations_are_the_predictions_stored_once(bundled, fresh_cache):
    """A split's logits are one entry on disk: the final layer's activations read the predictions."""
    model = bundled("mlp-2x64")
    final = model.layout.final.name
    assert not activations_are_cached(model, final, "test") and not predictions_are_cached(model, "test")
    acts = layer_activations(model, final, "test")
    assert predictions_are_cached(model, "test") and activations_are_cached(model, final, "test")
    assert len(list(fresh_cache.rglob("*.npz"))) == 1, "one file: the predictions, not a second copy"
    logits = split_logits(model, "test")
    np.testing.assert_array_equal(acts.values, logits)
    np.testing.assert_array_equal(acts.pre, logits)  # the last layer has no activation function
    assert not is_cached(model, "layer_activations", {"layer": final, "split": "test"})


def test_misclassified_are_all_wrong_and_most_confident_first(bundled, fresh_cache):
    result = split_predictions(bundled("mlp-1x64"), "test")
    wrong = misclassified(result)
    assert len(wrong) == round((1 - result.accuracy) * 10_000)
    assert np.all(result.predicted[wrong] != result.labels[wrong])
    assert np.all(np.diff(result.confidence[wrong]) <= 0)
    assert np.all((result.confidence > 0) & (result.confidence <= 1))


def test_a_secret_label_function_gives_the_labels(bundled, mnist_test):
    model = bundled("challenge-cnn")
    labels = model_labels(model, "test")
    expected = apply_label_function(model.card.label_function, mnist_test.images, mnist_test.labels)
    np.testing.assert_array_equal(labels, expected)
    assert set(np.unique(labels)) == {0, 1}


def test_indices_of_digit(mnist_test):
    sevens = indices_of_digit("test", 7)
    assert len(sevens) == int((mnist_test.labels == 7).sum()) and sevens[0] == 0
    assert np.all(mnist_test.labels[sevens] == 7) and np.all(np.diff(sevens) > 0)
    with pytest.raises(MechMNISTicError):
        indices_of_digit("test", 10)


def test_example_by_index(mnist_test, mnist_train):
    image, digit = example("test", 0)
    assert image.shape == (28, 28) and digit == 7 and np.array_equal(image, mnist_test.images[0])
    assert example("train", 59_999)[1] == int(mnist_train.labels[-1])
    for bad in (-1, 10_000, 10**12):
        with pytest.raises(MechMNISTicError, match="out of range"):
            example("test", bad)
