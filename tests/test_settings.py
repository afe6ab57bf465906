"""Typed settings (syre_rl/settings.py): strict types, ranges, unknown keys with the closest valid one."""

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from syre_rl.settings import Settings, check_kwargs, conforms, describe


@pytest.mark.parametrize(
    "value,annotation,ok",
    [
        (1.5, float, True),
        (2, float, True),
        (True, float, False),
        ("1e-3", float, False),
        (3, int, True),
        (3.0, int, False),
        (False, int, False),
        (True, bool, True),
        (1, bool, False),
        (None, int | None, True),
        (2, int | None, True),
        (2.5, int | None, False),
        ("mean", Literal["zero", "mean"], True),
        ("keep", Literal["zero", "mean"], False),
        (1, Literal[True], False),
        ([1, 2], list[int], True),
        ([1, 2.5], list[int], False),
        ((1, 2), list[int], False),
        ((1, 2), tuple[int, ...], True),
        ({"a": [1]}, dict[str, list[int]], True),
        ({"a": [1.5]}, dict[str, list[int]], False),
        (dict, type[dict], True),
        (int, type[dict], False),
        (len, Any, True),
    ],
)
def test_conforms_is_strict(value, annotation, ok):
    assert conforms(value, annotation) is ok


def test_describe_names_what_is_allowed():
    assert describe(float | None) == "a number or null"
    assert describe(list[int]) == "a list of integers"
    assert describe(Literal["zero", "mean"]) == "one of 'zero', 'mean'"


@dataclass(frozen=True)
class Example(Settings):
    owner = "example"
    rate: float = 0.5
    steps: int = 10
    mode: Literal["a", "b"] = "a"
    widths: list[int] = field(default_factory=lambda: [4])

    def check(self) -> None:
        if self.steps < 1:
            raise ValueError(f"example steps must be >= 1, got {self.steps}")


@pytest.mark.parametrize(
    "data,match",
    [
        ({"rat": 0.1}, r"example has no setting 'rat'; did you mean 'rate'\? \(valid: rate, steps, mode, widths\)"),
        ({"zzz": 1}, r"example has no setting 'zzz' \(valid: rate, steps, mode, widths\)"),
        ({"rate": True}, "example rate must be a number, got True"),
        ({"steps": 2.0}, "example steps must be an integer, got 2.0"),
        ({"steps": 0}, "example steps must be >= 1, got 0"),
        ({"mode": "c"}, "example mode must be one of 'a', 'b', got 'c'"),
        ({"widths": [4, "8"]}, "example widths must be a list of integers, got \\[4, '8'\\]"),
        ([1, 2], "example must be a mapping of settings"),
    ],
)
def test_from_dict_refuses_bad_keys_and_values(data, match):
    with pytest.raises(ValueError, match=match):
        Example.from_dict(data)


def test_settings_are_frozen_values_with_defaults_in_one_place():
    a = Example.from_dict({"rate": 1})
    assert a == Example(rate=1) and a.to_dict() == {"rate": 1, "steps": 10, "mode": "a", "widths": [4]}
    with pytest.raises(AttributeError):
        a.rate = 2.0


@dataclass(frozen=True)
class Needs(Settings):
    owner = "needs"
    seeds: list[int]


def test_missing_required_keys_are_named():
    with pytest.raises(ValueError, match=r"needs needs 'seeds'; it has nothing"):
        Needs.from_dict({})


def test_check_kwargs_against_a_signature():
    def f(a: int, b: float | None = None, *, c: bool = False):
        pass

    check_kwargs("f", f, {"a": 1, "c": True})
    with pytest.raises(ValueError, match="f has no setting 'bb'; did you mean 'b'?"):
        check_kwargs("f", f, {"bb": 1.0})
    with pytest.raises(ValueError, match="f c must be true or false, got None"):
        check_kwargs("f", f, {"c": None})
    check_kwargs("f", f, {"c": None}, none_is_default=True)
    with pytest.raises(ValueError, match="f has no setting 'a'"):
        check_kwargs("f", f, {"a": 1}, skip=["a"])
