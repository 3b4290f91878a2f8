"""Hostile weights and ONNX files, through both doors: the import page (an upload) and ``mechmnistic import``.

One table: empty, over the size limit, truncated, not a tensor file, pickles
whose unpickling would run code (each would create a marker file: it must
never appear), no tensors, shape-mismatched, NaN/inf; ONNX files that are
malformed, hold an operator MechMNISTic does not read or one of a custom
domain, define functions, declare a huge tensor, or keep a tensor in
external data pointing outside (never followed). Each row states the
message the user reads; the page shows it as an error and offers no Load
button, the CLI prints it as its one error line and exits 2; nothing is
written into the zoo. The core's own checks (``read_for_import``,
``import_model``) have their table in tests/test_importer.py.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as safetensors_save

from mechmnistic.models.weights_io import MAX_WEIGHTS_BYTES

from ..app.test_import_page import _session, _upload, app_zoo  # noqa: F401 (a fixture)
from ..cli_runner import cli
from ..conftest import snapshot
from ..test_importer import EISVIINet, _Payload, _seeded

REFUSED_PICKLE = "refused: the file holds pickled objects other than tensors (possibly code)"


def _state() -> dict[str, torch.Tensor]:
    return dict(_seeded(EISVIINet).state_dict())


def _safetensors(state: dict) -> bytes:
    return safetensors_save({k: v.contiguous() for k, v in state.items()})


def _torch_save(obj, legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _onnx(change: Callable | None = None) -> bytes:
    """A small valid ONNX classifier (Flatten, Gemm) as an exporter writes it, then ``change(model)`` applied."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((10, 784), np.float32), "fc.weight")
    bias = numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], name="/Flatten", axis=1),
             helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["y"], name="/fc/Gemm", transB=1)]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if change is not None:
        change(model)
    return model.SerializeToString()


def _onnx_op(model) -> None:
    """An operator MechMNISTic does not read, on the data path."""
    from onnx import helper

    model.graph.node[0].CopyFrom(helper.make_node("LRN", ["x"], ["flat"], name="/lrn", size=3))


def _onnx_custom(model) -> None:
    from onnx import helper

    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    model.graph.node[0].CopyFrom(helper.make_node("Steal", ["x"], ["flat"], name="/steal", domain="com.evil"))


def _onnx_function(model) -> None:
    from onnx import helper

    model.functions.append(helper.make_function("local", "Mine", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                                                [helper.make_opsetid("", 17)]))


def _onnx_external(model) -> None:
    """The weight kept in 'external data' at a path outside: it must never be read."""
    from onnx import TensorProto

    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"


def _onnx_huge(model) -> None:
    """A weight that declares 10 billion elements (and holds none)."""
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    del weight.dims[:]
    weight.dims.extend([100_000, 100_000])


def _onnx_residual(model) -> None:
    """A residual Add of the data with itself after the layer: a branch, not a chain."""
    from onnx import helper

    model.graph.node[1].output[0] = "z"
    model.graph.node.append(helper.make_node("Add", ["z", "z"], ["y"], name="/residual"))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


