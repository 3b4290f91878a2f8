"""Bring your own model: state dicts written the way users write their modules, bad files of every kind.

Every accepted import is checked against the user's own module: the imported
model gives the same logits on real MNIST images. Every refused file is checked
for a message naming the file and the problem, and for a zoo left exactly as
it was.
"""

from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save as safetensors_save
from torch import nn

import mechmnistic
from mechmnistic.evaluation import evaluate
from mechmnistic.hooks import to_pixels
from mechmnistic.labels import UnknownLabelsError
from mechmnistic.models import WeightsFileError, load_model
from mechmnistic.models.importer import (
    EIS_VII_NAME,
    NORMALIZATIONS,
    Answers,
    MissingAnswerError,
    UnsupportedModelError,
    build_imported,
    import_model,
    parse_normalization,
    plan_import,
    read_for_import,
    suggest_normalization,
)
from mechmnistic.models.weights_io import MAX_WEIGHTS_BYTES
from mechmnistic.models.zoo import ModelExistsError, ModelNotFoundError

from .conftest import snapshot

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


# -- modules written the way users write them -------------------------------------------------------------


class FCNet(nn.Module):
    """Numbered attributes: fc1, fc2, fc3."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 32), nn.Linear(32, 16), nn.Linear(16, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class LinearNet(nn.Module):
    """Numbered ``linearN`` attributes, registered out of order (the names give the order)."""

    def __init__(self):
        super().__init__()
        self.linear2 = nn.Linear(24, 10)
        self.linear1 = nn.Linear(784, 24)

    def forward(self, x):
        return self.linear2(F.relu(self.linear1(x.flatten(1))))


class NamedNet(nn.Module):
    """Named layers whose names do not give the order: only the shapes do."""

    def __init__(self):
        super().__init__()
        self.output = nn.Linear(20, 10)
        self.input_layer = nn.Linear(784, 40)
        self.hidden = nn.Linear(40, 20)

    def forward(self, x):
        return self.output(F.relu(self.hidden(F.relu(self.input_layer(x.flatten(1))))))


class ListNet(nn.Module):
    """MechMNISTic's own scheme: ``layers.N`` in a ModuleList."""

    def __init__(self, sizes=(784, 20, 20, 10)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


def plain_sequential(widths=(784, 32, 10)) -> nn.Sequential:
    """``0.weight``-style keys: Flatten, then Linear/ReLU pairs (Linear layers at 1, 3, ...)."""
    parts: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(widths, widths[1:], strict=False):
        parts += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*parts[:-1])


class PrefixedSequential(nn.Module):
    """An ``nn.Sequential`` under an attribute: ``net.N`` (or ``model.N``)."""

    def __init__(self, attribute="net", widths=(784, 32, 10)):
        super().__init__()
        self.attribute = attribute
        setattr(self, attribute, plain_sequential(widths))

    def forward(self, x):
        return getattr(self, self.attribute)(x)


