"""The command line, run as users run it: a subprocess, exit codes, one clear line on errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import snapshot


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "mechmnistic", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_models_json_lists_the_zoo():
    out = cli("models", "--json")
    assert out.returncode == 0, out.stderr
    names = [row["name"] for row in json.loads(out.stdout)["models"]]
    assert names[0] == "mlp-1x64" and {"mlp-2x64", "cnn-digits", "challenge-cnn"} <= set(names)


def test_card_json_is_the_card():
    card = json.loads(cli("card", "mlp-1x64", "--json").stdout)
    assert card["name"] == "mlp-1x64" and card["architecture"]["layers"][1] == {
        "type": "linear", "name": "layers.0", "in_features": 784, "out_features": 64, "bias": True}


def test_fetch_data_verifies():
    out = cli("fetch-data", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["verified"] is True


@pytest.mark.parametrize(
    "args, message",
    [
        (["card", "../../etc/passwd"], "not a valid model name"),
        (["card", "no-such-model"], "no model named 'no-such-model'"),
        (["train", "--recipe", "nope"], "unknown recipe"),
        (["train", "--mlp", "8", "--name", "../evil"], "not a valid model name"),
        (["train", "--mlp", "8"], "--name is required"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_change_nothing(args, message, tmp_path):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    out = cli(*args, env={"MECHMNISTIC_MODELS": str(zoo)})
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert snapshot(zoo) == {}


def test_argparse_errors_exit_2():
    out = cli("train", "--mlp", "notanumber", "--name", "x")
    assert out.returncode == 2 and "invalid int value" in out.stderr


@pytest.mark.slow
def test_train_reproduces_a_model_bit_for_bit(tmp_path):
    """Train a small MLP twice from the CLI with the same seed: identical weights."""
    shas = []
    for run in range(2):
        zoo = tmp_path / f"zoo{run}"
        out = cli("train", "--mlp", "16", "--name", "small", "--epochs", "1", "--seed", "3", "--json",
                  "--no-progress", "--zoo", str(zoo))
        assert out.returncode == 0, out.stderr
        shas.append(json.loads(out.stdout)["weights_sha256"])
    assert shas[0] == shas[1]
    card = json.loads((tmp_path / "zoo0" / "small" / "card.json").read_text())
    assert card["training"]["seed"] == 3 and card["metrics"]["test_accuracy"] > 0.85


def test_a_reader_that_stops_early_is_no_error():
    """`mechmnistic ... | head -1`: the pipe closes under a long output; no traceback, the shell's 141."""
    long_listing = (
        "import sys\n"
        "from mechmnistic.cli import main, model_cmds\n"
        "model_cmds.list_cmd = lambda args: print('a line of a long listing\\n' * 100_000)\n"
        "sys.exit(main(['models']))\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", long_listing], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.read(10) == b"a line of "
    reader.stdout.close()  # as `head` does once it has its line
    assert reader.wait(timeout=60) == 141
    stderr = reader.stderr.read().decode()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
