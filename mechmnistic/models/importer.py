"""Bring your own model: read it, work out its architecture without guessing silently, save it with a card.

Two ways in, one way out:

* **A state dict** (``.safetensors``, or ``.pt``/``.pth``/``.bin``/``.ckpt``
  read with ``torch.load(weights_only=True)``) holds names and shapes, not
  code. ``mechmnistic.models.recognise`` reads the layers and enumerates every
  architecture consistent with them: per conv layer its padding, stride and
  pooling; between layers one activation. Then the candidates are *scored*:
  each is run on MNIST test digits (``SCREEN`` of them for all, ``SAMPLE`` for
  those within ``SCREEN_WINDOW`` of the best). The best is taken only when it
  is clearly best: ``MARGIN`` (0.5 points) ahead of the runner-up, which is
  reported with it. Otherwise the import stops and asks for the choices that
  separate them (``--activation``, ``--pool``, ``--padding``, ``--stride``).
  When even the best candidate is implausible (below ``PLAUSIBLE`` accuracy:
  no MNIST network of the family scores that low), the import is refused
  rather than give the user a network that computes something else. A model
  that is not a 10-class digit classifier cannot be scored: then every
  choice that the shapes leave open is asked. Answers given are never
  second-guessed: a single candidate left is imported as the user described
  it.
* **An ONNX file** records the computation itself; ``onnx_import`` maps its
  nodes onto the layer model, so nothing is guessed but the input
  normalisation.

Always asked (``Question``): the input normalisation (``none``: pixels in [0,
1]; ``mnist``: mean 0.1307, std 0.3081; or ``MEAN,STD``), with the accuracy
under each as a hint; and how to read a single output unit (as a binary
classifier). The EIS VII challenge network (conv1 1->8 3x3, conv2 8->16 3x3,
fc1 400->200, fc2 200->2; ReLU, 2x2 max-pooling; raw [0, 1] pixels) is
recognised by its signature and imports without questions.

The model enters the zoo in the form every analysis reads
(``folding.analysis_form``: batch normalisation folded into the layer before
it, and so on; the same function), and its card keeps what was imported: the
file and its SHA-256, the imported layer list, the candidates with their
accuracies, and the decision. Everything is checked before anything is
written; a model enters the zoo only through ``zoo.save_model``, which writes
the weights first and the card last.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import MechMNISTicError
from .architectures import MNISTNet
from .card import ModelCard
from .config import ConfigError, NetConfig, Normalization, config_to_dict
from .folding import analysis_form
from .recognise import (
    Candidate,
    Recognised,
    UnsupportedModelError,
    candidates,
    parse_activation,
    recognise,
    single_output_as_two,
)
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
#: Test digits every candidate is scored on first, then the close ones on ``SAMPLE``.
SCREEN, SAMPLE = 250, 2000
#: Candidates within this much of the best screening score are scored on ``SAMPLE`` digits.
SCREEN_WINDOW = 0.15
#: The best candidate is taken only this far (0.5 points of accuracy) ahead of the runner-up.
MARGIN = 0.005
#: Below this accuracy on MNIST digits no candidate is believed (chance is 0.1).
PLAUSIBLE = 0.5
EIS_VII_NAME = "the EIS VII challenge network"
EIS_VII_SHAPES = {
    "conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (16, 8, 3, 3), "conv2.bias": (16,),
    "fc1.weight": (200, 400), "fc1.bias": (200,), "fc2.weight": (2, 200), "fc2.bias": (2,),
}
EIS_VII_CHOICES = {"activation": "relu", "pool": "max2", "padding": "0", "stride": "1"}
ONNX_SUFFIXES = (".onnx",)


@dataclass(frozen=True)
class Question:
    """Something the file cannot tell; ``key`` is also the CLI flag (``--key``)."""

    key: str
    prompt: str


QUESTIONS = {
    "normalization": Question(
        "normalization",
        "How were input images normalised in training? none = pixels in [0, 1]; mnist = (x - 0.1307) / 0.3081; "
        "or MEAN,STD"),
    "classes": Question(
        "classes",
        "The last layer has a single output unit. Read it as a binary classifier (class 1 when the output is > 0)? "
        "It is then stored as two logits (0, output), which give the same predictions and sigmoid probabilities."),
    "activation": Question(
        "activation",
        "Which activation sits between the layers? relu, leaky_relu(SLOPE), elu, gelu, silu, tanh or sigmoid"),
    "pool": Question("pool", "Which pooling follows each conv layer? none, maxK or avgK (window and stride K), one "
                             "per conv layer, comma-separated (e.g. none,max2)"),
    "padding": Question("padding", "How much zero padding does each conv layer add? One number per conv layer"),
    "stride": Question("stride", "What stride does each conv layer use? One number per conv layer"),
}
ARCHITECTURE_KEYS = ("activation", "pool", "padding", "stride")


class MissingAnswerError(MechMNISTicError):
    """The import needs answers the file cannot give (``questions``); ``ranking`` holds the candidates'
    accuracies when they were scored, ``hints`` the accuracy under each named normalisation."""

    def __init__(self, message: str, questions: tuple[Question, ...], ranking: tuple[Scored, ...] = (),
                 hints: Mapping[str, float] | None = None) -> None:
        super().__init__(message)
        self.questions = questions
        self.ranking = ranking
        self.hints = dict(hints or {})


@dataclass(frozen=True)
class Answers:
    """What the user says about the model (each ``None`` when not said); the CLI's flags, the page's widgets."""

    normalization: str | None = None
    classes: int | None = None
    activation: str | None = None
    pool: str | None = None
    padding: str | None = None
    stride: str | None = None

    def architecture(self) -> dict[str, str]:
        return {key: str(value).strip().lower() for key in ARCHITECTURE_KEYS
                if (value := getattr(self, key)) is not None}


@dataclass(frozen=True)
class Scored:
    """A candidate and its accuracy on ``digits`` MNIST test digits."""

    candidate: Candidate
    accuracy: float
    digits: int

    def describe(self) -> str:
        return f"{self.candidate.describe()}: {self.accuracy:.1%} of {self.digits:,} test digits"


@dataclass(frozen=True)
class ImportPlan:
    """What was recognised in a file, and what still has to be asked.

    ``recognised_layers``: the state dict's modules (``None`` for ONNX);
    ``fixed``: choices the file settles (all of them for ONNX, whose
    ``onnx_config`` is the imported network; the EIS VII network's).
    """

    source: str
    file_format: str
    recognised_layers: Recognised | None = None
    onnx_config: NetConfig | None = None
    recognised: str | None = None
    naming: str = ""
    notes: tuple[str, ...] = ()
    questions: tuple[Question, ...] = (QUESTIONS["normalization"],)
    fixed: dict[str, str] = field(default_factory=dict)
    file_sha256: str = ""

    @property
    def layers(self) -> tuple:
        """The unit layers (name, kind, sizes), for display."""
        if self.recognised_layers is not None:
            return self.recognised_layers.units
        return self.onnx_config.unit_specs

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @property
    def n_outputs(self) -> int:
        if self.recognised_layers is not None:
            return self.recognised_layers.n_outputs
        return self.onnx_config.n_classes

    def candidates(self, normalization: Normalization, answers: Answers) -> list[Candidate]:
        """The architectures consistent with the file, its fixed choices and ``answers``."""
        if self.onnx_config is not None:
            config = NetConfig(self.onnx_config.layers, _compose(self.onnx_config.normalization, normalization))
            return [Candidate(config, {})]
        fixed = {**answers.architecture(), **self.fixed}
        if not self.recognised_layers.convs:  # pooling, padding and strides are said of conv layers only
            fixed = {k: v for k, v in fixed.items() if k == "activation"}
        return candidates(self.recognised_layers, normalization, fixed)


def _compose(inner: Normalization, outer: Normalization) -> Normalization:
    """The graph's own input normalisation ``(x' - m2) / s2`` after the user's ``x' = (x - m1) / s1``."""
    return Normalization(outer.mean + inner.mean * outer.std, outer.std * inner.std)


# -- reading and recognising ------------------------------------------------------------------------------


def read_for_import(path: str | os.PathLike, data: bytes | None = None) -> tuple[StateDict, ImportPlan]:
    """Read a weights or ONNX file (or ``data``, named by ``path``) and recognise its layers.

    Raises ``WeightsFileError`` (or its subclass ``UnsupportedModelError``)
    with the file's name and the problem; reads only, writes nothing.
    """
    name = Path(path).name
    if Path(path).suffix.lower() in ONNX_SUFFIXES:
        from .onnx_import import read_onnx

        state, config, notes, naming, digest = read_onnx(path, data)
        plan = ImportPlan(name, "onnx", onnx_config=config, naming=naming, notes=tuple(notes), file_sha256=digest)
        return state, _with_questions(plan, state)
    state = read_state_dict(path, data)  # checks the size before reading a file
    check_finite(name, {k: v for k, v in state.items() if not k.endswith(".num_batches_tracked")})
    if data is None:
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    else:
        digest = hashlib.sha256(data).hexdigest()
    return state, plan_import(state, name, digest)


def plan_import(state: Mapping[str, torch.Tensor], source: str = "weights", digest: str = "") -> ImportPlan:
    """Recognise the layers of a state dict (``recognise``) and what has to be asked."""
    recognised_layers = recognise(state, source)
    plan = ImportPlan(source, "state dict", recognised_layers, naming=_naming(recognised_layers),
                      notes=recognised_layers.notes, file_sha256=digest)
    return _with_questions(plan, state)


def _naming(recognised_layers: Recognised) -> str:
    """The naming scheme in words, e.g. ``numbered attributes (convN, fcN)``."""
    patterns = list(dict.fromkeys(re.sub(r"\d+", "N", m.name) for m in recognised_layers.modules))
    shown = ", ".join(patterns)
    if patterns == ["N"]:
        return "plain nn.Sequential indices (N)"
    if all(re.fullmatch(r"[A-Za-z_][\w.]*\.N", p) for p in patterns):
        return f"indexed layers under attributes ({shown})"
    if all(re.fullmatch(r"[A-Za-z_]+N", p) for p in patterns):
        return f"numbered attributes ({shown})"
    return f"named layers ({shown})"


def _with_questions(plan: ImportPlan, state: Mapping[str, torch.Tensor]) -> ImportPlan:
    _check_layer_names(plan)
    notes = list(plan.notes)
    questions: tuple[Question, ...] = (QUESTIONS["normalization"],)
    recognised, fixed = None, {}
    if plan.file_format == "state dict":
        notes.append("activation functions, pooling, padding and strides are not stored in a state dict: every "
                     "architecture the shapes allow is tried on MNIST test digits")
        if {k: tuple(v.shape) for k, v in state.items()} == EIS_VII_SHAPES:
            recognised, questions, fixed = EIS_VII_NAME, (), dict(EIS_VII_CHOICES)
            notes.append("recognised as the EIS VII challenge network: ReLU, 2x2 max-pooling, and raw pixels in "
                         "[0, 1] (no input normalisation)")
    if plan.n_outputs == 1:
        questions += (QUESTIONS["classes"],)
    return dataclasses.replace(plan, recognised=recognised, notes=tuple(notes), questions=questions, fixed=fixed)


def _check_layer_names(plan: ImportPlan) -> None:
    """Layer names become module attributes of our model class: they may not clash with its own."""
    taken = set(dir(MNISTNet))
    clashes = sorted({name.split(".")[0] for name in plan.layer_names} & taken)
    if clashes:
        raise UnsupportedModelError(f"{plan.source}: unsupported layer names: {clashes} would shadow attributes "
                                    "of MechMNISTic's model class")


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


# -- choosing -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    """The chosen architecture (as imported: batch normalisation and all), how it was chosen, and the
    candidates' accuracies (best first; empty when nothing needed scoring or could be scored)."""

    candidate: Candidate
    decision: str
    ranking: tuple[Scored, ...] = ()


