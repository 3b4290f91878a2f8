"""The on-disk analysis cache: keyed by weights and parameters, atomic, safe under concurrency."""

from __future__ import annotations

import hashlib
import multiprocessing
import time

import numpy as np
import pytest
import torch

from mechmnistic.cache import cached, entry_path, is_cached, model_fingerprint
from mechmnistic.models import Normalization, build_model, mlp_config
from mechmnistic.models.zoo import weights_bytes


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(mlp_config(hidden_sizes=(4,)))


def test_computes_once_then_reads(model, tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(5), "y": np.eye(2, dtype=np.float32)}

    first = cached(model, "demo", {"k": 1}, compute, root=tmp_path)
    second = cached(model, "demo", {"k": 1}, compute, root=tmp_path)
    assert len(calls) == 1 and is_cached(model, "demo", {"k": 1}, root=tmp_path)
    assert np.array_equal(first["x"], second["x"]) and second["y"].dtype == np.float32
    cached(model, "demo", {"k": 2}, compute, root=tmp_path)
    assert len(calls) == 2, "other parameters are another entry"


def test_other_weights_are_another_entry(tmp_path):
    a = build_model(mlp_config(hidden_sizes=(4,)))
    b = build_model(mlp_config(hidden_sizes=(4,)))
    assert model_fingerprint(a) != model_fingerprint(b)
    assert entry_path(a, "demo", {}, tmp_path) != entry_path(b, "demo", {}, tmp_path)


def test_other_normalisation_is_another_entry(tmp_path):
    raw = build_model(mlp_config(hidden_sizes=(4,)))
    normalised = build_model(mlp_config(hidden_sizes=(4,), normalization=Normalization(0.1307, 0.3081)))
    normalised.load_state_dict(raw.state_dict())
    assert model_fingerprint(raw) != model_fingerprint(normalised)
    # Raw-pixel models keep the plain weights hash (the one their card records).
    assert model_fingerprint(raw) == hashlib.sha256(weights_bytes(raw)).hexdigest()


def test_corrupt_entry_is_recomputed(model, tmp_path):
    cached(model, "demo", {}, lambda: {"x": np.ones(3)}, root=tmp_path)
    path = entry_path(model, "demo", {}, tmp_path)
    path.write_bytes(path.read_bytes()[:20])
    assert np.array_equal(cached(model, "demo", {}, lambda: {"x": np.zeros(3)}, root=tmp_path)["x"], np.zeros(3))


def test_entries_never_hold_pickles(model, tmp_path):
    with pytest.raises(TypeError, match="object dtype"):
        cached(model, "demo", {}, lambda: {"x": np.array([{"a": 1}], dtype=object)}, root=tmp_path)
    assert not list(tmp_path.rglob("*.npz"))


def test_failed_compute_leaves_nothing(model, tmp_path):
    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached(model, "demo", {}, boom, root=tmp_path)
    assert not list(tmp_path.rglob("*.npz")) and not list(tmp_path.rglob("*.tmp-*"))


def _worker(root, counter, model_state):
    model = build_model(mlp_config(hidden_sizes=(4,)))
    model.load_state_dict(model_state)

    def compute():
        with open(counter, "a") as handle:
            handle.write("x")
        time.sleep(0.5)
        return {"x": np.arange(1000)}

    result = cached(model, "race", {}, compute, root=root)
    assert np.array_equal(result["x"], np.arange(1000))


def test_two_processes_compute_the_same_entry_once(model, tmp_path):
    counter = tmp_path / "calls"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(tmp_path, counter, model.state_dict())) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(w.exitcode == 0 for w in workers)
    assert counter.read_text() == "x"
