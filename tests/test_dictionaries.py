"""Dictionaries (sparse autoencoders): a known answer, the identities splicing relies on, the files, the refusals.

* Known answer: rows built as a sparse superposition of 64 planted unit
  directions in 32 dimensions; both kinds recover at least 90% of them (a
  decoder row within cosine 0.9), where a random decoder recovers none.
* Identities: the spliced model with its error term is the model, bit for
  bit; the logits are exactly the latents' effects plus the error term's,
  the decoder bias's and the output bias (to 1e-4, on mlp-1x64, worked out
  here from the weights), and through the rest of the network for deeper
  and conv layers.
* Files: plain ``safetensors`` + ``json`` give SAELens's encoding exactly;
  a dictionary refuses other weights; a crash never leaves a half dictionary
  that is listed or trusted; ids never leave the model's folder.
* The bundled dictionaries meet their targets and leave the zoo as it was.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mechmnistic
from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.dictionary_quality import dictionary_quality
from mechmnistic.analysis.latents import (
    LatentActivations,
    basis_activations,
    compute_latent_activations,
    cross_talk,
    latent_activations,
    latent_activations_are_cached,
    latent_effective_weights,
    layer_bases,
    region_purity,
    resolve_basis,
    units_needed,
)
from mechmnistic.analysis.splicing import (
    ablate_latents,
    latent_logit_effects,
    latent_logit_weights,
    run_spliced,
    splice,
)
from mechmnistic.cache import model_fingerprint
from mechmnistic.dictionaries import (
    DictionaryError,
    DictionaryExistsError,
    DictionaryMismatchError,
    DictionaryNotFoundError,
    SparseAutoencoder,
    dictionary_dir,
    list_dictionaries,
    load_dictionary,
    read_dictionary,
    save_dictionary,
    train_dictionary,
    validate_dictionary_id,
)
from mechmnistic.dictionaries import dictionary as dictionary_module
from mechmnistic.hooks import run_with_cache
from mechmnistic.models import list_models, load_model, model_from_state_dict, save_model
from mechmnistic.paths import zoo_root

from .cli_runner import cli

BUNDLED = {"mlp-1x64": "layers.0-topk512", "challenge-cnn": "fc1-topk512"}

# -- a known answer ------------------------------------------------------------------------------------------


def planted_rows(n_rows: int = 20000, d: int = 32, n_directions: int = 64, p: float = 0.04, seed: int = 0):
    """Rows ``c @ D``: ``D`` 64 random unit directions in 32 dimensions, each active in a row with probability
    ``p`` (about 2.6 per row) with a magnitude in [0.5, 1.5], like a ReLU layer's sparse features."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.randn(n_directions, d, generator=g)
    directions /= directions.norm(dim=1, keepdim=True)
    active = torch.rand(n_rows, n_directions, generator=g) < p
    coefficients = active * (0.5 + torch.rand(n_rows, n_directions, generator=g))
    return coefficients @ directions, directions


def recovered(directions: torch.Tensor, decoder: torch.Tensor, cosine: float = 0.9) -> float:
    """The share of ``directions`` (unit rows) with a decoder row (unit rows) within ``cosine`` of it."""
    return float(((directions @ decoder.T).max(1).values >= cosine).float().mean())


@pytest.mark.parametrize("kind", ["topk", "l1"])
def test_both_kinds_recover_planted_directions(kind):
    rows, directions = planted_rows()
    sae = SparseAutoencoder(kind=kind, n_latents=128, k=4, l1_coefficient=1.0, steps=1000, random_state=0).fit(rows)
    assert torch.allclose(sae.W_dec_.norm(dim=1), torch.ones(128), atol=1e-5), "decoder rows of unit norm"
    assert recovered(directions, sae.W_dec_) >= 0.9
    random = torch.randn(128, 32, generator=torch.Generator().manual_seed(1))
    assert recovered(directions, random / random.norm(dim=1, keepdim=True)) < 0.1, "the test is not trivial"