def resolve(state: StateDict, plan: ImportPlan, answers: Answers) -> Resolution:
    """Choose the architecture (module docstring), or raise ``MissingAnswerError`` / ``UnsupportedModelError``."""
    if answers.activation is not None:
        parse_activation(answers.activation)  # a bad answer is said before any work
    scorable = plan.n_outputs == 10
    if answers.normalization is None and "normalization" in _keys(plan.questions):
        # Score under each named normalisation: the hint for the question, and any other question too.
        found = {label: plan.candidates(norm, answers) for label, norm in NORMALIZATIONS.items()}
        _check_found(plan, answers, found["none"])
        rankings = {label: _rank(state, plan, c) for label, c in found.items()} if scorable else {}
        hints = {label: ranking[0].accuracy for label, ranking in rankings.items()}
        best = max(hints, key=hints.get) if hints else "none"
        ranking = tuple(rankings.get(best, ()))
        try:
            _decide(plan, answers, found[best], ranking)
            extra: tuple[Question, ...] = ()
        except MissingAnswerError as exc:
            extra = exc.questions
        except UnsupportedModelError:
            extra = ()  # said once the normalisation is known
        hint = (" (accuracy on MNIST test digits: " + ", ".join(f"{k} {v:.1%}" for k, v in hints.items()) + ")"
                if hints else "")
        raise MissingAnswerError(f"{plan.source}: the file cannot tell how inputs were normalised{hint}",
                                 (QUESTIONS["normalization"], *extra), ranking, hints)
    found = plan.candidates(_normalization(plan, answers), answers)
    _check_found(plan, answers, found)
    ranking = tuple(_rank(state, plan, found)) if scorable and len(found) > 1 else ()
    return _decide(plan, answers, found, ranking)


