"""Dictionary commands: ``sae train``, ``sae eval``, ``sae list``.

    mechmnistic sae train MODEL --layer LAYER --latents N (--kind topk --k K | --kind l1 --l1 C) [--seed S]
        [--steps N] [--name ID] [--overwrite] [--no-progress] [--json]
    mechmnistic sae eval MODEL --sae ID [--json]
    mechmnistic sae list MODEL [--json]

``train`` fits a sparse autoencoder on the layer's activations over the
training set, measures it on the test set and stores it (SAELens's files
and a card) as ``models/<model>/dictionaries/<id>/``. ``eval`` measures a
stored one again. Every argument is checked before anything is computed or
written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import MechMNISTicError
from . import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sae", help="dictionaries (sparse autoencoders) of a layer: train, sweep, eval, list, "
                                   "scoreboard",
                       description="Train, measure and list a model's dictionaries (sparse autoencoders of one "
                                   "layer's activations, stored in SAELens's layout beside the model).")
    commands = p.add_subparsers(dest="sae_command", metavar="SUBCOMMAND", required=True)

    t = commands.add_parser(
        "train", help="train a dictionary on a layer's activations and store it with its card",
        description="Train a sparse autoencoder (TopK or ReLU + L1, seeded) on a hidden layer's activations over "
                    "the training set (a conv layer: the channel vector at every position), measure it on the test "
                    "set, and store it as models/MODEL/dictionaries/ID/ (cfg.json, sae_weights.safetensors, "
                    "card.json).")
    _training_options(t, sweep=False)
    t.add_argument("--name", metavar="ID", help="the dictionary's id (default LAYER-KINDN, e.g. layers.0-topk512)")
    t.set_defaults(handler=train_cmd)

    w = commands.add_parser(
        "sweep", help="train dictionaries of several sizes on one layer (for the Pareto plot)",
        description="Train one dictionary per size on a layer (ids LAYER-KINDN), each measured and stored as sae "
                    "train stores one; prints each one's L0, variance explained and spliced accuracy, and which are "
                    "on the Pareto front of L0 against variance explained.")
    _training_options(w, sweep=True)
    w.set_defaults(handler=sweep_cmd)

    s = commands.add_parser(
        "scoreboard", help="polysemanticity of a layer's neurons against a dictionary's latents",
        description="For every neuron of the dictionary's layer and every latent: the entropy (bits) of the labels "
                    "of its top-500 training examples that it fires on, its most common digit and that digit's "
                    "share, and the number of feature clusters among its top examples' Hadamard embeddings.")
    s.add_argument("model")
    s.add_argument("--sae", required=True, metavar="ID", help="the dictionary's id (see sae list)")
    s.add_argument("--json", action="store_true", help="print one JSON object (with every unit's scores)")
    s.set_defaults(handler=scoreboard_cmd)

    e = commands.add_parser("eval", help="measure a stored dictionary on the test set",
                            description="Variance explained, L0, dead and dense latents, the model's accuracy and "
                                        "the spliced model's (the layer replaced by the reconstruction), and their "
                                        "KL divergence, on the test set.")
    e.add_argument("model")
    e.add_argument("--sae", required=True, metavar="ID", help="the dictionary's id (see sae list)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(handler=eval_cmd)

    li = commands.add_parser("list", help="a model's dictionaries with their headline metrics")
    li.add_argument("model")
    li.add_argument("--json", action="store_true", help="print one JSON object")
    li.set_defaults(handler=list_cmd)


def _training_options(parser: argparse.ArgumentParser, sweep: bool) -> None:
    """The options ``train`` and ``sweep`` share; a sweep takes lists of sizes and of k."""
    parser.add_argument("model")
    parser.add_argument("--layer", required=True, help="a hidden layer, e.g. layers.0, conv2 or fc1")
    if sweep:
        parser.add_argument("--latents", required=True, metavar="N,N,...",
                            help="the sizes, comma-separated, e.g. 64,128,256,512,1024,2048")
    else:
        parser.add_argument("--latents", required=True, type=int, metavar="N", help="the dictionary's size (d_sae)")
    parser.add_argument("--kind", required=True, choices=["topk", "l1"],
                        help="topk: the K largest latents per row; l1: ReLU with an L1 penalty")
    if sweep:
        parser.add_argument("--k", metavar="K,K,...", help="for --kind topk: latents active per row; several, "
                                                           "comma-separated, sweep over k (ids LAYER-topkN-kK)")
    else:
        parser.add_argument("--k", type=int, metavar="K", help="for --kind topk: latents active per row")
    parser.add_argument("--l1", type=float, metavar="C", help="for --kind l1: the L1 coefficient (e.g. 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="the seed (default 0)")
    parser.add_argument("--steps", type=int, help="training steps" + (" per dictionary" if sweep else "")
                        + " (default 4000, batches of 512 rows)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dictionary of the same id")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _trainer(args: argparse.Namespace, latents: int | None = None):
    from ..dictionaries import SparseAutoencoder

    if args.kind == "topk":
        if args.k is None:
            raise MechMNISTicError("--kind topk needs --k K (the latents active per row)")
        if args.l1 is not None:
            raise MechMNISTicError("--l1 is for --kind l1; a TopK dictionary takes --k")
    else:
        if args.l1 is None:
            raise MechMNISTicError("--kind l1 needs --l1 C (the L1 coefficient, e.g. 1.0)")
        if args.k is not None:
            raise MechMNISTicError("--k is for --kind topk; an L1 dictionary takes --l1")
    extra: dict[str, Any] = {} if args.steps is None else {"steps": args.steps}
    return SparseAutoencoder(kind=args.kind, n_latents=args.latents if latents is None else latents, k=args.k,
                             l1_coefficient=args.l1, random_state=args.seed, **extra)


def train_cmd(args: argparse.Namespace) -> int:
    from ..dictionaries import DictionaryExistsError, default_dictionary_id, save_dictionary, validate_dictionary_id
    from ..dictionaries.dictionary import dictionary_dir
    from ..models import load_model

    model = load_model(args.model)
    layer = model.layout.check_hidden(args.layer)
    trainer = _trainer(args)
    trainer.check_params(layer.n_units)
    dictionary_id = validate_dictionary_id(args.name or default_dictionary_id(layer.name, args.kind, args.latents))
    folder = dictionary_dir(model.card.name, dictionary_id)
    if (folder / "card.json").exists() and not args.overwrite:
        raise DictionaryExistsError(f"{model.card.name} already has a dictionary {dictionary_id!r} (pass --overwrite "
                                    "to replace it, or choose another --name)")
    dictionary = _train(model, layer.name, trainer, dictionary_id, progress=not args.no_progress)
    folder = save_dictionary(dictionary, overwrite=args.overwrite)
    card = dictionary.card
    result = {"model": card.model, "id": card.id, "folder": str(folder), "layer": card.layer, "kind": card.kind,
              "d_in": card.d_in, "d_sae": card.d_sae, "k": card.k, "l1_coefficient": card.l1_coefficient,
              "seed": trainer.random_state, "fit_seconds": card.training["fit_seconds"],
              "total_seconds": card.training["total_seconds"], "metrics": card.metrics}
    emit(args, result, _human_train)
    return 0


def _reporter():
    """A ``progress(done, total, message)`` for stderr: one line rewritten on a terminal, a line every 10% in a
    log; and what to call when it is over."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def report(done: int, total: int, message: str) -> None:
        percent = 100 * done // max(total, 1)
        if tty:  # one line, rewritten in place
            print(f"\r{percent:3d}% {message}"[:160].ljust(160), end="", file=sys.stderr, flush=True)
        elif percent >= shown[0] + 10 or done in (0, total):  # a log: a line every 10%
            shown[0] = percent
            print(f"{percent:3d}% {message}", file=sys.stderr, flush=True)

    def finish() -> None:
        if tty:
            print(file=sys.stderr)

    return report, finish