def test_training_is_seeded_and_reports_progress_with_time_left():
    rows, _ = planted_rows(2000)
    calls = []
    a = SparseAutoencoder(n_latents=32, k=4, steps=50, random_state=3).fit(rows, lambda *c: calls.append(c))
    b = SparseAutoencoder(n_latents=32, k=4, steps=50, random_state=3).fit(rows)
    c = SparseAutoencoder(n_latents=32, k=4, steps=50, random_state=4).fit(rows)
    assert torch.equal(a.W_enc_, b.W_enc_) and torch.equal(a.W_dec_, b.W_dec_) and torch.equal(a.b_dec_, b.b_dec_)
    assert not torch.equal(a.W_dec_, c.W_dec_)
    done = [call[0] for call in calls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 50 and all(call[1] == 50 for call in calls)
    assert all("left" in call[2] for call in calls[1:])


@pytest.mark.parametrize(("params", "message"), [
    ({"kind": "sparse"}, "unknown kind 'sparse'"),
    ({"n_latents": 0}, "the number of latents must be a whole number in 1..65536, got 0"),
    ({"k": 0}, "k must be a whole number in 1..65536, got 0"),
    ({"k": 99, "n_latents": 8}, "k (99) must be at most the number of latents (8)"),
    ({"kind": "l1", "l1_coefficient": None}, "an L1 dictionary needs an L1 coefficient"),
    ({"kind": "l1", "l1_coefficient": float("nan")}, "the L1 coefficient must be a positive number, got nan"),
    ({"steps": 0}, "steps must be a whole number in 1..1000000"),
    ({"random_state": -1}, "the seed must be a whole number in 0..9223372036854775807, got -1"),
    ({"lr": float("inf")}, "the learning rate must be a positive number, got inf"),
])
def test_bad_training_parameters_are_refused_before_training(params, message):
    with pytest.raises(DictionaryError, match=None) as caught:
        SparseAutoencoder(**{"n_latents": 16, "k": 4, **params}).fit(torch.ones(10, 4))
    assert message in str(caught.value)


# -- small dictionaries of the bundled models, trained here -----------------------------------------------


@pytest.fixture(scope="module")
def mlp_dictionaries(bundled):
    """A TopK and an L1 dictionary of mlp-1x64's hidden layer (few steps: the identities hold for any weights)."""
    model = bundled("mlp-1x64")
    topk = train_dictionary(model, "layers.0", SparseAutoencoder(n_latents=96, k=8, steps=200), "t-topk",
                            measure=False)
    l1 = train_dictionary(model, "layers.0", SparseAutoencoder(kind="l1", n_latents=96, l1_coefficient=1.0,
                                                               steps=200), "t-l1", measure=False)
    return {"topk": topk, "l1": l1}


@pytest.fixture(scope="module")
def conv_dictionary(bundled, mnist_train):
    """A TopK dictionary of cnn-digits' conv2 (16 channels at each of 11x11 positions), on 500 training images."""
    model = bundled("cnn-digits")
    return train_dictionary(model, "conv2", SparseAutoencoder(n_latents=48, k=4, steps=200), "t-conv",
                            measure=False, images=mnist_train.images[:500])


def saelens_encode(weights: dict[str, torch.Tensor], cfg: dict, x: torch.Tensor) -> torch.Tensor:
    """SAELens's forward, written out from its documented ``encode`` (StandardSAE / TopKSAE): ``sae_in = x -
    b_dec * apply_b_dec_to_input``; ``hidden_pre = sae_in @ W_enc + b_enc``; ReLU, or TopK (``torch.topk`` of
    ``hidden_pre``, ReLU of the values, scattered into zeros)."""
    sae_in = x - weights["b_dec"] * cfg["apply_b_dec_to_input"]
    hidden_pre = sae_in @ weights["W_enc"] + weights["b_enc"]
    if cfg["architecture"] == "topk":
        top = torch.topk(hidden_pre, k=cfg["k"], dim=-1)
        return torch.zeros_like(hidden_pre).scatter_(-1, top.indices, torch.relu(top.values))
    assert cfg["architecture"] == "standard"
    return torch.relu(hidden_pre)


@pytest.fixture
def zoo_with(tmp_zoo):
    """A fresh zoo holding copies of bundled models' card and weights (no dictionaries): ``zoo_with(name, ...)``."""
    def make(*names: str):
        for name in names:
            (tmp_zoo / name).mkdir()
            for file in ("card.json", "model.safetensors"):
                shutil.copy(BUNDLED_ZOO / name / file, tmp_zoo / name / file)
        return tmp_zoo

    return make


BUNDLED_ZOO = zoo_root()


@pytest.mark.parametrize("kind", ["topk", "l1"])
def test_files_load_with_plain_safetensors_and_json_and_encode_as_saelens(kind, mlp_dictionaries, bundled, zoo_with,
                                                                          mnist_test):
    zoo = zoo_with("mlp-1x64")
    dictionary = mlp_dictionaries[kind]
    folder = save_dictionary(dictionary, zoo)
    assert folder == zoo / "mlp-1x64" / "dictionaries" / dictionary.id
    weights = load_file(folder / "sae_weights.safetensors")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert {k: tuple(v.shape) for k, v in weights.items()} == {"W_enc": (64, 96), "b_enc": (96,), "W_dec": (96, 64),
                                                               "b_dec": (64,)}
    assert cfg["d_in"] == 64 and cfg["d_sae"] == 96 and cfg["apply_b_dec_to_input"] is True
    assert cfg["architecture"] == {"topk": "topk", "l1": "standard"}[kind] and cfg.get("k") == dictionary.k
    assert cfg["metadata"]["hook_name"] == "layers.0.post" and cfg["normalize_activations"] == "none"
    card = json.loads((folder / "card.json").read_text())
    assert card["model_fingerprint"] == model_fingerprint(bundled("mlp-1x64"))
    assert card["training"]["seed"] == 0 and card["layer"] == "layers.0" and card["kind"] == kind
    x = torch.from_numpy(layer_activations(bundled("mlp-1x64"), "layers.0", "test").values[:500])
    assert torch.equal(saelens_encode(weights, cfg, x), dictionary.encode(x))
    loaded = read_dictionary("mlp-1x64", dictionary.id, zoo)
    assert torch.equal(loaded.encode(x), dictionary.encode(x))
    assert torch.equal(loaded.decode(loaded.encode(x)), weights_decode(weights, saelens_encode(weights, cfg, x)))


def weights_decode(weights: dict[str, torch.Tensor], latents: torch.Tensor) -> torch.Tensor:
    return latents @ weights["W_dec"] + weights["b_dec"]


def test_conv_rows_are_channel_vectors_at_each_position(conv_dictionary, bundled, mnist_test):
    model = bundled("cnn-digits")
    maps = run_with_cache(model, mnist_test.images[:3], names=["conv2.post"])[1]["conv2.post"]  # [3, 16, 11, 11]
    rows = conv_dictionary.rows_of(maps)
    assert rows.shape == (3 * 121, 16)
    assert torch.equal(rows[121 + 5 * 11 + 7], maps[1, :, 5, 7]), "image-major, then row-major positions"
    assert torch.equal(conv_dictionary.layer_of(rows, maps), maps)
    card = conv_dictionary.card
    assert card.is_conv and card.d_in == 16 and card.hook == "conv2.post" and card.training["n_images"] == 500


# -- identities -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["topk", "l1", "conv"])
def test_spliced_with_the_error_term_is_the_model_exactly(which, mlp_dictionaries, conv_dictionary, bundled,
                                                          mnist_test):
    dictionary = conv_dictionary if which == "conv" else mlp_dictionaries[which]
    model = bundled("cnn-digits" if which == "conv" else "mlp-1x64")
    images = mnist_test.images[:300]
    logits, cache = run_with_cache(model, images, names=[dictionary.hook])
    activation = cache[dictionary.hook]
    assert torch.equal(splice(dictionary, activation, error=True), activation)
    assert torch.equal(run_spliced(model, dictionary, images, error=True), logits)
    rows = dictionary.rows_of(activation)
    reconstruction = dictionary.decode(dictionary.encode(rows))
    error = rows - reconstruction
    assert torch.allclose(reconstruction + error, rows, atol=1e-5)
    spliced = run_spliced(model, dictionary, images)
    assert not torch.equal(spliced, logits), "without the error term the reconstruction is spliced in"
    expected = model.run_from(dictionary.hook, dictionary.layer_of(reconstruction, activation)) if which != "conv" \
        else None
    if expected is not None:
        assert torch.allclose(spliced, expected, atol=1e-5)


def test_an_edit_with_the_error_term_is_the_edited_reconstruction_plus_the_error(mlp_dictionaries, bundled,
                                                                                 mnist_test):
    dictionary, model = mlp_dictionaries["topk"], bundled("mlp-1x64")
    images = mnist_test.images[:200]
    activation = run_with_cache(model, images, names=["layers.0.post"])[1]["layers.0.post"]
    latents = dictionary.encode(activation)
    busiest = int((latents > 0).sum(0).argmax())
    edited = latents.clone()
    edited[:, busiest] = 0
    expected = dictionary.decode(edited) + (activation - dictionary.decode(latents))
    patched = splice(dictionary, activation, error=True, edit=ablate_latents([busiest]))
    assert torch.allclose(patched, expected, atol=1e-5) and not torch.equal(patched, activation)
    logits = run_spliced(model, dictionary, images, error=True, edit=ablate_latents([busiest]))
    assert torch.allclose(logits, model.run_from("layers.0.post", expected), atol=1e-4)


@pytest.mark.parametrize("kind", ["topk", "l1"])
def test_logits_are_the_latents_effects_plus_error_and_biases(kind, mlp_dictionaries, bundled, mnist_test):
    """On mlp-1x64, worked out from the weights: logits = sum_j f_j (W_dec[j] @ W_out^T) + err @ W_out^T
    + b_dec @ W_out^T + b_out, to 1e-4."""
    dictionary, model = mlp_dictionaries[kind], bundled("mlp-1x64")
    images = mnist_test.images[:100]
    logits, cache = run_with_cache(model, images, names=["layers.0.post"])
    h = cache["layers.0.post"].double()
    w_out, b_out = model.layers[1].weight.detach().double(), model.layers[1].bias.detach().double()
    f = dictionary.encode(cache["layers.0.post"]).double()
    w_dec, b_dec = dictionary.W_dec.double(), dictionary.b_dec.double()
    per_latent = f[:, None, :] * (w_dec @ w_out.T).T[None]  # [N, C, d_sae]
    error = (h - (f @ w_dec + b_dec)) @ w_out.T
    total = per_latent.sum(2) + error + b_dec @ w_out.T + b_out
    assert torch.allclose(total, logits.double(), atol=1e-4)
    effects = latent_logit_effects(model, dictionary, images)
    assert effects.exact
    np.testing.assert_allclose(effects.effects, per_latent.numpy(), atol=1e-9)
    np.testing.assert_allclose(effects.error, error.numpy(), atol=1e-9)
    np.testing.assert_allclose(effects.downstream, np.broadcast_to(b_out.numpy(), (100, 10)), atol=0)
    np.testing.assert_allclose(effects.total(), logits.double().numpy(), atol=1e-4)
    np.testing.assert_allclose(latent_logit_weights(model, dictionary), (w_dec @ w_out.T).numpy(), atol=1e-12)
    np.testing.assert_allclose(effects.difference(3, 5), per_latent[:, 3].numpy() - per_latent[:, 5].numpy())


def test_logits_in_latents_through_the_rest_of_the_network(bundled, conv_dictionary, mnist_test, mnist_train):
    """For a layer further down (mlp-2x64's first) and a conv layer (cnn-digits' conv2, summed over positions),
    the split goes through the gradient on each input's pattern and still adds up to the logits."""
    model = bundled("mlp-2x64")
    dictionary = train_dictionary(model, "layers.0", SparseAutoencoder(n_latents=64, k=8, steps=100), measure=False)
    with pytest.raises(DictionaryError, match="does not feed the logit layer"):
        latent_logit_weights(model, dictionary)
    for net, dictionary_ in ((model, dictionary), (bundled("cnn-digits"), conv_dictionary)):
        effects = latent_logit_effects(net, dictionary_, mnist_test.images[:20])
        assert effects.exact
        logits = run_with_cache(net, mnist_test.images[:20], names=[])[0].double().numpy()
        np.testing.assert_allclose(effects.total(), logits, atol=1e-4)
        assert np.abs(effects.effects).sum() > 0


# -- latents as units -----------------------------------------------------------------------------------------


def test_latent_activations_are_the_encoding_and_are_cached(mlp_dictionaries, bundled, tmp_path, monkeypatch):
    monkeypatch.setenv("MECHMNISTIC_CACHE", str(tmp_path))
    dictionary, model = mlp_dictionaries["topk"], bundled("mlp-1x64")
    assert not latent_activations_are_cached(model, dictionary, "test")
    acts = latent_activations(model, dictionary, "test")
    assert isinstance(acts, LatentActivations) and acts.dictionary == "t-topk" and acts.values.shape == (10000, 96)
    expected = dictionary.encode(torch.from_numpy(layer_activations(model, "layers.0", "test").values)).numpy()
    np.testing.assert_array_equal(acts.values, expected)
    assert latent_activations_are_cached(model, dictionary, "test")
    np.testing.assert_array_equal(latent_activations(model, dictionary, "test").values, acts.values)
    neurons = basis_activations(model, "layers.0", "neurons", "test")
    assert neurons.values.shape == (10000, 64) and resolve_basis(model, "layers.0", None) is None
    np.testing.assert_array_equal(basis_activations(model, "layers.0", dictionary, "test").values, acts.values)


def test_conv_latent_activations_take_each_latent_at_its_largest(conv_dictionary, bundled, mnist_test):
    model = bundled("cnn-digits")
    images = mnist_test.images[:4]
    acts = compute_latent_activations(model, conv_dictionary, images)
    maps = run_with_cache(model, images, names=["conv2.post"])[1]["conv2.post"]
    latents = conv_dictionary.encode(conv_dictionary.rows_of(maps)).reshape(4, 11, 11, -1)
    np.testing.assert_array_equal(acts.values, latents.amax(dim=(1, 2)).numpy())
    for image in range(4):
        for latent in range(0, 48, 7):
            row, col = acts.argmax[image, latent]
            assert latents[image, row, col, latent] == acts.values[image, latent]


@pytest.mark.parametrize("which", ["mlp", "conv"])
def test_latents_are_grounded_in_pixels_exactly(which, mlp_dictionaries, conv_dictionary, bundled, mnist_test):
    dictionary = conv_dictionary if which == "conv" else mlp_dictionaries["l1"]
    model = bundled("cnn-digits" if which == "conv" else "mlp-1x64")
    images = mnist_test.images[:6]
    g = latent_effective_weights(model, dictionary, images, 5)
    assert g.exact and g.w_eff.shape == (6, 28, 28)
    np.testing.assert_allclose(g.reconstruct(images), g.pre, atol=1e-4)
    activation = run_with_cache(model, images, names=[dictionary.hook])[1][dictionary.hook]
    pre = dictionary.pre_activations(dictionary.rows_of(activation))[:, 5]
    if which == "conv":
        pre = pre.reshape(6, 11, 11)[torch.arange(6), g.positions[:, 0], g.positions[:, 1]]
    np.testing.assert_allclose(g.pre, pre.numpy(), atol=1e-5)


def test_region_purity_by_hand():
    values = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0], [0.0, 0.0, 4.0]])
    purity = region_purity(values, np.array([0, 0, 1]), 2)
    np.testing.assert_array_equal(purity.mass, [[4, 0, 4], [0, 0, 4]])
    assert purity.purity[0] == 1.0 and np.isnan(purity.purity[1]) and purity.purity[2] == 0.5
    assert purity.weighted_purity() == 8 / 12 and purity.count_pure(0.95) == 1