def _check_found(plan: ImportPlan, answers: Answers, found: list[Candidate]) -> None:
    if found:
        return
    given = ", ".join(f"--{k} {v}" for k, v in answers.architecture().items())
    raise UnsupportedModelError(
        f"{plan.source}: no architecture fits these layers" + (f" with {given}" if given else "")
        + f". Recognised: {_listing(plan)}. Supported: conv layers (any padding and stride) each followed by "
        "an activation and optional max or average pooling, then Linear layers"
    )


def _decide(plan: ImportPlan, answers: Answers, found: list[Candidate], ranking: tuple[Scored, ...]) -> Resolution:
    """The one candidate left, or the clearly best by ``ranking``; else the questions that separate them."""
    if len(found) == 1:
        how = ("the only architecture the names and shapes allow" if not answers.architecture()
               else "the only architecture the names, shapes and your answers allow")
        if plan.file_format == "onnx":
            how = "as the ONNX graph records it"
        elif plan.recognised:
            how = f"recognised as {plan.recognised}"
        return Resolution(found[0], how, ranking)
    if not ranking:
        questions = _architecture_questions(plan, (), found)
        raise MissingAnswerError(
            f"{plan.source}: {len(found)} architectures fit these layers, and a model with {plan.n_outputs} outputs "
            "cannot be scored on MNIST digits to choose among them; say which: "
            + "; ".join(f"--{q.key}" for q in questions), questions)
    best = ranking[0]
    if best.accuracy < PLAUSIBLE:
        raise UnsupportedModelError(
            f"{plan.source}: even the best architecture that fits these layers ({best.describe()}) is far below "
            f"what an MNIST network reaches, so none of them is the network that was trained. It may hold layers "
            "a state dict cannot show (a residual connection, reshapes, a custom layer), a normalisation other "
            "than the one given, or labels other than the digits. Export it to ONNX, which records the computation, "
            "or pass --activation, --pool, --padding and --stride to import it as you describe it"
        )
    runner = ranking[1]
    lead = best.accuracy - runner.accuracy
    if lead < MARGIN:
        questions = _architecture_questions(plan, ranking, found)
        raise MissingAnswerError(
            f"{plan.source}: cannot tell which architecture this is: the best two are within {MARGIN * 100:.1f} "
            f"points on {best.digits:,} MNIST test digits. Say which: {flag_choices(ranking, questions)}",
            questions, ranking)
    how = (f"the best of {len(found)} architectures on {best.digits:,} MNIST test digits ({best.accuracy:.1%}), "
           f"{lead * 100:.1f} points ahead of the runner-up ({runner.candidate.describe()}: {runner.accuracy:.1%})")
    return Resolution(best.candidate, how, ranking)


