"""Templates: the images a hypothesis compares inputs with.

A hypothesis's feature is the similarity of an input ``x`` to a template ``t``,
``s(x) = sum(x * (t - c))`` with ``x`` and ``t`` in [0, 1]
(``mechmnistic.labels.template_similarity``). ``resolve_template`` turns a
reference into that template image:

* ``"train:N"`` / ``"test:N"``: an MNIST image;
* ``"unit:LAYER:N"``: unit N's effective input weights ``w``, mapped to [0, 1]
  as ``t = 0.5 + w / (2 max|w|)`` so that a zero weight sits at 0.5; with the
  default centre ``c = 0.5``, ``s(x) = (w · x) / (2 max|w|)``, the unit's
  pre-activation less its bias, rescaled. A first-layer MLP unit's weights do
  not depend on the input; any other unit's (deeper layers, conv channels) are
  its exact effective weights (``analysis.grounding``) on its top-activating
  training image, a conv channel at the position of its maximum there;
* a ``pathlib.Path`` to a ``.png`` or ``.npy`` file (or, from the app, uploaded
  bytes): a 28x28 image is taken as is (white ink on black, like MNIST; uint8 0..255 or
  floats in [0, 1]); a PNG of any other size is treated as a drawing and
  preprocessed the way MNIST was made (``preprocess.preprocess_drawing``);
* an array (a drawn digit): uint8 ``[28, 28]`` or floats in [0, 1].

A ``str`` is only ever a reference, never a file name: pages pass strings
straight from their URL, and a link must not make the server read its files
(``?template=/some/secret.npy``). Callers that take a file from a trusted user
(the CLI) pass a ``Path``.

``invert=True`` gives the inverse template ``1 - t`` (the write-up's "anti-1").
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data import load_mnist
from ..errors import MechMNISTicError
from ..labels import template_image
from ..models.architectures import MNISTNet
from ..preprocess import preprocess_drawing
from .activations import layer_activations
from .embeddings import first_layer_effective_weights
from .grounding import effective_weights

_DATASET_REF = re.compile(r"^(train|test):(\d{1,9})$")
_UNIT_REF = re.compile(r"^unit:(.+):(\d{1,9})$")
MAX_FILE_BYTES = 10 * 2**20
MAX_IMAGE_SIDE = 4096


class TemplateError(MechMNISTicError, ValueError):
    """A template reference or file that cannot be used; the message says why."""


@dataclass(frozen=True, eq=False)
class Template:
    """A template image ``t``: float64 ``[28, 28]`` in [0, 1] (already inverted when ``inverted``).

    ``detail`` says where a unit template's weights were taken.
    """

    image: np.ndarray
    source: str
    inverted: bool = False
    detail: str = ""

    @property
    def label(self) -> str:
        """How to write it: ``train:6`` or ``1 - train:6``."""
        return f"1 - {self.source}" if self.inverted else self.source


def resolve_template(
    ref: str | os.PathLike | np.ndarray, model: MNISTNet | None = None, invert: bool = False, source: str = "image"
) -> Template:
    """A template from a reference (see the module docstring); ``model`` is needed for ``unit:`` refs.

    ``source`` names an array template (e.g. ``"drawn"``).
    """
    detail = ""
    if isinstance(ref, np.ndarray):
        image, name = image_from_array(ref), source
    elif isinstance(ref, os.PathLike):
        image, name = image_from_file(Path(ref)), Path(ref).name
    else:
        ref = str(ref).strip()
        if _DATASET_REF.match(ref):
            try:
                image = template_image(ref).astype(np.float64)
            except ValueError as exc:
                raise TemplateError(str(exc)) from None
            name = ref
        elif ref.startswith("unit:"):
            (image, detail), name = _unit_template(ref, model), ref
        else:
            raise TemplateError(f"template {ref[:80]!r} is not 'train:N', 'test:N' or 'unit:LAYER:N'")
    final = 1.0 - image if invert else image
    final.setflags(write=False)
    return Template(final, name, bool(invert), detail)


def _unit_template(ref: str, model: MNISTNet | None) -> tuple[np.ndarray, str]:
    """A unit's effective input weights as a template, and where they were taken."""
    match = _UNIT_REF.match(ref)
    if not match:
        raise TemplateError(f"unit template {ref[:80]!r} must look like 'unit:LAYER:N'")
    if model is None:
        raise TemplateError("a unit template needs the model")
    layer, unit = match.group(1), int(match.group(2))
    if layer not in model.layout:
        raise TemplateError(f"unit template: no layer {layer!r}; layers are {', '.join(model.layer_names)}")
    count = model.layout[layer].n_units
    if unit >= count:
        raise TemplateError(f"unit template: unit {unit} is out of range for {layer} (0..{count - 1})")
    if model.layout[layer].index == 0 and not model.layout[layer].is_conv:
        weights, _ = first_layer_effective_weights(model, np.array([unit]))
        return weights_to_template(weights[0]), "its input weights"
    # Deeper and conv units: their weights depend on the input; take them on the unit's
    # top-activating training image (a conv channel at the position of its maximum there).
    top = int(np.argmax(layer_activations(model, layer, "train").values[:, unit]))
    grounded = effective_weights(model, layer, load_mnist("train").images[top : top + 1], units=[unit])
    return weights_to_template(grounded.w_eff[0, 0]), f"its effective weights on its top training image train:{top}"


