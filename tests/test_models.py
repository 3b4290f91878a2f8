"""Configs, safe weight files, the zoo, and the bundled models' claimed accuracies."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_save

import mechmnistic
from mechmnistic.evaluation import evaluate
from mechmnistic.labels import apply_label_function
from mechmnistic.models import (
    ConfigError,
    ModelCard,
    ModelLoadError,
    ModelNotFoundError,
    WeightsFileError,
    build_model,
    cnn_config,
    config_from_dict,
    config_to_dict,
    load_model,
    mlp_config,
    read_state_dict,
    save_model,
)
from mechmnistic.models.weights_io import MAX_WEIGHTS_BYTES

from .conftest import BUNDLED_MODELS, snapshot


@pytest.mark.parametrize(
    "config",
    [
        mlp_config(hidden_sizes=(64,)),
        mlp_config(hidden_sizes=(32, 16, 8), n_classes=3, layer_names=("fc1", "fc2", "fc3", "out")),
        cnn_config(n_classes=2, dropout=0.2),
        cnn_config(conv_channels=(4,), kernel_sizes=(5,), fc_sizes=(), n_classes=10),
    ],
)
def test_config_json_round_trip(config):
    assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


def test_parameter_names_read_like_the_diagram():
    assert list(build_model(mlp_config(hidden_sizes=(64, 64))).state_dict()) == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias",
    ]
    challenge = build_model(cnn_config(n_classes=2))
    shapes = {k: tuple(v.shape) for k, v in challenge.state_dict().items()}
    assert shapes == {
        "conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3), "conv2.bias": (16,),
        "fc1.weight": (200, 400), "fc1.bias": (200,), "fc2.weight": (2, 200), "fc2.bias": (2,),
    }
    sequential = build_model(mlp_config(hidden_sizes=(10,), layer_names=("net.0", "net.2")))
    assert list(sequential.state_dict()) == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"]


@pytest.mark.parametrize(
    "bad",
    [
        {"arch": "transformer"},
        {"arch": "mlp", "hidden_sizes": [0]},
        {"arch": "mlp", "hidden_sizes": [4], "layer_names": ["a", "a"]},
        {"arch": "mlp", "hidden_sizes": [4], "layer_names": ["a", "a.b"]},
        {"arch": "mlp", "hidden_sizes": [4], "layer_names": ["../x", "y"]},
        {"arch": "mlp", "wat": 1},
        {"arch": "cnn", "conv_channels": [8, 8, 8, 8], "kernel_sizes": [3, 3, 3, 3]},
    ],
)
def test_bad_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        config_from_dict(bad)


def _tiny_card(name="tiny"):
    return ModelCard(name=name, config=mlp_config(hidden_sizes=(3,)), weights_sha256="")


def test_save_and_load_round_trip(tmp_zoo):
    model = build_model(mlp_config(hidden_sizes=(3,)))
    save_model(model, _tiny_card())
    assert mechmnistic.list_models() == ["tiny"]
    loaded = load_model("tiny")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert loaded.card.weights_sha256 and not list(tmp_zoo.rglob("*.tmp-*"))


@pytest.mark.parametrize("name", ["../../etc/passwd", "..", "a/b", "/etc", "", "x" * 65, "名前", "ok\n"])
def test_path_like_names_never_leave_the_zoo(tmp_zoo, name):
    with pytest.raises(ModelNotFoundError):
        load_model(name)


def test_symlink_out_of_the_zoo_is_refused(tmp_zoo, tmp_path):
    outside = tmp_path / "outside"
    save_model(build_model(mlp_config(hidden_sizes=(3,))), _tiny_card("elsewhere"), zoo=outside)
    (tmp_zoo / "sneaky").symlink_to(outside / "elsewhere")
    with pytest.raises(ModelNotFoundError, match="outside the model zoo"):
        load_model("sneaky")


def test_unknown_model_lists_known_ones(tmp_zoo):
    save_model(build_model(mlp_config(hidden_sizes=(3,))), _tiny_card())
    with pytest.raises(ModelNotFoundError, match="known: tiny"):
        load_model("nope")


def _saved_tiny(tmp_zoo):
    save_model(build_model(mlp_config(hidden_sizes=(3,))), _tiny_card())
    return tmp_zoo / "tiny"


def test_corrupt_weights_file_is_named(tmp_zoo):
    folder = _saved_tiny(tmp_zoo)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ModelLoadError, match=r"model.safetensors: does not match the SHA-256"):
        load_model("tiny")


def test_shape_mismatched_weights_are_named(tmp_zoo):
    folder = _saved_tiny(tmp_zoo)
    state = build_model(mlp_config(hidden_sizes=(4,))).state_dict()
    data = safetensors_save({k: v.contiguous() for k, v in state.items()})
    (folder / "model.safetensors").write_bytes(data)
    card = json.loads((folder / "card.json").read_text())
    import hashlib

    card["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=r"layers.0.weight has shape \(4, 784\), expected \(3, 784\)"):
        load_model("tiny")


def test_half_written_model_without_card_is_not_listed(tmp_zoo):
    folder = tmp_zoo / "half"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"partial")
    assert mechmnistic.list_models() == []


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pt_file_with_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"layers.0.weight": torch.zeros(2), "x": _Payload(marker)}, path)
    before = snapshot(tmp_path)
    with pytest.raises(WeightsFileError, match=r"evil.pt: refused: the file holds pickled objects"):
        read_state_dict(path)
    assert not marker.exists()
    assert snapshot(tmp_path) == before


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"w": np.zeros(3)}))
    with pytest.raises(WeightsFileError, match="plain.pth"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.safetensors", b"", "the file is empty"),
        ("junk.safetensors", b"not a tensor file at all", "not a valid safetensors file"),
        ("junk.pt", b"not a tensor file at all", "not a PyTorch file"),
        ("weights.npy", b"\x93NUMPY", "unsupported file type .npy"),
    ],
)
def test_bad_weight_files_are_named(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=message):
        read_state_dict(path)


def test_truncated_pt_and_oversized_files(tmp_path):
    state = build_model(mlp_config(hidden_sizes=(3,))).state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(WeightsFileError, match="cut.pt: not a readable"):
        read_state_dict(truncated)
    with pytest.raises(WeightsFileError, match="over the 64 MiB limit"):
        read_state_dict(tmp_path / "big.safetensors", data=b"\0" * (MAX_WEIGHTS_BYTES + 1))


def test_pt_state_dict_loads(tmp_path):
    state = build_model(mlp_config(hidden_sizes=(3,))).state_dict()
    torch.save({"state_dict": state}, tmp_path / "ok.pt")
    loaded = read_state_dict(tmp_path / "ok.pt")
    assert set(loaded) == set(state)


@pytest.mark.parametrize("name", BUNDLED_MODELS)
def test_bundled_model_cards_hold_against_the_real_test_set(name, bundled):
    model = bundled(name)
    card = model.card
    assert (mechmnistic.paths.zoo_root() / name / "model.safetensors").stat().st_size < 1_000_000
    result = evaluate(model)
    assert result["test_accuracy"] == pytest.approx(card.metrics["test_accuracy"], abs=1e-12)
    floor = {"mlp-1x64": 0.975, "mlp-2x64": 0.975, "cnn-digits": 0.985, "challenge-cnn": 0.945}[name]
    assert result["test_accuracy"] >= floor
    assert card.training["seed"] is not None and card.config.describe()


def test_challenge_cnn_is_the_challenge_architecture_and_function(bundled, mnist_test):
    model = bundled("challenge-cnn")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["fc1.weight"] == (200, 400) and shapes["fc2.weight"] == (2, 200)
    spec = model.card.label_function
    assert spec["hidden"] and spec["template"] == "train:6" and (spec["low"], spec["high"]) == (-33.93, -15.22)
    labels = apply_label_function(spec, mnist_test.images, mnist_test.labels)
    assert 0.25 < (labels == 0).mean() < 0.6  # a real band, not a constant
