"""Templates: dataset images, unit weights, files and drawings, and every way they can be wrong."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mechmnistic import run_with_cache
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.grounding import effective_weights
from mechmnistic.analysis.hypothesis import image_scores
from mechmnistic.analysis.templates import (
    TemplateError,
    image_from_bytes,
    resolve_template,
    weights_to_template,
)


def png_bytes(array: np.ndarray, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_dataset_templates_are_the_images_in_0_1(mnist_train, mnist_test):
    t = resolve_template("train:6")
    assert t.image.shape == (28, 28) and t.label == "train:6" and not t.inverted
    np.testing.assert_array_equal(t.image, mnist_train.images[6].astype(np.float32) / 255)
    np.testing.assert_array_equal(resolve_template("test:17").image, mnist_test.images[17].astype(np.float32) / 255)
    inverse = resolve_template("train:6", invert=True)
    np.testing.assert_array_equal(inverse.image, 1.0 - t.image)
    assert inverse.label == "1 - train:6"


def test_inverse_template_mirrors_the_score(mnist_test):
    """With c = 0.5, the score against 1 - t is minus the score against t."""
    images = mnist_test.images[:50]
    s = image_scores(images, resolve_template("train:6").image)
    s_inv = image_scores(images, resolve_template("train:6", invert=True).image)
    np.testing.assert_allclose(s_inv, -s, atol=1e-9)


@pytest.mark.parametrize(
    "ref, message",
    [
        ("train:60000", "out of range for train (0..59999)"),
        ("test:10000", "out of range for test (0..9999)"),
        ("validation:3", "is not 'train:N'"),
        ("train:-1", "is not 'train:N'"),
        ("unit:nope:1", "no layer 'nope'"),
        ("unit:layers.0:64", "unit 64 is out of range for layers.0 (0..63)"),
        ("unit:layers.0", "must look like 'unit:LAYER:N'"),
        ("missing.png", "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),  # a str is never a file name
        (Path("missing.png"), "cannot read template file"),
    ],
)
def test_bad_references_raise_one_clear_error(ref, message, bundled):
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_template(ref, model=bundled("mlp-1x64"))


def test_unit_template_score_is_the_units_rescaled_input(bundled, mnist_test):
    """t = 0.5 + w / (2 max|w|), so with c = 0.5: s(x) = (pre-activation - bias) / (2 max|w|)."""
    model = bundled("mlp-1x64")
    template = resolve_template("unit:layers.0:5", model=model)
    assert 0 <= template.image.min() and template.image.max() <= 1
    images = mnist_test.images[:100]
    _, cache = run_with_cache(model, images, names=["layers.0.pre"])
    weight = model.get_submodule("layers.0").weight.detach().double().numpy()[5]
    bias = float(model.get_submodule("layers.0").bias.detach()[5])
    expected = (cache["layers.0.pre"].numpy()[:, 5] - bias) / (2 * np.abs(weight).max())
    np.testing.assert_allclose(image_scores(images, template.image), expected, atol=1e-5)


@pytest.mark.parametrize("name, layer, unit", [("mlp-2x64", "layers.1", 5), ("challenge-cnn", "fc1", 10),
                                              ("cnn-digits", "conv2", 3)])
def test_deeper_and_conv_unit_templates_are_effective_weights_on_the_top_training_image(bundled, mnist_train, name,
                                                                                        layer, unit):
    """On that image, s(x) with c = 0.5 is the unit's pre-activation less its effective bias, rescaled."""
    model = bundled(name)
    template = resolve_template(f"unit:{layer}:{unit}", model=model)
    top = int(np.argmax(layer_activations(model, layer, "train").values[:, unit]))
    assert template.detail.endswith(f"train:{top}")
    image = mnist_train.images[top : top + 1]
    grounded = effective_weights(model, layer, image, units=[unit])
    bound = np.abs(grounded.w_eff[0, 0]).astype(np.float64).max()
    expected = (grounded.pre[0, 0] - grounded.b_eff[0, 0]) / (2 * bound)
    assert image_scores(image, template.image)[0] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_unit_templates_need_the_model():
    with pytest.raises(TemplateError, match="needs the model"):
        resolve_template("unit:layers.0:0")


def test_zero_weights_map_to_the_centre():
    np.testing.assert_array_equal(weights_to_template(np.zeros((28, 28))), np.full((28, 28), 0.5))


def test_files_png_and_npy(tmp_path, mnist_train):
    digit = mnist_train.images[6]
    (tmp_path / "one.png").write_bytes(png_bytes(digit))
    np.save(tmp_path / "one.npy", digit)
    np.save(tmp_path / "float.npy", digit / 255.0)
    for name in ("one.png", "one.npy", "float.npy"):
        t = resolve_template(tmp_path / name)
        np.testing.assert_allclose(t.image, resolve_template("train:6").image, atol=1e-7)
        assert t.source == name


def test_a_large_png_is_preprocessed_like_a_drawing():
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[60:220, 130:150] = 0  # a dark vertical stroke on white: a "1"
    image = image_from_bytes(png_bytes(canvas), "drawn.png")
    assert image.shape == (28, 28) and image.max() > 0.9
    assert image[:, 14].sum() > image[:, 4].sum()  # the stroke is in the middle


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"not an image at all", "x.png", "not a readable PNG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "x.png", "not a readable PNG"),
        (png_bytes(np.zeros((280, 280), np.uint8)), "blank.png", "no ink"),
        (b"x", "x.jpg", "must be .png or .npy"),
        (b"garbage", "x.npy", "not a readable .npy"),
    ],
)
def test_bad_files(data, name, message):
    with pytest.raises(TemplateError, match=message):
        image_from_bytes(data, name)


def test_bad_arrays():
    def npy(array):
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=True)
        return buffer.getvalue()

    with pytest.raises(TemplateError, match="must be 28x28"):
        image_from_bytes(npy(np.zeros((27, 28))), "a.npy")
    with pytest.raises(TemplateError, match=r"finite values in \[0, 1\]"):
        image_from_bytes(npy(np.full((28, 28), 2.0)), "a.npy")
    with pytest.raises(TemplateError, match=r"finite values in \[0, 1\]"):
        image_from_bytes(npy(np.full((28, 28), np.nan)), "a.npy")
    with pytest.raises(TemplateError, match="not a readable .npy"):
        image_from_bytes(npy(np.array([{"evil": 1}], dtype=object)), "a.npy")


def test_a_non_png_file_named_png_is_refused():
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, format="BMP")
    with pytest.raises(TemplateError, match="not a PNG image"):
        image_from_bytes(buffer.getvalue(), "x.png")


def test_drawn_arrays(mnist_test):
    t = resolve_template(mnist_test.images[3], source="drawn")
    assert t.source == "drawn"
    np.testing.assert_array_equal(t.image, resolve_template("test:3").image)
    assert not t.image.flags.writeable