# -- storage: refusals and crashes --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "..", "a/b", "", ".hidden", "x" * 65, "a..b", None, 3])
def test_ids_that_could_leave_the_folder_are_refused(bad):
    with pytest.raises(DictionaryNotFoundError, match="is not a valid dictionary id"):
        validate_dictionary_id(bad)


def test_a_symlink_out_of_the_dictionaries_folder_is_refused(zoo_with, tmp_path):
    zoo = zoo_with("mlp-1x64")
    (zoo / "mlp-1x64" / "dictionaries").mkdir()
    (zoo / "mlp-1x64" / "dictionaries" / "escape").symlink_to(tmp_path)
    with pytest.raises(DictionaryNotFoundError, match="resolves outside"):
        dictionary_dir("mlp-1x64", "escape", zoo)


def test_a_dictionary_refuses_other_weights(mlp_dictionaries, bundled, zoo_with, mnist_test):
    zoo = zoo_with("mlp-1x64")
    dictionary = mlp_dictionaries["topk"]
    save_dictionary(dictionary, zoo)
    state = {k: v.clone() for k, v in bundled("mlp-1x64").state_dict().items()}
    state["layers.0.bias"] += 0.01
    retrained = model_from_state_dict(bundled("mlp-1x64").config, state)
    save_model(retrained, load_model("mlp-1x64", zoo).card, zoo, overwrite=True)  # same name, other weights
    other = load_model("mlp-1x64", zoo)
    with pytest.raises(DictionaryMismatchError, match="was trained on mlp-1x64's weights with SHA-256"):
        load_dictionary(other, dictionary.id, zoo)
    for use in (lambda: run_spliced(other, dictionary, mnist_test.images[:2]),
                lambda: latent_logit_effects(other, dictionary, mnist_test.images[:2]),
                lambda: dictionary_quality(other, dictionary)):
        with pytest.raises(DictionaryMismatchError, match="train a new one"):
            use()
    assert load_dictionary(bundled("mlp-1x64"), dictionary.id, zoo).id == dictionary.id  # the original still fits
    assert list_models(zoo) == ["mlp-1x64"]


