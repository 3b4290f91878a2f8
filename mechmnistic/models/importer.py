"""Bring your own model: infer the architecture of a state dict, ask for the rest, save it with a card.

A state dict holds parameter names and shapes, not code, so the architecture is
read from them:

* every ``<layer>.weight`` with a ``<layer>.bias`` is one layer: a 2-D weight
  ``[out, in]`` is a Linear layer, a 4-D weight ``[out, in, k, k]`` a Conv2d
  layer. Layer names are kept exactly as the file has them, so the model's
  layers are named as in its authors' code. Recognised naming schemes include
  ``layers.N`` (MechMNISTic's own), numbered attributes (``fc1``, ``linear2``,
  ``conv1``), other named attributes (``hidden``, ``out``), a plain
  ``nn.Sequential`` (``0``, ``2``, ...), a Sequential under an attribute
  (``net.N``, ``model.N``) and the torchvision split ``features.N`` +
  ``classifier.N``; any other prefix works the same way.
* Linear layers only: a ReLU MLP of any depth on the 784 flattened pixels.
* Conv2d layers, then Linear layers: the CNN family of ``CNNConfig``, blocks of
  conv (no padding, stride 1) -> ReLU -> max-pool, then ReLU fully connected
  layers. The pool size is found by matching the conv stack's flattened size
  to the first Linear layer's inputs (2x2 is tried first).
* Layers are put in forward order by chaining their shapes (the first takes the
  input, each next one takes the previous one's outputs); where shapes allow
  several orders (hidden layers of equal width), the numbers in the names
  decide (``net.2`` before ``net.10``), then the order in the file.

What a state dict cannot tell is asked (``Question``): the input normalisation
always (``none``: pixels in [0, 1]; ``mnist``: mean 0.1307, std 0.3081; or
``MEAN,STD``), and how to read a single output unit (as a binary classifier).
The EIS VII challenge network (conv1 1->8 3x3, conv2 8->16 3x3, fc1 400->200,
fc2 200->2, trained on raw [0, 1] pixels) is recognised by its signature and
imports without questions. Activation functions are not stored in a state dict
either: ReLU is assumed, as in every model MechMNISTic analyses.

Files are read with ``weights_io.read_state_dict`` (never unpickling code) and
checked fully before anything is written; a model enters the zoo only through
``zoo.save_model``, which writes the weights first and the card last.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from ..errors import MechMNISTicError
from .architectures import MNISTNet
from .card import ModelCard
from .config import IMAGE_SIZE, ConfigError, NetConfig, Normalization, cnn_config, mlp_config
from .weights_io import StateDict, WeightsFileError, check_finite, read_state_dict
from .zoo import (
    CARD_FILE,
    ModelExistsError,
    file_sha256,
    model_dir,
    model_from_state_dict,
    save_model,
    validate_name,
    weights_bytes,
)

#: Named input normalisations; anything else is given as ``MEAN,STD``.
NORMALIZATIONS: dict[str, Normalization] = {
    "none": Normalization(0.0, 1.0),
    "mnist": Normalization(0.1307, 0.3081),
}
#: Pool sizes tried, in order, when matching a conv stack to its first Linear layer.
POOL_SIZES = (2, 1, 3, 4)
EIS_VII_NAME = "the EIS VII challenge network"
EIS_VII_SHAPES = {
    "conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3), "conv2.bias": (16,),
    "fc1.weight": (200, 400), "fc1.bias": (200,), "fc2.weight": (2, 200), "fc2.bias": (2,),
}
_BATCH_NORM_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_CHAIN_SEARCH_BUDGET = 100_000


class UnsupportedModelError(WeightsFileError):
    """The file holds tensors, but not a model MechMNISTic can analyse; the message says what was recognised."""


class MissingAnswerError(MechMNISTicError):
    """The import needs answers the weights cannot give (``questions``)."""

    def __init__(self, message: str, questions: tuple[Question, ...]) -> None:
        super().__init__(message)
        self.questions = questions


@dataclass(frozen=True)
class Layer:
    """One parametrised layer as recognised from its weight's shape."""

    name: str
    kind: Literal["linear", "conv"]
    in_size: int  # input features (Linear) or channels (Conv2d)
    out_size: int
    kernel_size: int | None = None
    position: int = 0  # where its weight appears in the file

    def describe(self) -> str:
        if self.kind == "conv":
            k = self.kernel_size
            return f"{self.name} (Conv2d {self.in_size} -> {self.out_size} channels, {k}x{k})"
        return f"{self.name} (Linear {self.in_size} -> {self.out_size})"


