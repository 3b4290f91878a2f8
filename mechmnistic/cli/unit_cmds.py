"""Unit commands: ``neuron`` (one unit, as the Neuron Explorer shows it) and ``atlas`` (every unit of a layer).

    mechmnistic neuron MODEL --layer LAYER --unit N [--pos R,C] [--top K] [--clusters auto|N] [--explained PCT] [--json]
    mechmnistic atlas MODEL --layer LAYER --out FILE.npz [--top K] [--clusters auto|N] [--explained PCT] [--json]

The numbers come from the functions the Neuron Explorer calls (``neurons``,
``connections``, ``conv``, ``atlas``), on the same cached atlas, so the page,
its downloads, the Python API and these commands agree exactly.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from typing import Any

import numpy as np

from ..errors import MechMNISTicError
from . import emit
from .files import npz_target, write_npz

#: The Neuron Explorer's ranges for its ``top_k`` and ``explained`` parameters.
MIN_TOP_K, MIN_EXPLAINED, MAX_EXPLAINED = 10, 5.0, 95.0
STRONGEST = 10  # input weights listed by size in the summary
SHOWN = 10  # rows of top examples in the text output
_POSITION = re.compile(r"^\s*(\d{1,4})\s*,\s*(\d{1,4})\s*$")


def _add_atlas_options(p: argparse.ArgumentParser) -> None:
    from ..analysis.atlas import DEFAULT_TOP_K, MAX_TOP_K
    from ..analysis.cluster_stats import MAX_CLUSTERS

    p.add_argument("--top", type=int, default=DEFAULT_TOP_K, metavar="K",
                   help=f"training images with the highest pre-activation to list and cluster "
                        f"({MIN_TOP_K}..{MAX_TOP_K}, default {DEFAULT_TOP_K})")
    p.add_argument("--clusters", default="auto", metavar="auto|N",
                   help=f"number of feature clusters: 'auto' (the fewest, at most {MAX_CLUSTERS}, that explain "
                        f"--explained of the spread) or 1..{MAX_CLUSTERS} (default auto)")
    p.add_argument("--explained", type=float, default=30.0, metavar="PCT",
                   help="with --clusters auto: the share of the embeddings' spread the clusters must explain, "
                        "in percent (5..95, default 30)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "neuron",
        help="one unit: its weights, activation statistics, top training images and feature clusters",
        description="One unit of a hidden layer, as the Neuron Explorer shows it: what it reads and writes, how "
                    "it fires over the 60,000 training images, the training images that drive it hardest, and "
                    "their feature clusters. A conv layer's unit is a channel, taken at its maximum on each image "
                    "or, with --pos, at one cell of its map.",
    )
    p.add_argument("model", help="a model in the zoo, e.g. mlp-1x64")
    p.add_argument("--layer", required=True, help="a hidden layer, e.g. layers.0, conv2 or fc1")
    p.add_argument("--unit", type=int, required=True, metavar="N", help="the neuron (or conv channel) index")
    p.add_argument("--pos", metavar="R,C", help="conv channels only: the unit at row R, column C of the map")
    _add_atlas_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (every top example)")
    p.set_defaults(handler=neuron_cmd)

    p = sub.add_parser(
        "atlas",
        help="every unit of a layer: statistics, top examples and feature clusters, to an .npz",
        description="The layer's neuron atlas (the Neuron Explorer's, from the same cache) with every unit's "
                    "activation statistics and per-cluster numbers, written atomically to FILE.npz.",
    )
    p.add_argument("model", help="a model in the zoo, e.g. cnn-digits")
    p.add_argument("--layer", required=True, help="a hidden layer, e.g. layers.0, conv2 or fc1")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="the file to write (replaced if it exists)")
    _add_atlas_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary of what was written")
    p.set_defaults(handler=atlas_cmd)


# -- checking the arguments (before anything is computed) ------------------------------------------


def _atlas_parameters(args: argparse.Namespace):
    from ..analysis.atlas import MAX_TOP_K, AtlasParameters
    from ..analysis.cluster_stats import MAX_CLUSTERS

    if not MIN_TOP_K <= args.top <= MAX_TOP_K:
        raise MechMNISTicError(f"--top must be {MIN_TOP_K}..{MAX_TOP_K}, got {args.top}")
    text = str(args.clusters).strip()
    if text == "auto":
        n_clusters = None
    elif text.isdigit() and 1 <= int(text) <= MAX_CLUSTERS:
        n_clusters = int(text)
    else:
        raise MechMNISTicError(f"--clusters must be 'auto' or 1..{MAX_CLUSTERS}, got {text[:40]!r}")
    if not (math.isfinite(args.explained) and MIN_EXPLAINED <= args.explained <= MAX_EXPLAINED):
        raise MechMNISTicError(f"--explained is a percentage from {MIN_EXPLAINED:g} to {MAX_EXPLAINED:g}, "
                               f"got {args.explained:g}")
    return AtlasParameters(top_k=args.top, n_clusters=n_clusters, explained=args.explained / 100)


def _position(model, layer: str, text: str | None) -> tuple[int, int] | None:
    from ..analysis.units import check_positions

    if text is None:
        return None
    match = _POSITION.match(text)
    if not match:
        raise MechMNISTicError(f"--pos must be ROW,COL (two whole numbers), got {text[:40]!r}")
    cell = check_positions(model, layer, np.array([[int(match.group(1)), int(match.group(2))]]), 1)[0]
    return int(cell[0]), int(cell[1])


def _progress():
    """Progress on stderr while an atlas is computed, when someone is watching (a terminal)."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int, message: str) -> None:
        end = "\n" if done >= total else ""
        print(f"\r\033[K{100 * done // max(total, 1):3d}% {message}", end=end, file=sys.stderr, flush=True)

    return report