def uint8_to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float64 in [0, 1], rounded through float32 exactly as ``labels.template_image`` does,
    so the same picture gives the same template whichever way it arrives."""
    return (pixels.astype(np.float32) / np.float32(255.0)).astype(np.float64)


def weights_to_template(weights: np.ndarray) -> np.ndarray:
    """Signed pixel weights ``[28, 28]`` -> a template in [0, 1] with zero weight at 0.5."""
    w = np.asarray(weights, dtype=np.float64)
    bound = np.abs(w).max()
    return np.full(w.shape, 0.5) if bound == 0 else 0.5 + w / (2 * bound)


def image_from_array(array: np.ndarray) -> np.ndarray:
    """uint8 ``[28, 28]`` or floats in [0, 1] (also ``[1, 28, 28]``) -> float64 ``[28, 28]`` in [0, 1]."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.shape != (28, 28):
        raise TemplateError(f"a template image must be 28x28, got shape {array.shape}")
    if array.dtype == np.uint8:
        return uint8_to_unit(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TemplateError(f"a template image must hold numbers, got {array.dtype}")
    values = array.astype(np.float64)
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise TemplateError("a float template image must have finite values in [0, 1] (or be uint8 0..255)")
    return values


def image_from_file(path: Path) -> np.ndarray:
    """A ``.png`` or ``.npy`` file -> float64 ``[28, 28]`` in [0, 1]."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TemplateError(f"{path.name}: file is too large ({size} bytes; at most {MAX_FILE_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"cannot read template file {str(path)[:200]}: {exc.strerror or exc}") from None
    return image_from_bytes(data, path.name)


def image_from_bytes(data: bytes, filename: str) -> np.ndarray:
    """An uploaded ``.png`` / ``.npy`` file's bytes -> float64 ``[28, 28]`` in [0, 1]."""
    if len(data) > MAX_FILE_BYTES:
        raise TemplateError(f"{filename}: file is too large ({len(data)} bytes; at most {MAX_FILE_BYTES})")
    suffix = Path(filename).suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise TemplateError(f"{filename}: not a readable .npy array ({exc})") from None
        return image_from_array(array)
    if suffix == ".png":
        return _png_image(data, filename)
    raise TemplateError(f"{filename}: a template file must be .png or .npy")


def _png_image(data: bytes, filename: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG":
                raise TemplateError(f"{filename}: not a PNG image (found {img.format})")
            if max(img.size) > MAX_IMAGE_SIDE:
                raise TemplateError(f"{filename}: image is too large ({img.size[0]}x{img.size[1]})")
            img.load()
            rgba = img.convert("RGBA") if img.mode in ("RGBA", "LA", "P", "PA") else None
            gray = np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise TemplateError(f"{filename}: not a readable PNG image ({exc})") from None
    if gray.shape == (28, 28):
        return uint8_to_unit(gray)
    drawing = preprocess_drawing(np.asarray(rgba) if rgba is not None else gray)
    if drawing.image is None:
        raise TemplateError(f"{filename}: the image has no ink to use as a template")
    return uint8_to_unit(drawing.image)
