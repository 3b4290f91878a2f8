"""Intervention commands: ``attribute`` (direct logit attribution), ``ablate`` and ``patch``.

    mechmnistic attribute MODEL --layer LAYER --class C [--minus C2] [--groups SPEC] [--per-image] [--json]
    mechmnistic ablate MODEL --layer LAYER --units SPEC --with zero|mean|min|resample [--seed S]
        [--by class|prediction] [--groups SPEC] [--json]
    mechmnistic patch MODEL --layer LAYER --units SPEC --source test:I --target test:J [--groups SPEC]
        [--per-image] [--json]

The Attribution & ablations page's numbers, from the functions it calls
(``attribution``, ``ablation``), over the whole test set. Units are selected
as on the page: indices, ranges, ``all``, ``dead``, ``alive`` and the names
of ``--groups`` (``name:units;name:units``). Every argument is checked before
anything is computed.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..errors import MechMNISTicError
from . import emit

_IMAGE = re.compile(r"^(train|test):(\d{1,9})$")
GROUPS_HELP = ("named unit groups, 'name:units;name:units', e.g. 'early:0-9;late:10-19' (units may name dead "
               "and alive)")


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.ablation import ABLATION_METHODS

    p = sub.add_parser(
        "attribute",
        help="direct logit attribution of a logit (or a logit difference) to groups of units, on the test set",
        description="Split a class's logit (or the difference of two) on every test image exactly into one "
                    "contribution per group of units of the layer feeding the output, plus the output bias. "
                    "Groups: dead and alive (default), or --groups (units in none of them form 'other units').",
    )
    p.add_argument("model")
    p.add_argument("--layer", required=True, help="the layer feeding the output layer, e.g. layers.0 or fc1")
    p.add_argument("--class", dest="cls", type=int, required=True, metavar="C", help="the logit to attribute")
    p.add_argument("--minus", type=int, metavar="C2", help="attribute logit C - logit C2 instead")
    p.add_argument("--groups", metavar="SPEC", help=GROUPS_HELP)
    p.add_argument("--per-image", action="store_true",
                   help="also every test image's contributions (the page's CSV download)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=attribute_cmd)

    p = sub.add_parser(
        "ablate",
        help="replace some units' activations over the test set: accuracy and predictions changed, per class",
        description="Ablate units of a hidden layer on every test image (zero; their mean or minimum over the "
                    "training set; or their activation on a random training image, seeded) and report, per class "
                    "and overall, the share of predictions changed, the accuracy before and after, and the mean "
                    "change of each logit.",
    )
    p.add_argument("model")
    p.add_argument("--layer", required=True, help="a hidden layer, e.g. layers.0, conv2 or fc1")
    p.add_argument("--units", required=True, metavar="SPEC",
                   help="indices, ranges, 'all', 'dead', 'alive' or --groups names, e.g. 3,7,10-20 or dead")
    p.add_argument("--with", dest="method", required=True, choices=ABLATION_METHODS,
                   help="what replaces the activations")
    p.add_argument("--seed", type=int, default=0, help="for --with resample: the random images (default 0)")
    p.add_argument("--by", choices=["class", "prediction"], default="class",
                   help="break down by true class (default) or by the model's prediction before ablating")
    p.add_argument("--groups", metavar="SPEC", help=GROUPS_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=ablate_cmd)

    p = sub.add_parser(
        "patch",
        help="run an image with some units' activations taken from another image",
        description="Activation patching: the target image's logits with the chosen units taking their "
                    "activations on the source image, and what the same patch does to every test image.",
    )
    p.add_argument("model")
    p.add_argument("--layer", required=True, help="a hidden layer, e.g. layers.0, conv2 or fc1")
    p.add_argument("--units", required=True, metavar="SPEC",
                   help="indices, ranges, 'all', 'dead', 'alive' or --groups names, e.g. all or 0-9")
    p.add_argument("--source", required=True, metavar="test:I", help="where the activations come from (or train:I)")
    p.add_argument("--target", required=True, metavar="test:J", help="the image run with them (or train:J)")
    p.add_argument("--groups", metavar="SPEC", help=GROUPS_HELP)
    p.add_argument("--per-image", action="store_true",
                   help="also the patched logits of every test image (the page's CSV download)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=patch_cmd)


# -- unit groups and images ------------------------------------------------------------------------


class LayerGroups(Mapping):
    """The groups a unit spec may name: ``--groups``' own, then the layer's standard ``dead`` and ``alive``.

    The standard groups come from the layer's activations over the training
    set (cached on disk) and are computed only when a spec names one. A
    ``checking`` copy holds them empty and computes nothing: ``select`` and
    ``_groups`` first resolve a spec with it, so a bad spec (a unit out of
    range after ``dead``, say) fails before anything is computed.
    """

    STANDARD = ("dead", "alive")

    def __init__(self, model, layer: str, checking: bool = False) -> None:
        self.model, self.layer, self.checking = model, layer, checking
        self.typed: dict[str, np.ndarray] = {}
        self._standard: dict[str, np.ndarray] | None = None

    def checked(self) -> LayerGroups:
        """A copy for checking specs: the same names, the standard groups empty."""
        copy = LayerGroups(self.model, self.layer, checking=True)
        copy.typed = self.typed
        return copy

    def select(self, spec: str, count: int) -> np.ndarray:
        """``select_units(spec)`` with these groups, after checking it without computing anything."""
        from ..analysis.units import select_units

        select_units(spec, count, self.checked())
        return select_units(spec, count, self)

    def __contains__(self, name: object) -> bool:
        return name in self.typed or name in self.STANDARD

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.typed:
            return self.typed[name]
        if name not in self.STANDARD:
            raise KeyError(name)
        if self.checking:
            return np.zeros(0, np.int64)
        if self._standard is None:
            from ..analysis.units import standard_groups

            self._standard = standard_groups(self.model, self.layer)
        return self._standard[name]

    def __iter__(self) -> Iterator[str]:
        yield from (name for name in self.STANDARD if name not in self.typed)
        yield from self.typed

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _groups(model, layer: str, text: str | None, count: int) -> LayerGroups:
    from ..analysis.units import parse_groups

    groups = LayerGroups(model, layer)
    if text is not None:
        parse_groups(text, count, groups.checked())
        typed = parse_groups(text, count, groups)
        if not typed:
            raise MechMNISTicError("--groups names no group; write e.g. 'early:0-9;late:10-19'")
        groups.typed = typed
    return groups


def _image(text: str, option: str) -> tuple[str, int, np.ndarray, int]:
    """``test:I`` / ``train:I`` -> ``(split, index, image uint8 [28, 28], digit)``."""
    from ..analysis.predictions import example

    match = _IMAGE.match(text.strip())
    if not match:
        raise MechMNISTicError(f"{option} must be test:I or train:I (an MNIST image), got {text[:40]!r}")
    split, index = match.group(1), int(match.group(2))
    try:
        image, digit = example(split, index)
    except MechMNISTicError as exc:
        raise MechMNISTicError(f"{option}: {exc}") from None
    return split, index, image, digit


def _setup(args: argparse.Namespace):
    """The model and the number of units of its checked hidden layer."""
    from ..models import load_model

    model = load_model(args.model)
    return model, model.layout.check_hidden(args.layer).n_units


# -- attribute -----------------------------------------------------------------------------------


def attribute_cmd(args: argparse.Namespace) -> int:
    from ..analysis.activations import layer_activations
    from ..analysis.attribution import (
        OTHER_GROUP,
        attribution_from_activations,
        check_target,
        direct_logit_attribution,
    )
    from ..analysis.units import check_disjoint
    from ..data import load_mnist

    model, count = _setup(args)
    target = check_target(model, (args.cls, args.minus))
    feeds = model.layout.feeds_logits
    layer = feeds.name if feeds is not None else None
    if args.layer != layer:
        raise MechMNISTicError(f"direct logit attribution is to the units of {layer}, the layer feeding the output "
                               f"layer; use --layer {layer}")
    groups = _groups(model, layer, args.groups, count)
    chosen = dict(groups.typed) if args.groups is not None else {name: groups[name] for name in groups.STANDARD}
    check_disjoint(chosen)
    # As the page: the cached test-set activations when they are what feeds the output (a hidden fully
    # connected layer), else the pooled conv maps from a forward pass.
    if not feeds.is_conv:
        attribution = attribution_from_activations(model, layer_activations(model, layer, "test").values, chosen,
                                                   target)
    else:
        attribution = direct_logit_attribution(model, load_mnist("test").images, chosen, target)
    covered = np.concatenate([np.asarray(v, np.int64) for v in chosen.values()]) if chosen else np.zeros(0, np.int64)
    units = {**{name: np.unique(idx) for name, idx in chosen.items()},
             OTHER_GROUP: np.setdiff1d(np.arange(count), covered)}
    contributions = attribution.contributions
    result = {
        "model": args.model, "layer": layer, "target": {"class": target[0], "minus": target[1],
                                                        "name": attribution.target_name},
        "split": "test", "n_images": len(contributions), "bias": attribution.bias,
        "mean_target": float(attribution.total.mean()),
        "groups": [{"name": name, "units": units[name], "size": len(units[name]),
                    "mean": float(contributions[:, g].mean()), "mean_abs": float(np.abs(contributions[:, g]).mean())}
                   for g, name in enumerate(attribution.group_names)],
    }
    if args.per_image:
        result["per_image"] = {"contributions": contributions, "total": attribution.total}
    emit(args, result, _attribute_text)
    return 0


def _attribute_text(r: dict[str, Any]) -> str:
    from ..analysis.units import compress_indices

    lines = [f"{r['model']}: direct logit attribution of {r['target']['name']} to groups of {r['layer']}, over "
             f"{r['n_images']:,} {r['split']} images",
             f"mean {r['target']['name']}: {r['mean_target']:+.4f} = the groups' mean contributions + bias "
             f"{r['bias']:+.4f}",
             f"  {'group':<16} {'units':>5} {'mean':>9} {'mean |.|':>9}  which"]
    lines += [f"  {g['name']:<16} {g['size']:>5} {g['mean']:>+9.4f} {g['mean_abs']:>9.4f}  "
              f"{compress_indices(np.asarray(g['units'], np.int64)) or '-'}" for g in r["groups"]]
    return "\n".join(lines)


# -- ablate --------------------------------------------------------------------------------------


def ablate_cmd(args: argparse.Namespace) -> int:
    from ..analysis.ablation import ablate
    from ..analysis.scrubbing import check_seed

    model, count = _setup(args)
    seed = check_seed(args.seed)
    units = _groups(model, args.layer, args.groups, count).select(args.units, count)
    result = ablate(model, args.layer, units.tolist(), args.method, images="test", seed=seed)
    if args.by == "class":
        rows = result.by_class()
    else:
        rows = result.breakdown(result.clean_predictions, [f"predicted {c}" for c in range(model.n_classes)])
    emit(args, {"model": args.model, "layer": args.layer, "units_spec": args.units, "units": units,
                "method": args.method, "seed": seed, "split": "test", "by": args.by,
                "description": result.description, "rows": [_no_nan(row.to_dict()) for row in rows]}, _ablate_text)
    return 0


def _no_nan(row: dict[str, Any]) -> dict[str, Any]:
    """A summary row for JSON: ``None`` for the numbers a group with no images has not (NaN is not JSON)."""
    def plain(value: Any) -> Any:
        return None if isinstance(value, float) and not np.isfinite(value) else value

    return {key: [plain(v) for v in value] if isinstance(value, list) else plain(value) for key, value in row.items()}


def _percent(value: float | None) -> str:
    return "     -" if value is None else f"{100 * value:5.1f}%"


def _ablate_text(r: dict[str, Any]) -> str:
    seed = f" (seed {r['seed']})" if r["method"] == "resample" else ""
    lines = [f"{r['model']}: {r['method']}-ablating {len(r['units'])} units of {r['layer']} ({r['units_spec']}){seed} "
             f"on the {r['split']} set",
             f"  {'images':<13} {'count':>6} {'changed':>8} {'acc before':>10} {'acc after':>10}  "
             "largest mean logit change"]
    for row in r["rows"]:
        change = np.array([np.nan if v is None else v for v in row["mean_logit_change"]], dtype=np.float64)
        biggest = int(np.nanargmax(np.abs(change))) if np.isfinite(change).any() else None
        moved = "-" if biggest is None else f"logit {biggest} {change[biggest]:+.3f}"
        lines.append(f"  {row['group']:<13} {row['count']:>6} {_percent(row['fraction_changed']):>8} "
                     f"{_percent(row['accuracy_before']):>10} {_percent(row['accuracy_after']):>10}  {moved}")
    return "\n".join(lines)


# -- patch ---------------------------------------------------------------------------------------


def patch_cmd(args: argparse.Namespace) -> int:
    from ..analysis.ablation import patch_activations

    model, count = _setup(args)
    source_split, source_index, source, source_digit = _image(args.source, "--source")
    target_split, target_index, target, target_digit = _image(args.target, "--target")
    units = _groups(model, args.layer, args.groups, count).select(args.units, count)
    chosen = units.tolist()
    single = patch_activations(model, args.layer, chosen, source, images=target[None])
    whole = patch_activations(model, args.layer, chosen, source, images="test")
    before, after = single.clean_logits[0], single.patched_logits[0]
    result = {
        "model": args.model, "layer": args.layer, "units_spec": args.units, "units": units,
        "source": {"split": source_split, "index": source_index, "digit": source_digit},
        "target": {"split": target_split, "index": target_index, "digit": target_digit},
        "logits": {"before": before, "after": after, "change": after - before},
        "prediction": {"before": int(single.clean_predictions[0]), "after": int(single.patched_predictions[0])},
        "test_set": whole.summary().to_dict(),
    }
    if args.per_image:
        result["per_image"] = {"patched_logits": whole.patched_logits}
    emit(args, result, _patch_text)
    return 0


def _patch_text(r: dict[str, Any]) -> str:
    s, t, whole = r["source"], r["target"], r["test_set"]
    lines = [f"{r['model']}: {len(r['units'])} units of {r['layer']} ({r['units_spec']}) patched from "
             f"{s['split']}:{s['index']} (digit {s['digit']}) into {t['split']}:{t['index']} (digit {t['digit']})",
             f"prediction {r['prediction']['before']} -> {r['prediction']['after']}",
             f"  {'class':>5} {'before':>9} {'after':>9} {'change':>9}"]
    lines += [f"  {c:>5} {b:>9.4f} {a:>9.4f} {a - b:>+9.4f}"
              for c, (b, a) in enumerate(zip(r["logits"]["before"], r["logits"]["after"], strict=True))]
    accuracy = "" if whole["accuracy_before"] is None else \
        f"; accuracy {_percent(whole['accuracy_before']).strip()} -> {_percent(whole['accuracy_after']).strip()}"
    lines.append(f"the same source patched into every test image: {_percent(whole['fraction_changed']).strip()} of "
                 f"predictions change{accuracy}")
    return "\n".join(lines)
