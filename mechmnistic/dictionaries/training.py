"""Training a dictionary (sparse autoencoder) on a layer's activations, in plain torch, seeded.

Two kinds, both with unit-norm decoder rows (renormalised after every step,
with the gradient's component along each row removed first):

* ``topk``: the ``k`` largest pre-activations, ReLU'd, the rest zero; loss =
  squared reconstruction error + ``aux_coefficient`` x the AuxK loss (the
  top ``d_in / 2`` *dead* latents, those silent for about one pass over the
  rows, reconstruct what the live ones miss), which keeps latents from dying;
* ``l1``: ReLU; loss = squared reconstruction error + ``l1_coefficient`` x
  the sum of the latents (an L1 penalty; the decoder rows have unit norm, so
  it cannot be dodged by shrinking latents and growing decoder rows).

Rows are scaled during training so that their mean norm is ``sqrt(d_in)``
(so one learning rate and one L1 coefficient suit every layer); the scale
is folded into the biases at the end (``b_enc``, ``b_dec`` divided by it,
which leaves ``W_enc``, the unit-norm ``W_dec`` and the encoding of raw rows
exact), so the stored dictionary reads the layer's own activations.
``SparseAutoencoder`` follows scikit-learn's contract (parameters stored as
given, ``fit`` returns self, learned attributes end in ``_``,
``random_state`` respected); ``train_dictionary`` runs it on a model's layer
and returns a ``Dictionary`` with its card and metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..models.architectures import MNISTNet
from ..models.weights_io import MAX_WEIGHTS_BYTES
from ..threads import one_thread
from .dictionary import KINDS, MAX_LATENTS, Dictionary, DictionaryCard, DictionaryError, validate_dictionary_id

#: ``progress(done, total, message)``; the message ends with an estimate of the time left.
Progress = Callable[[int, int, str], None]

MAX_STEPS = 1_000_000
MAX_SEED = 2**63 - 1
#: Conv layers give one row per (image, position): at most this many are sampled for training.
MAX_CONV_ROWS = 500_000


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


@dataclass(frozen=True)
class Step:
    """One logged point of training: the step, the normalised MSE (1 - variance explained) and mean L0."""

    step: int
    nmse: float
    l0: float
    dead: int


class SparseAutoencoder:
    """A sparse autoencoder trainer (scikit-learn's contract).

    ``kind``: ``"topk"`` (needs ``k``) or ``"l1"`` (needs
    ``l1_coefficient``); ``n_latents``: ``d_sae``; ``steps`` Adam steps of
    ``batch_size`` rows drawn at random (with replacement) with learning rate
    ``lr``, decayed linearly to zero over the last fifth.

    Learned: ``W_enc_`` ``[d_in, d_sae]``, ``b_enc_`` ``[d_sae]``, ``W_dec_``
    ``[d_sae, d_in]`` (unit rows), ``b_dec_`` ``[d_in]``; ``scale_`` (the
    training scale, already folded in); ``history_`` (``Step`` every 1% of
    training); ``fit_seconds_``; ``n_rows_``.
    """

    def __init__(self, kind: str = "topk", n_latents: int = 512, k: int | None = 16,
                 l1_coefficient: float | None = None, steps: int = 4000, batch_size: int = 512, lr: float = 2e-3,
                 aux_coefficient: float = 1 / 32, random_state: int = 0) -> None:
        self.kind = kind
        self.n_latents = n_latents
        self.k = k
        self.l1_coefficient = l1_coefficient
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.aux_coefficient = aux_coefficient
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_latents": self.n_latents, "k": self.k if self.kind == "topk" else None,
                "l1_coefficient": self.l1_coefficient if self.kind == "l1" else None, "steps": self.steps,
                "batch_size": self.batch_size, "lr": self.lr,
                "aux_coefficient": self.aux_coefficient if self.kind == "topk" else None,
                "random_state": self.random_state}

    def check_params(self, d_in: int | None = None) -> None:
        """Raise ``DictionaryError`` naming the first parameter that cannot be trained with."""
        if self.kind not in KINDS:
            raise DictionaryError(f"unknown kind {self.kind!r}; choose topk or l1")
        n = _whole("the number of latents", self.n_latents, 1, MAX_LATENTS)
        if self.kind == "topk":
            if self.k is None:
                raise DictionaryError("a TopK dictionary needs k (the latents active per row)")
            k = _whole("k", self.k, 1, MAX_LATENTS)
            if k > n:
                raise DictionaryError(f"k ({k}) must be at most the number of latents ({n})")
        else:
            if self.l1_coefficient is None:
                raise DictionaryError("an L1 dictionary needs an L1 coefficient (e.g. 1.0)")
            _positive("the L1 coefficient", self.l1_coefficient)
        _whole("steps", self.steps, 1, MAX_STEPS)
        _whole("the batch size", self.batch_size, 1, 1 << 20)
        _positive("the learning rate", self.lr)
        if not (isinstance(self.aux_coefficient, int | float) and math.isfinite(self.aux_coefficient)
                and self.aux_coefficient >= 0):
            raise DictionaryError(f"the AuxK coefficient must be a number >= 0, got {self.aux_coefficient!r}")
        _whole("the seed", self.random_state, 0, MAX_SEED)
        if d_in is not None and _weights_bytes(n, d_in) > MAX_WEIGHTS_BYTES:
            most = (MAX_WEIGHTS_BYTES // 4 - d_in) // (2 * d_in + 1)
            raise DictionaryError(f"{n} latents on {d_in} units would be {_weights_bytes(n, d_in) / 2**20:.0f} MiB of "
                                  f"weights, over the {MAX_WEIGHTS_BYTES // 2**20} MiB limit for weights files; "
                                  f"use at most {most}")

    def fit(self, rows: torch.Tensor | np.ndarray, progress: Progress | None = None) -> SparseAutoencoder:
        """Train on ``rows`` float ``[N, d_in]``; returns self."""
        x = torch.as_tensor(np.asarray(rows) if not isinstance(rows, torch.Tensor) else rows).detach()
        x = x.to(torch.float32)
        if x.dim() != 2 or len(x) == 0 or x.shape[1] == 0:
            raise DictionaryError(f"training rows must be a non-empty [N, d_in] array, got {list(x.shape)}")
        if not torch.isfinite(x).all():
            raise DictionaryError("training rows contain NaN or infinite values")
        self.check_params(x.shape[1])
        with one_thread(), torch.inference_mode(False), torch.enable_grad():
            self._fit(x.clone(), progress)
        return self

    def _fit(self, x: torch.Tensor, progress: Progress | None) -> None:
        n_rows, d_in = x.shape
        d_sae, topk = self.n_latents, self.kind == "topk"
        generator = torch.Generator().manual_seed(self.random_state)
        norm = float(x.norm(dim=1).mean())
        scale = math.sqrt(d_in) / norm if norm > 0 else 1.0
        x *= scale
        variance = float((x - x.mean(0)).pow(2).sum(1).mean()) or 1.0
        W_dec = torch.randn(d_sae, d_in, generator=generator)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        W_enc = W_dec.T.clone()
        b_enc = torch.zeros(d_sae)
        b_dec = x.mean(0)
        params = [W_enc, b_enc, W_dec, b_dec]
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(params, lr=self.lr)
        silent_for = torch.zeros(d_sae, dtype=torch.long)
        dead_after = max(1, math.ceil(n_rows / self.batch_size))  # about one pass over the rows
        k_aux = max(1, d_in // 2)
        batch = self.batch_size
        log_every = max(1, self.steps // 100)
        history: list[Step] = []
        start = time.perf_counter()
        if progress is not None:
            progress(0, self.steps, f"training {self.kind} dictionary: step 0 of {self.steps}")
        for step in range(self.steps):
            remaining = (self.steps - step) / self.steps
            for group in optimizer.param_groups:
                group["lr"] = self.lr * min(1.0, remaining / 0.2)
            rows = x[torch.randint(0, n_rows, (batch,), generator=generator)]
            pre = (rows - b_dec) @ W_enc + b_enc
            if topk:
                top = torch.topk(pre, self.k, dim=-1)
                values = torch.relu(top.values)
                # A dense product: on a CPU it beats gathering the k decoder rows (whose backward is a scatter-add).
                recon = torch.zeros_like(pre).scatter(-1, top.indices, values) @ W_dec + b_dec
                fired = torch.zeros(d_sae, dtype=torch.bool)
                fired[top.indices[values > 0]] = True
                active = (values > 0).sum(1).float()
            else:
                latents = torch.relu(pre)
                recon = latents @ W_dec + b_dec
                fired = (latents > 0).any(0)
                active = (latents > 0).sum(1).float()
            mse = (recon - rows).pow(2).sum(1).mean()
            loss = mse
            dead = silent_for >= dead_after
            if topk and self.aux_coefficient > 0 and bool(dead.any()):
                n_aux = min(k_aux, int(dead.sum()))
                masked = pre.masked_fill(~dead, float("-inf"))
                aux = torch.topk(masked, n_aux, dim=-1)
                residual = (rows - recon).detach()
                aux_recon = torch.zeros_like(pre).scatter(-1, aux.indices, torch.relu(aux.values)) @ W_dec
                loss = loss + self.aux_coefficient * min(1.0, int(dead.sum()) / k_aux) * (
                    (aux_recon - residual).pow(2).sum(1).mean())
            if not topk:
                loss = loss + self.l1_coefficient * latents.sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                # Only the part of each decoder row's gradient that keeps it on the unit sphere.
                W_dec.grad -= (W_dec.grad * W_dec).sum(1, keepdim=True) * W_dec
            optimizer.step()
            with torch.no_grad():
                W_dec /= W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
                silent_for += 1
                silent_for[fired] = 0
            done = step + 1
            if done % log_every == 0 or done == self.steps:
                history.append(Step(done, float(mse.detach()) / variance, float(active.mean()), int(dead.sum())))
                if progress is not None:
                    elapsed = time.perf_counter() - start
                    left = elapsed / done * (self.steps - done)
                    progress(done, self.steps, f"training {self.kind} dictionary: step {done} of {self.steps}, "
                             f"1 - variance explained {history[-1].nmse:.3f}, L0 {history[-1].l0:.1f}, "
                             f"about {format_seconds(left)} left")
        with torch.no_grad():
            self.W_enc_ = W_enc.detach().clone()
            self.b_enc_ = (b_enc / scale).detach().clone()
            self.W_dec_ = W_dec.detach().clone()
            self.b_dec_ = (b_dec / scale).detach().clone()
        self.scale_ = scale
        self.history_ = history
        self.fit_seconds_ = time.perf_counter() - start
        self.n_rows_ = n_rows

    def dictionary(self, card: DictionaryCard) -> Dictionary:
        """The fitted tensors as a ``Dictionary`` with ``card``."""
        if not hasattr(self, "W_enc_"):
            raise DictionaryError("fit the autoencoder first")
        return Dictionary(self.W_enc_, self.b_enc_, self.W_dec_, self.b_dec_, card)


def _weights_bytes(n_latents: int, d_in: int) -> int:
    """The size of ``sae_weights.safetensors`` (float32 tensors; the header is small)."""
    return 4 * (2 * n_latents * d_in + n_latents + d_in)


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= int(value) <= high:
        raise DictionaryError(f"{name} must be a whole number in {low}..{high}, got {value!r}")
    return int(value)


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise DictionaryError(f"{name} must be a positive number, got {value!r}")
    return float(value)


# -- on a model's layer ------------------------------------------------------------------------------------


def default_dictionary_id(layer: str, kind: str, n_latents: int) -> str:
    """``<layer>-<kind><latents>``, e.g. ``layers.0-topk512``."""
    return f"{layer}-{kind}{n_latents}"


@dataclass(frozen=True)
class TrainingRows:
    """The rows a dictionary trains on: float32 ``[N, d_in]`` and where they came from."""

    rows: torch.Tensor
    n_images: int
    positions_per_image: int
    sampled: bool


def training_rows(model: MNISTNet, layer: str, images: np.ndarray | None = None, max_rows: int = MAX_CONV_ROWS,
                  seed: int = 0) -> TrainingRows:
    """The rows of ``layer`` on ``images`` (default: the training split) to train a dictionary on.

    A Linear layer gives one row per image (read from the cached dataset
    activations when ``images`` is the training split). A conv layer gives one
    row per (image, position); when there are more than ``max_rows`` a random
    (seeded) subset of that size is kept, batch by batch, so the whole set is
    never held.
    """
    from ..analysis.activations import layer_activations
    from ..analysis.latents import layer_batches
    from ..data import load_mnist

    unit_layer = model.layout.check_hidden(layer)
    if images is None and not unit_layer.is_conv:
        values = layer_activations(model, layer, "train").values
        return TrainingRows(torch.from_numpy(np.array(values, dtype=np.float32)), len(values), 1, False)
    images = load_mnist("train").images if images is None else images
    positions = int(np.prod(unit_layer.pre_shape[1:])) if unit_layer.is_conv else 1
    total = len(images) * positions
    keep_fraction = min(1.0, max_rows / total)
    rng = np.random.default_rng(seed)
    chunks = []
    for _start, activation in layer_batches(model, layer, images):
        rows = activation.permute(0, 2, 3, 1).reshape(-1, unit_layer.n_units) if unit_layer.is_conv else activation
        if keep_fraction < 1.0:
            rows = rows[torch.from_numpy(rng.random(len(rows)) < keep_fraction)]
        chunks.append(rows.clone())
    rows = torch.cat(chunks) if chunks else torch.empty(0, unit_layer.n_units)
    return TrainingRows(rows, len(images), positions, keep_fraction < 1.0)


@dataclass(frozen=True)
class TrainingSettings:
    """What ``train_dictionary`` was asked for, as stored on the card (besides the trainer's own parameters)."""

    split: str = "train"
    images: str = "all"
    max_conv_rows: int = MAX_CONV_ROWS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_dictionary(
    model: MNISTNet, layer: str, trainer: SparseAutoencoder, dictionary_id: str | None = None,
    progress: Progress | None = None, measure: bool = True, description: str = "",
    images: np.ndarray | None = None,
) -> Dictionary:
    """Train ``trainer`` on ``layer``'s activations over the training split (or over ``images``, uint8
    ``[N, 28, 28]``, e.g. a subset for a quick look); a ``Dictionary`` with its card.

    The card holds the trainer's parameters and seed, what it read, how long
    it took, the model's weight fingerprint and (with ``measure``) the
    quality metrics on the test set (``analysis.dictionary_quality``). Nothing
    is written: ``save_dictionary`` stores it in the zoo. ``progress(done,
    total, message)`` hears about every stage, with an estimate of the time left.
    """
    from ..cache import model_fingerprint

    unit_layer = model.layout.check_hidden(layer)
    trainer.check_params(unit_layer.n_units)
    dictionary_id = validate_dictionary_id(dictionary_id or default_dictionary_id(layer, trainer.kind,
                                                                                   trainer.n_latents))
    model_name = getattr(getattr(model, "card", None), "name", "unnamed")
    settings = TrainingSettings(images="all" if images is None else f"{len(images)} given")
    # Stages on one scale: 1 for the activations, the trainer's steps, and (with measure) 1 for the quality.
    total = trainer.steps + 1 + (1 if measure else 0)
    started = time.perf_counter()

    def report(done: int, message: str) -> None:
        if progress is not None:
            progress(done, total, message)

    report(0, f"reading {layer}'s activations over the training set")
    data = training_rows(model, layer, images, max_rows=settings.max_conv_rows, seed=trainer.random_state)
    read_seconds = time.perf_counter() - started

    def on_step(done: int, _steps: int, message: str) -> None:
        report(1 + done, message)

    trainer.fit(data.rows, progress=on_step if progress is not None else None)
    card = DictionaryCard(
        id=dictionary_id, model=model_name, layer=layer, hook=unit_layer.activation_hook, kind=trainer.kind,
        d_in=unit_layer.n_units, d_sae=trainer.n_latents, model_fingerprint=model_fingerprint(model),
        k=trainer.k if trainer.kind == "topk" else None,
        l1_coefficient=float(trainer.l1_coefficient) if trainer.kind == "l1" else None,
        is_conv=unit_layer.is_conv, description=description,
        training={**trainer.get_params(), **settings.to_dict(), "seed": trainer.random_state,
                  "n_rows": int(len(data.rows)), "n_images": data.n_images,
                  "positions_per_image": data.positions_per_image, "rows_sampled": data.sampled,
                  "training_scale": trainer.scale_, "read_seconds": round(read_seconds, 3),
                  "fit_seconds": round(trainer.fit_seconds_, 3), "torch": torch.__version__,
                  "final_nmse": trainer.history_[-1].nmse, "final_l0": trainer.history_[-1].l0},
    )
    dictionary = trainer.dictionary(card)
    if measure:
        from ..analysis.dictionary_quality import dictionary_quality

        report(total - 1, "measuring the dictionary on the test set (variance explained, L0, spliced accuracy)")
        card.metrics = dictionary_quality(model, dictionary).to_dict()
    card.training["total_seconds"] = round(time.perf_counter() - started, 3)
    report(total, f"done in {format_seconds(time.perf_counter() - started)}")
    return dictionary