def test_saving_is_atomic_and_a_crash_leaves_nothing_listed_or_trusted(mlp_dictionaries, bundled, zoo_with,
                                                                       monkeypatch):
    zoo = zoo_with("mlp-1x64")
    dictionary = mlp_dictionaries["topk"]
    real_bytes, real_text = dictionary_module.atomic_write_bytes, dictionary_module.atomic_write_text

    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt("killed")

    # Killed while writing the weights, the cfg, or the card: nothing is listed; reading says there is none.
    for target, when in (("atomic_write_bytes", 0), ("atomic_write_bytes", 1), ("atomic_write_text", 0)):
        calls = [0]
        real = real_bytes if target == "atomic_write_bytes" else real_text

        def flaky(*args, real=real, when=when, calls=calls, **kwargs):
            calls[0] += 1
            if calls[0] - 1 == when:
                crash()
            return real(*args, **kwargs)

        monkeypatch.setattr(dictionary_module, target, flaky)
        with pytest.raises(KeyboardInterrupt):
            save_dictionary(dictionary, zoo, overwrite=True)
        monkeypatch.setattr(dictionary_module, target, real)
        assert list_dictionaries("mlp-1x64", zoo) == []
        with pytest.raises(DictionaryNotFoundError, match="has no dictionary 't-topk'"):
            load_dictionary(bundled("mlp-1x64"), "t-topk", zoo)
        assert not [p for p in (zoo / "mlp-1x64").rglob("*") if ".tmp-" in p.name]
    save_dictionary(dictionary, zoo)
    assert list_dictionaries("mlp-1x64", zoo) == ["t-topk"]
    with pytest.raises(DictionaryExistsError, match="already has a dictionary 't-topk'"):
        save_dictionary(dictionary, zoo)
    # Overwriting, killed after the old card went: the old dictionary is no longer listed, never half trusted.
    monkeypatch.setattr(dictionary_module, "atomic_write_bytes", crash)
    with pytest.raises(KeyboardInterrupt):
        save_dictionary(mlp_dictionaries["topk"], zoo, overwrite=True)
    monkeypatch.setattr(dictionary_module, "atomic_write_bytes", real_bytes)
    assert list_dictionaries("mlp-1x64", zoo) == []
    # Files changed behind the card's back are refused.
    save_dictionary(dictionary, zoo, overwrite=True)
    weights = dictionary_dir("mlp-1x64", "t-topk", zoo) / "sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(DictionaryError, match="does not match the SHA-256 in card.json"):
        load_dictionary(bundled("mlp-1x64"), "t-topk", zoo)
    # The model itself is untouched by all of this.
    assert list_models(zoo) == ["mlp-1x64"] and load_model("mlp-1x64", zoo).card.name == "mlp-1x64"