def _floats(values) -> list[float | None]:
    """Plain floats for JSON, ``None`` where there is no number (a one-member cluster's similarity)."""
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


# -- neuron --------------------------------------------------------------------------------------


def neuron_cmd(args: argparse.Namespace) -> int:
    from ..models import load_model

    params = _atlas_parameters(args)
    model = load_model(args.model)
    count = model.layout.check_hidden(args.layer).n_units
    if not 0 <= args.unit < count:
        raise MechMNISTicError(f"--unit {str(args.unit)[:24]} is out of range: {args.layer} has units 0..{count - 1}")
    position = _position(model, args.layer, args.pos)
    result = neuron_report(model, args.model, args.layer, args.unit, position, params)
    emit(args, result, _neuron_text)
    return 0


def neuron_report(model, model_name: str, layer: str, unit: int, position: tuple[int, int] | None,
                  params) -> dict[str, Any]:
    """Everything ``neuron`` prints, from the functions the Neuron Explorer calls."""
    from ..analysis.activations import layer_activations
    from ..analysis.atlas import neuron_atlas, position_clusters, unit_clusters
    from ..analysis.conv import position_activations
    from ..analysis.unit_behaviour import activation_values, distribution_from_values, similar_units
    from ..data import N_DIGITS, load_mnist

    if position is None:
        pre = layer_activations(model, layer, params.split).pre[:, unit]
        atlas = neuron_atlas(model, layer, params, _progress())
        top, clusters = atlas.top_examples(unit), unit_clusters(model, atlas, unit)
    else:
        pre = position_activations(model, layer, unit, position, params.split)
        top, clusters = position_clusters(model, layer, unit, position, params)
    values = activation_values(model.layout[layer].activation, pre)
    distribution = distribution_from_values(pre, values, load_mnist(params.split).labels, N_DIGITS)
    similar, cosine = similar_units(model, layer, unit, count=5)
    conv = model.layout[layer].is_conv
    return {
        "model": model_name, "layer": layer, "unit": unit, "kind": "channel" if conv else "neuron",
        "position": None if position is None else list(position),
        "parameters": {"top_k": params.top_k, "n_clusters": params.n_clusters, "explained": params.explained,
                       "split": params.split},
        "weights": _weights(model, layer, unit, position),
        "statistics": {
            "n_images": distribution.n_images, "firing_fraction": distribution.firing_fraction,
            "mean": distribution.mean, "std": distribution.std, "max": distribution.max,
            "firing_by_class": distribution.firing_by_class,
            "histogram": {"counts": distribution.counts, "edges": distribution.edges},
        },
        "similar": [{"unit": int(u), "cosine": float(c)} for u, c in zip(similar, cosine, strict=True)],
        "top_examples": _top_table(top, clusters),
        "clusters": _cluster_summary(top, clusters),
    }


