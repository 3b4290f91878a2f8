"""Model commands: ``models``, ``card``, ``train``, ``evaluate``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import MechMNISTicError
from . import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models in the zoo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_cmd)

    p = sub.add_parser("card", help="show a model's card")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=card_cmd)

    p = sub.add_parser("evaluate", help="re-check a model's accuracy on the real MNIST test set")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=evaluate_cmd)

    p = sub.add_parser(
        "train",
        help="train a model and save it to the zoo with its card",
        description="Train from a bundled recipe (--recipe), an existing card (--from-card, reproduces it), "
        "or an architecture given on the command line.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--recipe", help="a bundled model's recipe, e.g. mlp-1x64")
    source.add_argument("--from-card", metavar="NAME_OR_CARD_JSON", help="reproduce a model from its card")
    source.add_argument("--mlp", nargs="+", type=int, metavar="HIDDEN", help="an MLP with these hidden sizes")
    source.add_argument("--cnn", nargs="+", type=int, metavar="CHANNELS", help="a CNN with these conv channels")
    p.add_argument("--fc", nargs="*", type=int, default=[200], help="CNN hidden FC sizes (default 200)")
    p.add_argument("--name", help="zoo name for the result (default: the recipe's or card's name)")
    p.add_argument("--labels", choices=["digits", "challenge"], default="digits")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--zoo", help="zoo folder to save into (default: models/)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model of that name")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=train_cmd)


def list_cmd(args: argparse.Namespace) -> int:
    from ..models import list_models, load_card

    rows = []
    for name in list_models():
        card = load_card(name)
        rows.append({"name": name, "architecture": card.config.describe(), "metrics": card.metrics})
    emit(args, {"models": rows}, lambda r: "\n".join(
        f"{row['name']:<16} test acc {row['metrics'].get('test_accuracy', float('nan')):.4f}  {row['architecture']}"
        for row in r["models"]) or "no models in the zoo")
    return 0


def card_cmd(args: argparse.Namespace) -> int:
    from ..models import load_card

    card = load_card(args.model).to_dict()
    emit(args, card, lambda c: json.dumps(c, indent=2))
    return 0


def evaluate_cmd(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate

    result = evaluate(args.model)
    emit(args, result, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()))
    return 0


def train_cmd(args: argparse.Namespace) -> int:
    from ..models import ModelCard, cnn_config, load_card, mlp_config, save_model
    from ..models.zoo import validate_name
    from ..recipes import RECIPES, recipe_label_function
    from ..training import TrainConfig, train_model

    description = ""
    if args.recipe:
        if args.recipe not in RECIPES:
            raise MechMNISTicError(f"unknown recipe {args.recipe!r}; known: {sorted(RECIPES)}")
        recipe = RECIPES[args.recipe]
        model_config, train_config, description = recipe.model, recipe.train, recipe.description
        name = args.name or args.recipe
    elif args.from_card:
        path = Path(args.from_card)
        is_file = path.suffix == ".json" and path.is_file()
        card = ModelCard.from_json(path.read_text()) if is_file else load_card(args.from_card)
        if "import" in card.training or "epochs" not in card.training:
            # An imported model's card records where its weights came from, not how they were trained.
            raise MechMNISTicError(f"{card.name} was not trained here: its card holds no training recipe to reproduce")
        model_config, train_config = card.config, TrainConfig.from_dict(card.training)
        description, name = card.description, args.name or card.name
    else:
        labels = recipe_label_function(args.labels)
        n_classes = 2 if args.labels == "challenge" else 10
        if args.mlp:
            model_config = mlp_config(hidden_sizes=tuple(args.mlp), n_classes=n_classes)
        else:
            model_config = cnn_config(conv_channels=tuple(args.cnn), kernel_sizes=(3,) * len(args.cnn),
                                     fc_sizes=tuple(args.fc), n_classes=n_classes)
        train_config = TrainConfig(label_function=labels)
        if not args.name:
            raise MechMNISTicError("--name is required when training a new architecture")
        name = args.name
    validate_name(name)
    overrides = {k: getattr(args, k) for k in ("epochs", "lr", "seed") if getattr(args, k) is not None}
    if overrides:
        train_config = TrainConfig.from_dict({**train_config.to_dict(), **overrides})
    model, card = train_model(model_config, train_config, name, description, progress=not args.no_progress)
    folder = save_model(model, card, zoo=args.zoo, overwrite=args.overwrite)
    result = {"name": name, "folder": str(folder), "metrics": card.metrics, "weights_sha256": card.weights_sha256}
    if args.from_card and not overrides:
        result["reproduced_exactly"] = card.weights_sha256 == _original_sha(args.from_card)
    emit(args, result, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()))
    return 0


def _original_sha(ref: str) -> str:
    from ..models import ModelCard, load_card

    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        return ModelCard.from_json(path.read_text()).weights_sha256
    return load_card(ref).weights_sha256