def test_a_dictionary_needs_its_model_in_the_zoo(mlp_dictionaries, tmp_zoo):
    with pytest.raises(mechmnistic.ModelNotFoundError, match="no model named 'mlp-1x64'"):
        save_dictionary(mlp_dictionaries["topk"], tmp_zoo)
    assert not list(tmp_zoo.iterdir())


def test_bases_list_the_usable_dictionaries_of_a_layer(mlp_dictionaries, zoo_with, monkeypatch):
    zoo = zoo_with("mlp-1x64", "mlp-2x64")
    save_dictionary(mlp_dictionaries["topk"], zoo)
    model = load_model("mlp-1x64", zoo)
    assert layer_bases(model, "layers.0") == ["neurons", "dictionary:t-topk"]
    assert resolve_basis(model, "layers.0", "dictionary:t-topk").id == "t-topk"
    with pytest.raises(DictionaryNotFoundError, match="has no dictionary 'nope'"):
        resolve_basis(model, "layers.0", "dictionary:nope")
    assert layer_bases(load_model("mlp-2x64", zoo), "layers.0") == ["neurons"]


# -- quality -----------------------------------------------------------------------------------------------------


def test_quality_measures_what_it_says(mlp_dictionaries, bundled, mnist_test):
    dictionary, model = mlp_dictionaries["topk"], bundled("mlp-1x64")
    quality = dictionary_quality(model, dictionary)
    x = torch.from_numpy(layer_activations(model, "layers.0", "test").values).double()
    recon = dictionary.decode(dictionary.encode(x.float())).double()
    expected = 1 - float((x - recon).pow(2).sum() / (x - x.mean(0)).pow(2).sum())
    assert quality.variance_explained == pytest.approx(expected, abs=1e-6)
    assert quality.l0 == pytest.approx(8.0, abs=0.01)  # TopK: k latents above zero on nearly every row
    train = torch.from_numpy(layer_activations(model, "layers.0", "train").values)
    fires = (dictionary.encode(train) > 0).float().mean(0).double().numpy()
    np.testing.assert_allclose(quality.firing_frequency, fires)
    assert quality.dead_count == int((fires == 0).sum()) and quality.dense_count == int((fires > 0.1).sum())
    spliced = run_spliced(model, dictionary, mnist_test.images).argmax(1).numpy()
    assert quality.spliced_accuracy == pytest.approx(float((spliced == mnist_test.labels).mean()))
    assert quality.model_accuracy == pytest.approx(model.card.metrics["test_accuracy"])
    assert quality.kl > 0 and set(quality.to_dict()) >= {"variance_explained", "l0", "dead_fraction", "kl",
                                                          "spliced_accuracy", "model_accuracy", "dense_fraction"}


