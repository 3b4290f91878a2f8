"""The model zoo: ``<zoo>/<name>/model.safetensors`` + ``<zoo>/<name>/card.json``.

Names are checked before any path is built from them, and the resolved folder
must lie directly inside the zoo, so a name from a URL or a form can never read
or write elsewhere (``../../etc/passwd`` is refused, as are symlinks out).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_save

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import MechMNISTicError
from ..paths import zoo_root
from .architectures import MNISTNet, build_model
from .card import ModelCard
from .config import ConfigError, NetConfig
from .weights_io import WeightsFileError, check_state_dict, read_state_dict

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
DEFAULT_MODEL = "mlp-1x64"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ModelNotFoundError(MechMNISTicError, LookupError):
    """No model of that name in the zoo (or the name is not a valid model name)."""


class ModelLoadError(MechMNISTicError, RuntimeError):
    """A model exists but its files are unusable; the message says which and why."""


class ModelExistsError(MechMNISTicError, FileExistsError):
    """Saving would replace an existing model and overwriting was not asked for."""


def validate_name(name: object) -> str:
    """Return ``name`` if it is a safe model name, else raise ``ModelNotFoundError``."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ModelNotFoundError(
            f"{str(name)[:80]!r} is not a valid model name (letters, digits, '.', '_', '-'; at most 64)"
        )
    return name


def model_dir(name: str, zoo: str | os.PathLike | None = None) -> Path:
    """The folder of model ``name`` inside the zoo (it need not exist yet)."""
    root = Path(zoo) if zoo is not None else zoo_root()
    folder = root / validate_name(name)
    if folder.resolve().parent != root.resolve():
        raise ModelNotFoundError(f"{name!r} resolves outside the model zoo")
    return folder


def list_models(zoo: str | os.PathLike | None = None) -> list[str]:
    """Names of the models in the zoo that have a card, the default first."""
    root = Path(zoo) if zoo is not None else zoo_root()
    if not root.is_dir():
        return []
    names = sorted(
        p.name
        for p in root.iterdir()
        if _NAME.match(p.name) and (p / CARD_FILE).is_file() and (p / WEIGHTS_FILE).is_file()
    )
    if DEFAULT_MODEL in names:
        names.remove(DEFAULT_MODEL)
        names.insert(0, DEFAULT_MODEL)
    return names


def load_card(name: str, zoo: str | os.PathLike | None = None) -> ModelCard:
    """The card of model ``name``."""
    folder = model_dir(name, zoo)
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        known = ", ".join(list_models(zoo)) or "none"
        raise ModelNotFoundError(f"no model named {name!r} in the zoo (known: {known})")
    try:
        return ModelCard.from_json(card_path.read_text(encoding="utf-8"))
    except ConfigError as exc:
        raise ModelLoadError(f"{card_path}: {exc}") from None


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_model(name_or_path: str | os.PathLike, zoo: str | os.PathLike | None = None) -> MNISTNet:
    """Load a model by zoo name, or from an explicit folder path (Python/CLI only).

    A ``str`` is always a zoo name (what apps and URLs pass); pass a
    ``pathlib.Path`` to load a model folder elsewhere. The weights must match
    the SHA-256 recorded in the card. Returns the model in eval mode with its
    ``card`` attached.
    """
    if isinstance(name_or_path, os.PathLike):
        folder = Path(name_or_path)
        card_path = folder / CARD_FILE
        if not card_path.is_file():
            raise ModelNotFoundError(f"{folder}: not a model folder (no {CARD_FILE})")
        card = ModelCard.from_json(card_path.read_text(encoding="utf-8"))
    else:
        folder = model_dir(name_or_path, zoo)
        card = load_card(name_or_path, zoo)
    weights_path = folder / WEIGHTS_FILE
    try:
        data = weights_path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"{weights_path}: missing") from None
    if file_sha256(data) != card.weights_sha256:
        raise ModelLoadError(
            f"{weights_path}: does not match the SHA-256 in {CARD_FILE} (corrupt, truncated or modified); "
            "restore it from git or retrain/re-import the model"
        )
    try:
        model = model_from_state_dict(card.config, read_state_dict(weights_path, data), weights_path.name)
    except WeightsFileError as exc:
        raise ModelLoadError(str(exc)) from None
    model.card = card
    return model


def model_from_state_dict(config: NetConfig, state: dict[str, torch.Tensor], source: str = "weights") -> MNISTNet:
    """Build ``config``'s model and load ``state`` into it after checking it fully."""
    model = build_model(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    check_state_dict(source, state, expected)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return model.eval()


def weights_bytes(model: MNISTNet) -> bytes:
    """The model's weights as safetensors bytes (deterministic for equal weights)."""
    state = {k: v.detach().to(torch.float32).contiguous().cpu() for k, v in model.state_dict().items()}
    return safetensors_save(state)


def save_model(model: MNISTNet, card: ModelCard, zoo: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write ``model`` and ``card`` as zoo entry ``card.name``; returns the folder.

    The weights are written first and the card (with their SHA-256) last, each
    atomically; when overwriting, the old card goes first. So a crash at any
    point leaves either the old model intact, or a folder without a card, which
    is neither listed nor loaded and is simply replaced by the next save.
    """
    folder = model_dir(card.name, zoo)
    card_path = folder / CARD_FILE
    if card_path.exists() and not overwrite:
        raise ModelExistsError(f"a model named {card.name!r} already exists in the zoo (pass overwrite to replace it)")
    data = weights_bytes(model)
    card.weights_sha256 = file_sha256(data)
    card_path.unlink(missing_ok=True)
    atomic_write_bytes(folder / WEIGHTS_FILE, data)
    atomic_write_text(folder / CARD_FILE, card.to_json())
    return folder