@dataclass(frozen=True)
class Question:
    """Something the weights cannot tell; ``key`` is also the CLI flag (``--key``)."""

    key: str
    prompt: str


NORMALIZATION_QUESTION = Question(
    "normalization",
    "How were input images normalised in training? none = pixels in [0, 1]; mnist = (x - 0.1307) / 0.3081; "
    "or MEAN,STD",
)
CLASSES_QUESTION = Question(
    "classes",
    "The last layer has a single output unit. Read it as a binary classifier (class 1 when the output is > 0)? "
    "It is then stored as two logits (0, output), which give the same predictions and sigmoid probabilities.",
)


@dataclass(frozen=True)
class ImportPlan:
    """What was recognised in a state dict, and what still has to be asked."""

    source: str
    arch: Literal["mlp", "cnn"]
    layers: tuple[Layer, ...]  # forward order
    pool_size: int = 2
    recognised: str | None = None
    notes: tuple[str, ...] = ()
    questions: tuple[Question, ...] = (NORMALIZATION_QUESTION,)
    file_sha256: str = ""

    @property
    def convs(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.kind == "conv")

    @property
    def linears(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.kind == "linear")

    @property
    def naming(self) -> str:
        """The naming scheme in words, e.g. ``numbered attributes (convN, fcN)``."""
        patterns = list(dict.fromkeys(re.sub(r"\d+", "N", layer.name) for layer in self.layers))
        shown = ", ".join(patterns)
        if patterns == ["N"]:
            return "plain nn.Sequential indices (N)"
        if all(re.fullmatch(r"[A-Za-z_][\w.]*\.N", p) for p in patterns):
            return f"indexed layers under attributes ({shown})"
        if all(re.fullmatch(r"[A-Za-z_]+N", p) for p in patterns):
            return f"numbered attributes ({shown})"
        return f"named layers ({shown})"

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].out_size

    def config(self, normalization: Normalization, n_classes: int | None = None) -> NetConfig:
        """The model config for these layers with the given answers."""
        n_classes = n_classes or self.n_outputs
        hidden = tuple(layer.out_size for layer in self.linears[:-1])
        fc_names = tuple(layer.name for layer in self.linears)
        if self.arch == "mlp":
            return mlp_config(hidden_sizes=hidden, n_classes=n_classes, normalization=normalization,
                             layer_names=fc_names)
        return cnn_config(
            conv_channels=tuple(layer.out_size for layer in self.convs),
            kernel_sizes=tuple(layer.kernel_size for layer in self.convs),
            fc_sizes=hidden, n_classes=n_classes, pool_size=self.pool_size, normalization=normalization,
            conv_names=tuple(layer.name for layer in self.convs), fc_names=fc_names,
        )

    def summary(self) -> str:
        """One line: the architecture with the layers' own names."""
        return self.config(NORMALIZATIONS["none"]).describe()


# -- reading and recognising ----------------------------------------------------------------------------


def read_for_import(path: str | os.PathLike, data: bytes | None = None) -> tuple[StateDict, ImportPlan]:
    """Read a weights file (or ``data``, named by ``path``) and recognise its architecture.

    Raises ``WeightsFileError`` (or its subclass ``UnsupportedModelError``)
    with the file's name and the problem; reads only, writes nothing.
    """
    name = Path(path).name
    state = read_state_dict(path, data)  # checks the size before reading a file
    check_finite(name, state)
    if data is None:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest()
    return state, dataclasses.replace(infer_architecture(state, name), file_sha256=digest)


