"""`mechmnistic hypothesis` and `mechmnistic scrub`, run as users run them, give the Python API's numbers."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from mechmnistic.analysis.hypothesis import BandRule, Hypothesis, check_hypothesis
from mechmnistic.analysis.scrubbing import scrub
from mechmnistic.analysis.templates import resolve_template

from .cli_runner import cli
from .conftest import snapshot

TRUE_BAND = ["--band", "-33.93", "-15.22"]


def run_json(*args: str) -> dict:
    out = cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_hypothesis_with_the_true_band_matches_python(bundled):
    result = run_json("hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--center", "0.5",
                      *TRUE_BAND)
    assert result["rule"] == {"kind": "band", "low": -33.93, "high": -15.22, "inside_label": 0, "outside_label": 1,
                              "fitted": False}
    model = bundled("challenge-cnn")
    check = check_hypothesis(model, Hypothesis(resolve_template("train:6"), BandRule(-33.93, -15.22)), "test")
    assert result["agreement"]["test"] == check.agreement >= 0.945
    assert result["region_counts"]["test"] == check.region_counts()
    assert sorted(sum(result["groups"].values(), [])) == list(range(200))
    assert list(result["groups"]) == ["dead", "below", "above"]


def test_fit_band_finds_the_hidden_thresholds():
    result = run_json("hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--fit-band")
    rule = result["rule"]
    assert rule["fitted"] is True and rule["kind"] == "band"
    assert abs(rule["low"] - -33.93) < 0.5 and abs(rule["high"] - -15.22) < 0.5
    assert result["agreement"]["train"] >= 0.96 and result["agreement"]["test"] >= 0.955


def test_human_output_and_other_templates(tmp_path, mnist_train):
    buffer = io.BytesIO()
    Image.fromarray(mnist_train.images[6]).save(buffer, format="PNG")
    (tmp_path / "clue.png").write_bytes(buffer.getvalue())
    from_file = run_json("hypothesis", "challenge-cnn", "--layer", "fc1", "--template", str(tmp_path / "clue.png"),
                         *TRUE_BAND)
    assert from_file["template"] == "clue.png" and from_file["agreement"]["test"] >= 0.945
    ones = run_json("hypothesis", "mlp-1x64", "--layer", "layers.0", "--template", "train:6", "--fit-threshold",
                    "--labels", "other", "1")
    assert ones["rule"]["below_label"] is None and ones["agreement"]["test"] > 0.9  # "looks like the clue: a 1"
    out = cli("hypothesis", "mlp-1x64", "--layer", "layers.0", "--template", "unit:layers.0:3", "--invert",
              "--threshold", "-1", "--labels", "1", "other")
    assert out.returncode == 0, out.stderr
    assert "t = 1 - unit:layers.0:3; class 1 when s <= -1, else any other class" in out.stdout
    assert "agreement with the model on test" in out.stdout and "unit groups of layers.0" in out.stdout


def test_scrub_matches_python_and_preserves_the_challenge_networks_predictions(bundled):
    result = run_json("scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--center", "0.5",
                      *TRUE_BAND, "--tolerance", "1e-3", "--tolerance", "0.1", "--seed", "0")
    model = bundled("challenge-cnn")
    python = scrub(model, "fc1", Hypothesis(resolve_template("train:6"), BandRule(-33.93, -15.22)),
                   tolerances=(1e-3, 0.1), seed=0)
    assert [row["preserved"] for row in result["sweep"]] == python.preserved.tolist()
    assert result["random_baseline"] == python.random_baseline
    assert result["sweep"][0]["preserved"] >= 0.90 and result["random_baseline"] < 0.6
    assert result["groups"] == {name: idx.tolist() for name, idx in python.groups.items()}


def test_scrub_with_typed_groups():
    dead, below = "0-99", "100-149"
    out = cli("scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", *TRUE_BAND,
              "--tolerance", "0.01", "--groups", f"dead:{dead};below:{below};above:150-199", "--split", "test")
    assert out.returncode == 0, out.stderr
    assert "10,000 test images" in out.stdout and "random" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--band", "-10", "-20"],
         "band low (-10) is above band high (-20)"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:60000", "--fit-band"],
         "template index 60000 is out of range for train (0..59999)"),
        (["hypothesis", "challenge-cnn", "--layer", "fc7", "--template", "train:6", "--fit-band"],
         "no layer 'fc7' in this model; its layers are conv1, conv2, fc1, fc2"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "{bad_png}", "--fit-band"],
         "not a readable PNG image"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "{missing}", "--fit-band"],
         "cannot read template file"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "banana", "--fit-band"],
         "is not 'train:N', 'test:N' or 'unit:LAYER:N'"),
        (["hypothesis", "no-such-model", "--layer", "fc1", "--template", "train:6", "--fit-band"],
         "no model named 'no-such-model'"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "unit:fc1:200", "--fit-band"],
         "unit 200 is out of range for fc1 (0..199)"),
        (["scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", *TRUE_BAND, "--tolerance", "2"],
         "tolerances are fractions of the score range"),
        (["scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", *TRUE_BAND, "--tolerance", "0.01",
          "--groups", "dead:0-100"], "units 101-199 are in no group"),
        (["scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", *TRUE_BAND, "--tolerance", "0.01",
          "--groups", "ones:0-199"], "neither 'dead' nor a region"),
    ],
)
def test_bad_arguments_give_one_clear_line_exit_2_and_write_nothing(args, message, tmp_path):
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"not a png")
    args = [a.format(bad_png=bad_png, missing=tmp_path / "missing.png") for a in args]
    cache = tmp_path / "cache"
    cache.mkdir()
    out = cli(*args, env={"MECHMNISTIC_CACHE": str(cache)})
    assert out.returncode == 2, out.stdout
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert snapshot(cache) == {}


@pytest.mark.parametrize(
    "args, message",
    [
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:6"], "one of the arguments"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--band", "1"], "expected 2"),
        (["hypothesis", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--fit-band", "--labels", "x",
          "1"], "a label is a class number or 'other'"),
        (["scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", *TRUE_BAND],
         "the following arguments are required: --tolerance"),
        (["scrub", "challenge-cnn", "--layer", "fc1", "--template", "train:6", "--fit-band", "--tolerance", "0.1"],
         "one of the arguments --band --threshold is required"),
    ],
)
def test_argparse_errors_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2 and message in out.stderr


def test_scores_do_not_depend_on_how_the_template_arrives(tmp_path, mnist_train):
    np.save(tmp_path / "clue.npy", mnist_train.images[6])
    a = resolve_template(tmp_path / "clue.npy").image
    np.testing.assert_array_equal(a, resolve_template("train:6").image)
