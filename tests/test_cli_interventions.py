"""`mechmnistic attribute`, `ablate` and `patch` give the Python API's numbers, on an MLP and a CNN.

tests/app/test_cli_pages.py checks the same JSON against the Attribution &
ablations page's downloads.
"""

from __future__ import annotations

import numpy as np
import pytest

from mechmnistic.analysis.ablation import ablate, patch_activations
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.attribution import direct_logit_attribution
from mechmnistic.analysis.units import layer_groups

from .cli_runner import cli
from .test_cli_units import cli_json


def test_attribute_mlp_to_dead_and_alive_units(bundled, mnist_test):
    result = cli_json("attribute", "mlp-1x64", "--layer", "layers.0", "--class", "3", "--per-image")
    model = bundled("mlp-1x64")
    standard = layer_groups(layer_activations(model, "layers.0", "train").values)
    groups = {"dead": standard["dead"], "alive": standard["alive"]}
    expected = direct_logit_attribution(model, mnist_test.images, groups, target=3)
    assert result["target"] == {"class": 3, "minus": None, "name": "logit 3"}
    assert [g["name"] for g in result["groups"]] == ["dead", "alive"]
    assert [g["units"] for g in result["groups"]] == [standard["dead"].tolist(), standard["alive"].tolist()]
    contributions = np.asarray(result["per_image"]["contributions"])
    np.testing.assert_allclose(contributions, expected.contributions, rtol=1e-9, atol=1e-9)
    assert result["bias"] == expected.bias
    np.testing.assert_allclose(result["per_image"]["total"], expected.total, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose([g["mean"] for g in result["groups"]], expected.contributions.mean(0), atol=1e-9)
    logits = layer_activations(model, "layers.1", "test").values
    np.testing.assert_allclose(result["per_image"]["total"], logits[:, 3], atol=1e-4, err_msg="groups + bias = logit")
    assert result["groups"][0]["mean_abs"] == 0.0, "dead units contribute nothing"


def test_attribute_cnn_logit_difference_to_typed_groups(bundled, mnist_test):
    result = cli_json("attribute", "cnn-digits", "--layer", "fc1", "--class", "3", "--minus", "5",
                      "--groups", "early:0-99;late:100-149")
    model = bundled("cnn-digits")
    groups = {"early": np.arange(100), "late": np.arange(100, 150)}
    expected = direct_logit_attribution(model, mnist_test.images, groups, target=(3, 5))
    assert result["target"]["name"] == "logit 3 - logit 5" and "per_image" not in result
    assert [(g["name"], g["size"]) for g in result["groups"]] == [("early", 100), ("late", 50), ("other units", 50)]
    assert result["groups"][2]["units"] == list(range(150, 200))
    np.testing.assert_allclose([g["mean"] for g in result["groups"]], expected.contributions.mean(0), atol=1e-9)
    np.testing.assert_allclose([g["mean_abs"] for g in result["groups"]], np.abs(expected.contributions).mean(0),
                               atol=1e-9)
    assert result["mean_target"] == pytest.approx(expected.total.mean(), abs=1e-9)


def test_attribute_text_output():
    code, out, err = cli("attribute", "cnn-digits", "--layer", "fc1", "--class", "3", "--minus", "5")
    assert code == 0, err
    assert out.splitlines()[0] == ("cnn-digits: direct logit attribution of logit 3 - logit 5 to groups of fc1, "
                                   "over 10,000 test images")
    assert "  dead " in out and "  alive " in out


@pytest.mark.parametrize(
    ("args", "api", "by"),
    [
        (["mlp-1x64", "--layer", "layers.0", "--units", "0-9,dead", "--with", "mean"],
         ("mlp-1x64", "layers.0", "0-9,dead", "mean", 0), "class"),
        (["cnn-digits", "--layer", "conv2", "--units", "3,5", "--with", "resample", "--seed", "4", "--by",
          "prediction"], ("cnn-digits", "conv2", [3, 5], "resample", 4), "prediction"),
        (["cnn-digits", "--layer", "fc1", "--units", "early", "--groups", "early:0-49", "--with", "zero"],
         ("cnn-digits", "fc1", list(range(50)), "zero", 0), "class"),
    ],
    ids=["mlp-mean", "cnn-conv2-resample", "cnn-fc1-typed-group"],
)
def test_ablate_gives_the_api_numbers(bundled, args, api, by):
    result = cli_json("ablate", *args)
    name, layer, units, method, seed = api
    model = bundled(name)
    expected = ablate(model, layer, units, method, seed=seed)
    rows = expected.by_class() if by == "class" else \
        expected.breakdown(expected.clean_predictions, [f"predicted {c}" for c in range(10)])
    assert result["rows"] == [row.to_dict() for row in rows]
    assert result["description"] == expected.description and result["by"] == by
    assert result["rows"][-1]["group"] == "all" and result["rows"][-1]["count"] == 10_000


def test_ablate_text_through_the_real_entry_point():
    out = cli("ablate", "mlp-1x64", "--layer", "layers.0", "--units", "dead", "--with", "zero")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "mlp-1x64: zero-ablating 4 units of layers.0 (dead) on the test set"
    assert lines[-1].split()[:3] == ["all", "10000", "0.0%"], "dead units change nothing"


@pytest.mark.parametrize(
    ("args", "api"),
    [
        (["mlp-1x64", "--layer", "layers.0", "--units", "early", "--groups", "early:0-9", "--source", "train:6",
          "--target", "test:5"], ("mlp-1x64", "layers.0", list(range(10)), ("train", 6), 5)),
        (["cnn-digits", "--layer", "conv2", "--units", "all", "--source", "test:1", "--target", "test:0"],
         ("cnn-digits", "conv2", list(range(16)), ("test", 1), 0)),
    ],
    ids=["mlp-typed-group-from-train", "cnn-conv2-all"],
)
def test_patch_gives_the_api_numbers(bundled, mnist_train, mnist_test, args, api):
    result = cli_json("patch", *args, "--per-image")
    name, layer, units, (split, index), target = api
    model = bundled(name)
    source = (mnist_train if split == "train" else mnist_test).images[index]
    single = patch_activations(model, layer, units, source, images=mnist_test.images[target][None])
    whole = patch_activations(model, layer, units, source, images="test")
    assert result["units"] == units
    assert result["source"] == {"split": split, "index": index,
                                "digit": int((mnist_train if split == "train" else mnist_test).labels[index])}
    assert result["target"] == {"split": "test", "index": target, "digit": int(mnist_test.labels[target])}
    np.testing.assert_array_equal(result["logits"]["before"], single.clean_logits[0])
    np.testing.assert_array_equal(result["logits"]["after"], single.patched_logits[0])
    assert result["prediction"] == {"before": int(single.clean_predictions[0]),
                                    "after": int(single.patched_predictions[0])}
    assert result["test_set"] == whole.summary().to_dict()
    np.testing.assert_array_equal(result["per_image"]["patched_logits"], whole.patched_logits)


def test_patch_text_output():
    code, out, err = cli("patch", "cnn-digits", "--layer", "conv2", "--units", "all", "--source", "test:1",
                         "--target", "test:0")
    assert code == 0, err
    assert out.splitlines()[:2] == ["cnn-digits: 16 units of conv2 (all) patched from test:1 (digit 2) into test:0 "
                                    "(digit 7)", "prediction 7 -> 2"]
    assert "the same source patched into every test image:" in out and "% of predictions change; accuracy" in out


def test_a_breakdown_row_with_no_images_is_null_not_nan():
    """A class nobody predicts has no share changed nor mean change: JSON null (NaN is not JSON), '-' in text."""
    import json

    from mechmnistic.analysis.ablation import InterventionResult
    from mechmnistic.cli.intervention_cmds import _ablate_text, _no_nan

    result = InterventionResult("x", np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32), np.array([0, 1]))
    row = _no_nan(result.summary(np.zeros(2, bool), "predicted 2").to_dict())
    assert row == {"group": "predicted 2", "count": 0, "fraction_changed": None, "accuracy_before": None,
                   "accuracy_after": None, "mean_logit_change": [None, None, None]}
    json.dumps(row, allow_nan=False)
    text = _ablate_text({"model": "m", "layer": "l", "units": [0], "units_spec": "0", "method": "zero", "seed": 0,
                         "split": "test", "rows": [row]})
    assert text.splitlines()[-1].split() == ["predicted", "2", "0", "-", "-", "-", "-"]