def infer_architecture(state: Mapping[str, torch.Tensor], source: str = "weights") -> ImportPlan:
    """Recognise an MLP or a CNN of the supported family from parameter names and shapes."""
    layers = _layers(state, source)
    convs = [layer for layer in layers if layer.kind == "conv"]
    linears = [layer for layer in layers if layer.kind == "linear"]
    if not linears:
        raise UnsupportedModelError(
            f"{source}: unsupported architecture: recognised {_listing(layers)}, but no fully connected "
            "(Linear) layer to produce the class logits"
        )
    if not convs:
        ordered = _order_or_explain(linears, IMAGE_SIZE * IMAGE_SIZE, "784 pixels (28x28)", source, layers)
        return _with_questions(ImportPlan(source, "mlp", tuple(ordered)), state)
    conv_order = _order_or_explain(convs, 1, "1 channel (grayscale)", source, layers)
    for conv in conv_order:
        if conv.kernel_size is None:
            raise UnsupportedModelError(f"{source}: unsupported architecture: {conv.name} has a non-square "
                                        "kernel; only square kernels are supported")
    tried = []
    for pool in POOL_SIZES:
        flat = _flat_size(conv_order, pool)
        if flat is None:
            continue
        tried.append(f"{flat} with {pool}x{pool} max-pooling" if pool > 1 else f"{flat} without pooling")
        fc_order = _chain(linears, flat)
        if fc_order is not None:
            plan = ImportPlan(source, "cnn", tuple(conv_order + fc_order), pool_size=pool)
            return _with_questions(plan, state)
    raise UnsupportedModelError(
        f"{source}: unsupported architecture: recognised {_listing(conv_order + _preferred(linears))}, "
        f"but the conv stack flattens to {'; '.join(tried) or 'nothing (it shrinks the image away)'}, and no "
        f"chain of the Linear layers starts there ({_preferred(linears)[0].name} takes "
        f"{_preferred(linears)[0].in_size} inputs). "
        "Supported CNNs are conv -> ReLU -> max-pool blocks with no padding and stride 1, then Linear layers"
    )


def _layers(state: Mapping[str, torch.Tensor], source: str) -> list[Layer]:
    """Group ``<layer>.weight`` / ``<layer>.bias`` pairs into layers; refuse anything else."""
    prefixes: dict[str, int] = {}
    unexpected = []
    for position, key in enumerate(state):
        prefix, dot, leaf = key.rpartition(".")
        if dot and prefix and leaf in ("weight", "bias"):
            prefixes.setdefault(prefix, position)
        else:
            unexpected.append(key)
    if unexpected:
        hint = ""
        if any(key.rpartition(".")[2] in _BATCH_NORM_SUFFIXES for key in unexpected):
            hint = " (batch normalisation is not supported)"
        elif any(key in ("weight", "bias") for key in unexpected):
            hint = " (a single unnamed layer; save the model that holds it, so its layers have names)"
        raise UnsupportedModelError(
            f"{source}: unexpected keys {_clip(unexpected)}{hint}; expected only <layer>.weight and "
            "<layer>.bias of Linear and Conv2d layers"
        )
    missing = [f"{p}.{leaf}" for p in prefixes for leaf in ("weight", "bias") if f"{p}.{leaf}" not in state]
    if missing:
        raise UnsupportedModelError(
            f"{source}: missing keys {_clip(missing)}; every layer needs a weight and a bias "
            "(layers without bias are not supported)"
        )
    layers = []
    for prefix, position in prefixes.items():
        weight, bias = state[f"{prefix}.weight"], state[f"{prefix}.bias"]
        shape = tuple(weight.shape)
        if len(shape) == 2:
            layer = Layer(prefix, "linear", shape[1], shape[0], position=position)
        elif len(shape) == 4:
            square = shape[2] if shape[2] == shape[3] else None
            layer = Layer(prefix, "conv", shape[1], shape[0], square, position=position)
        else:
            raise UnsupportedModelError(
                f"{source}: {prefix}.weight has shape {shape}: neither a Linear ([out, in]) nor a Conv2d "
                "([out, in, k, k]) weight (normalisation layers and embeddings are not supported)"
            )
        if tuple(bias.shape) != (shape[0],):
            raise UnsupportedModelError(
                f"{source}: {prefix}.bias has shape {tuple(bias.shape)}, expected ({shape[0]},) to match "
                f"{prefix}.weight {shape}"
            )
        if 0 in shape:
            raise UnsupportedModelError(f"{source}: {prefix}.weight has an empty shape {shape}")
        layers.append(layer)
    return layers


