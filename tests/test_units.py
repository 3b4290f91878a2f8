"""Selecting units: every spec form, every error, and group text that round-trips."""

import numpy as np
import pytest

from mechmnistic.analysis.activations import layer_activations
from mechmnistic.analysis.units import (
    UnitError,
    check_disjoint,
    compress_indices,
    dead_units,
    format_groups,
    layer_groups,
    parse_groups,
    resolve_units,
    select_units,
)

GROUPS = {"dead": np.array([0, 1]), "anti-1": np.array([5, 6, 7])}


@pytest.mark.parametrize(
    "spec, expected",
    [
        (3, [3]),
        ([7, 3, 3], [3, 7]),
        (range(2, 5), [2, 3, 4]),
        (slice(8, None), [8, 9]),
        (slice(None, None, -4), [1, 5, 9]),
        (np.array([9, 0]), [0, 9]),
        ("4", [4]),
        (" 4 , 2 ", [2, 4]),
        ("3-5", [3, 4, 5]),
        ("all", list(range(10))),
        ("dead", [0, 1]),
        ("anti-1,9,2-3", [2, 3, 5, 6, 7, 9]),
        ("dead,0-1", [0, 1]),
    ],
)
def test_every_spec_form_resolves_to_sorted_distinct_indices(spec, expected):
    result = select_units(spec, 10, GROUPS)
    assert result.dtype == np.int64 and result.tolist() == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        (10, "unit 10 is out of range: this layer has units 0..9"),
        ([-1], "unit -1 is out of range"),
        ("8-12", "unit 10 is out of range"),
        ("5-2", "runs backwards; write it as 2-5"),
        ("nope", "unknown unit group 'nope'; known groups: all, dead, anti-1"),
        ("-3", "unknown unit group '-3'"),
        ("", "no units given"),
        ("1,,2", "empty item"),
        (np.array([1.5]), "must be integers"),
        (True, "cannot be True/False"),
        ("1," * 3000, "too long"),
    ],
)
def test_bad_specs_say_what_is_allowed(spec, message):
    with pytest.raises(UnitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        select_units(spec, 10, GROUPS)


def test_dead_units_and_standard_groups_from_activations():
    values = np.array([[0.0, 1.0, -2.0, 0.0], [0.0, 0.0, -1.0, 3.0]])
    assert dead_units(values).tolist() == [0, 2]
    groups = layer_groups(values)
    assert groups["dead"].tolist() == [0, 2] and groups["alive"].tolist() == [1, 3]
    assert groups["all"].tolist() == [0, 1, 2, 3]


def test_group_text_round_trips():
    groups = {"dead": np.array([0, 1, 2, 9]), "above": np.array([4]), "below": np.array([], dtype=np.int64)}
    text = format_groups(groups)
    assert text == "dead:0-2,9;above:4;below:"
    back = parse_groups(text, 10)
    assert list(back) == ["dead", "above", "below"]
    assert all(np.array_equal(back[k], groups[k]) for k in groups)
    assert compress_indices(np.array([5, 3, 4, 8])) == "3-5,8"


def test_parsed_groups_may_refer_to_base_groups_but_not_to_each_other():
    assert parse_groups("silent:dead", 10, GROUPS)["silent"].tolist() == [0, 1]
    with pytest.raises(UnitError, match="unknown unit group 'a'"):
        parse_groups("a:1;b:a", 10)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1group:3", "not a valid group name"),
        ("all:3", "not a valid group name"),
        ("a:1;a:2", "given twice"),
        ("above 3", "needs a ':'"),
        ("a:99", "out of range"),
    ],
)
def test_bad_group_text(text, message):
    with pytest.raises(UnitError, match=message):
        parse_groups(text, 10)


def test_overlapping_groups_are_refused():
    with pytest.raises(UnitError, match="unit 1 is in both 'a' and 'b'"):
        check_disjoint({"a": np.array([0, 1]), "b": np.array([1, 2])})


def test_resolve_units_knows_the_layers_standard_groups(bundled):
    model = bundled("challenge-cnn")
    values = layer_activations(model, "fc1", "train").values
    dead = resolve_units(model, "fc1", "dead")
    assert np.array_equal(dead, np.flatnonzero(values.max(axis=0) <= 0))
    assert resolve_units(model, "fc1", "0-2,199").tolist() == [0, 1, 2, 199]
    with pytest.raises(UnitError, match="0..199"):
        resolve_units(model, "fc1", "200")
    assert resolve_units(model, "conv1", "all").tolist() == list(range(8))
