"""A dictionary (sparse autoencoder) of one layer, and its files in the model zoo.

A dictionary is a change of basis of a layer's activations: ``d_sae`` latents,
each with an encoder column and a decoder direction. Its tensors and its
``cfg.json`` follow SAELens's layout, so SAELens (and anything else that reads
that layout) loads it as it is:

* ``W_enc`` float32 ``[d_in, d_sae]``, ``b_enc`` ``[d_sae]``,
  ``W_dec`` ``[d_sae, d_in]``, ``b_dec`` ``[d_in]``;
* encode: ``f = act(((x - b_dec) if apply_b_dec_to_input else x) @ W_enc + b_enc)``
  where ``act`` is ReLU (architecture ``standard``) or, for ``topk``, keep the
  ``k`` largest pre-activations, ReLU them, zero the rest (SAELens's ``TopK``);
* decode: ``x_hat = f @ W_dec + b_dec``.

A *row* is what the dictionary reads: for a Linear layer, the activation
vector of one image (``d_in`` = the layer's units); for a conv layer, the
channel vector at one position of one image (``d_in`` = channels), taken at the
layer's ``activation_hook`` (after its activation, before pooling).

Files, inside the zoo folder of the model it belongs to::

    models/<model>/dictionaries/<id>/sae_weights.safetensors   the tensors (SAELens)
    models/<model>/dictionaries/<id>/cfg.json                  SAELens's config
    models/<model>/dictionaries/<id>/card.json                 ours: layer, kind, training, metrics, fingerprints

Written weights first and card last, each atomically, as ``zoo.save_model``
does; only a folder with all three files is listed, and the card records the
SHA-256 of the other two, so a crash never leaves a half dictionary that is
listed or trusted. The card also records the SHA-256 fingerprint of the model
weights it was trained on (``mechmnistic.cache.model_fingerprint``): using it
with other weights is refused with a message.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from ..atomic import atomic_write_bytes, atomic_write_text
from ..errors import MechMNISTicError
from ..models.architectures import MNISTNet
from ..models.weights_io import WeightsFileError, check_finite, read_state_dict
from ..models.zoo import ModelNotFoundError, load_card, model_dir

WEIGHTS_FILE = "sae_weights.safetensors"
CFG_FILE = "cfg.json"
CARD_FILE = "card.json"
FOLDER = "dictionaries"
CARD_VERSION = 1
#: Our kinds and SAELens's architecture names for them.
KINDS = {"topk": "topk", "l1": "standard"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: The most bytes of latents one batch of a dataset pass holds (``Dictionary.images_per_batch``).
LATENT_BATCH_BYTES = 64 * 2**20
#: The most latents a dictionary may have (a 512-latent dictionary of a 200-unit layer is 0.8 MB).
MAX_LATENTS = 65536


class DictionaryError(MechMNISTicError, ValueError):
    """A dictionary that cannot be made, found, read or used as asked; the message says why."""


class DictionaryNotFoundError(DictionaryError, LookupError):
    """No dictionary of that id for that model (or the id is not a valid dictionary id)."""


class DictionaryMismatchError(DictionaryError):
    """A dictionary used with other weights (or another layer shape) than it was trained on."""


class DictionaryExistsError(DictionaryError, FileExistsError):
    """Saving would replace an existing dictionary and overwriting was not asked for."""


def validate_dictionary_id(dictionary_id: object) -> str:
    """Return ``dictionary_id`` if it is a safe id (as model names are), else raise ``DictionaryNotFoundError``."""
    if not isinstance(dictionary_id, str) or not _ID.match(dictionary_id) or ".." in dictionary_id:
        raise DictionaryNotFoundError(f"{str(dictionary_id)[:80]!r} is not a valid dictionary id "
                                      "(letters, digits, '.', '_', '-'; at most 64)")
    return dictionary_id


def dictionaries_dir(model_name: str, zoo: str | os.PathLike | None = None) -> Path:
    """``<zoo>/<model>/dictionaries`` (it need not exist)."""
    return model_dir(model_name, zoo) / FOLDER


def dictionary_dir(model_name: str, dictionary_id: str, zoo: str | os.PathLike | None = None) -> Path:
    """The folder of dictionary ``dictionary_id`` of model ``model_name``; never outside the model's folder."""
    parent = dictionaries_dir(model_name, zoo)
    folder = parent / validate_dictionary_id(dictionary_id)
    if folder.resolve().parent != parent.resolve():
        raise DictionaryNotFoundError(f"{dictionary_id!r} resolves outside {model_name}'s dictionaries")
    return folder


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass
class DictionaryCard:
    """Everything needed to trust, reproduce and place a dictionary (``card.json``).

    ``kind``: ``topk`` or ``l1``; ``d_in``: the layer's units (channels for a
    conv layer); ``d_sae``: latents; ``k`` (TopK) or ``l1_coefficient`` (L1);
    ``training``: the trainer's parameters, its seed and what it read;
    ``metrics``: ``dictionary_quality`` on the test set; ``model_fingerprint``:
    SHA-256 of the model weights it was trained on; ``weights_sha256`` /
    ``cfg_sha256``: of the two files beside the card (set when saved).
    """

    id: str
    model: str
    layer: str
    hook: str
    kind: str
    d_in: int
    d_sae: int
    model_fingerprint: str
    k: int | None = None
    l1_coefficient: float | None = None
    is_conv: bool = False
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""
    cfg_sha256: str = ""
    created: str = ""
    description: str = ""

    @property
    def architecture(self) -> str:
        return KINDS[self.kind]

    @property
    def rows(self) -> str:
        """What one row (one input to the dictionary) is, in words."""
        return "the channel vector at one position of one image" if self.is_conv else "one image's activation vector"

    def to_dict(self) -> dict[str, Any]:
        return {"card_version": CARD_VERSION, "id": self.id, "model": self.model, "layer": self.layer,
                "hook": self.hook, "kind": self.kind, "architecture": self.architecture, "d_in": self.d_in,
                "d_sae": self.d_sae, "k": self.k, "l1_coefficient": self.l1_coefficient, "is_conv": self.is_conv,
                "rows": self.rows, "description": self.description, "training": self.training,
                "metrics": self.metrics, "model_fingerprint": self.model_fingerprint,
                "weights_sha256": self.weights_sha256, "cfg_sha256": self.cfg_sha256, "created": self.created}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = CARD_FILE) -> DictionaryCard:
        if not isinstance(data, dict):
            raise DictionaryError(f"{source}: a dictionary card must be a JSON object")
        try:
            card = cls(
                id=str(data["id"]), model=str(data["model"]), layer=str(data["layer"]), hook=str(data["hook"]),
                kind=str(data["kind"]), d_in=int(data["d_in"]), d_sae=int(data["d_sae"]),
                model_fingerprint=str(data["model_fingerprint"]),
                k=None if data.get("k") is None else int(data["k"]),
                l1_coefficient=None if data.get("l1_coefficient") is None else float(data["l1_coefficient"]),
                is_conv=bool(data.get("is_conv", False)), training=dict(data.get("training") or {}),
                metrics=dict(data.get("metrics") or {}), weights_sha256=str(data.get("weights_sha256", "")),
                cfg_sha256=str(data.get("cfg_sha256", "")), created=str(data.get("created", "")),
                description=str(data.get("description", "")),
            )
        except KeyError as exc:
            raise DictionaryError(f"{source}: the card lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise DictionaryError(f"{source}: a field of the card has the wrong type ({exc})") from None
        if card.kind not in KINDS:
            raise DictionaryError(f"{source}: unknown kind {card.kind!r}; known: {', '.join(KINDS)}")
        if card.kind == "topk" and not (card.k and 1 <= card.k <= card.d_sae):
            raise DictionaryError(f"{source}: a TopK dictionary needs k in 1..d_sae, got {card.k}")
        return card


class Dictionary:
    """A sparse autoencoder of one layer: its four tensors (SAELens's names and shapes) and its card.

    ``encode(rows)``: rows ``[N, d_in]`` -> latents ``[N, d_sae]``;
    ``decode(latents)`` -> ``[N, d_in]``. For a whole layer activation (``[N,
    U]`` or a conv layer's ``[N, C, H, W]``) use ``rows_of`` / ``layer_of``.
    Every use with a model goes through ``check_model``, which refuses
    weights other than those it was trained on.
    """

    def __init__(self, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                 card: DictionaryCard) -> None:
        self.W_enc = W_enc.detach().to(torch.float32).contiguous()
        self.b_enc = b_enc.detach().to(torch.float32).contiguous()
        self.W_dec = W_dec.detach().to(torch.float32).contiguous()
        self.b_dec = b_dec.detach().to(torch.float32).contiguous()
        self.card = card
        self._fingerprint: str | None = None
        expected = {"W_enc": (card.d_in, card.d_sae), "b_enc": (card.d_sae,), "W_dec": (card.d_sae, card.d_in),
                    "b_dec": (card.d_in,)}
        wrong = [f"{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}"
                 for name, shape in expected.items() if tuple(getattr(self, name).shape) != shape]
        if wrong:
            raise DictionaryError(f"dictionary {card.id}: " + "; ".join(wrong))

    # -- what it is -----------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.card.id

    @property
    def layer(self) -> str:
        return self.card.layer

    @property
    def hook(self) -> str:
        return self.card.hook

    @property
    def kind(self) -> str:
        return self.card.kind

    @property
    def d_in(self) -> int:
        return self.card.d_in

    @property
    def d_sae(self) -> int:
        return self.card.d_sae

    @property
    def n_latents(self) -> int:
        return self.card.d_sae

    @property
    def k(self) -> int | None:
        return self.card.k

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the tensors as ``sae_weights.safetensors`` holds them (what the analysis cache keys on)."""
        if self._fingerprint is None:
            self._fingerprint = _sha256(self.file_bytes()[0])
        return self._fingerprint

    @property
    def basis(self) -> str:
        """The name of this basis of its layer in a unit address (``dictionary:<id>``)."""
        return f"dictionary:{self.id}"

    def __repr__(self) -> str:
        detail = f"k={self.k}" if self.kind == "topk" else f"l1={self.card.l1_coefficient:g}"
        where = f"{self.card.model}/{self.layer}"
        return f"Dictionary({self.id!r}, {where}, {self.kind} {self.d_in}->{self.d_sae}, {detail})"

    # -- the arithmetic (SAELens's) -------------------------------------------------------------------
    def pre_activations(self, rows: torch.Tensor) -> torch.Tensor:
        """The encoder's pre-activations ``(rows - b_dec) @ W_enc + b_enc``: ``[N, d_sae]``."""
        rows = torch.as_tensor(rows).to(torch.float32)
        return (rows - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """The latents from pre-activations: ReLU, or (TopK) the ``k`` largest ReLU'd, the rest zero."""
        if self.kind == "topk":
            top = torch.topk(pre, k=self.card.k, dim=-1)
            return torch.zeros_like(pre).scatter_(-1, top.indices, torch.relu(top.values))
        return torch.relu(pre)

    def encode(self, rows: torch.Tensor) -> torch.Tensor:
        """Latents ``[N, d_sae]`` for rows ``[N, d_in]``: exactly SAELens's ``encode`` with these tensors."""
        return self.activate(self.pre_activations(rows))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``latents @ W_dec + b_dec``: ``[N, d_in]``."""
        return torch.as_tensor(latents).to(torch.float32) @ self.W_dec + self.b_dec

    def reconstruct(self, rows: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(rows))

    # -- rows of a layer --------------------------------------------------------------------------------
    def rows_of(self, activation: torch.Tensor) -> torch.Tensor:
        """A layer's activation as rows: ``[N, U]`` stays; a conv layer's ``[N, C, H, W]`` -> ``[N*H*W, C]``
        (image-major, then row-major positions)."""
        if self.card.is_conv:
            if activation.dim() != 4 or activation.shape[1] != self.d_in:
                raise DictionaryError(f"{self.id} reads [N, {self.d_in}, H, W] maps, got {list(activation.shape)}")
            return activation.permute(0, 2, 3, 1).reshape(-1, self.d_in)
        if activation.dim() != 2 or activation.shape[1] != self.d_in:
            raise DictionaryError(f"{self.id} reads [N, {self.d_in}] activations, got {list(activation.shape)}")
        return activation

    def layer_of(self, rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Rows ``[N*H*W, D]`` back in the layout of ``like`` (``[N, C, H, W]``), with D channels; ``[N, D]`` stays."""
        if self.card.is_conv:
            n, _, h, w = like.shape
            return rows.reshape(n, h, w, -1).permute(0, 3, 1, 2)
        return rows

    # -- the model it belongs to --------------------------------------------------------------------------
    def check_model(self, model: MNISTNet) -> None:
        """Refuse a model whose weights are not the ones this dictionary was trained on, or whose layer differs."""
        from ..cache import model_fingerprint

        fingerprint = model_fingerprint(model)
        if fingerprint != self.card.model_fingerprint:
            name = getattr(getattr(model, "card", None), "name", "this model")
            raise DictionaryMismatchError(
                f"dictionary {self.id} was trained on {self.card.model}'s weights with SHA-256 "
                f"{self.card.model_fingerprint[:12]}..., but {name}'s weights are {fingerprint[:12]}...: "
                "a dictionary only means something on the weights it was trained on; train a new one")
        layer = model.layout.check_hidden(self.layer)
        if layer.activation_hook != self.hook or layer.n_units != self.d_in or layer.is_conv != self.card.is_conv:
            raise DictionaryMismatchError(f"dictionary {self.id} reads {self.hook} with {self.d_in} units; "
                                          f"{layer.name} does not match")

    def images_per_batch(self, model: MNISTNet, batch_size: int) -> int:
        """``batch_size``, or fewer images so that one batch's latents (``[images x positions, d_sae]`` float32)
        stay within ``LATENT_BATCH_BYTES``: a conv layer's dictionary has a row per position."""
        layer = model.layout[self.layer]
        positions = int(math.prod(layer.pre_shape[1:])) if layer.is_conv else 1
        return max(1, min(batch_size, LATENT_BATCH_BYTES // (4 * self.d_sae * positions)))

    # -- files ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec}

    def sae_lens_cfg(self) -> dict[str, Any]:
        """SAELens's ``cfg.json`` for this dictionary (its fields; the rest of the card is ours)."""
        cfg: dict[str, Any] = {
            "architecture": self.card.architecture, "d_in": self.d_in, "d_sae": self.d_sae, "dtype": "float32",
            "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
            "reshape_activations": "none",
            "metadata": {"model_name": self.card.model, "hook_name": self.hook, "hook_layer": None,
                         "hook_head_index": None, "prepend_bos": None, "context_size": None,
                         "dataset_path": "mnist:train", "model_class_name": "mechmnistic.MNISTNet"},
            # Older SAELens releases read these at the top level.
            "model_name": self.card.model, "hook_name": self.hook,
            "activation_fn_str": "topk" if self.kind == "topk" else "relu",
            "activation_fn_kwargs": {"k": self.k} if self.kind == "topk" else {},
            "finetuning_scaling_factor": False,
        }
        if self.kind == "topk":
            cfg["k"] = self.k
        return cfg

    def file_bytes(self) -> tuple[bytes, bytes]:
        """``(sae_weights.safetensors, cfg.json)`` as written (deterministic for equal tensors)."""
        weights = safetensors_save({k: v.contiguous() for k, v in self.state_dict().items()})
        cfg = (json.dumps(self.sae_lens_cfg(), indent=2) + "\n").encode()
        return weights, cfg


# -- the zoo ----------------------------------------------------------------------------------------------


def save_dictionary(dictionary: Dictionary, zoo: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write ``dictionary`` into its model's zoo folder as ``dictionaries/<id>/``; returns the folder.

    The model must be in the zoo. The old card goes first (when overwriting),
    then the weights, the cfg, and the card (with both files' SHA-256) last,
    each atomically: a crash leaves either the old dictionary, or a folder
    without a card, which is neither listed nor loaded and is replaced by the
    next save.
    """
    card = dictionary.card
    load_card(card.model, zoo)  # the model must exist (and its name is checked)
    folder = dictionary_dir(card.model, card.id, zoo)
    card_path = folder / CARD_FILE
    if card_path.exists() and not overwrite:
        raise DictionaryExistsError(f"{card.model} already has a dictionary {card.id!r} (pass overwrite to replace "
                                    "it, or choose another id)")
    weights, cfg = dictionary.file_bytes()
    card.weights_sha256, card.cfg_sha256 = _sha256(weights), _sha256(cfg)
    card.created = card.created or _now()
    card_path.unlink(missing_ok=True)
    atomic_write_bytes(folder / WEIGHTS_FILE, weights)
    atomic_write_bytes(folder / CFG_FILE, cfg)
    atomic_write_text(card_path, card.to_json())
    return folder


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in (CARD_FILE, CFG_FILE, WEIGHTS_FILE))


def list_dictionaries(model_name: str, zoo: str | os.PathLike | None = None, layer: str | None = None) -> list[str]:
    """Ids of model ``model_name``'s saved dictionaries (all three files present), sorted; only ``layer``'s if given."""
    parent = dictionaries_dir(model_name, zoo)
    if not parent.is_dir():
        return []
    ids = []
    for folder in sorted(parent.iterdir()):
        if _ID.match(folder.name) and ".." not in folder.name and folder.is_dir() and _complete(folder):
            if layer is not None:
                try:
                    if read_card(model_name, folder.name, zoo).layer != layer:
                        continue
                except DictionaryError:
                    continue
            ids.append(folder.name)
    return ids


def read_card(model_name: str, dictionary_id: str, zoo: str | os.PathLike | None = None) -> DictionaryCard:
    """The card of dictionary ``dictionary_id`` of ``model_name`` (no tensors read, no model needed)."""
    folder = dictionary_dir(model_name, dictionary_id, zoo)
    if not _complete(folder):
        known = ", ".join(list_dictionaries(model_name, zoo)) or "none"
        raise DictionaryNotFoundError(f"{model_name} has no dictionary {dictionary_id!r} (known: {known})")
    path = folder / CARD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DictionaryError(f"{path}: not valid JSON ({exc})") from None
    card = DictionaryCard.from_dict(data, str(path))
    if card.id != dictionary_id or card.model != model_name:
        raise DictionaryError(f"{path}: the card names {card.model}/{card.id}, not {model_name}/{dictionary_id}")
    return card


def read_dictionary(model_name: str, dictionary_id: str, zoo: str | os.PathLike | None = None) -> Dictionary:
    """Dictionary ``dictionary_id`` of ``model_name`` from its files, checked against its card's SHA-256s.

    Using it with a model still goes through ``Dictionary.check_model``;
    ``load_dictionary`` does both at once.
    """
    card = read_card(model_name, dictionary_id, zoo)
    folder = dictionary_dir(model_name, dictionary_id, zoo)
    weights_path, cfg_path = folder / WEIGHTS_FILE, folder / CFG_FILE
    weights, cfg = weights_path.read_bytes(), cfg_path.read_bytes()
    if _sha256(weights) != card.weights_sha256 or _sha256(cfg) != card.cfg_sha256:
        raise DictionaryError(f"{folder}: {WEIGHTS_FILE} or {CFG_FILE} does not match the SHA-256 in {CARD_FILE} "
                              "(corrupt, truncated or modified); restore it from git or train it again")
    try:
        state = read_state_dict(weights_path, weights)
        check_finite(WEIGHTS_FILE, state)
    except WeightsFileError as exc:
        raise DictionaryError(str(exc)) from None
    if set(state) != {"W_enc", "b_enc", "W_dec", "b_dec"}:
        raise DictionaryError(f"{weights_path}: expected W_enc, b_enc, W_dec, b_dec; found {sorted(state)}")
    return Dictionary(state["W_enc"], state["b_enc"], state["W_dec"], state["b_dec"], card)


def load_dictionary(model: MNISTNet, dictionary_id: str, zoo: str | os.PathLike | None = None) -> Dictionary:
    """Dictionary ``dictionary_id`` of ``model`` (a zoo model, with its card), refused unless ``model``'s weights
    are the ones it was trained on."""
    name = getattr(getattr(model, "card", None), "name", None)
    if name is None:
        raise ModelNotFoundError("load_dictionary needs a model loaded from the zoo (with its card)")
    dictionary = read_dictionary(name, dictionary_id, zoo)
    dictionary.check_model(model)
    return dictionary


def dictionary_summaries(model: MNISTNet, zoo: str | os.PathLike | None = None,
                         layer: str | None = None) -> list[dict[str, Any]]:
    """One row per saved dictionary of ``model`` (``layer``'s only, if given): its card's headline fields and
    whether it may be used with ``model``'s weights (``usable``). Unreadable cards are reported, not raised."""
    from ..cache import model_fingerprint

    if getattr(model, "card", None) is None:
        raise ModelNotFoundError("dictionary_summaries needs a model loaded from the zoo (with its card)")
    fingerprint = model_fingerprint(model)
    rows = []
    for dictionary_id in list_dictionaries(model.card.name, zoo, layer):
        try:
            card = read_card(model.card.name, dictionary_id, zoo)
        except DictionaryError as exc:
            rows.append({"id": dictionary_id, "usable": False, "problem": str(exc)})
            continue
        rows.append({"id": card.id, "layer": card.layer, "kind": card.kind, "d_in": card.d_in, "d_sae": card.d_sae,
                     "k": card.k, "l1_coefficient": card.l1_coefficient, "metrics": card.metrics,
                     "created": card.created, "usable": card.model_fingerprint == fingerprint})
    return rows