def flag_choices(ranking: tuple[Scored, ...], questions: tuple[Question, ...], count: int = 4) -> str:
    """The leading candidates as the flags that pick each, with its accuracy: ``--activation relu (97.7%) |
    --activation gelu (97.7%)``."""
    keys = [q.key for q in questions]
    shown = []
    for scored in ranking[:count]:
        flags = " ".join(f"--{key} {scored.candidate.choices[key]}" for key in keys if key in scored.candidate.choices)
        shown.append(f"{flags} ({scored.accuracy:.1%})")
    return " | ".join(dict.fromkeys(shown))


def _keys(questions: tuple[Question, ...]) -> set[str]:
    return {q.key for q in questions}


def _normalization(plan: ImportPlan, answers: Answers) -> Normalization:
    if answers.normalization is None:
        return NORMALIZATIONS["none"]  # recognised networks are known to read raw pixels
    return parse_normalization(answers.normalization)


def _architecture_questions(plan: ImportPlan, ranking: tuple[Scored, ...], found: list[Candidate]) -> tuple:
    """The flags that separate the candidates tied with the best (within ``MARGIN``; all of them when unscored),
    so that one round of answers settles it."""
    best = ranking[0] if ranking else None
    tied = [s.candidate for s in ranking if s.digits == best.digits and best.accuracy - s.accuracy < MARGIN]
    pool = tied if len(tied) >= 2 else found
    keys = [k for k in ARCHITECTURE_KEYS if len({c.choices.get(k) for c in pool}) > 1]
    return tuple(QUESTIONS[k] for k in keys)


