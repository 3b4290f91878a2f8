"""``explain``: why a model gives one MNIST image its logits (the Classification Explorer's numbers)."""

from __future__ import annotations

import argparse

from . import emit


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.logit_effects import DEFAULT_SHARE

    p = sub.add_parser(
        "explain",
        help="logits, logit effects and important units of a model on one MNIST image",
        description="The final layer's logit effects (activation x output weight, bias last; each row sums to "
        "the logit) and the important units for a class, as the Classification Explorer shows them.",
    )
    p.add_argument("model")
    image = p.add_mutually_exclusive_group(required=True)
    image.add_argument("--test-index", type=int, metavar="I", help="MNIST test image I")
    image.add_argument("--train-index", type=int, metavar="I", help="MNIST training image I")
    p.add_argument("--class", dest="cls", type=int, metavar="C", help="the class to explain (default: the prediction)")
    p.add_argument("--share", type=float, default=DEFAULT_SHARE,
                   help=f"a unit is important above this share of the class's total |effect| (default {DEFAULT_SHARE})")
    p.add_argument("--json", action="store_true", help="everything, including the effects matrix, as JSON")
    p.set_defaults(handler=explain_cmd)


def explain_cmd(args: argparse.Namespace) -> int:
    from ..analysis.logit_effects import explain_class, logit_effects
    from ..analysis.predictions import example
    from ..models import load_model

    model = load_model(args.model)
    split, index = ("test", args.test_index) if args.test_index is not None else ("train", args.train_index)
    image, digit = example(split, index)
    effects = logit_effects(model, image)
    cls = effects.prediction if args.cls is None else args.cls
    why = explain_class(model, image, effects, cls, args.share)
    result = {
        "model": args.model,
        "image": {"split": split, "index": index, "digit": digit},
        "final_layer": effects.layer.name,
        "unit_layer": effects.layer.unit_layer,
        "logits": effects.logits,
        "probabilities": effects.probabilities,
        "prediction": effects.prediction,
        "class": why.cls,
        "share": why.share,
        "important_units": [vars(unit) for unit in why.units],
        "effects": effects.effects,
    }
    emit(args, result, _human)
    return 0


def _human(result: dict) -> str:
    image = result["image"]
    lines = [
        f"{result['model']} on {image['split']} image {image['index']} (digit {image['digit']}): "
        f"predicts {result['prediction']} (p = {result['probabilities'][result['prediction']]:.3f})",
        "logits: " + " ".join(f"{c}:{v:+.3f}" for c, v in enumerate(result["logits"])),
        f"important {result['unit_layer']} units for class {result['class']} "
        f"(|effect| > {100 * result['share']:g}% of the class's total):",
        f"{'unit':>6} {'activation':>11} {'weight':>9} {'effect':>9} {'share':>7}",
    ]
    lines += [f"{u['unit']:>6} {u['activation']:>11.4f} {u['output_weight']:>9.4f} {u['effect']:>+9.4f} "
              f"{100 * u['share']:>6.1f}%" for u in result["important_units"]]
    return "\n".join(lines)
