"""Reading and checking weight files without ever running code from them.

``.safetensors`` files hold plain tensors by design. ``.pt`` / ``.pth`` files are
pickles, so they are read only with ``torch.load(weights_only=True)``, whose
unpickler builds tensors and containers and refuses every other object: a file
that smuggles code in is rejected before anything runs.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load

from ..errors import MechMNISTicError

#: Largest weights file accepted. The bundled models are well under 1 MB; 64 MiB
#: leaves room for much bigger MLPs/CNNs while refusing accidental giant uploads.
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
# Common checkpoint wrappers around the state dict itself.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")

StateDict = dict[str, torch.Tensor]


class WeightsFileError(MechMNISTicError, ValueError):
    """A weights file cannot be used; the message names the file and the reason."""


def read_state_dict(path: str | os.PathLike, data: bytes | None = None) -> StateDict:
    """Read a state dict from ``path`` (or from ``data``, named by ``path``).

    Returns ``{parameter name: tensor}`` on the CPU. Raises ``WeightsFileError``
    for files that are too big, empty, truncated, not a tensor file, hold
    pickled objects or code, or hold anything but named tensors.
    """
    path = Path(path)
    name = path.name
    if data is None:
        if not path.is_file():
            raise WeightsFileError(f"{path}: no such file")
        _check_size(name, path.stat().st_size)
        data = path.read_bytes()
    _check_size(name, len(data))
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        state = _read_safetensors(name, data)
    elif suffix in PICKLE_SUFFIXES:
        state = _read_torch_pickle(name, data)
    else:
        known = ", ".join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
        raise WeightsFileError(f"{name}: unsupported file type {suffix or '(none)'}; use one of {known}")
    return _as_flat_state_dict(name, state)


def _check_size(name: str, size: int) -> None:
    if size == 0:
        raise WeightsFileError(f"{name}: the file is empty")
    if size > MAX_WEIGHTS_BYTES:
        raise WeightsFileError(
            f"{name}: {size / 2**20:.1f} MiB is over the {MAX_WEIGHTS_BYTES // 2**20} MiB limit for weights files"
        )


def _read_safetensors(name: str, data: bytes) -> Mapping[str, torch.Tensor]:
    try:
        return safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise WeightsFileError(f"{name}: not a valid safetensors file (truncated or corrupt): {exc}") from None


def _read_torch_pickle(name: str, data: bytes) -> object:
    # torch.save writes a zip archive (new format) or a bare pickle (legacy).
    if not (data.startswith(b"PK\x03\x04") or data.startswith(b"\x80")):
        raise WeightsFileError(f"{name}: not a PyTorch file (neither a torch.save zip archive nor a pickle)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        detail = f"it references {reason.group(1)}" if reason else "it holds objects other than tensors"
        raise WeightsFileError(
            f"{name}: refused: the file holds pickled objects other than tensors (possibly code): "
            f"{detail}. Such files are never loaded; save a plain state dict, ideally as .safetensors"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise WeightsFileError(f"{name}: not a readable PyTorch state dict (truncated or corrupt): {exc}") from None


def _as_flat_state_dict(name: str, state: object) -> StateDict:
    if isinstance(state, Mapping):
        for key in _WRAPPER_KEYS:
            inner = state.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                state = inner
                break
    if isinstance(state, Mapping) and not state:
        raise WeightsFileError(f"{name}: the file holds no tensors (an empty state dict)")
    if not isinstance(state, Mapping):
        raise WeightsFileError(f"{name}: expected a state dict (parameter name -> tensor), got {type(state).__name__}")
    flat: StateDict = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise WeightsFileError(
                f"{name}: entry {key!r} is a {type(value).__name__}, not a tensor; expected a plain state dict"
            )
        flat[key] = value
    return flat


def check_state_dict(name: str, state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size]) -> None:
    """Check keys, shapes and values against a model's own state dict shapes."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if extra:
        problems.append(f"unexpected keys {extra}")
    for key in sorted(set(expected) & set(state)):
        if tuple(state[key].shape) != tuple(expected[key]):
            problems.append(f"{key} has shape {tuple(state[key].shape)}, expected {tuple(expected[key])}")
    if problems:
        raise WeightsFileError(f"{name}: does not match the architecture: " + "; ".join(problems))
    check_finite(name, state)


def check_finite(name: str, state: Mapping[str, torch.Tensor]) -> None:
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            raise WeightsFileError(f"{name}: {key} has dtype {tensor.dtype}; weights must be floating point")
        if not torch.isfinite(tensor).all():
            raise WeightsFileError(f"{name}: {key} contains NaN or infinite values")
