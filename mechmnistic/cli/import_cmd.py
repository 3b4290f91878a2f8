"""``mechmnistic import FILE --name NAME``: bring your own model (a state dict or ONNX) into the zoo, with a card."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import MechMNISTicError
from . import emit

if TYPE_CHECKING:
    from ..models.importer import MissingAnswerError


def register(sub: argparse._SubParsersAction) -> None:
    from ..models.weights_io import MAX_WEIGHTS_BYTES

    p = sub.add_parser(
        "import",
        help="import a state dict (.safetensors, .pt, .pth) or an ONNX file of an MNIST network into the zoo",
        description="A state dict holds names and shapes, not code: every architecture they allow is tried on MNIST "
        "test digits and the best is taken only when it is clearly best (0.5 points ahead); otherwise the flags "
        "that separate the candidates are asked for. An ONNX file records the computation: nothing is guessed. "
        "Everything is checked before the model and its card are saved into the zoo. "
        f"Files over {MAX_WEIGHTS_BYTES // 2**20} MiB are refused; .pt/.pth files are read without running code; "
        "ONNX files are read as data, and refused when they keep tensors in external files.",
    )
    p.add_argument("file", help="the weights file (.safetensors, .pt, .pth, .bin, .ckpt) or an .onnx file")
    p.add_argument("--name", required=True, help="zoo name (letters, digits, '.', '_', '-')")
    p.add_argument("--normalization", metavar="none|mnist|MEAN,STD",
                   help="input normalisation used in training: none = pixels in [0, 1]; "
                   "mnist = (x - 0.1307) / 0.3081; or MEAN,STD (not needed for the EIS VII network)")
    p.add_argument("--classes", type=int, choices=[2],
                   help="only for a single output unit: read it as a binary classifier (class 1 when > 0)")
    p.add_argument("--activation", metavar="NAME",
                   help="the activation between layers: relu, leaky_relu(SLOPE), elu, gelu, gelu(tanh), silu, tanh "
                   "or sigmoid (LeakyReLU is never guessed)")
    p.add_argument("--pool", metavar="SPEC", help="pooling after each conv layer: none, maxK or avgK, one per conv "
                   "layer or one for all, comma-separated (e.g. none,max2)")
    p.add_argument("--padding", metavar="SPEC", help="zero padding of each conv layer (e.g. 2,0)")
    p.add_argument("--stride", metavar="SPEC", help="stride of each conv layer (e.g. 1,1)")
    p.add_argument("--description", default="", help="a description for the card")
    p.add_argument("--zoo", help="zoo folder to save into (default: models/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=import_cmd)


def import_cmd(args: argparse.Namespace) -> int:
    from ..models.importer import MissingAnswerError, import_model
    from ..models.zoo import ModelExistsError

    try:
        model = import_model(args.file, args.name, args.normalization, args.classes, args.description,
                             zoo=args.zoo, overwrite=args.overwrite, activation=args.activation, pool=args.pool,
                             padding=args.padding, stride=args.stride)
    except MissingAnswerError as exc:
        raise MechMNISTicError(_ask(exc)) from None
    except ModelExistsError as exc:
        raise MechMNISTicError(f"{exc}, or pass --overwrite to replace it") from None
    card = model.card
    record = card.training["import"]
    result = {
        "name": card.name,
        "architecture": card.config.describe(),
        "config": card.to_dict()["architecture"],
        "layers": list(card.config.layer_names),
        "n_classes": card.config.n_classes,
        **{k: record[k] for k in ("format", "naming", "recognised", "normalization", "choices", "decision",
                                  "candidates", "notes")},
        "label_function": card.label_function,
        "metrics": card.metrics,
        "weights_sha256": card.weights_sha256,
        "source": card.source,
    }
    emit(args, result, _human)
    return 0


def _ask(exc: MissingAnswerError) -> str:
    """One line: the problem, and the flags to pass."""
    flags = " ".join(f"--{q.key}" for q in exc.questions)
    hint = ""
    if "normalization" in {q.key for q in exc.questions}:
        hint = "; pass --normalization none (pixels in [0, 1]), mnist ((x - 0.1307) / 0.3081) or MEAN,STD"
    if "classes" in {q.key for q in exc.questions}:
        hint += "; pass --classes 2 to read its single output unit as a binary classifier (class 1 when > 0)"
    return f"{exc}{hint} (needed: {flags})"


def _human(result: dict) -> str:
    lines = [f"imported {result['name']}: {result['architecture']}"]
    if result["recognised"]:
        lines.append(f"recognised as {result['recognised']}")
    lines.append(f"layers ({result['naming']}): {', '.join(result['layers'])}")
    lines.append(f"input normalisation: {result['normalization']}")
    lines.append(f"architecture: {result['decision']}")
    for note in result["notes"]:
        lines.append(f"note: {note}")
    accuracy = result["metrics"].get("test_accuracy")
    if accuracy is not None:
        lines.append(f"test accuracy (real MNIST test set): {accuracy:.4f}")
    lines.append(f"weights sha256: {result['weights_sha256']}")
    return "\n".join(lines)
