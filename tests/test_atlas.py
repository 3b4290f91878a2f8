"""The neuron atlas: readable clusters for every unit, cached once, and identities through its code path."""

from __future__ import annotations

import numpy as np
import pytest

from mechmnistic import run_with_cache
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.atlas import (
    AtlasParameters,
    atlas_is_cached,
    neuron_atlas,
    position_clusters,
    unit_clusters,
)
from mechmnistic.analysis.cluster_stats import ClusterParameterError
from mechmnistic.analysis.clusters import FeatureClusters
from mechmnistic.analysis.conv import receptive_field
from mechmnistic.analysis.embeddings import hadamard_embeddings
from mechmnistic.analysis.unit_behaviour import top_indices
from mechmnistic.analysis.units import UnitError
from mechmnistic.cache import entry_path

from .conftest import snapshot


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A fresh analysis cache for this module, so the first atlas really is computed here."""
    folder = tmp_path_factory.mktemp("atlas-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MECHMNISTIC_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def atlas_and_progress(cache_dir, bundled):
    calls = []
    atlas = neuron_atlas(bundled("mlp-1x64"), "layers.0", progress=lambda *call: calls.append(call))
    return atlas, calls


def test_every_neuron_of_mlp_1x64_has_readable_clusters(atlas_and_progress):
    atlas, _ = atlas_and_progress
    assert atlas.top_indices.shape == atlas.cluster_labels.shape == (64, 500)
    for unit in range(64):
        sizes = np.bincount(atlas.cluster_labels[unit])
        assert len(sizes) == atlas.n_clusters[unit] <= 12, unit
        assert sizes.min() >= 1 and np.all(np.diff(sizes) <= 0), "clusters are numbered largest first"
        assert sizes[sizes >= 3].sum() >= 0.8 * 500, (unit, sizes)
        assert atlas.mean_intra[unit] > atlas.mean_inter[unit], unit
        assert atlas.explained[unit] >= 0.3 or atlas.n_clusters[unit] == 12


def test_top_examples_are_the_highest_pre_activations(atlas_and_progress, bundled, mnist_train):
    atlas, _ = atlas_and_progress
    pre = layer_activations(bundled("mlp-1x64"), "layers.0").pre
    np.testing.assert_array_equal(atlas.top_indices, top_indices(pre, 500))
    np.testing.assert_array_equal(atlas.top_pre, np.take_along_axis(pre.T, atlas.top_indices, axis=1))
    top = atlas.top_examples(11)
    np.testing.assert_array_equal(top.labels, mnist_train.labels[top.indices])
    np.testing.assert_array_equal(top.activations, np.maximum(top.pre, 0))


def test_progress_is_reported_then_the_cache_is_read(atlas_and_progress, bundled):
    atlas, calls = atlas_and_progress
    done = [c[0] for c in calls]
    assert done[0] == 0 and done[-1] == calls[-1][1] == 65 and done == sorted(done)
    model = bundled("mlp-1x64")
    assert atlas_is_cached(model, "layers.0")
    again_calls = []
    again = neuron_atlas(model, "layers.0", progress=lambda *call: again_calls.append(call))
    assert again_calls == [], "read from disk, nothing recomputed"
    np.testing.assert_array_equal(again.cluster_labels, atlas.cluster_labels)


def test_a_missing_or_broken_entry_is_recomputed_identically(atlas_and_progress, bundled):
    atlas, _ = atlas_and_progress
    model = bundled("mlp-1x64")
    path = entry_path(model, "neuron_atlas", AtlasParameters().key("layers.0"))
    path.write_bytes(b"not an npz")
    np.testing.assert_array_equal(neuron_atlas(model, "layers.0").cluster_labels, atlas.cluster_labels)
    path.unlink()
    assert not atlas_is_cached(model, "layers.0")
    np.testing.assert_array_equal(neuron_atlas(model, "layers.0").cluster_labels, atlas.cluster_labels)
    assert atlas_is_cached(model, "layers.0")


def test_atlas_clusters_are_what_the_estimator_gives(atlas_and_progress, bundled, mnist_train):
    atlas, _ = atlas_and_progress
    model = bundled("mlp-1x64")
    for unit in (0, 31):
        images = mnist_train.images[atlas.top_indices[unit]]
        maps = hadamard_embeddings(model, "layers.0", images, units=np.array([unit])).maps[:, 0]
        fit = FeatureClusters().fit(maps.reshape(500, -1))
        np.testing.assert_array_equal(fit.labels_, atlas.cluster_labels[unit])


def test_unit_clusters_embeddings_sum_to_the_pre_activation(atlas_and_progress, bundled, mnist_train):
    atlas, _ = atlas_and_progress
    model = bundled("mlp-1x64")
    unit = 17
    view = unit_clusters(model, atlas, unit)
    np.testing.assert_allclose(view.biases, float(model.get_submodule("layers.0").bias[unit]), rtol=1e-6)
    np.testing.assert_allclose(view.embeddings.sum(axis=(1, 2)) + view.biases, atlas.top_pre[unit], atol=1e-4)
    assert view.embeddings.shape == (500, 28, 28)
    assert view.class_counts.sum(axis=1).tolist() == view.stats.sizes.tolist()
    labels = mnist_train.labels[atlas.top_indices[unit]]
    for c in range(len(view.stats.sizes)):
        assert view.labels[view.stats.central[c]] == c, "a cluster's central example is its member"
        np.testing.assert_array_equal(view.class_counts[c], np.bincount(labels[view.labels == c], minlength=10))
        np.testing.assert_allclose(view.mean_embeddings[c], view.embeddings[view.labels == c].mean(0), atol=1e-5)
    assert view.share_in_clusters_of_three_or_more >= 0.8


@pytest.mark.parametrize(("name", "layer", "units"), [("mlp-2x64", "layers.1", 64), ("challenge-cnn", "fc1", 200)])
def test_a_deeper_layer_through_grounding(cache_dir, bundled, mnist_train, name, layer, units):
    """Effective weights depend on the input; the identity still holds exactly, and the batched
    grounding of every unit's top examples gives the clusters of each unit's own embeddings."""
    model = bundled(name)
    atlas = neuron_atlas(model, layer, AtlasParameters(top_k=100))
    assert atlas.top_indices.shape == (units, 100) and atlas.n_clusters.max() <= 12 and atlas.top_positions is None
    for unit in (0, 40):
        view = unit_clusters(model, atlas, unit)
        np.testing.assert_allclose(view.embeddings.sum(axis=(1, 2)) + view.biases, atlas.top_pre[unit], atol=1e-4)
        one_unit = hadamard_embeddings(model, layer, mnist_train.images[atlas.top_indices[unit]], units=[unit])
        np.testing.assert_allclose(view.embeddings, one_unit.maps[:, 0], atol=1e-6)
        fit = FeatureClusters().fit(one_unit.maps[:, 0].reshape(100, -1))
        np.testing.assert_array_equal(fit.labels_, atlas.cluster_labels[unit])


def test_a_chosen_cluster_count_and_top_k(cache_dir, bundled):
    params = AtlasParameters(top_k=60, n_clusters=4)
    atlas = neuron_atlas(bundled("mlp-1x64"), "layers.0", params)
    assert atlas.top_indices.shape == (64, 60)
    assert np.all(atlas.n_clusters == 4)
    assert atlas.params == params


@pytest.mark.parametrize(
    "params",
    [{"top_k": 0}, {"top_k": -5}, {"top_k": True}, {"top_k": 2001}, {"top_k": "500"}, {"top_k": 5.0}, {"n_clusters": 0},
     {"n_clusters": 13}, {"n_clusters": 2.0}, {"explained": 0}, {"explained": 2}, {"split": "validation"}],
)
def test_bad_parameters_are_refused_before_anything_is_written(cache_dir, params):
    before = snapshot(cache_dir)
    with pytest.raises(ClusterParameterError):
        AtlasParameters(**params)
    assert snapshot(cache_dir) == before


@pytest.mark.parametrize("layer", ["layers.1", "nope"])
def test_layers_without_hidden_units_are_refused(cache_dir, bundled, layer):
    before = snapshot(cache_dir)
    with pytest.raises(UnitError):
        neuron_atlas(bundled("mlp-1x64"), layer)
    assert snapshot(cache_dir) == before


def test_conv_channels_cluster_the_receptive_field_of_their_maximum(cache_dir, bundled, mnist_train):
    """A conv channel's atlas: top examples by its maximum, clusters of the embeddings cut to where it fired."""
    model = bundled("cnn-digits")
    params = AtlasParameters(top_k=80)
    atlas = neuron_atlas(model, "conv2", params)
    acts = layer_activations(model, "conv2")
    assert atlas.top_indices.shape == (16, 80) and atlas.top_positions.shape == (16, 80, 2)
    np.testing.assert_array_equal(atlas.top_indices, top_indices(acts.pre, 80))
    for unit in (0, 9):
        np.testing.assert_array_equal(atlas.top_positions[unit], acts.argmax[atlas.top_indices[unit], unit])
        view = unit_clusters(model, atlas, unit)
        np.testing.assert_allclose(view.embeddings.sum(axis=(1, 2)) + view.biases, atlas.top_pre[unit], atol=1e-4)
        np.testing.assert_array_equal(view.boxes, receptive_field(model, "conv2", atlas.top_positions[unit]))
        crops = view.clustered_maps
        assert crops.shape == (80, 8, 8), "conv2 sees 8x8 pixels"
        np.testing.assert_allclose(crops.sum(axis=(1, 2)), view.embeddings.sum(axis=(1, 2)), atol=1e-4,
                                   err_msg="nothing of an embedding lies outside its receptive field")
        fit = FeatureClusters().fit(crops.reshape(80, -1))
        np.testing.assert_array_equal(fit.labels_, atlas.cluster_labels[unit])
        assert view.mean_embeddings.shape == (len(view.stats.sizes), 8, 8)


