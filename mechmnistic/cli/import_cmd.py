"""``mechmnistic import FILE --name NAME``: bring your own model into the zoo, with a card."""

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
        help="import a state dict (.safetensors, .pt, .pth) of an MLP or CNN into the zoo",
        description="Infer the architecture from the parameter names and shapes, ask (by flags) for what the "
        "weights cannot tell, check everything, then save the model and its card into the zoo. "
        f"Files over {MAX_WEIGHTS_BYTES // 2**20} MiB are refused; .pt/.pth files are read without running code.",
    )
    p.add_argument("file", help="the weights file")
    p.add_argument("--name", required=True, help="zoo name (letters, digits, '.', '_', '-')")
    p.add_argument("--normalization", metavar="none|mnist|MEAN,STD",
                   help="input normalisation used in training: none = pixels in [0, 1]; "
                   "mnist = (x - 0.1307) / 0.3081; or MEAN,STD (not needed for the EIS VII network)")
    p.add_argument("--classes", type=int, choices=[2],
                   help="only for a single output unit: read it as a binary classifier (class 1 when > 0)")
    p.add_argument("--description", default="", help="a description for the card")
    p.add_argument("--zoo", help="zoo folder to save into (default: models/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of that name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=import_cmd)


def import_cmd(args: argparse.Namespace) -> int:
    from ..models.config import config_to_dict
    from ..models.importer import MissingAnswerError, import_model
    from ..models.zoo import ModelExistsError

    try:
        model = import_model(args.file, args.name, args.normalization, args.classes, args.description,
                             zoo=args.zoo, overwrite=args.overwrite)
    except MissingAnswerError as exc:
        raise MechMNISTicError(_ask(args.file, exc)) from None
    except ModelExistsError as exc:
        raise MechMNISTicError(f"{exc}, or pass --overwrite to replace it") from None
    card = model.card
    result = {
        "name": card.name,
        "architecture": card.config.describe(),
        "config": config_to_dict(card.config),
        "layers": list(card.config.layer_names),
        "n_classes": card.config.n_classes,
        **{k: card.training["import"][k] for k in ("naming", "recognised", "normalization")},
        "label_function": card.label_function,
        "metrics": card.metrics,
        "weights_sha256": card.weights_sha256,
        "source": card.source,
    }
    emit(args, result, _human)
    return 0


def _ask(path: str, exc: MissingAnswerError) -> str:
    """One line naming the flags to pass, with the accuracy hint for digit classifiers."""
    from pathlib import Path

    from ..models.importer import read_for_import, suggest_normalization

    asks = []
    for question in exc.questions:
        if question.key == "normalization":
            state, plan = read_for_import(path)
            scores = suggest_normalization(plan, state)
            hint = (" (accuracy on the first 1000 MNIST test digits: "
                    + ", ".join(f"{label} {score:.1%}" for label, score in scores.items()) + ")") if scores else ""
            asks.append("pass --normalization none (pixels in [0, 1]), mnist ((x - 0.1307) / 0.3081) or MEAN,STD"
                        + hint)
        else:
            asks.append("pass --classes 2 to read its single output unit as a binary classifier (class 1 when > 0)")
    return f"{Path(path).name}: the weights cannot tell how to read this model; " + "; and ".join(asks)


def _human(result: dict) -> str:
    lines = [f"imported {result['name']}: {result['architecture']}"]
    if result["recognised"]:
        lines.append(f"recognised as {result['recognised']}")
    lines.append(f"layers ({result['naming']}): {', '.join(result['layers'])}")
    lines.append(f"input normalisation: {result['normalization']}")
    accuracy = result["metrics"].get("test_accuracy")
    if accuracy is not None:
        lines.append(f"test accuracy (real MNIST test set): {accuracy:.4f}")
    lines.append(f"weights sha256: {result['weights_sha256']}")
    return "\n".join(lines)