def _weights(model, layer: str, unit: int, position: tuple[int, int] | None) -> dict[str, Any]:
    """What the unit reads (input weights) and writes (output weights), as the page's first tab shows them."""
    from ..analysis.connections import incoming_weights, outgoing_weights
    from ..analysis.conv import filters
    from ..analysis.embeddings import first_layer_effective_weights

    unit_layer = model.layout[layer]
    conv = unit_layer.is_conv
    if unit_layer.index > 0:
        incoming = incoming_weights(model, layer, unit, position)
        source, weights, labels = incoming.sources.layer, incoming.weights, incoming.sources.labels()
        shaped = weights.reshape(filters(model, layer).weights.shape[1:]) if conv else weights
    elif conv:  # a first conv layer reads the (normalised) input through its kernel
        shaped = filters(model, layer).weights[unit]
        source, weights = "pixels", shaped.ravel()
        labels = [f"input ch{c} +({dy}, {dx})" for c, dy, dx in np.ndindex(*shaped.shape)]
    else:  # a first fully connected layer: a pixel map, the input normalisation folded in
        shaped = first_layer_effective_weights(model, np.array([unit]))[0][0]
        source, weights = "pixels", shaped.ravel()
        labels = [f"pixel ({r}, {c})" for r, c in np.ndindex(*shaped.shape)]
    strongest = np.argsort(-np.abs(weights), kind="stable")[:STRONGEST]
    outgoing = outgoing_weights(model, layer, unit)
    return {
        "bias": float(model.layer(layer).bias.detach()[unit]),
        "reads": source,
        "input_weights": shaped,
        "input_sources": labels,
        "input_norm": float(np.linalg.norm(weights.astype(np.float64))),
        "strongest_inputs": [{"source": labels[i], "weight": float(weights[i])} for i in strongest],
        "writes": outgoing.target_layer,
        "to_classes": model.layout[outgoing.target_layer].is_final,
        "output_weights": outgoing.total,
    }


def _top_table(top, clusters) -> dict[str, Any]:
    """The top examples, column by column, as the page's "Top examples (CSV)" download has them."""
    table = {"rank": np.arange(len(top.indices)), "train_index": top.indices, "label": top.labels,
             "pre_activation": top.pre, "activation": top.activations, "cluster": clusters.labels}
    if clusters.positions is not None:
        table["row"], table["col"] = clusters.positions[:, 0], clusters.positions[:, 1]
    return table


def _cluster_summary(top, clusters) -> dict[str, Any]:
    """The feature clusters, as the page's "Clusters (CSV)" download and its captions give them."""
    stats = clusters.stats
    rows = [{
        "cluster": f"C{c}", "size": int(stats.sizes[c]), "main_digit": int(clusters.class_counts[c].argmax()),
        "digits": [int(n) for n in clusters.class_counts[c]],
        "similarity_within": intra, "similarity_to_others": inter,
        "central_rank": int(stats.central[c]), "central_train_index": int(top.indices[stats.central[c]]),
    } for c, (intra, inter) in enumerate(zip(_floats(stats.intra), _floats(stats.inter), strict=True))]
    return {
        "count": len(stats.sizes), "explained": clusters.explained,
        "mean_similarity_within": _floats([stats.mean_intra])[0],
        "mean_similarity_between": _floats([stats.mean_inter])[0],
        "share_in_clusters_of_three_or_more": clusters.share_in_clusters_of_three_or_more,
        "rows": rows,
    }


