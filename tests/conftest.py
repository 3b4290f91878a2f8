"""Shared fixtures: the real MNIST, the bundled models, sandboxes for files."""

from __future__ import annotations

import pytest

import mechmnistic
from mechmnistic.data import load_mnist

BUNDLED_MODELS = ["mlp-1x64", "mlp-2x64", "cnn-digits", "challenge-cnn"]


@pytest.fixture(scope="session")
def mnist_train() -> mechmnistic.MNIST:
    return load_mnist("train")


@pytest.fixture(scope="session")
def mnist_test() -> mechmnistic.MNIST:
    return load_mnist("test")


@pytest.fixture(scope="session")
def bundled():
    """Load a bundled model by name, once per session."""
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = mechmnistic.load_model(name)
        return cache[name]

    return get


@pytest.fixture
def tmp_zoo(tmp_path, monkeypatch):
    """An empty model zoo that the code under test uses instead of models/."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    monkeypatch.setenv("MECHMNISTIC_MODELS", str(zoo))
    return zoo


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to prove nothing changed on disk."""
    from pathlib import Path

    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}
