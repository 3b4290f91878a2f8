"""`mechmnistic explain`: the Classification Explorer's numbers on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mechmnistic.analysis.logit_effects import explain_class, logit_effects

from .cli_runner import cli


def test_explain_json_gives_the_same_numbers_as_the_package(bundled, mnist_test):
    out = cli("explain", "mlp-1x64", "--test-index", "8", "--class", "3", "--share", "0.05", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    model, image = bundled("mlp-1x64"), mnist_test.images[8]
    effects = logit_effects(model, image)
    why = explain_class(model, image, effects, 3, 0.05)
    assert result["image"] == {"split": "test", "index": 8, "digit": int(mnist_test.labels[8])}
    assert result["prediction"] == effects.prediction and result["class"] == 3
    np.testing.assert_allclose(result["effects"], effects.effects)
    np.testing.assert_allclose(np.sum(result["effects"], axis=1), result["logits"], atol=1e-5)
    assert [u["unit"] for u in result["important_units"]] == [u.unit for u in why.units]
    assert result["unit_layer"] == "layers.0" and result["final_layer"] == "layers.1"


def test_explain_prints_a_readable_table():
    out = cli("explain", "mlp-1x64", "--train-index", "6")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("mlp-1x64 on train image 6 (digit 1): predicts ")
    assert "important layers.0 units for class" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["explain", "mlp-1x64", "--test-index", "10000"], "test index 10000 is out of range"),
        (["explain", "mlp-1x64", "--train-index", "-1"], "train index -1 is out of range"),
        (["explain", "no-such-model", "--test-index", "0"], "no model named 'no-such-model'"),
        (["explain", "mlp-1x64", "--test-index", "0", "--class", "10"], "class 10 is out of range"),
        (["explain", "mlp-1x64", "--test-index", "0", "--share", "1.5"], "share must be a fraction"),
    ],
)
def test_bad_arguments_give_one_clear_line(args, message):
    out = cli(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and out.stdout == "" and len(lines) == 1
    assert lines[0].startswith("mechmnistic explain: error: ") and message in lines[0]