def test_a_channel_at_a_position_gets_its_own_top_examples_and_clusters(cache_dir, bundled, mnist_train):
    model = bundled("cnn-digits")
    top, view = position_clusters(model, "conv1", 5, (12, 9), AtlasParameters(top_k=50, n_clusters=3))
    _, cache = run_with_cache(model, mnist_train.images, names=["conv1.pre"])
    pre = cache["conv1.pre"][:, 5, 12, 9].numpy()
    np.testing.assert_array_equal(top.indices, top_indices(pre[:, None], 50)[0])
    np.testing.assert_allclose(top.pre, pre[top.indices], rtol=1e-6)
    np.testing.assert_allclose(view.embeddings.sum(axis=(1, 2)) + view.biases, top.pre, atol=1e-5)
    assert np.all(view.positions == [12, 9]) and np.all(view.boxes == [12, 9, 14, 11])
    assert len(view.stats.sizes) == 3 and view.clustered_maps.shape == (50, 3, 3)
    with pytest.raises(UnitError, match="26x26"):
        position_clusters(model, "conv1", 5, (26, 0))


def test_reading_stored_clusters_does_not_load_scikit_learn():
    """The app only reads atlases; scikit-learn and SciPy's clustering cost ~160 MB of server memory."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    code = ("import sys, ui.neuron_data, mechmnistic.analysis.atlas, mechmnistic.viz.neuron; "
            "print(sorted(m for m in sys.modules if m.startswith(('sklearn', 'scipy.cluster'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo,
                         env={**os.environ, "PYTHONPATH": str(repo)})
    assert out.stdout.strip() == "[]"