def _listing(plan: ImportPlan) -> str:
    return "; ".join(layer.describe() for layer in plan.layers)


def _rank(state: StateDict, plan: ImportPlan, found: list[Candidate]) -> list[Scored]:
    """The candidates by accuracy on MNIST test digits, best first (screened on ``SCREEN``, then ``SAMPLE``)."""
    from ..data import load_mnist

    test = load_mnist("test")
    if len(found) == 1:
        return [Scored(found[0], _accuracy(found[0], state, plan, test, SAMPLE), SAMPLE)]
    screened = [(c, _accuracy(c, state, plan, test, SCREEN)) for c in found]
    top = max(score for _, score in screened)
    close = [c for c, score in screened if score >= top - SCREEN_WINDOW]
    scored = [Scored(c, _accuracy(c, state, plan, test, SAMPLE), SAMPLE) for c in close]
    scored = sorted(scored, key=lambda s: -s.accuracy)
    return scored + sorted((Scored(c, score, SCREEN) for c, score in screened if c not in close),
                           key=lambda s: -s.accuracy)


def _accuracy(candidate: Candidate, state: StateDict, plan: ImportPlan, test, count: int) -> float:
    from ..hooks import predict

    model = _analysis_model(candidate.config, state, plan.source)
    return float((predict(model, test.images[:count]) == test.labels[:count]).mean())


def _analysis_model(config: NetConfig, state: StateDict, source: str) -> MNISTNet:
    """The network of ``config`` with ``state``, in the form analyses read (``folding.analysis_form``)."""
    try:
        folded, folded_state, _ = analysis_form(config, {k: v.to(torch.float32) for k, v in state.items()
                                                         if not k.endswith(".num_batches_tracked")})
    except ConfigError as exc:
        raise UnsupportedModelError(f"{source}: {exc}") from None
    return model_from_state_dict(folded, folded_state, source)


def suggest_normalization(plan: ImportPlan, state: StateDict, answers: Answers | None = None) -> dict[str, float]:
    """For a 10-class model: the best candidate's accuracy on MNIST test digits under each named normalisation.

    A wrong normalisation shows up as a much lower accuracy, so this is a
    strong hint (never a silent choice) for the normalisation question.
    Returns ``{}`` for models that are not digit classifiers.
    """
    if plan.n_outputs != 10:
        return {}
    answers = dataclasses.replace(answers or Answers(), normalization=None)
    try:
        resolve(state, dataclasses.replace(plan, questions=(QUESTIONS["normalization"],)), answers)
    except MissingAnswerError as exc:
        return exc.hints
    return {}


# -- building and saving ----------------------------------------------------------------------------------


