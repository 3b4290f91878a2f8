"""MechMNISTic: a workbench for reverse-engineering small networks trained on MNIST.

The public API (what notebooks, the CLI and the app all use) is listed in
``__all__``; see the README's Python section for a tour.
"""

__version__ = "0.1.0"

from .analysis.logit_effects import explain_class, logit_effects
from .data import MNIST, MNISTDataError, ensure_mnist, load_mnist, load_mnist_float
from .hooks import ActivationCache, hooks, predict, run_with_cache, to_pixels
from .models import (
    Layout,
    ModelCard,
    ModelLoadError,
    ModelNotFoundError,
    NetConfig,
    Normalization,
    WeightsFileError,
    build_model,
    cnn_config,
    import_model,
    list_models,
    load_card,
    load_model,
    mlp_config,
    save_model,
)

__all__ = [
    "__version__",
    "MNIST",
    "MNISTDataError",
    "ensure_mnist",
    "load_mnist",
    "load_mnist_float",
    "ActivationCache",
    "hooks",
    "predict",
    "run_with_cache",
    "to_pixels",
    "logit_effects",
    "explain_class",
    "Layout",
    "ModelCard",
    "ModelLoadError",
    "ModelNotFoundError",
    "NetConfig",
    "Normalization",
    "WeightsFileError",
    "build_model",
    "cnn_config",
    "import_model",
    "list_models",
    "load_card",
    "load_model",
    "mlp_config",
    "save_model",
]
