"""Activation geometry and feature visualisation: ``pca`` and ``featviz``.

The numbers are those the Activation geometry and Feature visualisation pages
show, from the same cached analyses.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import MechMNISTicError
from . import emit
from .files import npz_target, write_npz


def register(sub: argparse._SubParsersAction) -> None:
    from ..analysis.geometry import DEFAULT_COMPONENTS, SPEC_HELP

    p = sub.add_parser(
        "pca",
        help="PCA of a layer's activations over the training set, with directions and loadings",
        description="PCA of a layer's activations over all 60,000 training images. Directions: " + SPEC_HELP + ".",
    )
    p.add_argument("model")
    p.add_argument("--layer", required=True, help="a layer name, e.g. fc1 or layers.0")
    p.add_argument("--components", type=int, default=DEFAULT_COMPONENTS, help="components to fit (default 10)")
    p.add_argument("--plane", type=int, nargs=2, default=[1, 2], metavar=("I", "J"),
                   help="the components (1-based) of the plane arrows are projected onto (default 1 2)")
    p.add_argument("--direction", action="append", default=[], metavar="SPEC",
                   help="a direction to report (repeatable), e.g. pc1, logit:1-0, template:train:6")
    p.add_argument("--top", type=int, default=10, help="units with the largest loadings per direction (default 10)")
    p.add_argument("--save", metavar="FILE.npz", help="also write scores, components and direction vectors")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=pca_cmd)

    p = sub.add_parser(
        "featviz",
        help="inputs that maximise a layer's units or directions (batched gradient ascent)",
        description="Feature visualisation by gradient ascent on the pixels, all targets in one batch.",
    )
    p.add_argument("model")
    p.add_argument("--layer", required=True)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--units", metavar="SPEC",
                        help="units to visualise: indices, ranges and groups, e.g. 0-9,17 or dead (default: all)")
    target.add_argument("--direction", action="append", metavar="SPEC", help="a direction (repeatable): " + SPEC_HELP)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--init", default="zeros", help="zeros, noise, train:N or test:N (default zeros)")
    p.add_argument("--l2", type=float, default=0.0, help="weight of the L2 penalty on the pixels")
    p.add_argument("--blur", type=float, default=0.0, help="Gaussian blur (pixels) after each step")
    p.add_argument("--jitter", type=int, default=0, help="random circular shift (pixels) at each step")
    p.add_argument("--no-clamp", action="store_true", help="let pixels leave [0, 1]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nearest", type=int, default=3, help="nearest training images per result (default 3)")
    p.add_argument("--save", metavar="FILE.npz", help="also write the images and nearest examples")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=featviz_cmd)


def _check_plane(plane: tuple[int, int], n_components: int) -> None:
    for component in plane:
        if not 0 <= component < n_components:
            raise MechMNISTicError(f"--plane: components are 1..{n_components}, got {component + 1}")


def pca_cmd(args: argparse.Namespace) -> int:
    from ..analysis import geometry as g
    from ..models import load_model

    target = npz_target(args.save, "--save")
    if args.top < 0:
        raise MechMNISTicError(f"--top must be >= 0, got {args.top}")
    plane = (args.plane[0] - 1, args.plane[1] - 1)
    if args.components >= 1:  # before the fit, so a bad plane computes nothing (a bad count: layer_pca says so)
        _check_plane(plane, args.components)
    model = load_model(args.model)
    fit = g.layer_pca(model, args.layer, args.components)
    for component in plane:
        if not 0 <= component < fit.pca.n_components_:
            raise MechMNISTicError(f"--plane: components are 1..{fit.pca.n_components_}, got {component + 1}")
    if plane[0] == plane[1]:
        raise MechMNISTicError("--plane needs two different components")
    directions = g.build_directions(model, fit, args.direction)
    loadings = g.weighted_loadings(fit, directions)
    scale = g.arrow_scale(fit, plane)
    rows = []
    for i, direction in enumerate(directions):
        arrow = g.plane_arrow(fit, direction, plane, scale)
        top = loadings.order(i, absolute=True)[: args.top]
        rows.append({
            "spec": direction.spec, "name": direction.name, "kind": direction.kind, "norm": direction.norm,
            "exact": direction.exact, "offset": direction.offset, "note": direction.note,
            "group_size": direction.group_size, "in_plane": arrow.in_plane,
            "arrow": {"start": list(arrow.start), "end": list(arrow.end)},
            "top_loadings": [{"coordinate": loadings.coordinates[u], "unit": int(loadings.units[u]),
                              "loading": float(loadings.values[u, i])} for u in top],
        })
    result = {
        "model": args.model, "layer": args.layer, "space": fit.space.describe(), "dim": fit.space.dim,
        "split": fit.split, "n_samples": fit.pca.n_samples_, "components": fit.pca.n_components_,
        "explained_variance": fit.pca.explained_variance_,
        "explained_variance_ratio": fit.pca.explained_variance_ratio_,
        "total_variance": fit.pca.total_variance_, "plane": [plane[0] + 1, plane[1] + 1], "arrow_scale": scale,
        "directions": rows,
    }
    if target:
        write_npz(target, {"scores": fit.scores, "components": fit.pca.components_, "mean": fit.pca.mean_,
                            "explained_variance": fit.pca.explained_variance_, "feature_std": fit.pca.feature_std_,
                            "direction_specs": np.array([d.spec for d in directions], dtype=str),
                            "direction_vectors": np.array([d.vector for d in directions]).reshape(-1, fit.space.dim),
                            "loadings": loadings.values})
        result["saved"] = str(target)
    emit(args, result, _pca_text)
    return 0


def _pca_text(r: dict) -> str:
    lines = [f"{r['model']} {r['space']}; PCA over {r['n_samples']:,} {r['split']} images",
             "component  variance  explained  cumulative"]
    cumulative = np.cumsum(r["explained_variance_ratio"])
    for k, (var, ratio) in enumerate(zip(r["explained_variance"], r["explained_variance_ratio"], strict=True)):
        lines.append(f"PC{k + 1:<8} {var:9.4g} {100 * ratio:9.2f}% {100 * cumulative[k]:10.2f}%")
    i, j = r["plane"]
    for d in r["directions"]:
        (x0, y0), (x1, y1) = d["arrow"]["start"], d["arrow"]["end"]
        lines.append(f"\n{d['name']} [{d['spec']}] norm {d['norm']:.4g}; {d['note'] or d['kind']}")
        lines.append(f"  arrow in PC{i}/PC{j}: ({x0:.3f}, {y0:.3f}) -> ({x1:.3f}, {y1:.3f}); "
                     f"{100 * d['in_plane']:.1f}% of it in the plane")
        top = ", ".join(f"{t['coordinate']} {t['loading']:+.3f}" for t in d["top_loadings"])
        if top:
            lines.append(f"  largest std-weighted loadings: {top}")
    if "saved" in r:
        lines.append(f"\nsaved {r['saved']}")
    return "\n".join(lines)


def featviz_cmd(args: argparse.Namespace) -> int:
    from ..analysis import feature_viz as fv
    from ..analysis import geometry as g
    from ..analysis.units import resolve_units
    from ..models import load_model

    target = npz_target(args.save, "--save")
    if not 1 <= args.nearest <= 50:
        raise MechMNISTicError(f"--nearest must be 1..50, got {args.nearest}")
    config = fv.FeatureVizConfig(steps=args.steps, lr=args.lr, init=args.init, l2=args.l2, blur=args.blur,
                                 jitter=args.jitter, clamp=not args.no_clamp, seed=args.seed)
    model = load_model(args.model)
    if args.direction:
        fit = g.layer_pca(model, args.layer)
        directions = g.build_directions(model, fit, args.direction)
        result = fv.visualize(model, fv.direction_objectives(fit.space, directions), config)
    else:
        units = None if args.units is None else resolve_units(model, args.layer, args.units)
        result = fv.visualize_units(model, args.layer, units, config)
    nearest = fv.nearest_training_examples(result.images, args.nearest)
    output = {
        "model": args.model, "layer": args.layer, "target": "directions" if args.direction else "units",
        "config": config.to_dict(), "clamped": result.clamped,
        "results": [
            {"name": result.names[k], "unit": result.units[k] if result.units[k] >= 0 else None,
             "objective_start": float(result.initial[k]), "objective_end": float(result.final[k]),
             "nearest": [{"train_index": int(i), "similarity": float(s)}
                         for i, s in zip(nearest.indices[k], nearest.similarity[k], strict=True)]}
            for k in range(len(result.names))
        ],
    }
    if target:
        write_npz(target, {"images": result.images, "objective_start": result.initial,
                            "objective_end": result.final, "history": result.history,
                            "nearest_indices": nearest.indices, "nearest_similarity": nearest.similarity,
                            "names": np.array(result.names, dtype=str)})
        output["saved"] = str(target)
    emit(args, output, _featviz_text)
    return 0


def _featviz_text(r: dict) -> str:
    clamp = "clamped to [0, 1]" if r["clamped"] else "not clamped"
    lines = [f"{r['model']} {r['layer']}: {len(r['results'])} {r['target']}, {r['config']['steps']} Adam steps "
             f"from {r['config']['init']}, pixels {clamp}",
             f"{'target':<24} {'start':>9} {'end':>9}  nearest training images (cosine similarity)"]
    for row in r["results"]:
        near = ", ".join(f"#{n['train_index']} ({n['similarity']:.2f})" for n in row["nearest"])
        lines.append(f"{row['name']:<24} {row['objective_start']:9.3f} {row['objective_end']:9.3f}  {near}")
    if "saved" in r:
        lines.append(f"saved {r['saved']}")
    return "\n".join(lines)
