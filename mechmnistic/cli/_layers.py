"""The command line's one door to a model's layer layout.

Every question the commands ask about how a model's layers are arranged (is
this layer conv, does it read pixels, which layer feeds the output) goes
through here, so that when the layout helpers of ``mechmnistic.analysis``
give way to ``model.layout`` only this file changes. Checking a layer name and
a unit index is left to the analysis API (``units.check_hidden_layer``,
``units.check_units``), which every command calls.
"""

from __future__ import annotations

from ..models.architectures import MNISTNet


def is_conv(model: MNISTNet, layer: str) -> bool:
    """Whether ``layer`` is a conv layer (its units are channels)."""
    from ..analysis.activations import is_conv as layer_is_conv

    return layer_is_conv(model, layer)


def reads_pixels(model: MNISTNet, layer: str) -> bool:
    """Whether ``layer`` is the model's first layer, reading the input pixels."""
    return layer == model.layer_names[0]


def attributed_layer(model: MNISTNet) -> tuple[str, str]:
    """``(layer, hook)`` whose activations feed the output layer (direct logit attribution's layer)."""
    from ..analysis.attribution import attributed_layer as feeding_layer

    return feeding_layer(model)