def _train(model, layer: str, trainer, dictionary_id: str, progress: bool):
    from ..dictionaries import train_dictionary

    report, finish = _reporter()
    try:
        return train_dictionary(model, layer, trainer, dictionary_id, progress=report if progress else None)
    finally:
        if progress:
            finish()


def _whole_numbers(option: str, text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise MechMNISTicError(f"{option} takes whole numbers separated by commas, e.g. 64,128,256; got "
                               f"{text[:80]!r}") from None
    if not numbers or len(set(numbers)) != len(numbers):
        raise MechMNISTicError(f"{option} needs at least one number and none twice; got {text[:80]!r}")
    return numbers


def sweep_cmd(args: argparse.Namespace) -> int:
    from ..dictionaries.sweep import pareto_front, train_sweep
    from ..models import load_model

    model = load_model(args.model)
    layer = model.layout.check_hidden(args.layer)
    sizes = _whole_numbers("--latents", args.latents)
    ks = [None] if args.k is None else _whole_numbers("--k", args.k)
    trainers = [_trainer(argparse.Namespace(**{**vars(args), "k": k}), size) for size in sizes for k in ks]
    report, finish = _reporter()
    try:
        trained = train_sweep(model, layer.name, trainers, progress=None if args.no_progress else report,
                              overwrite=args.overwrite)
    finally:
        if not args.no_progress:
            finish()
    rows = [{"id": d.id, "d_sae": d.d_sae, "k": d.k, "l0": d.card.metrics["l0"],
             "variance_explained": d.card.metrics["variance_explained"],
             "spliced_accuracy": d.card.metrics["spliced_accuracy"], "fit_seconds": d.card.training["fit_seconds"]}
            for d in trained]
    front = pareto_front([r["l0"] for r in rows], [r["variance_explained"] for r in rows])
    for row, on_front in zip(rows, front, strict=True):
        row["pareto"] = bool(on_front)

    def human(r: dict[str, Any]) -> str:
        lines = [f"{r['model']} {r['layer']}: {len(r['dictionaries'])} dictionaries trained and saved"]
        for row in r["dictionaries"]:
            spliced = row["spliced_accuracy"]
            lines.append(f"{row['id']:<24} L0 {row['l0']:6.2f}  VE {row['variance_explained']:.4f}  spliced acc "
                         f"{'n/a' if spliced is None else f'{spliced:.4f}'}  {row['fit_seconds']:.0f} s"
                         f"{'  (Pareto front)' if row['pareto'] else ''}")
        return "\n".join(lines)

    emit(args, {"model": model.card.name, "layer": layer.name, "dictionaries": rows}, human)
    return 0


def scoreboard_cmd(args: argparse.Namespace) -> int:
    from ..analysis.polysemanticity import latent_scoreboard, neuron_scoreboard
    from ..dictionaries import load_dictionary
    from ..models import load_model

    model = load_model(args.model)
    dictionary = load_dictionary(model, args.sae)
    boards = [neuron_scoreboard(model, dictionary.layer), latent_scoreboard(model, dictionary)]
    result = {"model": model.card.name, "layer": dictionary.layer, "sae": dictionary.id, "top_k": boards[0].top_k,
              "bases": [{**board.summary(), "units_scored": {name: [None if isinstance(v, float) and v != v else v
                                                                    for v in values.tolist()]
                                                             for name, values in board.arrays().items()}}
                        for board in boards]}

    def human(r: dict[str, Any]) -> str:
        lines = [f"{r['model']} {r['layer']}: polysemanticity from each unit's top {r['top_k']} training examples"]
        for basis in r["bases"]:
            lines.append(f"{basis['basis']:<28} {basis['alive']:>4} of {basis['units']:>4} fire; median label "
                         f"entropy {basis['median_entropy_bits']:.2f} bits, median feature clusters "
                         f"{basis['median_clusters']:g}, one-digit units {100 * basis['one_digit_share']:.0f}%")
        return "\n".join(lines)

    emit(args, result, human)
    return 0


def _metrics_lines(metrics: dict[str, Any]) -> list[str]:
    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{100 * value:.2f}%"

    return [f"variance explained {metrics['variance_explained']:.4f}, L0 {metrics['l0']:.2f}",
            f"dead latents {metrics['dead_count']} ({pct(metrics['dead_fraction'])}), "
            f"dense (fire on >{100 * metrics['dense_threshold']:.0f}% of rows) {metrics['dense_count']}",
            f"accuracy: model {pct(metrics['model_accuracy'])}, spliced {pct(metrics['spliced_accuracy'])} "
            f"(agreement {pct(metrics['spliced_agreement'])}), KL {metrics['kl']:.4f}"]


def _human_train(r: dict[str, Any]) -> str:
    size = f"k={r['k']}" if r["kind"] == "topk" else f"l1={r['l1_coefficient']:g}"
    return "\n".join([f"{r['model']} {r['layer']}: dictionary {r['id']} ({r['kind']}, {r['d_in']} -> {r['d_sae']}, "
                      f"{size}, seed {r['seed']}) trained in {r['fit_seconds']:.1f} s", *_metrics_lines(r["metrics"]),
                      f"saved to {r['folder']}"])


def eval_cmd(args: argparse.Namespace) -> int:
    import math

    from ..analysis.dictionary_quality import dictionary_quality
    from ..dictionaries import load_dictionary
    from ..models import load_model

    model = load_model(args.model)
    dictionary = load_dictionary(model, args.sae)
    metrics = dictionary_quality(model, dictionary).to_dict()
    card = dictionary.card
    keys = ("variance_explained", "l0", "dead_fraction", "spliced_accuracy", "model_accuracy", "kl")
    matches = all(
        (metrics[key] is None and card.metrics.get(key) is None)
        or (metrics[key] is not None and card.metrics.get(key) is not None
            and math.isclose(metrics[key], card.metrics[key], rel_tol=1e-6, abs_tol=1e-9))
        for key in keys)
    result = {"model": card.model, "id": card.id, "layer": card.layer, "kind": card.kind, "d_in": card.d_in,
              "d_sae": card.d_sae, "k": card.k, "l1_coefficient": card.l1_coefficient, **metrics,
              "matches_card": matches}
    emit(args, result, lambda r: "\n".join([f"{r['model']} {r['layer']}: dictionary {r['id']} ({r['kind']}, "
                                            f"{r['d_in']} -> {r['d_sae']})", *_metrics_lines(r),
                                            f"matches its card: {'yes' if r['matches_card'] else 'no'}"]))
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    from ..dictionaries import dictionary_summaries
    from ..models import load_model

    model = load_model(args.model)
    rows = dictionary_summaries(model)

    def human(r: dict[str, Any]) -> str:
        if not r["dictionaries"]:
            return f"{r['model']} has no dictionaries (train one with: mechmnistic sae train {r['model']} ...)"
        lines = []
        for row in r["dictionaries"]:
            if "problem" in row:
                lines.append(f"{row['id']:<24} unreadable: {row['problem']}")
                continue
            m = row["metrics"]
            size = f"k={row['k']}" if row["kind"] == "topk" else f"l1={row['l1_coefficient']:g}"
            spliced = m.get("spliced_accuracy")
            lines.append(f"{row['id']:<24} {row['layer']:<10} {row['kind']:<5} {row['d_in']}->{row['d_sae']} {size}  "
                         f"VE {m.get('variance_explained', float('nan')):.3f}  L0 {m.get('l0', float('nan')):.1f}  "
                         f"spliced acc {'n/a' if spliced is None else f'{spliced:.4f}'}"
                         f"{'' if row['usable'] else '  (trained on other weights: unusable)'}")
        return "\n".join(lines)

    emit(args, {"model": model.card.name, "dictionaries": rows}, human)
    return 0