def _preferred(layers: list[Layer]) -> list[Layer]:
    """Name order: the numbers in the names (``net.2`` < ``net.10``), then the order in the file."""
    return sorted(layers, key=lambda layer: (tuple(int(n) for n in re.findall(r"\d+", layer.name)), layer.position))


def _chain(layers: list[Layer], start: int) -> list[Layer] | None:
    """An order of all ``layers`` in which each takes the previous one's outputs, starting from ``start``.

    Depth-first in name order, so the name order wins whenever it chains.
    """
    budget = _CHAIN_SEARCH_BUDGET  # bounds the search on pathological files

    def search(size: int, remaining: list[Layer]) -> list[Layer] | None:
        nonlocal budget
        if not remaining:
            return []
        for i, layer in enumerate(remaining):
            if layer.in_size != size:
                continue
            budget -= 1
            if budget < 0:
                return None
            rest = search(layer.out_size, remaining[:i] + remaining[i + 1 :])
            if rest is not None:
                return [layer, *rest]
        return None

    return search(start, _preferred(layers))


def _order_or_explain(
    layers: list[Layer], start: int, start_what: str, source: str, everything: list[Layer]
) -> list[Layer]:
    """``_chain``'s order, or an error that names where the shapes break in the name order."""
    order = _chain(layers, start)
    if order is not None:
        return order
    unit = "channels" if layers[0].kind == "conv" else "inputs"
    size, previous, problem = start, None, "no order of the layers chains"
    for layer in _preferred(layers):
        if layer.in_size != size:
            before = f"layer {previous.name} outputs {size}" if previous else f"the input has {start_what}"
            problem = f"{before}, but layer {layer.name} takes {layer.in_size} {unit}"
            break
        size, previous = layer.out_size, layer
    raise UnsupportedModelError(
        f"{source}: the layer shapes do not chain: {problem}. Recognised: {_listing(everything)}"
    )


def _flat_size(convs: list[Layer], pool: int) -> int | None:
    size = IMAGE_SIZE
    for conv in convs:
        size = (size - conv.kernel_size + 1) // pool
        if size < 1:
            return None
    return convs[-1].out_size * size * size


def _with_questions(plan: ImportPlan, state: Mapping[str, torch.Tensor]) -> ImportPlan:
    _check_layer_names(plan)
    notes = ["activation functions are not stored in a state dict: ReLU is assumed between layers"]
    if plan.arch == "cnn":
        notes.append(f"conv layers: no padding, stride 1, each followed by ReLU and "
                     f"{plan.pool_size}x{plan.pool_size} max-pooling")
    named = [layer.name for layer in _preferred(list(plan.convs)) + _preferred(list(plan.linears))]
    if named != [layer.name for layer in plan.layers]:
        notes.append("the names do not give the forward order; it was found by chaining the layers' shapes: "
                     + " -> ".join(layer.name for layer in plan.layers))
    questions: tuple[Question, ...] = (NORMALIZATION_QUESTION,)
    recognised = None
    if {k: tuple(v.shape) for k, v in state.items()} == EIS_VII_SHAPES:
        recognised, questions = EIS_VII_NAME, ()
        notes.append("recognised as the EIS VII challenge network, which reads raw pixels in [0, 1]: "
                     "no input normalisation")
    if plan.n_outputs == 1:
        questions += (CLASSES_QUESTION,)
    return dataclasses.replace(plan, recognised=recognised, notes=tuple(notes), questions=questions)


def _check_layer_names(plan: ImportPlan) -> None:
    """Layer names become module attributes of our model class: they may not clash with its own."""
    taken = set(dir(MNISTNet))
    clashes = sorted({layer.name.split(".")[0] for layer in plan.layers} & taken)
    try:
        plan.config(NORMALIZATIONS["none"])
        if clashes:
            raise ConfigError(f"{clashes} would shadow attributes of MechMNISTic's model class")
    except ConfigError as exc:
        raise UnsupportedModelError(f"{plan.source}: unsupported layer names: {exc}") from None


