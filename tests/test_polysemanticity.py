"""The polysemanticity scoreboard, feature splitting and sweeps: known answers, agreement with the explorer, the CLI.

* Label entropy by hand; a scoreboard's cluster counts are the Neuron
  Explorer's (the atlas for neurons, ``latent_clusters`` for latents) and its
  entropies are those of the labels of each unit's firing top examples.
* Feature splitting on hand-built dictionaries: a latent split into two
  rotated halves is found with the cosines worked out here.
* The Pareto front by hand; a sweep trains and saves each size, and one that
  would overwrite changes nothing; the CLI prints what the API computes.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from mechmnistic.analysis.atlas import AtlasParameters, latent_clusters, neuron_atlas
from mechmnistic.analysis.feature_splitting import best_matches, decoder_cosines, split_latents
from mechmnistic.analysis.polysemanticity import label_entropy, latent_scoreboard, neuron_scoreboard
from mechmnistic.analysis.units import UnitError
from mechmnistic.dictionaries import (
    Dictionary,
    DictionaryCard,
    DictionaryExistsError,
    DictionaryMismatchError,
    SparseAutoencoder,
    list_dictionaries,
    load_dictionary,
    save_dictionary,
    train_dictionary,
)
from mechmnistic.dictionaries.sweep import pareto_front, train_sweep

from .cli_runner import cli
from .conftest import snapshot
from .test_dictionaries import BUNDLED_ZOO


def test_label_entropy_by_hand():
    assert label_entropy(np.array([3, 3, 3])) == 0.0
    assert label_entropy(np.array([1, 2, 1, 2])) == pytest.approx(1.0)
    assert label_entropy(np.arange(10)) == pytest.approx(math.log2(10))
    assert label_entropy(np.array([0, 0, 0, 1])) == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert math.isnan(label_entropy(np.array([], dtype=int)))


@pytest.fixture
def mlp_zoo(tmp_zoo):
    (tmp_zoo / "mlp-1x64").mkdir()
    for file in ("card.json", "model.safetensors"):
        shutil.copy(BUNDLED_ZOO / "mlp-1x64" / file, tmp_zoo / "mlp-1x64" / file)
    return tmp_zoo


@pytest.fixture(scope="module")
def small_dictionary(bundled):
    """32 TopK latents on mlp-1x64's hidden layer (few steps: the scoreboard's bookkeeping holds for any)."""
    return train_dictionary(bundled("mlp-1x64"), "layers.0", SparseAutoencoder(n_latents=32, k=4, steps=150),
                            "poly-t32", measure=False)


PARAMS = AtlasParameters(top_k=60)


def test_latent_scores_are_the_explorers_clusters_and_the_firing_labels(small_dictionary, bundled, mnist_train):
    model = bundled("mlp-1x64")
    board = latent_scoreboard(model, small_dictionary, PARAMS)
    assert board.basis == "dictionary:poly-t32" and board.n_units == 32 and board.top_k == 60
    for latent in (0, 7, 31):
        top, clusters = latent_clusters(model, small_dictionary, latent, PARAMS)
        assert board.n_clusters[latent] == len(clusters.stats.sizes), "the count the explorer's tab shows"
        fired = top.labels[top.activations > 0]
        assert board.n_firing[latent] == len(fired)
        assert board.entropy[latent] == pytest.approx(label_entropy(fired))
        assert board.top_class[latent] == np.bincount(fired, minlength=10).argmax()
        assert board.top_share[latent] == pytest.approx(np.bincount(fired).max() / len(fired))
    summary = board.summary()
    alive = board.alive
    assert summary["alive"] == alive.sum() and summary["median_entropy_bits"] == pytest.approx(
        np.median(board.entropy[alive]))
    again = latent_scoreboard(model, small_dictionary, PARAMS, progress=lambda *a: pytest.fail("recomputed"))
    np.testing.assert_array_equal(again.n_clusters, board.n_clusters)


def test_a_dead_latent_scores_nothing(small_dictionary, bundled):
    """A latent whose encoder can never win has no examples: NaN entropy, no clusters, left out of summaries."""
    model = bundled("mlp-1x64")
    b_enc = small_dictionary.b_enc.clone()
    b_enc[5] = -1e6
    dead = Dictionary(small_dictionary.W_enc, b_enc, small_dictionary.W_dec, small_dictionary.b_dec,
                      DictionaryCard(**{**small_dictionary.card.__dict__, "id": "poly-dead"}))
    board = latent_scoreboard(model, dead, PARAMS)
    assert board.n_firing[5] == 0 and board.n_clusters[5] == 0 and math.isnan(board.entropy[5])
    assert not board.alive[5] and board.summary()["alive"] == int(board.alive.sum()) < 32


def test_neuron_scores_are_the_atlas(bundled, mnist_train):
    model = bundled("mlp-1x64")
    board = neuron_scoreboard(model, "layers.0", PARAMS)
    atlas = neuron_atlas(model, "layers.0", PARAMS)
    assert board.basis == "neurons" and board.n_units == 64
    firing = atlas.top_pre > 0
    np.testing.assert_array_equal(board.n_firing, firing.sum(1))
    np.testing.assert_array_equal(board.n_clusters[board.alive], atlas.n_clusters[board.alive])
    for unit in np.flatnonzero(board.alive)[:5]:
        labels = mnist_train.labels[atlas.top_indices[unit][firing[unit]]]
        assert board.entropy[unit] == pytest.approx(label_entropy(labels))


def _hand_dictionary(decoder: np.ndarray, name: str, layer: str = "h", fingerprint: str = "w") -> Dictionary:
    d_sae, d_in = decoder.shape
    card = DictionaryCard(id=name, model="m", layer=layer, hook=f"{layer}.post", kind="topk", d_in=d_in,
                          d_sae=d_sae, model_fingerprint=fingerprint, k=1)
    decoder = torch.tensor(decoder, dtype=torch.float32)
    return Dictionary(decoder.T.clone(), torch.zeros(d_sae), decoder, torch.zeros(d_in), card)


def test_a_split_latent_is_found_in_the_larger_dictionary():
    """Small: the 4 axes of R^4. Large: axes 1-3 as they were, and axis 0 split into two directions 30 degrees
    to either side of it (cosine cos(30°) = 0.866 each), at rows 4 and 1."""
    small = _hand_dictionary(np.eye(4), "small")
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    large = np.zeros((5, 4))
    large[0], large[2], large[3] = np.eye(4)[1], np.eye(4)[2], np.eye(4)[3]
    large[4], large[1] = [c, s, 0, 0], [c, -s, 0, 0]
    large = _hand_dictionary(2.0 * large, "large")  # decoder norms do not matter to a cosine
    found = split_latents(small, large, 0, count=2)
    assert sorted(found.indices.tolist()) == [1, 4]
    np.testing.assert_allclose(found.cosines, [c, c])
    np.testing.assert_allclose(best_matches(small, large), [c, 1, 1, 1])
    assert decoder_cosines(small, large).shape == (4, 5)
    with pytest.raises(DictionaryMismatchError, match="not dictionaries of the same layer"):
        split_latents(small, _hand_dictionary(np.eye(4), "other", layer="g"), 0)
    with pytest.raises(UnitError, match="out of range"):
        split_latents(small, large, 4)


def test_the_pareto_front_by_hand():
    # (L0, variance explained): c is beaten by b on both, e ties a on L0 with less variance explained; d is NaN.
    l0 = [2, 4, 5, 8, np.nan, 2]
    ve = [0.5, 0.8, 0.7, 0.9, 0.99, 0.4]
    assert pareto_front(l0, ve).tolist() == [True, True, False, True, False, False]


def test_a_sweep_trains_each_size_and_one_that_would_overwrite_changes_nothing(bundled, mlp_zoo):
    model = bundled("mlp-1x64")
    heard = []
    trained = train_sweep(model, "layers.0", [SparseAutoencoder(n_latents=n, k=2, steps=30) for n in (8, 16)],
                          progress=lambda done, total, message: heard.append((done, total, message)))
    assert [d.id for d in trained] == ["layers.0-topk8", "layers.0-topk16"]
    assert list_dictionaries("mlp-1x64") == ["layers.0-topk16", "layers.0-topk8"]
    assert load_dictionary(model, "layers.0-topk8").card.metrics["variance_explained"] > 0
    totals = {total for _, total, _ in heard}
    assert len(totals) == 1 and heard[-1][0] == heard[-1][1], "one scale for the whole sweep, ending full"
    assert any(message.startswith("layers.0-topk16 (2 of 2)") for _, _, message in heard)
    before = snapshot(mlp_zoo)
    with pytest.raises(DictionaryExistsError, match="already has a dictionary 'layers.0-topk8'"):
        train_sweep(model, "layers.0", [SparseAutoencoder(n_latents=n, k=2, steps=30) for n in (4, 8)])
    assert snapshot(mlp_zoo) == before, "checked before anything trained: not even the 4-latent one was written"


def test_the_cli_sweeps_and_scores_as_the_api(bundled, mlp_zoo):
    code, out, err = cli("sae", "sweep", "mlp-1x64", "--layer", "layers.0", "--latents", "8,16", "--kind",
                             "topk", "--k", "2", "--steps", "30", "--json")
    assert code == 0, err
    swept = json.loads(out)
    model = bundled("mlp-1x64")
    for row in swept["dictionaries"]:
        assert row["variance_explained"] == pytest.approx(
            load_dictionary(model, row["id"]).card.metrics["variance_explained"])
    assert [row["pareto"] for row in swept["dictionaries"]] == pareto_front(
        [r["l0"] for r in swept["dictionaries"]], [r["variance_explained"] for r in swept["dictionaries"]]).tolist()
    code, out, err = cli("sae", "scoreboard", "mlp-1x64", "--sae", "layers.0-topk8", "--json")
    assert code == 0, err
    scored = json.loads(out)
    neurons, latents = scored["bases"]
    board = latent_scoreboard(model, load_dictionary(model, "layers.0-topk8"))
    assert latents["basis"] == "dictionary:layers.0-topk8" and neurons["basis"] == "neurons"
    assert latents["units_scored"]["n_clusters"] == board.n_clusters.tolist()
    assert latents["median_entropy_bits"] == pytest.approx(board.summary()["median_entropy_bits"])
    code, out, err = cli("sae", "scoreboard", "mlp-1x64", "--sae", "layers.0-topk8")
    assert code == 0 and "median label entropy" in out and "neurons" in out
    code, out, err = cli("sae", "sweep", "mlp-1x64", "--layer", "layers.0", "--latents", "8,x", "--kind", "topk",
                             "--k", "2")
    assert code == 2 and out == "" and "--latents takes whole numbers separated by commas" in err


def test_saving_a_sweeps_dictionary_needs_its_id_free(bundled, mlp_zoo, small_dictionary):
    save_dictionary(small_dictionary)
    with pytest.raises(DictionaryExistsError):
        train_sweep(bundled("mlp-1x64"), "layers.0", [SparseAutoencoder(n_latents=32, k=4, steps=10)],
                    name=lambda trainer: "poly-t32")