def build_imported(
    state: StateDict,
    plan: ImportPlan,
    name: str,
    answers: Answers | None = None,
    description: str = "",
    **answer_fields,
) -> MNISTNet:
    """The imported model (eval mode, in the form analyses read) with a complete card as ``model.card``.

    ``answers`` (or the same as keywords: ``normalization``, ``classes``,
    ``activation``, ``pool``, ``padding``, ``stride``) answer what the file
    cannot tell. Raises ``MissingAnswerError`` when a needed answer is missing
    and ``UnsupportedModelError`` when no architecture fits. Writes nothing;
    ``name`` goes on the card.
    """
    answers = dataclasses.replace(answers or Answers(), **answer_fields)
    if answers.classes is None and "classes" in _keys(plan.questions):
        raise MissingAnswerError(f"{plan.source}: the file cannot tell this; classes: {QUESTIONS['classes'].prompt}",
                                 (QUESTIONS["classes"],))
    n_outputs = plan.n_outputs
    if answers.classes is not None and answers.classes != n_outputs and not (n_outputs == 1 and answers.classes == 2):
        raise MechMNISTicError(f"{plan.source}: the last layer has {n_outputs} outputs, so it cannot have "
                               f"{answers.classes} classes")
    resolution = resolve(state, plan, answers)
    imported = resolution.candidate.config
    state = {k: v for k, v in state.items() if not k.endswith(".num_batches_tracked")}
    if n_outputs == 1 and answers.classes == 2:
        imported, state = _binary(imported, state)
    try:
        folded, folded_state, fold_notes = analysis_form(imported, {k: v.to(torch.float32) for k, v in state.items()})
    except ConfigError as exc:
        raise UnsupportedModelError(f"{plan.source}: {exc}") from None
    model = model_from_state_dict(folded, folded_state, plan.source)
    norm = folded.normalization
    n_classes = model.n_classes
    model.card = ModelCard(
        name=name,
        config=model.config,
        weights_sha256=file_sha256(weights_bytes(model)),
        description=description or _default_description(plan, model),
        label_function={"name": "digits"} if n_classes == 10 else {"name": "unknown"},
        training={"import": {
            "file": plan.source,
            "file_sha256": plan.file_sha256,
            "format": plan.file_format,
            "naming": plan.naming,
            "recognised": plan.recognised,
            "normalization": normalization_label(norm),
            "single_output_read_as_binary": n_classes != n_outputs,
            "answers": {k: v for k, v in dataclasses.asdict(answers).items() if v is not None},
            "choices": resolution.candidate.choices,
            "decision": resolution.decision,
            "candidates": [{"choices": s.candidate.choices, "accuracy": s.accuracy, "digits": s.digits}
                           for s in resolution.ranking[:10]],
            "imported_architecture": config_to_dict(imported),
            "output": imported.output,
            "notes": list(plan.notes) + fold_notes,
        }},
        metrics=_metrics(model, plan),
        source=f"imported from {plan.source}",
        created=_now(),
    )
    return model


def _binary(config: NetConfig, state: StateDict) -> tuple[NetConfig, StateDict]:
    """The single-output model read as two logits ``(0, z)`` (``single_output_as_two``)."""
    last = config.unit_specs[-1]
    layers = tuple(dataclasses.replace(spec, out_features=2) if spec is last else spec for spec in config.layers)
    return NetConfig(layers, config.normalization), single_output_as_two(state, last.name)


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
    **answer_fields,
) -> MNISTNet:
    """Read, recognise, check and save a weights or ONNX file as zoo model ``name``; returns the model with its card.

    ``answer_fields``: ``activation``, ``pool``, ``padding``, ``stride`` (see
    ``Answers``). Everything is checked before anything is written: a bad file,
    a missing answer or a taken name raise a ``MechMNISTicError`` and leave the
    zoo as it was.
    """
    ensure_name_free(name, zoo, overwrite)
    state, plan = read_for_import(path, data)
    answers = Answers(normalization=normalization, classes=classes, **answer_fields)
    model = build_imported(state, plan, name, answers, description)
    save_imported(model, name, zoo, overwrite)
    return model


def ensure_name_free(name: str, zoo: str | os.PathLike | None = None, overwrite: bool = False) -> None:
    """Raise unless ``name`` is a valid zoo name that is free (or may be overwritten)."""
    if (model_dir(name, zoo) / CARD_FILE).exists() and not overwrite:
        raise ModelExistsError(f"a model named {name!r} already exists in the zoo; choose another name")


def _default_description(plan: ImportPlan, model: MNISTNet) -> str:
    what = f"Recognised as {plan.recognised}. " if plan.recognised else ""
    return f"{what}Imported from {plan.source}: {model.config.describe()}."


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


__all__ = [
    "Answers", "ImportPlan", "MissingAnswerError", "Question", "Resolution", "Scored", "UnsupportedModelError",
    "WeightsFileError", "build_imported", "ensure_name_free", "import_model", "normalization_label",
    "parse_normalization", "plan_import", "read_for_import", "resolve", "save_imported", "suggest_normalization",
]
