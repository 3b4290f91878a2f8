"""MNIST networks written the way tutorials, courses and users write them, briefly trained, for the importer.

Each ``UserNetwork`` builds a PyTorch module as its authors would (an
``nn.Sequential``, or attributes called in ``forward``), trains it for a few
hundred Adam steps on real MNIST digits (seconds; about 90% accuracy), and
says what its code has that a state dict does not record (``truth``: the
flags that describe it). MechMNISTic's logits are the values before a final
softmax or log-softmax, which its models leave out: ``expected`` applies it
to them again, to compare with the module's own output.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mechmnistic.data import load_mnist
from mechmnistic.hooks import to_pixels


class OfficialExample(nn.Module):
    """The official PyTorch MNIST example's ``Net`` (pytorch/examples, mnist/main.py)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


class OlderExample(nn.Module):
    """The example's earlier ``Net``: pooling written before the ReLU, ``Dropout2d``, ``x.view(-1, 320)``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.dropout(F.relu(self.fc1(x)), training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


class AttributeBatchNormCNN(nn.Module):
    """Attributes conv1, bn1, ...: conv (no bias) -> BatchNorm -> ReLU -> average pooling."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 5, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 5, bias=False), nn.BatchNorm2d(16)
        self.fc1, self.fc2 = nn.Linear(16 * 4 * 4, 32), nn.Linear(32, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.avg_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def lenet5() -> nn.Module:
    """LeNet-5 as courses write it: 5x5 convolutions, the first padded to keep 28x28, tanh, average pooling."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    )


def batchnorm_cnn() -> nn.Module:
    """conv -> BatchNorm -> ReLU -> max-pool, padded 3x3 convolutions, BatchNorm1d in the classifier."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 7 * 7, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10),
    )


def strided_cnn() -> nn.Module:
    """An all-convolutional net: stride-2 padded convolutions instead of pooling."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def silu_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.SiLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 12 * 12, 10))


def tanh_mlp() -> nn.Module:
    """The issue's own example: a tanh MLP, which a state dict cannot tell from a ReLU one."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.Tanh(), nn.Linear(100, 10))


def gelu_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.GELU(), nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 10))


def elu_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ELU(), nn.Dropout(0.2), nn.Linear(64, 64), nn.ELU(),
                         nn.Linear(64, 10))


def sigmoid_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.Sigmoid(), nn.Linear(64, 10))


def leaky_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.LeakyReLU(0.1), nn.Linear(64, 10))


@dataclass(frozen=True)
class UserNetwork:
    """A network as users write it: its module factory, what its code says that a state dict does not
    (``truth``), and what must be said up front because it is never guessed (``given``)."""

    name: str
    factory: Callable[[], nn.Module]
    truth: dict[str, str]
    given: dict[str, str] = field(default_factory=dict)
    steps: int = 300
    ends_in: str | None = None  # "log_softmax" when its forward ends in one

    def comparable(self, logits: torch.Tensor) -> torch.Tensor:
        """MechMNISTic's logits as the module's forward returns them (with its final log-softmax, if any)."""
        return torch.log_softmax(logits, dim=1) if self.ends_in == "log_softmax" else logits

    def trained(self) -> nn.Module:
        torch.manual_seed(0)
        module = self.factory()
        return train_briefly(module, self.steps)

    def flags(self, keys) -> dict[str, str]:
        """The true answers to the questions ``keys``."""
        return {key: self.truth[key] for key in keys if key in self.truth}


NETWORKS = [
    UserNetwork("official-example", OfficialExample,
                {"activation": "relu", "pool": "none,max2", "padding": "0,0", "stride": "1,1"}, steps=100,
                ends_in="log_softmax"),
    UserNetwork("older-example", OlderExample,
                {"activation": "relu", "pool": "max2,max2", "padding": "0,0", "stride": "1,1"}, ends_in="log_softmax"),
    UserNetwork("lenet5-padded", lenet5,
                {"activation": "tanh", "pool": "avg2,avg2", "padding": "2,0", "stride": "1,1"}),
    UserNetwork("batchnorm-cnn", batchnorm_cnn,
                {"activation": "relu", "pool": "max2,max2", "padding": "1,1", "stride": "1,1"}),
    UserNetwork("attribute-batchnorm-cnn", AttributeBatchNormCNN,
                {"activation": "relu", "pool": "avg2,avg2", "padding": "0,0", "stride": "1,1"}),
    UserNetwork("strided-cnn", strided_cnn,
                {"activation": "relu", "pool": "none,none", "padding": "1,1", "stride": "2,2"}),
    UserNetwork("silu-cnn", silu_cnn, {"activation": "silu", "pool": "max2", "padding": "0", "stride": "1"}),
    UserNetwork("tanh-mlp", tanh_mlp, {"activation": "tanh"}),
    UserNetwork("gelu-mlp", gelu_mlp, {"activation": "gelu"}),
    UserNetwork("elu-mlp", elu_mlp, {"activation": "elu"}),
    UserNetwork("sigmoid-mlp", sigmoid_mlp, {"activation": "sigmoid"}),
    # LeakyReLU's slope is in no state dict and it scores like ReLU: it is said, never guessed.
    UserNetwork("leaky-mlp", leaky_mlp, {"activation": "leaky_relu(0.1)"}, given={"activation": "leaky_relu(0.1)"}),
]
BY_NAME = {network.name: network for network in NETWORKS}


def train_briefly(module: nn.Module, steps: int, batch: int = 64, seed: int = 0) -> nn.Module:
    """A few hundred Adam steps on the first 20,000 training digits (pixels in [0, 1]); returns it in eval mode."""
    train = load_mnist("train")
    images = to_pixels(train.images[:20000]).unsqueeze(1)
    labels = torch.from_numpy(train.labels[:20000].astype("int64"))
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(module.parameters(), 2e-3)
    module.train()
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch,), generator=generator)
        loss = F.cross_entropy(module(images[index]), labels[index])  # a final log-softmax changes nothing
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return module.eval()


def onnx_bytes(module: nn.Module, fold_constants: bool = True) -> bytes:
    """The module exported as users export it: ``torch.onnx.export`` with a dynamic batch axis."""
    buffer = io.BytesIO()
    torch.onnx.export(module, (torch.zeros(1, 1, 28, 28),), buffer, dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=20,
                      do_constant_folding=fold_constants)
    return buffer.getvalue()


def state_dict_bytes(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()
