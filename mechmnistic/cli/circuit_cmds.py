"""Circuit-lab commands: ``hypothesis`` (check or fit a template-band hypothesis) and ``scrub``.

    mechmnistic hypothesis MODEL --layer LAYER --template train:6 --center 0.5 (--band LO HI | --fit-band) [--json]
    mechmnistic scrub MODEL --layer LAYER --template train:6 --center 0.5 --band LO HI \\
        --tolerance T [--tolerance T ...] [--seed S] [--json]

Templates: ``train:N``, ``test:N``, ``unit:LAYER:N`` or a ``.png``/``.npy``
file (``--invert`` uses ``1 - t``). Everything is checked before any
computation starts, so bad arguments cost nothing and write nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import emit


def _label(text: str) -> int | None:
    if text == "other":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a label is a class number or 'other', got {text!r}") from None


def _add_hypothesis_args(p: argparse.ArgumentParser, fits: bool) -> None:
    p.add_argument("model", help="a model in the zoo, e.g. challenge-cnn")
    p.add_argument("--layer", required=True, help="the layer whose units are grouped, e.g. fc1")
    p.add_argument("--template", required=True,
                   help="train:N, test:N, unit:LAYER:N (a unit's effective input weights; past the first "
                        "layer, on its top-activating training image) or a .png/.npy file")
    p.add_argument("--invert", action="store_true", help="use the inverse template 1 - t")
    p.add_argument("--center", type=float, default=0.5, help="the constant c in s(x) = sum(x * (t - c)) (0.5)")
    rule = p.add_mutually_exclusive_group(required=True)
    rule.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"),
                      help="class INSIDE where LO < s < HI, else OUTSIDE (see --labels)")
    rule.add_argument("--threshold", type=float, metavar="T", help="class BELOW where s <= T, else ABOVE")
    if fits:
        rule.add_argument("--fit-band", action="store_true",
                          help="fit the band to agree most with the model's predictions on the training set")
        rule.add_argument("--fit-threshold", action="store_true", help="fit the threshold likewise")
    p.add_argument("--labels", nargs=2, type=_label, default=[0, 1], metavar=("A", "B"),
                   help="the rule's labels: inside/outside for a band, below/above for a threshold; "
                        "a class number or 'other' (any other class); default 0 1")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hypothesis", help="check (or fit) a template-similarity hypothesis against a model",
                       description="Agreement of a band/threshold rule on s(x) = sum(x * (t - c)) with the "
                                   "model's predictions on train and test, region counts, and the layer's "
                                   "unit groups (dead, and detectors of each region outside the band).")
    _add_hypothesis_args(p, fits=True)
    p.set_defaults(handler=hypothesis_cmd)

    p = sub.add_parser("scrub", help="causal scrubbing of a layer under a hypothesis",
                       description="Resample every unit of LAYER at once as the hypothesis allows and report "
                                   "the fraction of the model's predictions preserved at each tolerance.")
    _add_hypothesis_args(p, fits=False)
    p.add_argument("--tolerance", type=float, action="append", required=True, metavar="T",
                   help="fraction of the score range for 'similar' images; repeat for a sweep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=["train", "test"], default="train", help="images to scrub on (train)")
    p.add_argument("--groups", metavar="TEXT",
                   help="unit groups instead of the derived ones, e.g. 'dead:0-90;below:91-120;above:121-199'")
    p.set_defaults(handler=scrub_cmd)


def _setup(args: argparse.Namespace):
    """Model, checked layer, template and (unless fitted) rule, all before any computation."""
    from ..analysis.hypothesis import BandRule, HypothesisError, ThresholdRule
    from ..analysis.templates import resolve_template
    from ..models import load_model

    if args.band is not None:
        rule = BandRule(args.band[0], args.band[1], *args.labels)
    elif args.threshold is not None:
        rule = ThresholdRule(args.threshold, *args.labels)
    else:
        rule = None
    model = load_model(args.model)
    model.layout.check(args.layer)
    for label in args.labels:
        if label is not None and not 0 <= label < model.n_classes:
            raise HypothesisError(f"--labels: class {label} does not exist; {args.model} has classes "
                                  f"0..{model.n_classes - 1}")
    template = resolve_template(_template_ref(args.template), model=model, invert=args.invert)
    return model, template, rule


def _template_ref(text: str) -> str | Path:
    """``--template``: a ``.png``/``.npy`` file the user named, else a reference (``train:N``, ...)."""
    return Path(text) if Path(text).suffix.lower() in {".png", ".npy"} else text


def _header(args: argparse.Namespace, hypothesis) -> dict[str, Any]:
    return {"model": args.model, "layer": args.layer, **hypothesis.to_dict()}


def hypothesis_cmd(args: argparse.Namespace) -> int:
    from ..analysis.hypothesis import (
        Hypothesis,
        check_hypothesis,
        fit_rule,
        hypothesis_report,
        image_scores,
    )
    from ..analysis.predictions import predicted_classes
    from ..analysis.scrubbing import derive_groups
    from ..data import load_mnist

    model, template, rule = _setup(args)
    train_scores = image_scores(load_mnist("train").images, template.image, args.center)
    fitted = rule is None
    if fitted:
        kind = "band" if args.fit_band else "threshold"
        rule = fit_rule(kind, train_scores, predicted_classes(model, "train"), tuple(args.labels))
    hypothesis = Hypothesis(template, rule, args.center)
    checks = [check_hypothesis(model, hypothesis, split) for split in ("train", "test")]
    groups = derive_groups(model, args.layer, hypothesis, checks[0].scores)
    result = hypothesis_report(args.model, args.layer, hypothesis, checks, fitted, groups)
    emit(args, result, lambda r: _hypothesis_text(r, hypothesis))
    return 0


def _hypothesis_text(result: dict[str, Any], hypothesis) -> str:
    from ..analysis.units import compress_indices

    lines = [f"{result['model']}: {hypothesis.describe()}" + (" (fitted on train)" if result["rule"]["fitted"] else "")]
    for split in ("train", "test"):
        counts = ", ".join(f"{name} {n:,}" for name, n in result["region_counts"][split].items())
        lines.append(f"agreement with the model on {split}: {result['agreement'][split]:.4f}   regions: {counts}")
    lines.append(f"unit groups of {result['layer']}:")
    lines += [f"  {name:<8} {len(idx):>4}  {compress_indices(idx) or '-'}" for name, idx in result["groups"].items()]
    return "\n".join(lines)


def scrub_cmd(args: argparse.Namespace) -> int:
    from ..analysis.hypothesis import Hypothesis
    from ..analysis.scrubbing import check_groups, check_seed, check_tolerances, scrub
    from ..analysis.units import parse_groups

    model, template, rule = _setup(args)
    hypothesis = Hypothesis(template, rule, args.center)
    check_tolerances(args.tolerance)
    check_seed(args.seed)
    if args.groups is not None:
        count = model.layout[args.layer].n_units
        groups = check_groups(parse_groups(args.groups, count), rule, count)
    else:
        groups = None  # scrub derives them (derive_groups)
    result = scrub(model, args.layer, hypothesis, groups, args.tolerance, args.seed, args.split)
    emit(args, {**_header(args, hypothesis), **result.to_dict()}, _scrub_text)
    return 0


def _scrub_text(result: dict[str, Any]) -> str:
    from ..analysis.units import compress_indices

    lines = [f"causal scrubbing of {result['model']} {result['layer']} on {result['n_images']:,} {result['split']} "
             f"images (seed {result['seed']})", "groups:"]
    lines += [f"  {name:<8} {len(idx):>4}  {compress_indices(idx) or '-'}" for name, idx in result["groups"].items()]
    lines.append("tolerance   predictions preserved")
    lines += [f"  {row['tolerance']:<9g} {row['preserved']:.4f}" for row in result["sweep"]]
    lines.append(f"  random    {result['random_baseline']:.4f}  (every group resampled from random images)")
    return "\n".join(lines)
