"""``mechmnistic import``: exit codes, --json, nothing written on errors (in this process: ``tests/cli_runner``)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from .cli_runner import cli
from .conftest import snapshot
from .test_importer import EISVIINet, _save, _seeded, plain_sequential


@pytest.fixture
def zoo(tmp_path):
    folder = tmp_path / "zoo"
    folder.mkdir()
    return folder


def run_import(zoo, *args):
    return cli("import", *map(str, args), env={"MECHMNISTIC_MODELS": str(zoo)})


def test_import_with_json_saves_the_model_and_its_card(zoo, tmp_path):
    path = _save(_seeded(plain_sequential), tmp_path / "seq.safetensors")
    out = run_import(zoo, path, "--name", "my-seq", "--normalization", "mnist", "--activation", "relu",
                     "--description", "mine", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["name"] == "my-seq" and result["layers"] == ["1", "3"]
    assert result["normalization"] == "mnist" and result["label_function"] == {"name": "digits"}
    assert 0.0 <= result["metrics"]["test_accuracy"] <= 1.0
    card = json.loads((zoo / "my-seq" / "card.json").read_text())
    assert card["source"] == "imported from seq.safetensors" and card["description"] == "mine"
    assert card["weights_sha256"] == result["weights_sha256"]
    listed = cli("models", "--json", env={"MECHMNISTIC_MODELS": str(zoo)})
    assert [row["name"] for row in json.loads(listed.stdout)["models"]] == ["my-seq"]


def test_the_eis_vii_network_needs_no_flags(zoo, tmp_path):
    path = _save(_seeded(EISVIINet), tmp_path / "challenge.pt")
    out = run_import(zoo, path, "--name", "eis")
    assert out.returncode == 0, out.stderr
    assert "recognised as the EIS VII challenge network" in out.stdout
    assert "input normalisation: none" in out.stdout


def test_a_missing_answer_names_the_flag_and_writes_nothing(zoo, tmp_path):
    path = _save(_seeded(plain_sequential), tmp_path / "seq.pt")
    out = run_import(zoo, path, "--name", "seq")
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "seq.pt: the file cannot tell how inputs were normalised" in lines[0]
    assert "pass --normalization none" in lines[0] and "(accuracy on MNIST test digits: none" in lines[0]
    assert snapshot(zoo) == {}


def test_a_single_output_asks_for_classes(zoo, tmp_path):
    torch.manual_seed(0)
    path = _save(nn.Sequential(nn.Flatten(), nn.Linear(784, 4), nn.ReLU(), nn.Linear(4, 1)), tmp_path / "one.pt")
    out = run_import(zoo, path, "--name", "one", "--normalization", "none")
    assert out.returncode == 2 and "pass --classes 2" in out.stderr and snapshot(zoo) == {}
    out = run_import(zoo, path, "--name", "one", "--normalization", "none", "--classes", "2", "--json")
    assert out.returncode == 2 and "--activation" in out.stderr and snapshot(zoo) == {}
    out = run_import(zoo, path, "--name", "one", "--normalization", "none", "--classes", "2", "--activation", "relu",
                     "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n_classes"] == 2


def test_an_existing_name_needs_overwrite(zoo, tmp_path):
    path = _save(_seeded(plain_sequential), tmp_path / "seq.pt")
    assert run_import(zoo, path, "--name", "seq", "--normalization", "none", "--activation", "relu").returncode == 0
    before = snapshot(zoo)
    out = run_import(zoo, path, "--name", "seq", "--normalization", "mnist", "--activation", "relu")
    assert out.returncode == 2 and "already exists" in out.stderr and "--overwrite" in out.stderr
    assert snapshot(zoo) == before
    out = run_import(zoo, path, "--name", "seq", "--normalization", "mnist", "--activation", "relu", "--overwrite",
                     "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["normalization"] == "mnist"


# Bad files, code payloads included: tests/hardening/test_hostile_uploads.py.


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.pt", "--name", "x", "--normalization", "none"], "missing.pt: no such file"),
        (["{seq}", "--name", "../evil", "--normalization", "none"], "not a valid model name"),
        (["{seq}", "--name", "x", "--normalization", "abc"], "normalisation must be none, mnist or MEAN,STD"),
        (["{seq}", "--name", "x", "--normalization", "0.5,0"], "normalisation must be none, mnist or MEAN,STD"),
        (["{seq}", "--name", "x", "--normalization", "none", "--classes", "2"], "has 10 outputs"),
        (["{seq}", "--name", "x", "--classes", "3"], "invalid choice: 3"),
        (["{seq}"], "the following arguments are required: --name"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_change_nothing(args, message, zoo, tmp_path):
    seq = _save(_seeded(plain_sequential), tmp_path / "seq.pt")
    out = run_import(zoo, *[a.format(seq=seq) for a in args])
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert snapshot(zoo) == {}


def test_an_imported_model_cannot_be_retrained_from_its_card(zoo, tmp_path):
    path = _save(_seeded(plain_sequential), tmp_path / "seq.safetensors")
    assert run_import(zoo, path, "--name", "my-seq", "--normalization", "none", "--activation", "relu").returncode == 0
    before = snapshot(zoo)
    out = cli("train", "--from-card", "my-seq", "--name", "again", env={"MECHMNISTIC_MODELS": str(zoo)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == "mechmnistic train: error: my-seq was not trained here: its card holds no " \
                                 "training recipe to reproduce"
    assert snapshot(zoo) == before
