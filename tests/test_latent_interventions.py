"""Ablating and patching a dictionary's latents: the untouched model is exact, and each change is the latents'."""

from __future__ import annotations

import numpy as np
import pytest

import mechmnistic
from mechmnistic.analysis.latent_interventions import (
    LatentInterventionError,
    ablate_latents_on_split,
    patch_latents,
)
from mechmnistic.analysis.latents import latent_activations
from mechmnistic.dictionaries import load_dictionary
from mechmnistic.hooks import run_with_cache


@pytest.fixture(scope="module")
def model():
    return mechmnistic.load_model("mlp-1x64")


@pytest.fixture(scope="module")
def dictionary(model):
    return load_dictionary(model, "layers.0-topk512")


def test_clean_logits_are_the_models_own(model, dictionary, mnist_test):
    result = ablate_latents_on_split(model, dictionary, [0], "zero")
    own = run_with_cache(model, mnist_test.images)[0].numpy()
    np.testing.assert_array_equal(result.clean_logits, own)


def test_a_latent_that_never_fires_changes_nothing_when_zeroed(model, dictionary):
    test = latent_activations(model, dictionary, "test").values
    silent = int(np.flatnonzero(test.max(axis=0) == 0)[0])
    result = ablate_latents_on_split(model, dictionary, [silent], "zero")
    np.testing.assert_allclose(result.patched_logits, result.clean_logits, atol=1e-5)


def test_zeroing_a_live_latent_moves_the_logits_by_its_decoder_effect(model, dictionary, mnist_test):
    from mechmnistic.analysis.splicing import latent_logit_weights

    test = latent_activations(model, dictionary, "test").values
    live = int(np.argmax((test > 0).mean(axis=0)))
    result = ablate_latents_on_split(model, dictionary, [live], "zero")
    # The layer feeds the logits: removing f_j removes exactly f_j * (W_dec[j] . W_out).
    expected = -test[:, [live]] * latent_logit_weights(model, dictionary)[live][None, :]
    np.testing.assert_allclose(result.patched_logits - result.clean_logits, expected, atol=1e-4)


def test_resampling_is_seeded_and_patching_from_itself_changes_nothing(model, dictionary, mnist_test):
    a = ablate_latents_on_split(model, dictionary, [3, 9], "resample", seed=4)
    b = ablate_latents_on_split(model, dictionary, [3, 9], "resample", seed=4)
    np.testing.assert_array_equal(a.patched_logits, b.patched_logits)
    image = mnist_test.images[7]
    same = patch_latents(model, dictionary, [3, 9, 11], image, image[None])
    np.testing.assert_allclose(same.patched_logits, same.clean_logits, atol=1e-5)


@pytest.mark.parametrize("latents, method, message", [([], "zero", "at least one latent"),
                                                      ([512], "zero", "latents 0..511"),
                                                      ([0], "min", "unknown ablation")])
def test_bad_requests_are_refused(model, dictionary, latents, method, message):
    with pytest.raises(LatentInterventionError, match=message):
        ablate_latents_on_split(model, dictionary, latents, method)