def _similarity(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def _neuron_text(r: dict[str, Any]) -> str:
    s, w, c = r["statistics"], r["weights"], r["clusters"]
    where = "" if r["position"] is None else f" at ({r['position'][0]}, {r['position'][1]})"
    what = ("its maximum over the map" if r["kind"] == "channel" and r["position"] is None else "its activation")
    lines = [
        f"{r['model']} {r['layer']} · {r['kind']} {r['unit']}{where}",
        f"fires on {100 * s['firing_fraction']:.1f}% of the {s['n_images']:,} training images ({what} > 0); "
        f"activation mean {s['mean']:.4g} (std {s['std']:.4g}), max {s['max']:.4g}; bias {w['bias']:+.4g}",
        "fires per digit: " + " ".join(f"{d}:{100 * f:.0f}%" for d, f in enumerate(s["firing_by_class"])),
        f"reads {w['reads']} ({len(w['input_sources'])} weights, norm {w['input_norm']:.4g}); strongest: "
        + ", ".join(f"{x['source']} {x['weight']:+.3f}" for x in w["strongest_inputs"][:5]),
    ]
    out = np.asarray(w["output_weights"])
    if w["to_classes"]:
        lines.append("writes the classes: " + " ".join(f"{k}:{v:+.3f}" for k, v in enumerate(out)))
    else:
        order = np.argsort(-np.abs(out), kind="stable")[:5]
        lines.append(f"writes {w['writes']} ({len(out)} units); strongest: "
                     + ", ".join(f"#{k} {out[k]:+.3f}" for k in order))
    lines.append(f"similar {r['kind']}s: " + ", ".join(f"{x['unit']} ({x['cosine']:+.2f})" for x in r["similar"]))
    top = r["top_examples"]
    count = len(top["train_index"])
    lines.append(f"top {count} training images (the first {min(SHOWN, count)}; --json for all):")
    conv = "row" in top
    lines.append(f"  {'rank':>4} {'train_index':>11} {'label':>5} {'activation':>10} {'cluster':>7}"
                 + ("  row col" if conv else ""))
    for i in range(min(SHOWN, count)):
        lines.append(f"  {i:>4} {top['train_index'][i]:>11} {top['label'][i]:>5} {top['activation'][i]:>10.4f} "
                     f"{'C' + str(top['cluster'][i]):>7}" + (f" {top['row'][i]:>4} {top['col'][i]:>3}" if conv else ""))
    lines.append(f"{c['count']} feature clusters, explaining {100 * c['explained']:.0f}% of the spread; mean cosine "
                 f"similarity within {_similarity(c['mean_similarity_within']).strip()}, between "
                 f"{_similarity(c['mean_similarity_between']).strip()}")
    lines.append(f"  {'cluster':<7} {'size':>4} {'digit':>5} {'within':>6} {'others':>6} {'central':>7}  digits")
    for row in c["rows"]:
        digits = ", ".join(f"{d}: {n}" for d, n in sorted(enumerate(row["digits"]), key=lambda kv: -kv[1]) if n)
        lines.append(f"  {row['cluster']:<7} {row['size']:>4} {row['main_digit']:>5} "
                     f"{_similarity(row['similarity_within'])} {_similarity(row['similarity_to_others'])} "
                     f"{row['central_train_index']:>7}  {digits}")
    return "\n".join(lines)


# -- atlas ---------------------------------------------------------------------------------------


def atlas_cmd(args: argparse.Namespace) -> int:
    from ..models import load_model

    target = npz_target(args.out, "--out")
    params = _atlas_parameters(args)
    model = load_model(args.model)
    model.layout.check_hidden(args.layer)
    arrays = atlas_arrays(model, args.model, args.layer, params)
    write_npz(target, arrays, "--out")
    result = {"model": args.model, "layer": args.layer, "out": str(target), "units": int(len(arrays["bias"])),
              "parameters": {"top_k": params.top_k, "n_clusters": params.n_clusters, "explained": params.explained,
                             "split": params.split},
              "dead_units": int((arrays["firing_fraction"] == 0).sum()),
              "arrays": {name: list(np.shape(value)) for name, value in arrays.items()}}
    emit(args, result, _atlas_text)
    return 0


def atlas_arrays(model, model_name: str, layer: str, params) -> dict[str, np.ndarray]:
    """Every unit of ``layer``: the atlas itself, each unit's statistics (``neuron``'s), and per-cluster numbers
    padded to ``MAX_CLUSTERS`` columns (size 0, index -1, NaN where a unit has fewer clusters)."""
    from ..analysis.activations import layer_activations
    from ..analysis.atlas import neuron_atlas, unit_clusters
    from ..analysis.cluster_stats import MAX_CLUSTERS
    from ..analysis.unit_behaviour import activation_values, distribution_from_values
    from ..data import N_DIGITS, load_mnist

    atlas = neuron_atlas(model, layer, params, _progress())
    acts = layer_activations(model, layer, params.split)
    labels = load_mnist(params.split).labels
    count, width = atlas.n_units, MAX_CLUSTERS
    stats = {name: np.zeros(count) for name in ("firing_fraction", "mean", "std", "max")}
    firing_by_class = np.zeros((count, N_DIGITS))
    sizes = np.zeros((count, width), np.int64)
    central = np.full((count, width), -1, np.int64)
    intra, inter = np.full((count, width), np.nan), np.full((count, width), np.nan)
    class_counts = np.zeros((count, width, N_DIGITS), np.int64)
    for unit in range(count):
        distribution = distribution_from_values(acts.pre[:, unit], acts.values[:, unit], labels, N_DIGITS)
        for name in stats:
            stats[name][unit] = getattr(distribution, name)
        firing_by_class[unit] = distribution.firing_by_class
        view = unit_clusters(model, atlas, unit)
        k = len(view.stats.sizes)
        sizes[unit, :k], intra[unit, :k], inter[unit, :k] = view.stats.sizes, view.stats.intra, view.stats.inter
        central[unit, :k] = atlas.top_indices[unit][view.stats.central]
        class_counts[unit, :k] = view.class_counts
    arrays = {
        "model": np.array(model_name), "layer": np.array(layer), "split": np.array(params.split),
        "top_k": np.array(params.top_k), "n_clusters_asked": np.array(params.n_clusters or 0),
        "explained_asked": np.array(params.explained),
        "bias": model.layer(layer).bias.detach().numpy().astype(np.float32),
        **stats, "firing_by_class": firing_by_class,
        "top_indices": atlas.top_indices, "top_pre": atlas.top_pre, "top_activations":
            activation_values(atlas.activation, atlas.top_pre),
        "top_labels": labels[atlas.top_indices], "cluster_labels": atlas.cluster_labels,
        "n_clusters": atlas.n_clusters, "explained": atlas.explained, "mean_intra": atlas.mean_intra,
        "mean_inter": atlas.mean_inter, "cluster_sizes": sizes, "cluster_central_index": central,
        "cluster_intra": intra, "cluster_inter": inter, "cluster_class_counts": class_counts,
    }
    if atlas.top_positions is not None:
        arrays["top_positions"] = atlas.top_positions
    return arrays


def _atlas_text(r: dict[str, Any]) -> str:
    p = r["parameters"]
    clusters = "auto" if p["n_clusters"] is None else p["n_clusters"]
    lines = [f"{r['model']} {r['layer']}: {r['units']} units ({r['dead_units']} never fire), top {p['top_k']} "
             f"{p['split']} images each, clusters {clusters} (explained {100 * p['explained']:g}%)",
             f"wrote {r['out']}:"]
    lines += [f"  {name:<22} {' x '.join(map(str, shape)) or 'scalar'}" for name, shape in r["arrays"].items()]
    return "\n".join(lines)
