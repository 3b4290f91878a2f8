"""Networks as people write them, each imported from its state dict and from its ONNX export.

Every import must reproduce the original module's output on 1,000 MNIST test
images to 1e-4. A state dict records no activations, pooling, padding or
strides: the importer may take the architecture (only when it is clearly the
best on test digits) or ask; when it asks, the questions must name what
separates the candidates, and the network's true answers to exactly those
questions must import it. It may never import a network that computes
something else. An ONNX export records everything: it imports without a
question beyond the input normalisation.
"""

from __future__ import annotations

import pytest
import torch

from mechmnistic.hooks import to_pixels
from mechmnistic.models.importer import ARCHITECTURE_KEYS, MissingAnswerError, build_imported, read_for_import

from .user_networks import NETWORKS, UserNetwork, onnx_bytes, state_dict_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained():
    """Each network trained once for this module."""
    return {network.name: network.trained() for network in NETWORKS}


@pytest.fixture(scope="module")
def images(mnist_test):
    return to_pixels(mnist_test.images[:1000])


def _assert_reproduces(imported, module, network: UserNetwork, images) -> None:
    with torch.no_grad():
        expected = module(images.unsqueeze(1))
        got = network.comparable(imported(images))
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: n.name)
def test_a_state_dict_imports_as_written_or_the_importer_asks(network, trained, images):
    module = trained[network.name]
    state, plan = read_for_import(f"{network.name}.pt", state_dict_bytes(module))
    try:
        imported = build_imported(state, plan, network.name, normalization="none", **network.given)
        asked = ()
    except MissingAnswerError as exc:
        asked = tuple(q.key for q in exc.questions)
        assert asked and set(asked) <= set(ARCHITECTURE_KEYS), asked
        assert len(exc.ranking) >= 2 and all(f"--{key}" in str(exc) for key in asked)
        imported = build_imported(state, plan, network.name, normalization="none",
                                  **{**network.given, **network.flags(asked)})
    _assert_reproduces(imported, module, network, images)  # never a network that computes something else
    record = imported.card.training["import"]
    for key, value in record["choices"].items():
        assert value == network.truth[key], (key, value, record["decision"])
    assert record["format"] == "state dict" and record["imported_architecture"]["layers"]
    if not asked and not network.given:
        assert "points ahead of the runner-up" in record["decision"] and len(record["candidates"]) >= 2


@pytest.mark.parametrize("fold_constants", [True, False], ids=["folded-export", "plain-export"])
@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: n.name)
def test_an_onnx_export_imports_without_questions(network, fold_constants, trained, images):
    module = trained[network.name]
    state, plan = read_for_import(f"{network.name}.onnx", onnx_bytes(module, fold_constants))
    imported = build_imported(state, plan, network.name, normalization="none")
    _assert_reproduces(imported, module, network, images)
    record = imported.card.training["import"]
    assert record["format"] == "onnx" and record["decision"] == "as the ONNX graph records it"
    assert imported.config.output == (network.ends_in if network.ends_in else None) or network.ends_in is None
    activations = {layer.activation.label for layer in imported.layout if layer.activation is not None}
    assert activations == {network.truth["activation"]}


def test_the_tanh_mlp_is_never_imported_as_relu(trained, images):
    """The issue's own case: a state dict cannot say tanh; the importer must find it or ask, never assume ReLU."""
    network = next(n for n in NETWORKS if n.name == "tanh-mlp")
    state, plan = read_for_import("tanh.pt", state_dict_bytes(trained[network.name]))
    try:
        imported = build_imported(state, plan, "tanh", normalization="none")
    except MissingAnswerError as exc:
        assert [q.key for q in exc.questions] == ["activation"]
        return
    assert imported.card.training["import"]["choices"]["activation"] == "tanh"


def test_batchnorm_is_folded_and_the_card_keeps_what_was_imported(trained, images):
    network = next(n for n in NETWORKS if n.name == "batchnorm-cnn")
    module = trained[network.name]
    state, plan = read_for_import("bn.pt", state_dict_bytes(module))
    imported = build_imported(state, plan, "bn", normalization="none", **network.truth)
    _assert_reproduces(imported, module, network, images)
    assert not imported.config.has_batchnorm
    layers = imported.card.training["import"]["imported_architecture"]["layers"]
    assert [layer["name"] for layer in layers if layer["type"] == "batchnorm"] == ["1", "5", "10"]
    notes = imported.card.training["import"]["notes"]
    assert any("batch normalisation 1 folded into 0" in note for note in notes)