def test_conv_quality_counts_every_position(conv_dictionary, bundled):
    quality = dictionary_quality(bundled("cnn-digits"), conv_dictionary, max_firing_rows=121 * 200)
    assert quality.n_test_rows == 10000 * 121 and quality.n_train_rows == 200 * 121 and quality.n_train_images == 200
    assert quality.l0 <= 4 and 0 < quality.variance_explained <= 1


# -- the bundled dictionaries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUNDLED))
def test_bundled_dictionaries_load_are_small_and_leave_the_zoo_as_it_was(name, bundled):
    model = bundled(name)
    assert BUNDLED[name] in list_dictionaries(name)
    dictionary = load_dictionary(model, BUNDLED[name])
    folder = dictionary_dir(name, BUNDLED[name])
    assert all(p.stat().st_size < 2 * 2**20 for p in folder.iterdir())
    assert dictionary.kind == "topk" and dictionary.d_sae == 512 and dictionary.k == 16
    assert name in list_models() and load_model(name).card.weights_sha256 == model.card.weights_sha256
    metrics = dictionary.card.metrics
    assert metrics["spliced_accuracy"] >= metrics["model_accuracy"] - 0.01
    if name == "mlp-1x64":  # the targets
        assert metrics["variance_explained"] >= 0.9 and metrics["dead_fraction"] <= 0.1
        assert dictionary.card.training["fit_seconds"] < 60


