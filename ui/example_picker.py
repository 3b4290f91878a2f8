"""Choosing the input of the Classification Explorer: an MNIST example or a drawing.

The URL holds the example (``?test_index=I`` or ``?train_index=I``) so a view
can be shared; a new deep link (first visit, another page's link, an edited
URL) sets the widgets, and the widgets write the URL back as the user changes
them. A drawing has no URL, so choosing one removes both parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from mechmnistic.analysis.predictions import Predictions, example, indices_of_digit, misclassified
from mechmnistic.data import SIZES

from .drawing import draw_digit
from .params import int_param, set_params

TEST, TRAIN, DRAW = "Test example", "Training image", "Drawing"
BY_INDEX, BY_DIGIT, BY_MISTAKE = "Index", "Digit", "Misclassified"

SOURCE_KEY = "classify_source"
PICK_BY_KEY = "classify_pick_by"
TEST_INDEX_KEY = "classify_test_index"
TRAIN_INDEX_KEY = "classify_train_index"
DIGIT_KEY = "classify_digit"
DIGIT_EXAMPLE_KEY = "classify_digit_example"
MISTAKE_KEY = "classify_mistake"
REVEAL_KEY = "classify_reveal_labels"
CANVAS_KEY = "classify_canvas"
#: The example this session last put in the URL; a URL that differs is a new deep link.
_LINKED_KEY = "_classify_linked_example"


@dataclass(frozen=True)
class ChosenInput:
    """The input to explain: ``image`` uint8 ``[28, 28]``, ``None`` while the canvas is blank (the canvas says so).

    ``split``/``index`` locate an MNIST example (``None`` for a drawing); ``digit`` is its MNIST label.
    """

    image: np.ndarray | None
    description: str
    split: str | None = None
    index: int | None = None
    digit: int | None = None


def _kept(widget: Callable, label: str, *args: object, key: str, default: object, **kwargs: object) -> object:
    """``widget(label, *args, key=key, **kwargs)``, keeping its value while it is hidden.

    Streamlit drops a widget's state on a run that does not show it (the index
    picker while the user draws); a copy under another key brings it back.
    """
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"_kept_{key}", default)
    value = widget(label, *args, key=key, **kwargs)
    st.session_state[f"_kept_{key}"] = value
    return value


def apply_deep_link() -> None:
    """Set the widgets from ``?test_index=`` / ``?train_index=`` when the URL names a new example."""
    test = int_param("test_index", 0, SIZES["test"] - 1, None)
    train = int_param("train_index", 0, SIZES["train"] - 1, None)
    for problem in (test.problem, train.problem):
        if problem:
            st.warning(problem)
    if test.value is not None and train.value is not None:
        st.warning("The link names both a test and a training image; showing the test image.")
    link = None
    if test.value is not None:
        link = ("test", test.value)
    elif train.value is not None:
        link = ("train", train.value)
    if link is None or link == st.session_state.get(_LINKED_KEY):
        return
    split, index = link
    if split == "test":
        st.session_state[SOURCE_KEY] = TEST
        st.session_state[PICK_BY_KEY] = BY_INDEX
        st.session_state[TEST_INDEX_KEY] = index
    else:
        st.session_state[SOURCE_KEY] = TRAIN
        st.session_state[TRAIN_INDEX_KEY] = index


def _link(chosen: ChosenInput) -> None:
    """Put the chosen example in the URL (a drawing clears it) and remember that we did."""
    test = chosen.index if chosen.split == "test" else None
    train = chosen.index if chosen.split == "train" else None
    set_params(test_index=test, train_index=train)
    st.session_state[_LINKED_KEY] = None if chosen.split is None else (chosen.split, chosen.index)


def _from_split(split: str, index: int) -> ChosenInput:
    image, digit = example(split, index)
    return ChosenInput(image, f"{split} image #{index}", split, index, digit)


def pick_input(predictions: Callable[[], Predictions], labels_hidden: bool) -> ChosenInput:
    """Show the input widgets and return the chosen input.

    ``predictions()`` returns the model's ``Predictions`` on the test set (only
    called for the misclassified list). ``labels_hidden``: the model's
    labelling function is secret, so its labels (and hence its mistakes) are
    shown only when the user asks.
    """
    apply_deep_link()
    source = _kept(st.radio, "Input", (TEST, TRAIN, DRAW), key=SOURCE_KEY, default=TEST, horizontal=True)
    if source == TEST:
        chosen = _pick_test_example(predictions, labels_hidden)
    elif source == TRAIN:
        index = _kept(st.number_input, "Training image index", 0, SIZES["train"] - 1, step=1,
                      key=TRAIN_INDEX_KEY, default=0)
        chosen = _from_split("train", int(index))
    else:
        chosen = _draw()
    _link(chosen)
    return chosen


def _pick_test_example(predictions: Callable[[], Predictions], labels_hidden: bool) -> ChosenInput:
    by = _kept(st.radio, "Pick by", (BY_INDEX, BY_DIGIT, BY_MISTAKE), key=PICK_BY_KEY, default=BY_INDEX,
               horizontal=True)
    if by == BY_DIGIT:
        digit = _kept(st.selectbox, "Digit", range(10), key=DIGIT_KEY, default=0)
        indices = indices_of_digit("test", digit).tolist()
        index = st.selectbox(f"Test image of a {digit} ({len(indices)} in the test set)", indices,
                             format_func=lambda i: f"test #{i}", key=DIGIT_EXAMPLE_KEY)
        return _from_split("test", int(index))
    if by == BY_MISTAKE:
        chosen = _pick_mistake(predictions, labels_hidden)
        if chosen is not None:
            return chosen
    index = _kept(st.number_input, "Test image index", 0, SIZES["test"] - 1, step=1, key=TEST_INDEX_KEY,
                  default=0)
    return _from_split("test", int(index))


def _pick_mistake(predictions: Callable[[], Predictions], labels_hidden: bool) -> ChosenInput | None:
    if labels_hidden and not st.checkbox(
        "Use this model's secret labels", key=REVEAL_KEY,
        help="This model was trained on a hidden labelling function. Listing its mistakes shows the true "
             "label of each, which gives information about that function away.",
    ):
        st.info("Tick the box to list the mistakes; until then, pick by index.")
        return None
    result = predictions()
    wrong = misclassified(result)
    if len(wrong) == 0:
        st.success("The model classifies every test image correctly.")
        return None
    labels, predicted, confidence = result.labels, result.predicted, result.confidence
    index = st.selectbox(
        f"Misclassified test images ({len(wrong)}, most confident first)", wrong.tolist(), key=MISTAKE_KEY,
        format_func=lambda i: f"test #{i}: label {labels[i]}, predicted {predicted[i]} (p = {confidence[i]:.2f})",
    )
    return _from_split("test", int(index))


def _draw() -> ChosenInput:
    image = draw_digit(CANVAS_KEY, "Nothing drawn yet: draw a digit on the canvas.", controls=True)
    st.caption("Draw one digit, large and centred or not: it is cropped, scaled and centred as MNIST's digits were.")
    return ChosenInput(image, "your drawing")
