"""`mechmnistic neuron` and `mechmnistic atlas` give the Python API's numbers, exactly, on an MLP and a CNN.

The commands run in-process (``mechmnistic.cli.main``, what the console
script calls) to keep the suite fast; one text run goes through the real
entry point. tests/app/test_cli_pages.py checks the same JSON against the
Neuron Explorer's downloads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mechmnistic.analysis import unit_behaviour
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.atlas import AtlasParameters, neuron_atlas, position_clusters, unit_clusters
from mechmnistic.analysis.connections import incoming_weights, outgoing_weights
from mechmnistic.analysis.conv import filters, position_activations
from mechmnistic.analysis.embeddings import first_layer_effective_weights

from .cli_runner import cli

#: (model, layer, unit, position, top_k): an MLP neuron, a CNN channel, a CNN neuron reading a conv layer, and a
#: first-layer channel at one cell of its map.
UNITS = {
    "mlp-layers.0": ("mlp-1x64", "layers.0", 5, None, 500),
    "cnn-conv2": ("cnn-digits", "conv2", 3, None, 60),
    "cnn-fc1": ("cnn-digits", "fc1", 7, None, 60),
    "cnn-conv1-at-a-cell": ("cnn-digits", "conv1", 3, (12, 9), 60),
}


def cli_json(*args: str) -> dict:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def neuron_json(model: str, layer: str, unit: int, position, top_k: int) -> dict:
    where = [] if position is None else ["--pos", f"{position[0]},{position[1]}"]
    return cli_json("neuron", model, "--layer", layer, "--unit", str(unit), "--top", str(top_k), *where)


@pytest.mark.parametrize(("name", "layer", "unit", "position", "top_k"), UNITS.values(), ids=UNITS.keys())
def test_neuron_gives_the_api_numbers(bundled, mnist_train, name, layer, unit, position, top_k):
    result = neuron_json(name, layer, unit, position, top_k)
    model = bundled(name)
    params = AtlasParameters(top_k=top_k)
    assert (result["layer"], result["unit"], result["parameters"]["top_k"]) == (layer, unit, top_k)
    if position is None:
        atlas = neuron_atlas(model, layer, params)
        top, clusters = atlas.top_examples(unit), unit_clusters(model, atlas, unit)
        pre = layer_activations(model, layer).pre[:, unit]
    else:
        top, clusters = position_clusters(model, layer, unit, position, params)
        pre = position_activations(model, layer, unit, position)
        assert result["position"] == list(position)
    # Top examples: indices, activations, labels, clusters, and where a channel was taken.
    shown = result["top_examples"]
    np.testing.assert_array_equal(shown["train_index"], top.indices)
    np.testing.assert_array_equal(shown["pre_activation"], top.pre)
    np.testing.assert_array_equal(shown["activation"], top.activations)
    np.testing.assert_array_equal(shown["label"], mnist_train.labels[top.indices])
    np.testing.assert_array_equal(shown["cluster"], clusters.labels)
    assert ("row" in shown) == (clusters.positions is not None)
    if clusters.positions is not None:
        np.testing.assert_array_equal(np.stack([shown["row"], shown["col"]], 1), clusters.positions)
    # Feature clusters: sizes, central examples, similarity within and between.
    stats, rows = clusters.stats, result["clusters"]["rows"]
    assert result["clusters"]["count"] == len(stats.sizes) == len(rows)
    assert [row["size"] for row in rows] == stats.sizes.tolist()
    assert [row["central_train_index"] for row in rows] == top.indices[stats.central].tolist()
    assert [row["digits"] for row in rows] == clusters.class_counts.tolist()
    np.testing.assert_array_equal([row["similarity_within"] for row in rows], stats.intra)
    np.testing.assert_array_equal([row["similarity_to_others"] for row in rows], stats.inter)
    assert result["clusters"]["mean_similarity_within"] == stats.mean_intra
    assert result["clusters"]["mean_similarity_between"] == stats.mean_inter
    assert result["clusters"]["explained"] == clusters.explained
    # Activation statistics over the training set.
    expected = unit_behaviour.distribution_from_values(pre, np.maximum(pre, 0), mnist_train.labels, 10)  # ReLU
    stats_shown = result["statistics"]
    for key in ("firing_fraction", "mean", "std", "max"):
        assert stats_shown[key] == getattr(expected, key), key
    np.testing.assert_array_equal(stats_shown["firing_by_class"], expected.firing_by_class)
    np.testing.assert_array_equal(stats_shown["histogram"]["counts"], expected.counts)
    assert stats_shown["n_images"] == 60_000
    similar, cosine = unit_behaviour.similar_units(model, layer, unit)
    assert [s["unit"] for s in result["similar"]] == similar.tolist()
    np.testing.assert_array_equal([s["cosine"] for s in result["similar"]], cosine)


@pytest.mark.parametrize(("name", "layer", "unit", "position", "top_k"), UNITS.values(), ids=UNITS.keys())
def test_neuron_weights_are_what_the_unit_reads_and_writes(bundled, name, layer, unit, position, top_k):
    weights = neuron_json(name, layer, unit, position, top_k)["weights"]
    model = bundled(name)
    module = model.get_submodule(layer)
    assert weights["bias"] == float(module.bias.detach()[unit])
    if layer == "layers.0":  # an MLP's first layer: pixel space (the first layer's effective weights)
        expected = first_layer_effective_weights(model, np.array([unit]))[0][0]
        assert weights["reads"] == "pixels" and np.shape(weights["input_weights"]) == (28, 28)
        np.testing.assert_array_equal(weights["input_weights"], expected)
        np.testing.assert_array_equal(weights["output_weights"], outgoing_weights(model, layer, unit).weights)
    elif layer == "conv1":  # the first conv layer: its kernel
        np.testing.assert_array_equal(weights["input_weights"], filters(model, layer).weights[unit])
    else:
        incoming = incoming_weights(model, layer, unit, position)
        assert weights["reads"] == incoming.sources.layer and weights["input_sources"] == incoming.sources.labels()
        np.testing.assert_array_equal(np.ravel(weights["input_weights"]), incoming.weights)
        np.testing.assert_array_equal(np.ravel(weights["input_weights"]),
                                      module.weight.detach().numpy()[unit].ravel())
    np.testing.assert_array_equal(weights["output_weights"], outgoing_weights(model, layer, unit).total)
    assert weights["to_classes"] == (layer in ("layers.0", "fc1"))
    flat = np.ravel(weights["input_weights"])
    strongest = [s["weight"] for s in weights["strongest_inputs"]]
    assert strongest == sorted(flat, key=lambda w: -abs(w))[:10]


def test_neuron_text_through_the_real_entry_point():
    out = cli("neuron", "mlp-1x64", "--layer", "layers.0", "--unit", "5")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "mlp-1x64 layers.0 · neuron 5"
    assert "of the 60,000 training images" in lines[1] and "reads pixels (784 weights" in out.stdout
    assert "top 500 training images (the first 10; --json for all):" in out.stdout
    assert "feature clusters, explaining" in out.stdout and "writes the classes: 0:" in out.stdout


ATLASES = {"mlp-layers.0": ("mlp-1x64", "layers.0", 500, 5), "cnn-conv2": ("cnn-digits", "conv2", 60, 3)}


@pytest.mark.parametrize(("name", "layer", "top_k", "unit"), ATLASES.values(), ids=ATLASES.keys())
def test_atlas_writes_the_api_atlas_and_neurons_numbers(bundled, tmp_path, name, layer, top_k, unit):
    out = tmp_path / "atlas.npz"
    summary = cli_json("atlas", name, "--layer", layer, "--top", str(top_k), "--out", str(out))
    model = bundled(name)
    atlas = neuron_atlas(model, layer, AtlasParameters(top_k=top_k))
    assert summary["out"] == str(out) and summary["units"] == atlas.n_units
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlas.npz"], "no temporary left beside it"
    with np.load(out, allow_pickle=False) as saved:
        arrays = dict(saved)
    assert summary["arrays"] == {key: list(value.shape) for key, value in arrays.items()}
    assert (str(arrays["model"]), str(arrays["layer"]), int(arrays["top_k"])) == (name, layer, top_k)
    for key in ("top_indices", "top_pre", "cluster_labels", "n_clusters", "explained", "mean_intra", "mean_inter"):
        np.testing.assert_array_equal(arrays[key], getattr(atlas, key), err_msg=key)
    assert ("top_positions" in arrays) == (atlas.top_positions is not None)
    # Every unit's row holds what `neuron` says of that unit.
    one = neuron_json(name, layer, unit, None, top_k)
    for key in ("firing_fraction", "mean", "std", "max"):
        assert arrays[key][unit] == one["statistics"][key], key
    np.testing.assert_array_equal(arrays["firing_by_class"][unit], one["statistics"]["firing_by_class"])
    assert arrays["bias"][unit] == np.float32(one["weights"]["bias"])
    np.testing.assert_array_equal(arrays["top_labels"][unit], one["top_examples"]["label"])
    rows, k = one["clusters"]["rows"], one["clusters"]["count"]
    assert arrays["cluster_sizes"][unit].tolist() == [r["size"] for r in rows] + [0] * (12 - k)
    assert arrays["cluster_central_index"][unit].tolist() == [r["central_train_index"] for r in rows] + [-1] * (12 - k)
    np.testing.assert_array_equal(arrays["cluster_intra"][unit, :k], [r["similarity_within"] for r in rows])
    np.testing.assert_array_equal(arrays["cluster_inter"][unit, :k], [r["similarity_to_others"] for r in rows])
    assert np.isnan(arrays["cluster_intra"][unit, k:]).all()
    assert arrays["cluster_class_counts"][unit, :k].tolist() == [r["digits"] for r in rows]
    # Sizes add up to top-k for every unit, and the padding starts where a unit's clusters end.
    np.testing.assert_array_equal(arrays["cluster_sizes"].sum(1), top_k)
    np.testing.assert_array_equal((arrays["cluster_sizes"] > 0).sum(1), atlas.n_clusters)


def test_atlas_replaces_a_file_whole_and_a_failed_write_leaves_none(tmp_path, monkeypatch):
    out = tmp_path / "atlas.npz"
    out.write_bytes(b"old")
    code, stdout, err = cli("atlas", "mlp-1x64", "--layer", "layers.0", "--out", str(out))
    assert code == 0, err
    assert f"wrote {out}:" in stdout and "64 units" in stdout
    with np.load(out) as saved:
        assert saved["top_indices"].shape == (64, 500)
    written = out.read_bytes()

    def half_then_fail(handle, **arrays):
        handle.write(b"PK half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mechmnistic.cli.files.np.savez", half_then_fail)
    code, stdout, err = cli("atlas", "mlp-1x64", "--layer", "layers.0", "--out", str(out))
    assert code == 2 and stdout == ""
    assert err.strip() == (f"mechmnistic atlas: error: --out {out}: could not write it (No space left on device); "
                           "nothing was written")
    assert out.read_bytes() == written, "the old file is untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlas.npz"], "no half file, no temporary"

    def interrupted(handle, **arrays):
        handle.write(b"PK half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr("mechmnistic.cli.files.np.savez", interrupted)
    new = tmp_path / "new.npz"
    code, _, err = cli("atlas", "mlp-1x64", "--layer", "layers.0", "--out", str(new))
    assert code == 130 and "nothing half-written was kept" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atlas.npz"]


def test_atlas_refuses_a_folder_named_as_the_file(tmp_path):
    (tmp_path / "d.npz").mkdir()
    code, _, err = cli("atlas", "mlp-1x64", "--layer", "layers.0", "--out", str(tmp_path / "d.npz"))
    assert code == 2 and "that is a folder; name a file inside it" in err
    assert list((tmp_path / "d.npz").iterdir()) == []