# -- the command line ---------------------------------------------------------------------------------------------


def test_cli_trains_evaluates_and_lists(zoo_with):
    zoo = zoo_with("mlp-1x64")
    code, out, err = cli("sae", "train", "mlp-1x64", "--layer", "layers.0", "--latents", "32", "--kind", "topk",
                             "--k", "4", "--steps", "60", "--seed", "2", "--name", "tiny", "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["id"] == "tiny" and trained["seed"] == 2 and trained["d_sae"] == 32
    assert "left" in err and "100% done" in err, "progress with the time left, on stderr"
    code, out, err = cli("sae", "eval", "mlp-1x64", "--sae", "tiny", "--json")
    assert code == 0, err
    measured = json.loads(out)
    assert measured["matches_card"] is True
    for key in ("variance_explained", "l0", "dead_fraction", "spliced_accuracy", "model_accuracy", "kl"):
        assert measured[key] == pytest.approx(trained["metrics"][key])
    code, out, _ = cli("sae", "list", "mlp-1x64", "--json")
    listed = json.loads(out)["dictionaries"]
    assert code == 0 and [row["id"] for row in listed] == ["tiny"] and listed[0]["usable"] is True
    code, out, _ = cli("sae", "list", "mlp-1x64")
    assert code == 0 and out.startswith("tiny") and "spliced acc" in out
    before = {p: p.stat().st_mtime_ns for p in zoo.rglob("*")}
    code, out, err = cli("sae", "train", "mlp-1x64", "--layer", "layers.0", "--latents", "32", "--kind", "l1",
                             "--l1", "1", "--name", "tiny")
    assert code == 2 and out == "" and "already has a dictionary 'tiny' (pass --overwrite" in err
    assert {p: p.stat().st_mtime_ns for p in zoo.rglob("*")} == before


@pytest.mark.parametrize(("args", "message"), [
    (["--latents", "abc"], "argument --latents: invalid int value: 'abc'"),
    (["--kind", "sparse"], "argument --kind: invalid choice: 'sparse'"),
])
def test_cli_argument_types_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {"--latents": "8", "--kind": "topk"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    code, out, err = cli("sae", "train", "mlp-1x64", "--layer", "layers.0", "--k", "2",
                             *[x for pair in base.items() for x in pair])
    assert code == 2 and out == "" and message in err.strip().splitlines()[-1]
    assert not os.listdir(tmp_path)


def test_cross_talk_and_units_needed_by_hand():
    values = np.array([[4.0, 1.0], [0.0, 3.0], [1.0, 1.0]])  # unit 0 a detector of region 0, unit 1 of region 1
    purity = region_purity(values, np.array([0, 1, 2]), 3)
    groups = {"zero": np.array([0]), "one": np.array([1])}
    assert cross_talk(purity, groups, ("zero", 0), ("one", 1)) == pytest.approx(1 / 8)
    np.testing.assert_array_equal(units_needed(np.array([[5.0, -4.0, 1.0], [1.0, 0.0, 0.0]]), 0.9), [2, 1])
