"""ONNX files as data: a graph's nodes mapped onto the layer model, its initializers onto a state dict.

An ``.onnx`` file is a protobuf that records the computation itself, so
users of Keras/TensorFlow (``tf2onnx``), JAX or PyTorch can bring a model
without anything being guessed. It is parsed with the ``onnx`` package as
data and never executed. Files are refused before anything is built when
they are too big, are not a valid protobuf, hold functions, control flow or
operators of another domain, declare a tensor larger than the weights limit,
or keep tensors in *external data* (a path that could point anywhere on the
disk: never followed).

The graph must be one chain from its input to its output, as a
``nn.Sequential`` is. Mapped onto layers: ``Conv`` (square kernel, equal
strides, symmetric padding, no dilation or groups), ``Gemm`` and ``MatMul``
(+ ``Add`` of a bias), ``BatchNormalization``, ``Relu``, ``LeakyRelu``,
``Elu``, ``Gelu``, ``Sigmoid`` followed by ``Mul`` with its input (SiLU),
``Tanh``, ``Sigmoid``, ``MaxPool``, ``AveragePool``, ``Flatten`` and a
``Reshape`` that flattens (including the ``Shape``/``Gather``/``Concat``
arithmetic ``x.view(x.size(0), -1)`` exports to, which is evaluated here),
``Dropout``, ``Identity``, and a final ``Softmax``/``LogSoftmax``. An input
normalisation written as ``Sub``/``Div`` (or ``Mul``/``Add``) with scalars
before the first layer becomes the model's normalisation. Keras' channels-last
layout (``Transpose`` to NCHW after the input, and back before flattening) is
undone: the first is a no-op on one channel, the second a fixed permutation
folded into the next Linear layer's weights. Anything else (a residual
``Add``, a ``Concat`` of activations, custom domains) is refused, naming the
node and its operator.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import (
    Activation,
    BatchNorm,
    ConfigError,
    Conv2d,
    Flatten,
    LayerSpec,
    Linear,
    NetConfig,
    Normalization,
    Output,
    Pool,
)
from .recognise import UnsupportedModelError
from .weights_io import MAX_WEIGHTS_BYTES, WeightsFileError

#: No tensor may declare more elements than the weights limit holds as float32.
MAX_ELEMENTS = MAX_WEIGHTS_BYTES // 4
_VALID_NAME = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
_ACTIVATION_OPS = {"Relu": "relu", "LeakyRelu": "leaky_relu", "Elu": "elu", "Gelu": "gelu", "Tanh": "tanh",
                   "Sigmoid": "sigmoid"}
_SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Constant", "Range"}
_PASS_THROUGH = {"Dropout", "Identity"}


def read_onnx(path: str | os.PathLike, data: bytes | None = None) -> tuple[dict, NetConfig, list[str], str, str]:
    """``(state dict, config as imported, notes, naming, SHA-256)`` of an ONNX file (or ``data`` named by ``path``).

    Raises ``WeightsFileError`` / ``UnsupportedModelError`` naming the file and the problem.
    """
    name = Path(path).name
    if data is None:
        if not Path(path).is_file():
            raise WeightsFileError(f"{path}: no such file")
        size = Path(path).stat().st_size
        _check_size(name, size)
        data = Path(path).read_bytes()
    _check_size(name, len(data))
    model = _parse(name, data)
    graph = _Graph(name, model)
    state, config, notes = graph.convert()
    return state, config, notes, graph.naming(), hashlib.sha256(data).hexdigest()


def _check_size(name: str, size: int) -> None:
    if size == 0:
        raise WeightsFileError(f"{name}: the file is empty")
    if size > MAX_WEIGHTS_BYTES:
        raise WeightsFileError(f"{name}: {size / 2**20:.1f} MiB is over the {MAX_WEIGHTS_BYTES // 2**20} MiB limit")


def _parse(name: str, data: bytes):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(data)  # never loads external data: that happens only from a path
    except (DecodeError, ValueError, RuntimeError, TypeError) as exc:
        raise WeightsFileError(f"{name}: not a valid ONNX file (a protobuf could not be read): {exc}"[:300]) from None
    if not model.HasField("graph") or not model.graph.node:
        raise WeightsFileError(f"{name}: not a valid ONNX file: it holds no graph")
    if model.functions:
        raise UnsupportedModelError(f"{name}: the ONNX file defines functions ({model.functions[0].name}); only "
                                    "plain graphs of standard operators are read")
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise UnsupportedModelError(f"{name}: the ONNX file imports operator domain {opset.domain!r}; only the "
                                        "standard domain is read")
    return model


@dataclass
class _Layer:
    spec: LayerSpec
    params: dict[str, np.ndarray] = field(default_factory=dict)


class _Graph:
    """One pass over the nodes in order, following the data path from the input."""

    def __init__(self, source: str, model) -> None:
        self.source = source
        self.model = model
        self.graph = model.graph
        self.constants: dict[str, np.ndarray] = {}
        for tensor in self.graph.initializer:
            self.constants[tensor.name] = self._array(tensor, f"initializer {tensor.name!r}")
        self.consumers: dict[str, list] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.layers: list[_Layer] = []
        self.notes: list[str] = []
        self.names_from: set[str] = set()
        self.used_names: set[str] = set()
        self.normalization = Normalization()
        self.pending_permutation: tuple[int, int, int] | None = None  # (C, H, W) of a channels-last flatten

    # -- tensors --------------------------------------------------------------------------------------
    def _array(self, tensor, what: str) -> np.ndarray:
        from onnx import TensorProto, numpy_helper

        if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
            raise UnsupportedModelError(
                f"{self.source}: {what} is stored as external data (a file elsewhere on the disk); such files are "
                "refused: external data can point anywhere. Save the model with its weights inside the file"
            )
        count = math.prod(tensor.dims) if tensor.dims else 1
        if count > MAX_ELEMENTS or any(d < 0 for d in tensor.dims):
            raise UnsupportedModelError(f"{self.source}: {what} declares {count:,} elements, over the limit of "
                                        f"{MAX_ELEMENTS:,}")
        try:
            array = numpy_helper.to_array(tensor)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise WeightsFileError(f"{self.source}: {what} cannot be read: {exc}"[:300]) from None
        if array.size != count:
            raise WeightsFileError(f"{self.source}: {what} holds {array.size} values, not the {count} it declares")
        return array

    def _constant(self, name: str, node) -> np.ndarray:
        if name not in self.constants:
            raise UnsupportedModelError(self._refusal(node, f"its input {name!r} is neither the data nor a constant"))
        return self.constants[name]

    def _refusal(self, node, why: str) -> str:
        return f"{self.source}: node {node.name or '(unnamed)'} ({node.op_type}) is not supported: {why}"

    # -- the walk ---------------------------------------------------------------------------------------
    def convert(self) -> tuple[dict[str, torch.Tensor], NetConfig, list[str]]:
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise UnsupportedModelError(f"{self.source}: the graph has {len(inputs)} inputs; one image input is "
                                        "expected")
        current = inputs[0].name
        shape = self._input_shape(inputs[0])
        skip: set[int] = set()
        for index, node in enumerate(self.graph.node):
            if index in skip:
                continue
            on_path = current in node.input
            if node.op_type in _SHAPE_OPS and (not on_path or node.op_type == "Shape"):
                self._fold_shape_node(node, current, shape)
                continue
            if not on_path:
                raise UnsupportedModelError(self._refusal(node, "it does not read the data path (the graph must be "
                                                                "one chain, like an nn.Sequential)"))
            if list(node.input).count(current) > 1:
                raise UnsupportedModelError(self._refusal(node, "it reads the data path twice (x + x, x * x)"))
            users = list({id(n): n for n in self.consumers.get(current, []) if n.op_type != "Shape"}.values())
            if len(users) > 1 and not self._silu_pair(current):
                other = next(n for n in users if n is not node)
                raise UnsupportedModelError(self._refusal(
                    node, f"the data also flows to {other.name or other.op_type} ({other.op_type}): a branch or a "
                    "residual connection"))
            shape, current, consumed = self._node(index, node, current, shape)
            skip |= consumed
        outputs = [o.name for o in self.graph.output]
        if outputs != [current]:
            raise UnsupportedModelError(f"{self.source}: the graph's output is not the end of its chain of layers")
        return self._finish(shape)

    def _silu_pair(self, current: str) -> bool:
        """Whether the data flows into exactly ``Sigmoid`` and ``Mul`` (SiLU: x * sigmoid(x))."""
        kinds = sorted(n.op_type for n in self.consumers.get(current, []) if n.op_type != "Shape")
        return kinds == ["Mul", "Sigmoid"]

    def _input_shape(self, value) -> tuple[int, ...]:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        per_example = tuple(dims[1:])
        if per_example in ((1, 28, 28), (28, 28, 1), (784,), (28, 28)):
            if per_example == (784,):
                self.layers.append(_Layer(Flatten()))
                return (784,)
            return (1, 28, 28)
        raise UnsupportedModelError(f"{self.source}: the input has shape {dims}; expected [N, 1, 28, 28], "
                                    "[N, 28, 28, 1], [N, 28, 28] or [N, 784] (a batch of MNIST images)")

    def _fold_shape_node(self, node, current: str, shape: tuple[int, ...]) -> None:
        """Evaluate shape arithmetic on constants (and on ``Shape`` of the data, batch size 1)."""
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            from onnx import numpy_helper

            if "value" not in attrs:
                raise UnsupportedModelError(self._refusal(node, "only tensor constants are read"))
            self.constants[node.output[0]] = numpy_helper.to_array(attrs["value"])
            return
        if node.op_type == "Shape":
            if node.input[0] != current:
                raise UnsupportedModelError(self._refusal(node, "it reads a tensor off the data path"))
            self.constants[node.output[0]] = np.array((1, *shape), dtype=np.int64)
            return
        values = [self._constant(name, node) for name in node.input if name]
        op = node.op_type
        try:
            if op == "Gather":
                result = np.take(values[0], values[1], axis=attrs.get("axis", 0))
            elif op == "Unsqueeze":
                axes = attrs.get("axes", values[1] if len(values) > 1 else [0])
                result = np.expand_dims(values[0], tuple(int(a) for a in np.atleast_1d(axes)))
            elif op == "Squeeze":
                axes = attrs.get("axes", values[1] if len(values) > 1 else None)
                result = np.squeeze(values[0], None if axes is None else tuple(int(a) for a in np.atleast_1d(axes)))
            elif op == "Concat":
                result = np.concatenate([np.atleast_1d(v) for v in values], axis=attrs.get("axis", 0))
            elif op == "Slice":
                starts, ends = values[1], values[2]
                axes = values[3] if len(values) > 3 else np.arange(len(starts))
                steps = values[4] if len(values) > 4 else np.ones(len(starts), np.int64)
                index = [slice(None)] * values[0].ndim
                for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
                    index[int(a)] = slice(int(s), int(min(e, 2**62)), int(st))
                result = values[0][tuple(index)]
            elif op == "Cast":
                result = values[0]
            else:  # Range
                result = np.arange(values[0], values[1], values[2])
        except (IndexError, ValueError, TypeError) as exc:
            raise UnsupportedModelError(self._refusal(node, f"its shape arithmetic failed: {exc}")) from None
        self.constants[node.output[0]] = np.asarray(result)

    def _node(self, index: int, node, current: str, shape: tuple[int, ...]) -> tuple[tuple[int, ...], str, set[int]]:
        """Map one node on the data path; returns the new shape, the new data tensor and nodes it consumed."""
        from onnx import helper

        op = node.op_type
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        out = node.output[0]
        if op in _PASS_THROUGH:
            if op == "Dropout" and len(node.output) > 1 and node.output[1] in self.consumers:
                raise UnsupportedModelError(self._refusal(node, "its mask output is used"))
            return shape, out, set()
        if op == "Conv":
            return self._conv(node, attrs, current, shape), out, set()
        if op == "Gemm":
            return self._gemm(node, attrs, current, shape), out, set()
        if op == "MatMul":
            return self._matmul(index, node, current, shape)
        if op == "BatchNormalization":
            return self._batchnorm(node, attrs, shape), out, set()
        if op == "Sigmoid" and self._silu_pair(current):
            mul = next(n for n in self.consumers[current] if n.op_type == "Mul")
            if sorted(mul.input) != sorted([current, out]):
                raise UnsupportedModelError(self._refusal(mul, "only x * sigmoid(x) (SiLU) is read"))
            self._add(Activation("silu", name=self._display_name(node)))
            return shape, mul.output[0], {list(self.graph.node).index(mul)}
        if op in _ACTIVATION_OPS:
            self._add(self._activation(node, attrs))
            return shape, out, set()
        if op in ("MaxPool", "AveragePool"):
            return self._pool(node, attrs, shape), out, set()
        if op == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise UnsupportedModelError(self._refusal(node, "only flattening after the batch axis (axis 1)"))
            return self._flatten(shape), out, set()
        if op == "Reshape":
            return self._reshape(node, current, shape), out, set()
        if op == "Transpose":
            return self._transpose(node, attrs, shape), out, set()
        if op in ("Softmax", "LogSoftmax"):
            if attrs.get("axis", -1) not in (-1, 1) or len(shape) != 1:
                raise UnsupportedModelError(self._refusal(node, "only a softmax over the classes at the end"))
            self._add(Output("softmax" if op == "Softmax" else "log_softmax", name=self._display_name(node)))
            return shape, out, set()
        if op in ("Sub", "Div", "Mul", "Add") and not any(isinstance(layer.spec, Linear | Conv2d)
                                                         for layer in self.layers):
            self._normalize(node, current)
            return shape, out, set()
        if op == "Add":
            raise UnsupportedModelError(self._refusal(node, "an Add on the data path after the first layer (a "
                                                            "residual connection or a stray bias)"))
        raise UnsupportedModelError(self._refusal(node, "MechMNISTic reads Conv, Gemm, MatMul, BatchNormalization, "
                                                        "activations, pooling, Flatten/Reshape, Dropout and a final "
                                                        "Softmax"))

    # -- layers ---------------------------------------------------------------------------------------
    def _add(self, spec: LayerSpec, params: dict[str, np.ndarray] | None = None) -> None:
        self.layers.append(_Layer(spec, params or {}))

    def _layer_name(self, node, weight_name: str, prefix: str) -> str:
        """The user's name: the weight's own (``conv1.weight`` -> ``conv1``), else from the node's path
        (``/features/features.0/Conv`` -> ``features.0``), else ``conv1``, ``fc1``, ..."""
        parts = [p for p in (node.name or "").split("/") if p]
        options = []
        if weight_name.endswith(".weight"):
            options.append((weight_name[: -len(".weight")], "weights"))
        if len(parts) >= 2:
            options.append((parts[-2], "nodes"))
        for candidate, origin in options:
            if _VALID_NAME.match(candidate) and candidate not in self.used_names:
                self.names_from.add(origin)
                self.used_names.add(candidate)
                return candidate
        count = 1
        while f"{prefix}{count}" in self.used_names:
            count += 1
        self.names_from.add("generated")
        self.used_names.add(f"{prefix}{count}")
        return f"{prefix}{count}"

    def _display_name(self, node) -> str:
        name = re.sub(r"[^A-Za-z0-9_.]+", "_", node.name or "").strip("_.")
        return name[:60]

    def _conv(self, node, attrs: dict, current: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        weight = self._constant(node.input[1], node)
        bias = self._constant(node.input[2], node) if len(node.input) > 2 and node.input[2] else None
        if weight.ndim != 4 or len(shape) != 3:
            raise UnsupportedModelError(self._refusal(node, "only 2-D convolutions of [C, H, W] maps"))
        out_ch, in_ch, kh, kw = weight.shape
        strides = list(attrs.get("strides", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise UnsupportedModelError(self._refusal(node, "auto_pad other than NOTSET or VALID"))
        if kh != kw or len(set(strides)) != 1 or len(set(pads)) != 1:
            raise UnsupportedModelError(self._refusal(node, "only square kernels with equal strides and padding on "
                                                            "every side"))
        if set(attrs.get("dilations", [1, 1])) != {1} or attrs.get("group", 1) != 1:
            raise UnsupportedModelError(self._refusal(node, "dilated or grouped convolutions"))
        name = self._layer_name(node, node.input[1], "conv")
        spec = Conv2d(name, int(in_ch), int(out_ch), int(kh), int(strides[0]), int(pads[0]), bias is not None)
        params = {"weight": weight}
        if bias is not None:
            params["bias"] = bias.reshape(-1)
        self._add(spec, params)
        return _after(spec, shape, self.source)

    def _linear(self, node, weight: np.ndarray, bias: np.ndarray | None, weight_name: str,
                shape: tuple[int, ...]) -> tuple[int, ...]:
        """``weight`` ``[out, in]`` as the user's layer computes it on the (flat) data."""
        if len(shape) != 1:
            raise UnsupportedModelError(self._refusal(node, "a fully connected layer on an unflattened map"))
        if self.pending_permutation is not None:
            channels, height, width = self.pending_permutation
            # The file flattened channels-last (h, w, c); this model flattens channel-first (c, h, w).
            order = np.arange(channels * height * width).reshape(height, width, channels).transpose(2, 0, 1)
            weight = weight[:, order.reshape(-1)]
            self.pending_permutation = None
            self.notes.append("a channels-last flatten (Keras) was folded into the next layer's weights")
        name = self._layer_name(node, weight_name, "fc")
        spec = Linear(name, int(weight.shape[1]), int(weight.shape[0]), bias is not None)
        params = {"weight": weight}
        if bias is not None:
            params["bias"] = np.broadcast_to(bias.reshape(-1), (weight.shape[0],)).copy()
        self._add(spec, params)
        return _after(spec, shape, self.source)

    def _gemm(self, node, attrs: dict, current: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        if node.input[0] != current or attrs.get("transA", 0):
            raise UnsupportedModelError(self._refusal(node, "only data x weight (no transposed data)"))
        weight = self._constant(node.input[1], node).astype(np.float64)
        weight = weight if attrs.get("transB", 0) else weight.T
        weight = weight * float(attrs.get("alpha", 1.0))
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias = self._constant(node.input[2], node).astype(np.float64) * float(attrs.get("beta", 1.0))
        return self._linear(node, weight, bias, node.input[1], shape)

    def _matmul(self, index: int, node, current: str, shape: tuple[int, ...]) -> tuple[tuple[int, ...], str, set]:
        if node.input[0] != current:
            raise UnsupportedModelError(self._refusal(node, "only data x weight"))
        weight = self._constant(node.input[1], node).astype(np.float64).T  # [in, out] -> [out, in]
        if weight.ndim != 2:
            raise UnsupportedModelError(self._refusal(node, "only a 2-D weight"))
        out, bias, consumed = node.output[0], None, set()
        users = self.consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == "Add":
            add = users[0]
            other = [name for name in add.input if name != out]
            if len(other) == 1 and other[0] in self.constants:
                bias = self.constants[other[0]].astype(np.float64)
                out = add.output[0]
                consumed = {list(self.graph.node).index(add)}
        return self._linear(node, weight, bias, node.input[1], shape), out, consumed

    def _batchnorm(self, node, attrs: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
        scale, beta, mean, var = (self._constant(name, node) for name in node.input[1:5])
        if len(node.output) > 1 and any(o in self.consumers for o in node.output[1:]):
            raise UnsupportedModelError(self._refusal(node, "batch normalisation in training mode"))
        base = node.input[1][: -len(".weight")] if node.input[1].endswith(".weight") else ""
        name = base if _VALID_NAME.match(base) and base not in self.used_names else self._layer_name(node, "", "bn")
        self.used_names.add(name)
        spec = BatchNorm(name, int(mean.size), float(attrs.get("epsilon", 1e-5)))
        self._add(spec, {"weight": scale, "bias": beta, "running_mean": mean, "running_var": var})
        return _after(spec, shape, self.source)

    def _activation(self, node, attrs: dict) -> Activation:
        function = _ACTIVATION_OPS[node.op_type]
        name = self._display_name(node)
        if function == "leaky_relu":
            return Activation(function, negative_slope=float(attrs.get("alpha", 0.01)), name=name)
        if function == "elu":
            return Activation(function, alpha=float(attrs.get("alpha", 1.0)), name=name)
        if function == "gelu":
            approximate = attrs.get("approximate", b"none")
            approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
            return Activation(function, approximate=approximate, name=name)
        return Activation(function, name=name)

    def _pool(self, node, attrs: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
        kernel = list(attrs.get("kernel_shape", []))
        strides = list(attrs.get("strides", [1] * len(kernel)))
        pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
        if len(kernel) != 2 or kernel[0] != kernel[1] or len(set(strides)) != 1 or len(set(pads)) != 1:
            raise UnsupportedModelError(self._refusal(node, "only square pooling with equal strides and padding"))
        if attrs.get("ceil_mode", 0) or set(attrs.get("dilations", [1, 1])) != {1}:
            raise UnsupportedModelError(self._refusal(node, "ceil_mode or dilation"))
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise UnsupportedModelError(self._refusal(node, "auto_pad other than NOTSET or VALID"))
        kind = "max" if node.op_type == "MaxPool" else "avg"
        if kind == "max" and len(node.output) > 1 and node.output[1] in self.consumers:
            raise UnsupportedModelError(self._refusal(node, "its indices output is used"))
        if kind == "avg" and pads[0] and not attrs.get("count_include_pad", 0):
            raise UnsupportedModelError(self._refusal(node, "average pooling with padding that does not count the "
                                                            "padding (count_include_pad=0)"))
        spec = Pool(kind, int(kernel[0]), int(strides[0]), int(pads[0]), name=self._display_name(node))
        self._add(spec)
        return _after(spec, shape, self.source)

    def _flatten(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        self._add(Flatten())
        return (math.prod(shape),)

    def _reshape(self, node, current: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        target = [int(v) for v in np.atleast_1d(self._constant(node.input[1], node))]
        rest = target[1:]
        if not any(isinstance(layer.spec, Linear | Conv2d) for layer in self.layers):
            if rest in ([784], [-1], [1, 28, 28], [28, 28, 1], [28, 28]):
                return self._input_reshape(rest, shape)
        # x.view(x.size(0), -1) and x.view(-1, count): the batch axis (-1, or 1 as the shape arithmetic
        # evaluated it) and everything else in one.
        if len(target) == 2 and target[0] in (-1, 1) and target[1] in (-1, math.prod(shape)):
            return self._flatten(shape)
        raise UnsupportedModelError(self._refusal(node, f"a reshape to {target} that does not flatten the "
                                                        f"{list(shape)} map"))

    def _input_reshape(self, rest: list[int], shape: tuple[int, ...]) -> tuple[int, ...]:
        """A reshape of the input itself: to a flat vector (a Flatten) or back to an image (nothing)."""
        if rest in ([784], [-1]):
            if shape != (784,):
                self.layers.append(_Layer(Flatten()))
            return (784,)
        self.layers = [layer for layer in self.layers if not isinstance(layer.spec, Flatten)]
        return (1, 28, 28)

    def _transpose(self, node, attrs: dict, shape: tuple[int, ...]) -> tuple[int, ...]:
        perm = list(attrs.get("perm", []))
        if perm == [0, 3, 1, 2] and not any(isinstance(layer.spec, Linear | Conv2d) for layer in self.layers):
            return (1, 28, 28)  # channels-last input to channels-first: the same data for one channel
        if perm == [0, 2, 3, 1] and len(shape) == 3:
            self.pending_permutation = shape  # flattened channels-last next: undone in the next Linear layer
            return shape
        raise UnsupportedModelError(self._refusal(node, f"a transpose {perm} other than Keras' channels-last "
                                                        "layout changes"))

    def _normalize(self, node, current: str) -> None:
        """Fold ``x - m``, ``x / s``, ``x * a`` or ``x + b`` (scalars) before the first layer into the
        normalisation: the model sees ``(pixels - mean) / std``."""
        other = [name for name in node.input if name != current]
        value = self._constant(other[0], node) if len(other) == 1 else None
        if value is None or value.size != 1 or node.input[0] != current and node.op_type in ("Sub", "Div"):
            raise UnsupportedModelError(self._refusal(node, "only scalar input normalisation (x - mean, / std) "
                                                            "before the first layer"))
        v = float(value.reshape(-1)[0])
        mean, std = self.normalization.mean, self.normalization.std
        # The model so far computes (x - mean) / std; apply the op to that.
        if node.op_type == "Sub":
            mean += v * std
        elif node.op_type == "Add":
            mean -= v * std
        elif node.op_type == "Div":
            std *= v
        else:
            std /= v
        try:
            self.normalization = Normalization(mean, std)
        except ConfigError as exc:
            raise UnsupportedModelError(self._refusal(node, str(exc))) from None
        self.notes.append(f"the graph's own input normalisation ({node.op_type} {v:g}) is part of the model")

    # -- the result ------------------------------------------------------------------------------------
    def _finish(self, shape: tuple[int, ...]) -> tuple[dict[str, torch.Tensor], NetConfig, list[str]]:
        layers = [layer.spec for layer in self.layers]
        if not any(isinstance(spec, Linear) for spec in layers):
            raise UnsupportedModelError(f"{self.source}: no fully connected layer produces the class scores")
        state: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            for key, value in layer.params.items():
                tensor = torch.from_numpy(np.array(value, dtype=np.float32))  # a writable copy
                if not torch.isfinite(tensor).all():
                    raise WeightsFileError(f"{self.source}: {layer.spec.name}.{key} contains NaN or infinite values")
                state[f"{layer.spec.name}.{key}"] = tensor
        try:
            config = NetConfig(tuple(layers), self.normalization)
        except ConfigError as exc:
            raise UnsupportedModelError(f"{self.source}: {exc}") from None
        return state, config, self.notes

    def naming(self) -> str:
        """Where the layer names came from, in words."""
        units = [layer.spec.name for layer in self.layers if isinstance(layer.spec, Linear | Conv2d)]
        origin = {"weights": "the ONNX weights' names", "nodes": "the ONNX node names",
                  "generated": "numbered by MechMNISTic (the file names none)"}
        said = "; ".join(origin[key] for key in ("weights", "nodes", "generated") if key in self.names_from)
        return f"{said} ({', '.join(units)})"


def _after(spec: LayerSpec, shape: tuple[int, ...], source: str) -> tuple[int, ...]:
    """The shape after ``spec`` (the config's own arithmetic), or a refusal naming the layer."""
    from .config import _output_shape

    try:
        return _output_shape(spec, shape, last=False)
    except ConfigError as exc:
        raise UnsupportedModelError(f"{source}: {exc}") from None


__all__ = ["read_onnx"]
