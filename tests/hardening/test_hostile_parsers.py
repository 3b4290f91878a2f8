"""The URL parameter parsers (``ui.params``) on every kind of hostile text, directly: no page run.

Every page reads its parameters through these parsers, and the hostile-parameter table
(``test_hostile_params``) opens each page with bad values to prove the wiring; here each parser meets every
kind of bad text, so the table needs only one page run per kind of bad value.
"""

from __future__ import annotations

import math

import pytest

from ui.params import MAX_PARAM_CHARS, parse_choice, parse_float, parse_int, parse_position

from .test_hostile_params import HUGE, SCRIPT, SHELL

TEXTS = {"script": SCRIPT, "shell": SHELL, "huge": HUGE, "long": "7" * 100_000, "nul": "3\x00", "newline": "3\n4",
         "unicode-digits": "٣", "underscore": "1_000", "spaces": "   ", "emoji": "🙂"}


@pytest.mark.parametrize(("raw", "value", "problem"), [
    (None, 5, None), ("", 5, None), ("0", 0, None), ("9", 9, None), (" 4 ", 4, None), ("+3", 3, None),
    ("-1", 5, "`n`=-1 is out of range (0–9)"), ("10", 5, "`n`=10 is out of range (0–9)"),
    (HUGE, 5, f"`n`={HUGE} is out of range"), ("1.5", 5, "`n` must be a whole number; got '1.5'"),
    ("abc", 5, "`n` must be a whole number; got 'abc'"), ("1e3", 5, "must be a whole number"),
    ("٣", 5, "must be a whole number"), ("1_000", 5, "must be a whole number"),
    ("7" * 65, 5, "must be a whole number"),  # longer than any index: refused before int() parses it
])
def test_a_whole_number(raw, value, problem):
    param = parse_int("n", raw, 0, 9, 5)
    assert param.value == value
    assert (param.problem is None) if problem is None else problem in param.problem


@pytest.mark.parametrize("name", TEXTS)
def test_a_whole_number_never_takes_junk_and_never_echoes_more_than_a_clip(name):
    raw = TEXTS[name]
    param = parse_int("n", raw, 0, 9, 5)
    if raw.strip() and param.problem is None:
        assert 0 <= param.value <= 9
    else:
        assert param.value == 5
    if param.problem:
        assert len(param.problem) < MAX_PARAM_CHARS + 200, "the message quotes at most a clip of the text"


@pytest.mark.parametrize("raw", [SCRIPT, SHELL, HUGE, "no-such-thing", "-1", "A", " a", "a ", "x" * 10_000, "a\x00"])
def test_a_choice_takes_only_its_choices_verbatim(raw):
    param = parse_choice("c", raw, ["a", "b"], "a")
    assert param.value == "a" and param.problem.startswith("Unknown `c` ")
    assert "choose one of: a, b" in param.problem
    assert len(param.problem) < MAX_PARAM_CHARS + 200


def test_a_choice_lists_at_most_twelve_and_takes_an_exact_one():
    choices = [f"c{i}" for i in range(30)]
    assert parse_choice("c", "c17", choices, "c0").value == "c17"
    assert parse_choice("c", None, choices, "c0").value == "c0" and parse_choice("c", "", choices, None).value is None
    assert parse_choice("c", "zz", choices, "c0").problem.endswith("c11…. Showing the default instead.")


@pytest.mark.parametrize("raw", ["abc", HUGE, "nan", "inf", "-inf", "1e999", SCRIPT, "3" * 40, "0x10", "1,5"])
def test_a_number_refuses_junk_and_non_finite_values(raw):
    param = parse_float("x", raw, 1.5, -100.0, 100.0)
    assert param.value == 1.5 and "`x` must be a number between -100 and 100" in param.problem


@pytest.mark.parametrize(("raw", "value"), [(None, 1.5), ("", 1.5), ("2.25", 2.25), ("-100", -100.0), (" 1e1 ", 10.0)])
def test_a_number_takes_a_finite_value_in_range(raw, value):
    param = parse_float("x", raw, 1.5, -100.0, 100.0)
    assert param.value == value and param.problem is None and math.isfinite(param.value)


@pytest.mark.parametrize(("raw", "problem"), [
    ("26,0", "`pos`=26,0 is outside the 26x26 map"), ("-1,3", "`pos`=-1,3 is outside the 26x26 map"),
    (f"{HUGE},1", "`pos` must be a row and a column"), ("4", "`pos` must be a row and a column"),
    ("a,b", "`pos` must be a row and a column"), (SCRIPT, "`pos` must be a row and a column"),
    ("1,2,3", "`pos` must be a row and a column"), ("1.5,2", "`pos` must be a row and a column"),
])
def test_a_map_cell(raw, problem):
    param = parse_position("pos", raw, 26)
    assert param.value is None and problem in param.problem


def test_a_map_cell_in_range():
    assert parse_position("pos", "25, 0", 26).value == (25, 0)
    assert parse_position("pos", None, 26).value is None and parse_position("pos", "", 26).problem is None