def _listing(layers: list[Layer]) -> str:
    return "; ".join(layer.describe() for layer in layers) or "no layers"


def _clip(keys: list[str], at: int = 8) -> str:
    return str(keys[:at])[:-1] + (f", ... ({len(keys)} in all)]" if len(keys) > at else "]")


# -- answers ----------------------------------------------------------------------------------------------


def parse_normalization(text: str) -> Normalization:
    """``none``, ``mnist`` or ``MEAN,STD`` (e.g. ``0.5,0.5``) -> a ``Normalization``."""
    cleaned = str(text).strip().lower()
    if cleaned in NORMALIZATIONS:
        return NORMALIZATIONS[cleaned]
    try:
        mean, std = (float(part) for part in cleaned.split(","))
        if not (math.isfinite(mean) and math.isfinite(std)):
            raise ValueError("not finite")
        return Normalization(mean, std)
    except (ValueError, ConfigError):
        raise MechMNISTicError(
            f"normalisation must be none, mnist or MEAN,STD with STD > 0 (e.g. 0.1307,0.3081); got {str(text)[:40]!r}"
        ) from None


def normalization_label(norm: Normalization) -> str:
    """The answer that gives ``norm``: ``none``, ``mnist`` or ``MEAN,STD``."""
    for label, known in NORMALIZATIONS.items():
        if known == norm:
            return label
    return f"{norm.mean:g},{norm.std:g}"


def missing_questions(plan: ImportPlan, normalization: str | None, classes: int | None) -> tuple[Question, ...]:
    """The questions still unanswered."""
    answered = {"normalization": normalization is not None, "classes": classes is not None}
    return tuple(q for q in plan.questions if not answered[q.key])


def suggest_normalization(plan: ImportPlan, state: StateDict, sample: int = 1000) -> dict[str, float]:
    """For a 10-class model: accuracy on the first ``sample`` MNIST test digits under each named normalisation.

    A wrong normalisation shows up as a much lower accuracy, so this is a
    strong hint (never a silent choice) for the normalisation question.
    Returns ``{}`` for models that are not digit classifiers.
    """
    if plan.n_outputs != 10:
        return {}
    from ..data import load_mnist
    from ..training import accuracy

    test = load_mnist("test")
    return {
        label: accuracy(model_from_state_dict(plan.config(norm), state, plan.source),
                        test.images[:sample], test.labels[:sample])
        for label, norm in NORMALIZATIONS.items()
    }


# -- building and saving ----------------------------------------------------------------------------------


def build_imported(
    state: StateDict,
    plan: ImportPlan,
    name: str,
    normalization: str | None = None,
    classes: int | None = None,
    description: str = "",
) -> MNISTNet:
    """The imported model (eval mode) with a complete card attached as ``model.card``.

    ``normalization`` answers the normalisation question (``none``, ``mnist``
    or ``MEAN,STD``; not needed for a recognised EIS VII network) and
    ``classes=2`` the single-output question. Raises ``MissingAnswerError``
    when a needed answer is missing. Writes nothing; ``name`` goes on the card.
    """
    missing = missing_questions(plan, normalization, classes)
    if missing:
        asked = " ".join(f"{q.key}: {q.prompt}" for q in missing)
        raise MissingAnswerError(f"{plan.source}: the weights cannot tell this; {asked}", missing)
    if normalization is None:
        norm = NORMALIZATIONS["none"]  # recognised networks are known to read raw pixels
    else:
        norm = parse_normalization(normalization)
    n_classes = plan.n_outputs
    if classes is not None and classes != n_classes:
        if not (n_classes == 1 and classes == 2):
            raise MechMNISTicError(f"{plan.source}: the last layer has {n_classes} outputs, so it cannot have "
                                   f"{classes} classes")
        state = _single_logit_as_two(state, plan.layers[-1].name)
        n_classes = 2
    model = model_from_state_dict(plan.config(norm, n_classes), state, plan.source)
    model.card = ModelCard(
        name=name,
        config=model.config,
        weights_sha256=file_sha256(weights_bytes(model)),
        description=description or _default_description(plan),
        label_function={"name": "digits"} if n_classes == 10 else {"name": "unknown"},
        training={"import": {
            "file": plan.source,
            "file_sha256": plan.file_sha256,
            "naming": plan.naming,
            "recognised": plan.recognised,
            "normalization": normalization_label(norm),
            "single_output_read_as_binary": n_classes != plan.n_outputs,
            "notes": list(plan.notes),
        }},
        metrics=_metrics(model, plan),
        source=f"imported from {plan.source}",
        created=_now(),
    )
    return model


