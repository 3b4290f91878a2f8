"""Logit effects: how each unit feeding the final layer moves each class's logit, on one input.

Every model here ends in an affine layer, so for one input

    logit[c] = sum_u W[c, u] * h[u] + b[c]

where ``h`` is the final layer's input: the post-ReLU activations of the last
hidden fully connected layer (``layers.0`` in ``mlp-1x64``, ``fc1`` in the
CNNs; for a CNN without a hidden FC layer, the flattened pooled feature maps;
for a model without any hidden layer, the normalised pixels). The *logit
effect* of unit ``u`` on class ``c`` is ``W[c, u] * h[u]``; with the bias as
its own last column, each row of the effects matrix sums exactly to the logit.

A unit is *important* for class ``c`` when its share of the row's total
absolute effect, ``|effect[c, u]| / (sum_v |effect[c, v]| + |b[c]|)``, exceeds
a threshold (default 2.5%). Each important unit is grounded in input space
through its effective pixel weights and Hadamard embedding
(``mechmnistic.analysis.grounding``, exact at any depth), and the
embeddings combine, weighted by the output weights, into one pixel map whose
sum is exactly the units' total effect (see ``CombinedEmbedding``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MechMNISTicError
from ..hooks import run_with_cache, to_pixels
from ..models.architectures import MNISTNet
from .frozen import derivative
from .grounding import effective_weights

DEFAULT_SHARE = 0.025


@dataclass(frozen=True)
class FinalLayer:
    """The final (logit) layer and what feeds it (``FinalLayer.of(model)``).

    ``name``: the final Linear layer (``layers.1``, ``fc2``). ``unit_layer``:
    the layer whose units are its inputs (``None`` when pixels feed it
    directly). ``input_hook``: the hook holding those inputs. ``weight``:
    float64 ``[C, U]``; ``bias``: float64 ``[C]``.
    """

    name: str
    unit_layer: str | None
    input_hook: str
    weight: np.ndarray
    bias: np.ndarray
    units_are_neurons: bool

    @property
    def n_units(self) -> int:
        return self.weight.shape[1]

    @classmethod
    def of(cls, model: MNISTNet) -> FinalLayer:
        """The final layer of ``model`` as its layout gives it, with its weights."""
        layout = model.layout
        feeds = layout.feeds_logits
        module = model.layer(layout.final.name)
        bias = module.bias.detach() if module.bias is not None else torch.zeros(module.out_features)
        return cls(
            name=layout.final.name,
            unit_layer=None if feeds is None else feeds.name,
            input_hook="input" if feeds is None else feeds.output_hook,
            weight=module.weight.detach().double().numpy(),
            bias=bias.double().numpy(),
            units_are_neurons=feeds is not None and not feeds.is_conv,
        )


@dataclass(frozen=True)
class LogitEffects:
    """The final layer's arithmetic on one input.

    ``logits``: float64 ``[C]`` as the model computed them; ``probabilities``:
    their softmax ``[C]``; ``activations``: float64 ``[U]``, the final layer's
    input ``h``; ``weight``: ``[C, U]``; ``bias``: ``[C]``; ``effects``:
    ``[C, U + 1]`` = ``weight * activations`` with ``bias`` as the last column,
    so ``effects.sum(1)`` equals ``logits`` (up to float32 rounding in the model).
    """

    layer: FinalLayer
    logits: np.ndarray
    probabilities: np.ndarray
    activations: np.ndarray
    effects: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        return self.layer.weight

    @property
    def bias(self) -> np.ndarray:
        return self.layer.bias

    @property
    def unit_effects(self) -> np.ndarray:
        """``[C, U]``: the effects without the bias column."""
        return self.effects[:, :-1]

    @property
    def prediction(self) -> int:
        return int(np.argmax(self.logits))

    @property
    def n_classes(self) -> int:
        return len(self.logits)

    def shares(self, cls: int) -> np.ndarray:
        """``[U]``: each unit's |effect| on class ``cls`` over the row's total |effect| (bias included)."""
        row = np.abs(self.effects[_check_class(cls, self.n_classes)])
        total = row.sum()
        return row[:-1] / total if total > 0 else np.zeros(len(row) - 1)


def _check_class(cls: int, n_classes: int) -> int:
    if not 0 <= int(cls) < n_classes:
        raise MechMNISTicError(f"class {cls} is out of range (0–{n_classes - 1})")
    return int(cls)


def logit_effects(model: MNISTNet, image: np.ndarray) -> LogitEffects:
    """Logits, probabilities and the effects matrix for one ``image`` (uint8 ``[28, 28]`` or [0, 1] floats)."""
    pixels = to_pixels(image)
    if len(pixels) != 1:
        raise ValueError(f"logit_effects takes one image, got {len(pixels)}")
    final = FinalLayer.of(model)
    logits, cache = run_with_cache(model, pixels, names=[final.input_hook])
    activations = cache[final.input_hook][0].flatten().double().numpy()
    logits64 = logits[0].double().numpy()
    effects = np.concatenate([final.weight * activations[None, :], final.bias[:, None]], axis=1)
    probabilities = torch.softmax(logits[0].double(), dim=0).numpy()
    return LogitEffects(final, logits64, probabilities, activations, effects)


def important_units(effects: LogitEffects, cls: int, share: float = DEFAULT_SHARE) -> np.ndarray:
    """Units whose share of class ``cls``'s total |effect| exceeds ``share``, largest |effect| first.

    Returns int64 ``[K]``. ``share`` is a fraction in [0, 1] (0.025 = 2.5%).
    """
    if not 0.0 <= share <= 1.0:
        raise MechMNISTicError(f"share must be a fraction between 0 and 1, got {share}")
    shares = effects.shares(cls)
    chosen = np.flatnonzero(shares > share)
    order = np.argsort(-np.abs(effects.unit_effects[cls, chosen]), kind="stable")
    return chosen[order].astype(np.int64)


@dataclass(frozen=True)
class PixelView:
    """Input-space view of some units of the final layer's input on one image.

    ``units``: int64 ``[K]``. ``weights``: float32 ``[K, 28, 28]``, each unit's
    effective pixel weights ``w_eff(x)``; ``maps``: float32 ``[K, 28, 28]``,
    its Hadamard embedding ``x ⊙ w_eff(x)``; ``bias``: float64 ``[K]``,
    ``b_eff(x)``; ``maps[k].sum() + bias[k]`` is unit k's pre-activation
    (``pre`` float64 ``[K]``) when ``exact``, else its local linear
    approximation. ``slopes`` float64 ``[K]``: the layer's activation's slope at
    each pre-activation (ReLU: 1 on, 0 off), so that each unit's activation is
    ``slope * pre`` for a piecewise-linear activation.
    """

    units: np.ndarray
    weights: np.ndarray
    maps: np.ndarray
    bias: np.ndarray
    pre: np.ndarray
    slopes: np.ndarray
    exact: bool = True

    def rows(self, units: np.ndarray) -> PixelView:
        """The view restricted to ``units`` (a subset of ``self.units``), in that order."""
        position = {int(u): i for i, u in enumerate(self.units)}
        rows = np.array([position[int(u)] for u in units], dtype=np.int64)
        return PixelView(np.asarray(units, dtype=np.int64), self.weights[rows], self.maps[rows], self.bias[rows],
                         self.pre[rows], self.slopes[rows], self.exact)


def pixel_view(model: MNISTNet, image: np.ndarray, units: np.ndarray) -> PixelView:
    """Effective pixel weights and Hadamard embeddings of the final layer's input ``units`` on ``image``.

    For any fully connected unit layer, at any depth and behind conv
    layers: ``w_eff(x)`` and ``b_eff(x)`` come from
    ``mechmnistic.analysis.grounding`` (for an MLP's first layer, simply its
    input weights); exact for piecewise-linear networks. Raises
    ``MechMNISTicError`` when the final layer reads no fully connected hidden
    layer (pixels, or flattened feature maps).
    """
    final = FinalLayer.of(model)
    if final.unit_layer is None or not final.units_are_neurons:
        raise MechMNISTicError(
            "the final layer does not read a fully connected hidden layer, so its inputs have no Hadamard embedding"
        )
    pixels = to_pixels(image).numpy()
    grounding = effective_weights(model, final.unit_layer, pixels, np.asarray(units, dtype=np.int64))
    unit_layer = model.layout[final.unit_layer]
    pre = torch.from_numpy(grounding.pre[0]).double()
    slopes = derivative(unit_layer.activation, pre).double().numpy()
    exact = grounding.exact and (unit_layer.activation is None or unit_layer.activation.piecewise_linear)
    return PixelView(grounding.units, grounding.w_eff[0], grounding.embeddings(pixels)[0],
                     grounding.b_eff[0].astype(np.float64), pre.numpy(), slopes, exact)


@dataclass(frozen=True)
class CombinedEmbedding:
    """The embeddings of a set ``S`` of units, weighted by their output weights to class ``cls``.

    With ``a[u] = W[cls, u] * slope[u]`` (for ReLU: ``W[cls, u]`` when unit u
    is active, ``h[u] > 0``, and 0 when it is not: an inactive unit has no
    effect, whatever its embedding)::

        map  = sum_{u in S} a[u] * (x ⊙ w_eff_u(x))      float64 [28, 28]
        bias = sum_{u in S} a[u] * b_eff_u(x)            float64

    For piecewise-linear networks a unit's activation is ``slope * pre``, so
    ``map.sum() + bias`` equals ``total_effect = sum_{u in S} effect[cls, u]``
    exactly (``exact``). With ``S`` = every unit, ``map.sum() + bias + b[cls]``
    is the logit: ``map`` is then the logit spread over the pixels that
    caused it. With smooth activations it is gradient x input, and
    ``residual`` is what it misses.
    """

    cls: int
    units: np.ndarray
    map: np.ndarray
    bias: float
    total_effect: float
    exact: bool = True

    @property
    def residual(self) -> float:
        """``total_effect - (map.sum() + bias)``: zero up to rounding when ``exact``."""
        return float(self.total_effect - (self.map.sum() + self.bias))


def combined_embedding(effects: LogitEffects, view: PixelView, cls: int) -> CombinedEmbedding:
    """Combine the units of ``view`` into one map for class ``cls`` (see ``CombinedEmbedding``)."""
    cls = _check_class(cls, effects.n_classes)
    units = view.units
    coefficients = effects.weight[cls, units] * view.slopes  # [K]
    combined = np.tensordot(coefficients, view.maps.astype(np.float64), axes=1)
    return CombinedEmbedding(
        cls=cls,
        units=units,
        map=combined,
        bias=float(coefficients @ view.bias),
        total_effect=float(effects.unit_effects[cls, units].sum()),
        exact=view.exact,
    )


@dataclass(frozen=True)
class ImportantUnit:
    """One important unit for a class, with everything the page shows about it."""

    unit: int
    activation: float
    output_weight: float
    effect: float
    share: float


@dataclass(frozen=True)
class ClassExplanation:
    """Why the model gives class ``cls`` its logit on one image.

    ``units``: the important units, largest |effect| first. ``pixels``: their
    input weights and embeddings; ``combined``/``combined_all``: their
    combined embedding and that of every unit; all three are ``None`` when
    the units cannot be grounded in pixel space, with ``pixels_note`` saying why.
    """

    cls: int
    share: float
    units: list[ImportantUnit]
    pixels: PixelView | None
    combined: CombinedEmbedding | None
    combined_all: CombinedEmbedding | None
    pixels_note: str = ""


def explain_class(
    model: MNISTNet, image: np.ndarray, effects: LogitEffects, cls: int, share: float = DEFAULT_SHARE
) -> ClassExplanation:
    """Important units for class ``cls`` on ``image`` (whose ``effects`` were computed by ``logit_effects``)."""
    cls = _check_class(cls, effects.n_classes)
    chosen = important_units(effects, cls, share)
    shares = effects.shares(cls)
    units = [
        ImportantUnit(
            unit=int(u),
            activation=float(effects.activations[u]),
            output_weight=float(effects.weight[cls, u]),
            effect=float(effects.unit_effects[cls, u]),
            share=float(shares[u]),
        )
        for u in chosen
    ]
    try:
        everything = pixel_view(model, image, np.arange(effects.layer.n_units))
    except MechMNISTicError as exc:
        return ClassExplanation(cls, share, units, None, None, None, str(exc))
    view = everything.rows(chosen)
    return ClassExplanation(
        cls,
        share,
        units,
        view,
        combined_embedding(effects, view, cls),
        combined_embedding(effects, everything, cls),
    )
