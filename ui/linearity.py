"""How a page words a grounding: exact for piecewise-linear networks, a labelled approximation otherwise.

With ReLU or LeakyReLU (and max or average pooling) a network is linear on
each input's pattern, so effective weights and Hadamard embeddings add up
exactly to a unit's pre-activation. With tanh, sigmoid, ELU, GELU or SiLU the
same construction is the gradient x input approximation: pages say so, and
show the residual beside it, never the word "exact".
"""

from __future__ import annotations

from mechmnistic.models.architectures import MNISTNet


def approximation_note(model: MNISTNet) -> str:
    """One sentence for a page whose numbers rest on a non-piecewise-linear network ("" when it is)."""
    smooth = [label for label in model.layout.nonlinearities() if not label.startswith(("relu", "leaky_relu"))]
    if not smooth:
        return ""
    return (f"With {', '.join(smooth)} activations this network is not linear on an input's pattern: effective "
            "weights are the gradient with respect to the pixels, and an embedding's sum plus the effective bias is "
            "the local linear approximation (gradient × input) of a unit's pre-activation, not the value itself; "
            "the residual (value minus approximation) is shown beside it.")


def identity(exact: bool, approximation: float, value: float, what: str = "the forward pass") -> str:
    """``"... gives value (difference 1e-7)"`` when ``exact``, else the value and the approximation's residual."""
    if exact:
        return f"{what} gives {value:+.4g} (difference {abs(approximation - value):.1e})"
    return (f"{what} gives {value:+.4g}: this is the local linear approximation, and its residual is "
            f"{value - approximation:+.4g}")