#: filename -> (the file's bytes, given the marker path a code payload would create; the message)
FILES: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "empty.safetensors": (lambda _: b"", "empty.safetensors: the file is empty"),
    "empty.pt": (lambda _: b"", "empty.pt: the file is empty"),
    "huge.safetensors": (lambda _: b"\0" * (MAX_WEIGHTS_BYTES + 1),
                         "huge.safetensors: 64.0 MiB is over the 64 MiB limit"),
    "huge.pt": (lambda _: b"\0" * (MAX_WEIGHTS_BYTES + 1), "huge.pt: 64.0 MiB is over the 64 MiB limit"),
    "cut.safetensors": (lambda _: _safetensors(_state())[:5000], "cut.safetensors: not a valid safetensors file"),
    "cut.pt": (lambda _: _torch_save(_state())[:5000], "cut.pt: not a readable PyTorch state dict"),
    "image.pt": (lambda _: _png(), "image.pt: not a PyTorch file"),
    "image.safetensors": (lambda _: _png(), "image.safetensors: not a valid safetensors file"),
    "script.pt": (lambda _: b"<script>alert(1)</script>", "script.pt: not a PyTorch file"),
    "notes.txt": (lambda _: b"hello", "notes.txt: unsupported file type .txt"),
    "evil.pt": (lambda m: _torch_save({**_state(), "fc1.bias": _Payload(m)}), f"evil.pt: {REFUSED_PICKLE}"),
    "evil-legacy.pt": (lambda m: _torch_save({**_state(), "fc1.bias": _Payload(m)}, legacy=True),
                       f"evil-legacy.pt: {REFUSED_PICKLE}"),
    "evil-raw-pickle.pt": (lambda m: pickle.dumps({"fc1.bias": _Payload(m)}), f"evil-raw-pickle.pt: {REFUSED_PICKLE}"),
    "evil.pth": (lambda m: _torch_save({"fc.weight": _Payload(m)}), f"evil.pth: {REFUSED_PICKLE}"),
    "evil.bin": (lambda m: _torch_save({"fc.weight": _Payload(m)}), f"evil.bin: {REFUSED_PICKLE}"),
    "evil-wrapped.ckpt": (lambda m: _torch_save({"state_dict": {"fc.weight": _Payload(m)}}),
                          f"evil-wrapped.ckpt: {REFUSED_PICKLE}"),
    "pickle.safetensors": (lambda m: pickle.dumps({"fc1.bias": _Payload(m)}),
                           "pickle.safetensors: not a valid safetensors file"),
    "no-tensors.safetensors": (lambda _: _safetensors({}), "no-tensors.safetensors: the file holds no tensors"),
    "a-list.pt": (lambda _: _torch_save([1, 2, 3]), "a-list.pt: expected a state dict (parameter name -> tensor), "
                                                    "got list"),
    "nan.safetensors": (lambda _: _safetensors({**_state(), "fc1.bias": torch.full((200,), float("nan"))}),
                        "nan.safetensors: fc1.bias contains NaN or infinite values"),
    "inf.pt": (lambda _: _torch_save({**_state(), "fc2.weight": torch.full((2, 200), float("-inf"))}),
               "inf.pt: fc2.weight contains NaN or infinite values"),
    "wide.safetensors": (lambda _: _safetensors({**_state(), "fc1.weight": torch.zeros(200, 401)}),
                         "wide.safetensors: no architecture fits these layers. Recognised: conv1"),
    "bias-shape.pt": (lambda _: _torch_save({**_state(), "fc1.bias": torch.zeros(7)}),
                      "bias-shape.pt: fc1.bias has shape (7,), expected (200,)"),
    "scalar-bias.pt": (lambda _: _torch_save({**_state(), "fc1.bias": torch.tensor(1.0)}),
                       "scalar-bias.pt: fc1.bias has shape (), expected (200,)"),
    "empty.onnx": (lambda _: b"", "empty.onnx: the file is empty"),
    "huge-file.onnx": (lambda _: b"\0" * (MAX_WEIGHTS_BYTES + 1), "huge-file.onnx: 64.0 MiB is over the 64 MiB limit"),
    "garbage.onnx": (lambda _: b"\xff\xfe not a protobuf \x00\x01" * 50, "garbage.onnx: not a valid ONNX file"),
    "pickle.onnx": (lambda m: pickle.dumps({"fc1.bias": _Payload(m)}), "pickle.onnx: not a valid ONNX file"),
    "cut.onnx": (lambda _: _onnx()[:-200], "cut.onnx: not a valid ONNX file"),
    "unknown-op.onnx": (lambda _: _onnx(_onnx_op), "unknown-op.onnx: node /lrn (LRN) is not supported"),
    "custom-domain.onnx": (lambda _: _onnx(_onnx_custom),
                           "custom-domain.onnx: the ONNX file imports operator domain 'com.evil'"),
    "function.onnx": (lambda _: _onnx(_onnx_function), "function.onnx: the ONNX file defines functions (Mine)"),
    "external.onnx": (lambda _: _onnx(_onnx_external),
                      "external.onnx: initializer 'fc.weight' is stored as external data"),
    "huge-tensor.onnx": (lambda _: _onnx(_onnx_huge),
                         "huge-tensor.onnx: initializer 'fc.weight' declares 10,000,000,000 elements"),
    "residual.onnx": (lambda _: _onnx(_onnx_residual),
                      "residual.onnx: node /residual (Add) is not supported: it reads the data path twice"),
}


#: The page's uploader takes only weights files: a browser will not pick another, and Streamlit refuses one
#: sent anyway before the page runs (tested through the CLI door only).
ON_THE_PAGE = [name for name in FILES if not name.endswith(".txt")]


@pytest.mark.parametrize("filename", ON_THE_PAGE, ids=ON_THE_PAGE)
def test_a_hostile_upload_is_refused_on_the_page(filename, app_zoo, tmp_path):  # noqa: F811 (the fixture)
    marker = tmp_path / "pwned"
    data, message = FILES[filename][0](marker), FILES[filename][1]
    before = snapshot(app_zoo)
    at = _upload(_session(), filename, data)
    assert not at.exception, at.exception[0].value
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert "import_load" not in [b.key for b in at.button], "nothing to load"
    assert not marker.exists(), "the payload ran"
    assert snapshot(app_zoo) == before


@pytest.mark.parametrize("filename", FILES, ids=FILES)
def test_a_hostile_file_is_refused_by_the_cli(filename, tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    monkeypatch.setenv("MECHMNISTIC_MODELS", str(zoo))
    marker = tmp_path / "pwned"
    path = tmp_path / filename
    path.write_bytes(FILES[filename][0](marker))
    code, out, err = cli("import", str(path), "--name", "hostile", "--normalization", "none")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mechmnistic import: error: ") and FILES[filename][1] in lines[0]
    assert not marker.exists(), "the payload ran"
    assert snapshot(zoo) == {}