def save_imported(model: MNISTNet, name: str, zoo: str | os.PathLike | None = None, overwrite: bool = False,
                  description: str | None = None) -> Path:
    """Save an imported model (from ``build_imported``) into the zoo as ``name``; returns its folder."""
    card = dataclasses.replace(model.card, name=validate_name(name), created=_now(),
                               description=description or model.card.description)
    folder = save_model(model, card, zoo, overwrite=overwrite)
    model.card = card
    return folder


def import_model(
    path: str | os.PathLike,
    name: str,
    normalization: str | None = None,
    classes: int | None = None,
    description: str = "",
    zoo: str | os.PathLike | None = None,
    overwrite: bool = False,
    data: bytes | None = None,
) -> MNISTNet:
    """Read, recognise, check and save a weights file as zoo model ``name``; returns the model with its card.

    Everything is checked before anything is written: a bad file, a missing
    answer or a taken name raise a ``MechMNISTicError`` and leave the zoo as it was.
    """
    ensure_name_free(name, zoo, overwrite)
    state, plan = read_for_import(path, data)
    model = build_imported(state, plan, name, normalization, classes, description)
    save_imported(model, name, zoo, overwrite)
    return model


def ensure_name_free(name: str, zoo: str | os.PathLike | None = None, overwrite: bool = False) -> None:
    """Raise unless ``name`` is a valid zoo name that is free (or may be overwritten)."""
    if (model_dir(name, zoo) / CARD_FILE).exists() and not overwrite:
        raise ModelExistsError(f"a model named {name!r} already exists in the zoo; choose another name")


def _single_logit_as_two(state: StateDict, last: str) -> StateDict:
    """Logits ``(0, z)`` for a single output ``z``: softmax gives ``(1 - sigmoid(z), sigmoid(z))``."""
    weight, bias = state[f"{last}.weight"], state[f"{last}.bias"]
    return {**state, f"{last}.weight": torch.cat([torch.zeros_like(weight), weight]),
            f"{last}.bias": torch.cat([torch.zeros_like(bias), bias])}


def _default_description(plan: ImportPlan) -> str:
    what = f"Recognised as {plan.recognised}. " if plan.recognised else ""
    return f"{what}Imported from {plan.source}: {plan.summary()}."


def _metrics(model: MNISTNet, plan: ImportPlan) -> dict[str, object]:
    """Parameter count; test accuracy on the real MNIST test set for digit classifiers; for a
    recognised EIS VII network, its agreement with the challenge's hidden labels (the original: 0.9558)."""
    from ..data import load_mnist
    from ..hooks import predict
    from ..labels import CHALLENGE_LABEL_FUNCTION, apply_label_function

    metrics: dict[str, object] = {"parameter_count": sum(p.numel() for p in model.parameters())}
    is_digits, is_challenge = model.n_classes == 10, plan.recognised == EIS_VII_NAME
    if not (is_digits or is_challenge):
        return metrics
    test = load_mnist("test")
    predictions = predict(model, test.images)
    if is_digits:
        metrics["test_accuracy"] = float((predictions == test.labels).mean())
        metrics["metric_labels"] = "digits"
    if is_challenge:
        labels = apply_label_function(CHALLENGE_LABEL_FUNCTION, test.images, test.labels)
        metrics["challenge_label_agreement"] = float((predictions == labels).mean())
    return metrics


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