class EISVIINet(nn.Module):
    """The EIS VII challenge network as its authors wrote it (conv -> ReLU -> dropout -> pool, twice)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3), nn.Conv2d(8, 16, 3)
        self.dropout = nn.Dropout(0.2)
        self.fc1, self.fc2 = nn.Linear(400, 200), nn.Linear(200, 2)

    def forward(self, x):
        x = F.max_pool2d(self.dropout(F.relu(self.conv1(x))), 2)
        x = F.max_pool2d(self.dropout(F.relu(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class TorchvisionStyleCNN(nn.Module):
    """``features.N`` + ``classifier.N``, 5x5 kernels, dropout in the classifier."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 12, 5),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(12 * 4 * 4, 30), nn.ReLU(), nn.Linear(30, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class UnpooledCNN(nn.Module):
    """One conv without pooling (pool size 1 in our family), straight into the classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 7)
        self.fc1 = nn.Linear(2 * 22 * 22, 10)

    def forward(self, x):
        return self.fc1(F.relu(self.conv1(x)).flatten(1))


def _seeded(factory, seed=0):
    torch.manual_seed(seed)
    return factory().eval()


def _save(module_or_state, path):
    """Write a state dict as users do: torch.save for .pt/.pth, safetensors otherwise."""
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    if path.suffix == ".safetensors":
        path.write_bytes(safetensors_save({k: v.contiguous() for k, v in state.items()}))
    else:
        torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def pixels(mnist_test):
    return to_pixels(mnist_test.images[:256])


def _same_logits(imported, module, pixels, normalization=(0.0, 1.0)):
    mean, std = normalization
    with torch.no_grad():
        expected = module((pixels.unsqueeze(1) - mean) / std)
        got = imported(pixels)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# -- naming schemes ---------------------------------------------------------------------------------------

RELU = {"activation": "relu"}
RELU_POOLED = {"activation": "relu", "pool": "max2", "padding": "0", "stride": "1"}

SCHEMES = [
    # factory, has conv layers, layer names in forward order, naming scheme words, what the weights cannot tell
    (FCNet, False, ["fc1", "fc2", "fc3"], "numbered attributes (fcN)", RELU),
    (LinearNet, False, ["linear1", "linear2"], "numbered attributes (linearN)", RELU),
    (NamedNet, False, ["input_layer", "hidden", "output"], "named layers", RELU),
    (ListNet, False, ["layers.0", "layers.1", "layers.2"], "indexed layers under attributes (layers.N)", RELU),
    (plain_sequential, False, ["1", "3"], "plain nn.Sequential indices", RELU),
    (PrefixedSequential, False, ["net.1", "net.3"], "indexed layers under attributes (net.N)", RELU),
    (lambda: PrefixedSequential("model", (784, 50, 40, 10)), False, ["model.1", "model.3", "model.5"],
     "(model.N)", RELU),
    (EISVIINet, True, ["conv1", "conv2", "fc1", "fc2"], "numbered attributes (convN, fcN)", {}),
    (TorchvisionStyleCNN, True, ["features.0", "features.3", "classifier.1", "classifier.3"],
     "indexed layers under attributes (features.N, classifier.N)", RELU_POOLED),
    (UnpooledCNN, True, ["conv1", "fc1"], "numbered attributes (convN, fcN)", RELU),
]


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
@pytest.mark.parametrize("factory, conv, names, naming, answers", SCHEMES,
                         ids=lambda v: getattr(v, "__name__", None))
def test_each_naming_scheme_imports_with_its_own_names_and_logits(factory, conv, names, naming, answers, suffix,
                                                                   tmp_path, pixels):
    module = _seeded(factory)
    state, plan = read_for_import(_save(module, tmp_path / f"user{suffix}"))
    assert bool(plan.recognised_layers.convs) == conv
    assert list(plan.layer_names) == names
    assert naming in plan.naming
    model = build_imported(state, plan, "mine", normalization="none", **answers)
    assert model.layer_names == tuple(names)
    assert set(model.state_dict()) == set(module.state_dict())
    _same_logits(model, module, pixels)


def test_the_pooling_that_fits_the_first_linear_layer_is_the_only_candidate():
    unpooled = plan_import(_seeded(UnpooledCNN).state_dict())
    [only] = unpooled.candidates(NORMALIZATIONS["none"], Answers(activation="relu"))
    assert only.choices == {"activation": "relu", "pool": "none", "padding": "0", "stride": "1"}
    eis = plan_import(_seeded(EISVIINet).state_dict())
    [only] = eis.candidates(NORMALIZATIONS["none"], Answers())
    assert only.choices["pool"] == "max2,max2"


def test_names_order_by_number_not_by_text_and_shapes_break_ties(pixels):
    # 11 Linear layers of equal width: net.1, net.3, ..., net.21 (text order would put net.11 before net.3),
    # and a safetensors file stores its keys in its own order, not the module's.
    widths = (784,) + (12,) * 10 + (10,)
    module = _seeded(lambda: PrefixedSequential("net", widths))
    data = safetensors_save({k: v.contiguous() for k, v in module.state_dict().items()})
    state, plan = read_for_import("deep.safetensors", data)
    assert list(plan.layer_names) == [f"net.{i}" for i in range(1, 22, 2)]
    _same_logits(build_imported(state, plan, "deep", normalization="none", activation="relu"), module, pixels)


def test_order_found_from_shapes_is_said():
    plan = plan_import(_seeded(NamedNet).state_dict(), "named.pt")
    assert any("chaining the layers' shapes: input_layer -> hidden -> output" in note for note in plan.notes)


def test_hooks_and_layers_use_the_users_names(pixels):
    module = _seeded(plain_sequential)
    plan = plan_import(module.state_dict(), "seq.pt")
    model = build_imported(module.state_dict(), plan, "seq", normalization="none", activation="relu")
    logits, cache = mechmnistic.run_with_cache(model, pixels[:4])
    assert {"1.pre", "1.post", "3.pre"} <= set(cache)
    torch.testing.assert_close(cache["3.pre"], logits)
    assert model.layer("1") is model.get_submodule("1")


def test_a_layer_without_bias_gets_a_zero_bias(pixels):
    module = _seeded(lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 16, bias=False), nn.ReLU(),
                                           nn.Linear(16, 10)))
    plan = plan_import(module.state_dict(), "nobias.pt")
    model = build_imported(module.state_dict(), plan, "nobias", normalization="none", activation="relu")
    assert torch.equal(model.get_submodule("1").bias, torch.zeros(16))
    assert any("1 has no bias" in note for note in model.card.training["import"]["notes"])
    _same_logits(model, module, pixels)


# -- the questions ----------------------------------------------------------------------------------------


def test_normalisation_is_asked_and_applied(pixels):
    module = _seeded(FCNet)
    plan = plan_import(module.state_dict(), "fc.pt")
    assert [q.key for q in plan.questions] == ["normalization"]
    with pytest.raises(MissingAnswerError, match="fc.pt: the file cannot tell how inputs were normalised") as info:
        build_imported(module.state_dict(), plan, "fc", activation="relu")
    assert [q.key for q in info.value.questions] == ["normalization"]
    model = build_imported(module.state_dict(), plan, "fc", normalization="mnist", activation="relu")
    _same_logits(model, module, pixels, (MNIST_MEAN, MNIST_STD))
    custom = build_imported(module.state_dict(), plan, "fc", normalization="0.5,0.25", activation="relu")
    _same_logits(custom, module, pixels, (0.5, 0.25))
    assert custom.card.training["import"]["normalization"] == "0.5,0.25"


@pytest.mark.parametrize("text, expected", [("none", (0.0, 1.0)), ("MNIST", (0.1307, 0.3081)),
                                            (" 0.5, 0.25 ", (0.5, 0.25)), ("-1,2", (-1.0, 2.0))])
def test_parse_normalization(text, expected):
    norm = parse_normalization(text)
    assert (norm.mean, norm.std) == expected


@pytest.mark.parametrize("text", ["", "abc", "0.5", "0.5,0", "0.5,-1", "nan,1", "1,inf", "1,2,3"])
def test_bad_normalisation_answers_are_refused(text):
    with pytest.raises(mechmnistic.errors.MechMNISTicError, match="normalisation must be none, mnist or MEAN,STD"):
        parse_normalization(text)


def test_a_single_output_is_asked_about_and_read_as_a_binary_classifier(pixels):
    module = _seeded(lambda: PrefixedSequential("net", (784, 16, 1)))
    plan = plan_import(module.state_dict(), "binary.pt")
    assert [q.key for q in plan.questions] == ["normalization", "classes"]
    with pytest.raises(MissingAnswerError, match="classes"):
        build_imported(module.state_dict(), plan, "binary", normalization="none")
    # A binary model cannot be scored on digits: what the shapes leave open is asked, never guessed.
    with pytest.raises(MissingAnswerError, match="cannot be scored on MNIST digits") as info:
        build_imported(module.state_dict(), plan, "binary", normalization="none", classes=2)
    assert [q.key for q in info.value.questions] == ["activation"]
    model = build_imported(module.state_dict(), plan, "binary", normalization="none", classes=2, activation="relu")
    assert model.n_classes == 2 and model.card.label_function == {"name": "unknown"}
    with torch.no_grad():
        z = module(pixels.unsqueeze(1))[:, 0]
        logits = model(pixels)
    torch.testing.assert_close(logits[:, 0], torch.zeros_like(z))
    torch.testing.assert_close(logits[:, 1], z)
    torch.testing.assert_close(logits.softmax(1)[:, 1], torch.sigmoid(z))
    with pytest.raises(mechmnistic.errors.MechMNISTicError, match="has 10 outputs, so it cannot have 2 classes"):
        build_imported(_seeded(FCNet).state_dict(), plan_import(_seeded(FCNet).state_dict(), "fc.pt"), "x",
                       normalization="none", classes=2)


def test_suggestion_points_at_the_normalisation_a_model_was_trained_with(bundled):
    # mlp-1x64 was trained on raw pixels: "none" must score far better than "mnist".
    state = bundled("mlp-1x64").state_dict()
    scores = suggest_normalization(plan_import(state, "mlp.pt"), state)
    assert scores["none"] > 0.95 and scores["mnist"] < scores["none"] - 0.1
    assert suggest_normalization(plan_import(_seeded(EISVIINet).state_dict()), {}) == {}


# -- the EIS VII challenge network and real models --------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_eis_vii_network_imports_without_questions(suffix, tmp_zoo, tmp_path, pixels):
    module = _seeded(EISVIINet)
    path = _save(module, tmp_path / f"challenge{suffix}")
    state, plan = read_for_import(path)
    assert plan.questions == () and plan.recognised == EIS_VII_NAME
    model = import_model(path, "eis-vii")
    _same_logits(model, module, pixels)
    loaded = load_model("eis-vii")
    _same_logits(loaded, module, pixels)
    card = json.loads((tmp_zoo / "eis-vii" / "card.json").read_text())
    assert card["source"] == f"imported from challenge{suffix}"
    assert "Recognised as the EIS VII challenge network" in card["description"]
    assert card["training"]["import"]["recognised"] == EIS_VII_NAME
    assert card["architecture"]["normalization"] == {"mean": 0.0, "std": 1.0}
    assert card["label_function"] == {"name": "unknown"}
    layers = [layer["name"] for layer in card["architecture"]["layers"] if layer["type"] in ("conv2d", "linear")]
    assert layers == ["conv1", "conv2", "fc1", "fc2"]
    assert card["weights_sha256"] == loaded.card.weights_sha256 and card["training"]["import"]["file_sha256"]
    with pytest.raises(UnknownLabelsError, match="labels are unknown"):
        evaluate(loaded)


def test_the_bundled_challenge_network_round_trips_through_import(bundled, tmp_path, mnist_test):
    original = bundled("challenge-cnn")
    path = _save(original, tmp_path / "challenge_cnn.pth")
    imported = import_model(path, "challenge-again", zoo=tmp_path / "zoo")
    logits_a, _ = mechmnistic.run_with_cache(original, mnist_test.images[:500])
    logits_b, _ = mechmnistic.run_with_cache(imported, mnist_test.images[:500])
    assert torch.equal(logits_a, logits_b)
    # Its agreement with the challenge's labels is exactly the bundled card's test accuracy.
    assert imported.card.metrics["challenge_label_agreement"] == original.card.metrics["test_accuracy"]


def test_a_digit_classifier_gets_digit_labels_and_its_real_test_accuracy(bundled, tmp_path):
    original = bundled("mlp-2x64")
    renamed = {k.replace("layers.", "block."): v for k, v in original.state_dict().items()}
    path = _save(renamed, tmp_path / "two_hidden.pt")
    imported = import_model(path, "two-hidden", normalization="none", description="my MLP", zoo=tmp_path / "zoo",
                            activation="relu")
    loaded = load_model("two-hidden", zoo=tmp_path / "zoo")
    card = loaded.card
    assert card.label_function == {"name": "digits"} and card.description == "my MLP"
    assert card.metrics["test_accuracy"] == original.card.metrics["test_accuracy"]
    assert evaluate(loaded)["matches_card"]
    assert imported.layer_names == ("block.0", "block.1", "block.2")


# -- names and overwriting --------------------------------------------------------------------------------


def test_taken_names_are_refused_unless_overwriting(tmp_zoo, tmp_path):
    path = _save(_seeded(FCNet), tmp_path / "fc.pt")
    import_model(path, "mine", normalization="none", activation="relu")
    before = snapshot(tmp_zoo)
    with pytest.raises(ModelExistsError, match="a model named 'mine' already exists"):
        import_model(path, "mine", normalization="mnist", activation="relu")
    assert snapshot(tmp_zoo) == before
    import_model(path, "mine", normalization="mnist", overwrite=True, activation="relu")
    assert load_model("mine").config.normalization.mean == MNIST_MEAN


@pytest.mark.parametrize("name", ["../evil", "", "a/b", "x" * 65, "has space"])
def test_bad_names_are_refused_before_reading(name, tmp_zoo, tmp_path):
    path = _save(_seeded(FCNet), tmp_path / "fc.pt")
    with pytest.raises(ModelNotFoundError, match="not a valid model name"):
        import_model(path, name, normalization="none")
    assert snapshot(tmp_zoo) == {}


# -- bad files: a clear message naming the file and the problem, and nothing saved -----------------------


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _state(factory=FCNet, **changes):
    state = dict(_seeded(factory).state_dict())
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = value
    return state


BAD_STATES = [
    ("bias_shape.pt", _state(**{"fc2.bias": torch.zeros(5)}),
     r"bias_shape.pt: fc2.bias has shape \(5,\), expected \(16,\)"),
    ("no_chain.pt", _state(**{"fc2.weight": torch.zeros(16, 31)}),
     "no_chain.pt: the layer shapes do not chain: layer fc1 outputs 32, but layer fc2 takes 31 inputs"),
    ("not_784.safetensors", _state(**{"fc1.weight": torch.zeros(32, 100)}),
     "not_784.safetensors: the layer shapes do not chain: the input has 784 pixels"),
    ("missing_weight.pt", _state(**{"fc2.weight": None}), r"missing_weight.pt: missing keys \['fc2.weight'\]"),
    ("extra.pt", _state(**{"step": torch.tensor(3.0)}), r"extra.pt: unexpected keys \['step'\]"),
    ("batchnorm.pt", _state(**{"bn.running_mean": torch.zeros(32)}),
     r"batchnorm.pt: missing keys \['bn.running_var'\] of batch normalisation bn"),
    ("stray_batchnorm.pt", {**_state(), "bn.running_mean": torch.zeros(7), "bn.running_var": torch.ones(7)},
     "cannot tell which layer batch normalisation bn"),
    ("nan.safetensors", _state(**{"fc2.weight": torch.full((16, 32), float("nan"))}),
     "nan.safetensors: fc2.weight contains NaN or infinite values"),
    ("inf.pt", _state(**{"fc1.bias": torch.full((32,), float("inf"))}), "inf.pt: fc1.bias contains NaN or infinite"),
    ("ints.pt", _state(**{"fc1.bias": torch.zeros(32, dtype=torch.int64)}), "ints.pt: fc1.bias has dtype torch.int64"),
    ("rgb.pt", {"conv1.weight": torch.zeros(4, 3, 3, 3), "conv1.bias": torch.zeros(4),
                "fc.weight": torch.zeros(10, 4 * 13 * 13), "fc.bias": torch.zeros(10)},
     r"rgb.pt: the layer shapes do not chain: the input has 1 channel \(grayscale\), but layer conv1 takes 3"),
    ("unfit.pt", {"conv1.weight": torch.zeros(8, 1, 3, 3), "conv1.bias": torch.zeros(8),
                  "fc1.weight": torch.zeros(10, 1000), "fc1.bias": torch.zeros(10)},
     r"unfit.pt: no architecture fits these layers. Recognised: conv1 \(Conv2d 1 -> 8 channels, 3x3\); fc1 "
     r"\(Linear 1000 -> 10\)"),
    ("convs_only.pt", {"conv1.weight": torch.zeros(8, 1, 3, 3), "conv1.bias": torch.zeros(8)},
     r"convs_only.pt: unsupported architecture: recognised conv1 .* but no fully connected"),
    ("layernorm.pt", {**_state(), "norm.weight": torch.ones(32), "norm.bias": torch.zeros(32)},
     r"layernorm.pt: norm.weight has shape \(32,\): neither a Linear"),
    ("nonsquare.pt", {"conv1.weight": torch.zeros(8, 1, 3, 5), "conv1.bias": torch.zeros(8),
                      "fc1.weight": torch.zeros(10, 8), "fc1.bias": torch.zeros(10)}, "non-square kernel"),
    ("clash.pt", {"layer.weight": torch.zeros(10, 784), "layer.bias": torch.zeros(10)},
     r"clash.pt: unsupported layer names: \['layer'\] would shadow"),
    ("bare.pt", {"weight": torch.zeros(10, 784), "bias": torch.zeros(10)}, "a single unnamed layer"),
]


@pytest.mark.parametrize("filename, state, message", BAD_STATES, ids=[b[0] for b in BAD_STATES])
def test_bad_state_dicts_are_refused_and_nothing_is_saved(filename, state, message, tmp_zoo, tmp_path):
    path = _save(state, tmp_path / filename)
    before = snapshot(tmp_zoo)
    with pytest.raises(WeightsFileError, match=message):
        import_model(path, "bad", normalization="none")
    assert snapshot(tmp_zoo) == before and not (tmp_zoo / "bad").exists()


def test_a_pickle_holding_code_is_refused_and_never_runs(tmp_zoo, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({**_state(), "fc9.weight": _Payload(marker)}, path)
    before = snapshot(tmp_zoo)
    with pytest.raises(WeightsFileError, match="evil.pt: refused: the file holds pickled objects"):
        import_model(path, "evil", normalization="none")
    assert not marker.exists()
    assert snapshot(tmp_zoo) == before


@pytest.mark.parametrize("suffix, message", [(".safetensors", "not a valid safetensors file"),
                                             (".pt", "not a readable PyTorch state dict")])
def test_truncated_files_are_refused(suffix, message, tmp_zoo, tmp_path):
    whole = _save(_seeded(FCNet), tmp_path / f"whole{suffix}").read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(WeightsFileError, match=f"cut{suffix}: {message}"):
        import_model(path, "cut", normalization="none")
    assert snapshot(tmp_zoo) == {}


def test_files_over_the_size_limit_are_refused_unread(tmp_zoo, tmp_path):
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as handle:  # sparse: the limit is checked from the size, before reading
        handle.truncate(MAX_WEIGHTS_BYTES + 1)
    with pytest.raises(WeightsFileError, match="huge.safetensors: 64.0 MiB is over the 64 MiB limit"):
        import_model(path, "huge", normalization="none")
    with pytest.raises(WeightsFileError, match="upload.pt: .* over the 64 MiB limit"):
        read_for_import("upload.pt", b"\0" * (MAX_WEIGHTS_BYTES + 1))
    assert snapshot(tmp_zoo) == {}


def test_a_wrapped_checkpoint_is_unwrapped(tmp_path):
    buffer = io.BytesIO()
    torch.save({"epoch": 3, "model_state_dict": _seeded(FCNet).state_dict()}, buffer)
    _, plan = read_for_import("checkpoint.pt", buffer.getvalue())
    assert plan.layer_names == ("fc1", "fc2", "fc3")


def test_unsupported_errors_are_weights_file_errors():
    # One family of errors for every bad file: callers (CLI, app) catch WeightsFileError / MechMNISTicError.
    assert issubclass(UnsupportedModelError, WeightsFileError)
