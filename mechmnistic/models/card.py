"""Model cards: everything a user needs to trust and reproduce a model, as JSON.

``models/<name>/card.json`` records the architecture (the config, including the
input normalisation), the labelling function the model was trained on, the
training config and seed, test metrics, and the SHA-256 of the weights file it
belongs to. The card is written after the weights, so a model whose card is
missing or names other weights is never trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, NetConfig, config_from_dict, config_to_dict

CARD_VERSION = 1


@dataclass
class ModelCard:
    name: str
    config: NetConfig
    weights_sha256: str
    description: str = ""
    label_function: dict[str, Any] = field(default_factory=lambda: {"name": "digits"})
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str = "trained"
    created: str = ""

    @property
    def arch(self) -> str:
        return self.config.arch

    def to_dict(self) -> dict[str, Any]:
        return {
            "card_version": CARD_VERSION,
            "name": self.name,
            "description": self.description,
            "architecture": config_to_dict(self.config),
            "architecture_summary": self.config.describe(),
            "label_function": self.label_function,
            "training": self.training,
            "metrics": self.metrics,
            "weights_sha256": self.weights_sha256,
            "source": self.source,
            "created": self.created,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        if not isinstance(data, dict):
            raise ConfigError("a model card must be a JSON object")
        try:
            return cls(
                name=str(data["name"]),
                config=config_from_dict(data["architecture"]),
                weights_sha256=str(data["weights_sha256"]),
                description=str(data.get("description", "")),
                label_function=dict(data.get("label_function") or {"name": "digits"}),
                training=dict(data.get("training") or {}),
                metrics=dict(data.get("metrics") or {}),
                source=str(data.get("source", "trained")),
                created=str(data.get("created", "")),
            )
        except KeyError as exc:
            raise ConfigError(f"model card lacks the field {exc.args[0]!r}") from None

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model card is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @property
    def headline_metric(self) -> tuple[str, float] | None:
        """The metric to show first: test accuracy on the model's own labels."""
        value = self.metrics.get("test_accuracy")
        return ("test accuracy", float(value)) if value is not None else None
