"""Training the zoo's models, reproducibly.

``train_model(model_config, train_config)`` trains on MNIST's 60,000 training
images minus a seeded held-out part, with Adam and a cosine-decaying learning
rate, keeps the checkpoint that scores best on the held-out part, and returns
the model with a filled-in ``ModelCard`` (test metrics included). Everything
random comes from ``train_config.seed``, so ``mechmnistic train --from-card``
reproduces a bundled model from its card on the same kind of machine.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import __version__
from .data import load_mnist
from .errors import MechMNISTicError
from .hooks import predict, to_pixels
from .labels import apply_label_function
from .models.architectures import MNISTNet, build_model
from .models.card import ModelCard
from .models.config import NetConfig

#: More epochs than any recipe needs by far; a typo like 10**30 is refused instead of training forever.
MAX_EPOCHS = 1000


class TrainConfigError(MechMNISTicError, ValueError):
    """Training settings that cannot be used; the message says which."""


@dataclass
class TrainConfig:
    """How to train. Stored verbatim in the model card's ``training`` field."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.0
    seed: int = 0
    val_size: int = 5000
    #: Random affine jitter of training images (max shift in pixels, max scale change).
    augment_shift: float = 0.0
    augment_scale: float = 0.0
    label_function: dict[str, Any] = field(default_factory=lambda: {"name": "digits"})
    threads: int = 2

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= MAX_EPOCHS and 1 <= self.batch_size <= 60_000):
            raise TrainConfigError(f"epochs must be in 1..{MAX_EPOCHS} and batch_size in 1..60000, "
                                   f"got {str(self.epochs)[:12]} and {str(self.batch_size)[:12]}")
        if not (math.isfinite(self.lr) and self.lr > 0):  # a NaN learning rate would train a NaN model
            raise TrainConfigError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.val_size < 60_000:
            raise TrainConfigError("val_size must be in [0, 60000)")
        if not 0 <= self.seed < 2**63:
            raise TrainConfigError(f"seed must be in 0..2**63-1, got {str(self.seed)[:24]}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _augment(pixels: torch.Tensor, shift: float, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Random small affine jitter: ``[B, 28, 28]`` -> ``[B, 28, 28]``."""
    n = len(pixels)
    s = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    t = (torch.rand(n, 2, generator=generator) * 2 - 1) * (shift * 2 / 28)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1 / s
    theta[:, 1, 1] = 1 / s
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, (n, 1, 28, 28), align_corners=False)
    return F.grid_sample(pixels.unsqueeze(1), grid, align_corners=False, padding_mode="zeros")[:, 0]


def accuracy(model: MNISTNet, images: np.ndarray | torch.Tensor, labels: np.ndarray) -> float:
    return float((predict(model, images) == np.asarray(labels)).mean())


def train_model(
    model_config: NetConfig,
    train_config: TrainConfig,
    name: str,
    description: str = "",
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[MNISTNet, ModelCard]:
    """Train a model from scratch; returns it (eval mode) and its card (weights hash unset until saved)."""
    cfg = train_config
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    train_images, train_digits = load_mnist("train")
    test_images, test_digits = load_mnist("test")
    train_labels = apply_label_function(cfg.label_function, train_images, train_digits)
    test_labels = apply_label_function(cfg.label_function, test_images, test_digits)

    order = rng.permutation(len(train_images))
    val_idx, fit_idx = order[: cfg.val_size], order[cfg.val_size :]
    x_fit = to_pixels(train_images[np.sort(fit_idx)])
    y_fit = torch.as_tensor(train_labels[np.sort(fit_idx)])
    x_val, y_val = train_images[np.sort(val_idx)], train_labels[np.sort(val_idx)]

    model = build_model(model_config)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x_fit) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * step / total_steps))) / cfg.lr,
    )

    best_val, best_state, best_epoch, history = -1.0, None, -1, []
    bar = tqdm(total=total_steps, desc=f"training {name}", unit="batch", disable=not progress)
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_fit), generator=generator)
        running = 0.0
        for start in range(0, len(x_fit), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            batch = x_fit[idx]
            if cfg.augment_shift or cfg.augment_scale:
                batch = _augment(batch, cfg.augment_shift, cfg.augment_scale, generator)
            loss = F.cross_entropy(model(batch), y_fit[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item() * len(idx)
            bar.update(1)
        model.eval()
        val_acc = accuracy(model, x_val, y_val) if cfg.val_size else 0.0
        stats = {"epoch": epoch + 1, "train_loss": running / len(x_fit), "val_accuracy": val_acc}
        history.append(stats)
        bar.set_postfix(loss=f"{stats['train_loss']:.4f}", val=f"{val_acc:.4f}")
        if on_epoch:
            on_epoch(epoch, stats)
        if val_acc > best_val or not cfg.val_size:
            best_val, best_epoch = val_acc, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
    bar.close()
    model.load_state_dict(best_state)
    model.eval()

    metrics = {
        "test_accuracy": accuracy(model, test_images, test_labels),
        "train_accuracy": accuracy(model, train_images, train_labels),
        "val_accuracy": best_val,
        "best_epoch": best_epoch,
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "metric_labels": "the model's own label function" if cfg.label_function.get("name") != "digits" else "digits",
    }
    card = ModelCard(
        name=name,
        config=model_config,
        weights_sha256="",
        description=description,
        label_function=cfg.label_function,
        training={**cfg.to_dict(), "optimizer": "Adam", "schedule": "cosine", "history": history},
        metrics=metrics,
        source=f"trained with mechmnistic {__version__}",
        created=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    )
    return model, card
