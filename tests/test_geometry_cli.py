"""`mechmnistic pca` and `featviz`: the Python API's numbers, clear errors, nothing half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mechmnistic.analysis import feature_viz as fv
from mechmnistic.analysis import geometry as g

from .cli_runner import cli
from .conftest import snapshot


def test_pca_json_gives_the_python_numbers(bundled, tmp_path):
    saved = tmp_path / "pca.npz"
    out = cli("pca", "challenge-cnn", "--layer", "fc1", "--direction", "logit:1-0", "--direction", "template:train:6",
              "--top", "3", "--save", str(saved), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    model = bundled("challenge-cnn")
    fit = g.layer_pca(model, "fc1")
    np.testing.assert_allclose(result["explained_variance_ratio"], fit.pca.explained_variance_ratio_, rtol=1e-12)
    assert result["n_samples"] == 60_000 and result["plane"] == [1, 2]
    logit, template = result["directions"]
    assert logit["exact"] and logit["kind"] == "logit"
    arrow = g.plane_arrow(fit, g.build_direction(model, fit, "logit:1-0"), (0, 1), g.arrow_scale(fit, (0, 1)))
    np.testing.assert_allclose(logit["arrow"]["end"], arrow.end, rtol=1e-12)
    np.testing.assert_allclose(template["arrow"]["end"], fit.scores[6, :2], atol=1e-3)
    assert len(logit["top_loadings"]) == 3
    with np.load(saved) as archive:
        np.testing.assert_array_equal(archive["scores"], fit.scores)
        assert archive["direction_vectors"].shape == (2, 200)


def test_pca_text_output_reads_well():
    out = cli("pca", "mlp-1x64", "--layer", "layers.0", "--components", "3", "--direction", "pc2")
    assert out.returncode == 0, out.stderr
    assert "PCA over 60,000 train images" in out.stdout and "PC3" in out.stdout and "PC4" not in out.stdout
    assert "100.0% of it in the plane" in out.stdout


def test_featviz_json_gives_the_python_numbers(bundled):
    out = cli("featviz", "challenge-cnn", "--layer", "fc1", "--units", "175,76", "--steps", "30", "--nearest", "2",
              "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    expected = fv.visualize_units(bundled("challenge-cnn"), "fc1", [76, 175], fv.FeatureVizConfig(steps=30))
    assert [r["unit"] for r in result["results"]] == [76, 175] and result["clamped"] is True
    np.testing.assert_array_equal([r["objective_end"] for r in result["results"]], expected.final)
    nearest = fv.nearest_training_examples(expected.images, 2)
    assert [n["train_index"] for n in result["results"][0]["nearest"]] == nearest.indices[0].tolist()


def test_featviz_directions(tmp_path):
    saved = tmp_path / "fv.npz"
    out = cli("featviz", "challenge-cnn", "--layer", "fc1", "--direction", "logit:1-0", "--steps", "10",
              "--init", "noise", "--no-clamp", "--save", str(saved))
    assert out.returncode == 0, out.stderr
    assert "pixels not clamped" in out.stdout and "logit 1 − logit 0" in out.stdout
    with np.load(saved) as archive:
        assert archive["images"].shape == (1, 28, 28) and archive["nearest_indices"].shape == (1, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["pca", "challenge-cnn", "--layer", "fc9"], "no layer 'fc9'"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--direction", "logit:1-1"], "two different classes"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--direction", "bogus"], "unknown direction"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--plane", "1", "1"], "two different components"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--plane", "1", "11"], "components are 1..10"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--components", "0"], "at least 1"),
        (["pca", "no-such-model", "--layer", "fc1"], "no model named"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--save", "OUT/x.npz"], "does not exist"),
        (["pca", "challenge-cnn", "--layer", "fc1", "--save", "OUT.txt"], "must end in .npz"),
        (["featviz", "challenge-cnn", "--layer", "fc1", "--units", "200"], "units 0..199"),
        (["featviz", "challenge-cnn", "--layer", "fc1", "--units", "nope"], "unknown unit group 'nope'"),
        (["featviz", "challenge-cnn", "--layer", "fc1", "--steps", "0"], "steps must be"),
        (["featviz", "challenge-cnn", "--layer", "fc1", "--init", "train:70000"], "out of range"),
        (["featviz", "challenge-cnn", "--layer", "fc1", "--nearest", "0"], "--nearest must be 1..50"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_write_nothing(args, message, tmp_path):
    args = [str(tmp_path / a) if a.startswith("OUT") else a for a in args]
    out = cli(*args)
    assert out.returncode == 2, out.stdout
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path) == {}


def test_units_and_directions_are_exclusive():
    out = cli("featviz", "challenge-cnn", "--layer", "fc1", "--units", "1", "--direction", "pc1")
    assert out.returncode == 2 and "not allowed with" in out.stderr
