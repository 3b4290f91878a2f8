"""Architectures, configs, cards, safe weight files and the model zoo."""

from .architectures import HookPoint, MNISTNet, build_model
from .card import ModelCard
from .config import (
    ConfigError,
    NetConfig,
    Normalization,
    cnn_config,
    config_from_dict,
    config_to_dict,
    mlp_config,
)
from .importer import ImportPlan, MissingAnswerError, UnsupportedModelError, import_model, read_for_import
from .layout import Layout, UnitError, UnitLayer
from .weights_io import MAX_WEIGHTS_BYTES, WeightsFileError, read_state_dict
from .zoo import (
    DEFAULT_MODEL,
    ModelExistsError,
    ModelLoadError,
    ModelNotFoundError,
    list_models,
    load_card,
    load_model,
    model_dir,
    model_from_state_dict,
    save_model,
    validate_name,
)

__all__ = [
    "HookPoint", "MNISTNet", "build_model", "ModelCard", "NetConfig", "ConfigError", "mlp_config", "cnn_config",
    "Layout", "UnitLayer", "UnitError", "Normalization", "config_from_dict", "config_to_dict", "MAX_WEIGHTS_BYTES",
    "WeightsFileError",
    "read_state_dict", "DEFAULT_MODEL", "ModelLoadError", "ModelNotFoundError", "list_models", "load_card",
    "load_model", "model_dir", "model_from_state_dict", "save_model", "validate_name", "ModelExistsError",
    "ImportPlan", "MissingAnswerError", "UnsupportedModelError", "import_model", "read_for_import",
]
