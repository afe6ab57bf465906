"""Typed settings, checked strictly where they enter: a :class:`Settings` is a frozen dataclass whose fields are
checked against their annotations when it is made, so a bool where a number belongs, a float where an integer
belongs or an unknown key is refused with one line naming the value and what is allowed.

The standard library only (the method core imports nothing but torch and numpy); the harness uses the same
checks for presets, sweep files and command lines, so there is one mechanism for all of them.

    @dataclass(frozen=True)
    class DecaySettings(Settings):
        owner = "l2"
        gamma: float = 1e-3

    DecaySettings.from_dict({"gama": 0.5})   # ValueError: l2 has no setting 'gama'; did you mean 'gamma'? ...
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import inspect
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, TypeVar, Union

S = TypeVar("S", bound="Settings")


def conforms(value: Any, annotation: Any) -> bool:
    """Whether ``value`` has the type ``annotation`` says, strictly: ``bool`` is not a number, a float is not an
    integer (an integer is a float), text is not a number. Understands ``X | None``, ``Literal``, ``list[X]``,
    ``tuple[X, ...]``, ``dict[K, V]``, ``type[X]``, ``Callable`` and classes; anything else is accepted."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or isinstance(annotation, (TypeVar, str, typing.ForwardRef)):
        return True
    if origin in (Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if annotation in (None, type(None)):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, collections.abc.Sequence):
        return isinstance(value, list if origin is list else (list, tuple)) and all(conforms(v, args[0]) for v in value)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(conforms(v, args[0]) for v in value)
        return len(args) == len(value) and all(conforms(v, a) for v, a in zip(value, args))
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict) and (
            not args or all(conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
        )
    if origin is type:
        return isinstance(value, type) and (
            args[0] is Any or not isinstance(args[0], type) or issubclass(value, args[0])
        )
    if origin is collections.abc.Callable or annotation is collections.abc.Callable:
        return callable(value)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def describe(annotation: Any) -> str:
    """What ``annotation`` allows, in words: ``float | None`` -> "a number or null"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text", type(None): "null"}
    if annotation in names:
        return names[annotation]
    if origin in (list, tuple, collections.abc.Sequence):
        return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin in (dict, collections.abc.Mapping):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def check_value(owner: str, name: str, value: Any, annotation: Any) -> None:
    """Raise ValueError naming ``owner``, ``name``, ``value`` and what ``annotation`` allows, unless it conforms."""
    if conforms(value, annotation):
        return
    hint = ""
    if isinstance(value, str) and conforms(1.0, annotation):
        hint = " (text, not a number: write 1.0e-3 rather than 1e-3 in YAML 1.1 files, or !!float 1e-3)"
    raise ValueError(f"{owner} {name} must be {describe(annotation)}, got {value!r}{hint}")


def did_you_mean(key: str, valid: Iterable[str]) -> str:
    """``"; did you mean 'gamma'? (valid: gamma, scale)"``: the closest valid name, if one is close, and all."""
    valid = [str(v) for v in valid]
    close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    return (f"; did you mean {close[0]!r}?" if close else "") + f" (valid: {', '.join(valid) or 'none'})"


def check_keys(owner: str, keys: Iterable[str], valid: Iterable[str]) -> None:
    """Raise ValueError for the first key not in ``valid``, naming the closest valid one."""
    valid = list(valid)
    for key in keys:
        if key not in valid:
            raise ValueError(f"{owner} has no setting {key!r}{did_you_mean(key, valid)}")


def check_range(
    owner: str,
    name: str,
    value: float,
    low: float = 0.0,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ValueError unless ``value`` is finite and in the interval (closed unless said open)."""
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    if not (math.isfinite(value) and above and below):
        if high == math.inf:
            allowed = f"{'>' if low_open else '>='} {low:g}"
        else:
            allowed = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{owner} {name} must be a finite number {allowed}, got {value!r}")


def parameter_types(func: Any) -> dict[str, Any]:
    """The annotation of every keyword-capable parameter of ``func`` (``Any`` where it has none, or where a
    forward reference cannot be resolved)."""
    try:
        hints = typing.get_type_hints(func)
    except (NameError, TypeError):
        hints = {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        name: hints.get(name, Any if p.annotation is p.empty or isinstance(p.annotation, str) else p.annotation)
        for name, p in inspect.signature(func).parameters.items()
        if p.kind in kinds and name != "self"
    }


def check_kwargs(
    owner: str, func: Any, kwargs: Mapping[str, Any], skip: Iterable[str] = (), none_is_default: bool = False
) -> None:
    """Check keyword arguments for ``func`` before calling it: each must be one of its parameters (less
    ``skip``, those the caller sets itself) and have the parameter's annotated type.

    :param none_is_default: accept None for any parameter (for callers, such as SB3's own save/load, that pass
        None to mean "the default")
    :raises ValueError: naming the unknown key (and the closest valid one) or the badly typed value
    """
    skip = set(skip)
    types = {name: t for name, t in parameter_types(func).items() if name not in skip}
    check_keys(owner, kwargs, types)
    for name, value in kwargs.items():
        if not (none_is_default and value is None):
            check_value(owner, name, value, types[name])


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every dataclass field of ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of typed settings: a frozen dataclass, every field checked against its annotation when made
    (``__post_init__``), then by :meth:`check` (ranges; subclasses override it). ``owner`` names the settings
    in messages (e.g. the method, ``preset``)."""

    owner: ClassVar[str] = "settings"

    def __post_init__(self) -> None:
        # typed `type`: mypy takes the class of a frozen dataclass for unhashable (it sees the instances' __hash__)
        cls: type = type(self)
        for name, annotation in field_types(cls).items():
            check_value(self.owner, name, getattr(self, name), annotation)
        self.check()

    def check(self) -> None:
        """Check values beyond their types (ranges, combinations); raise ValueError naming the bad one."""

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        """Make the settings from a mapping (YAML, JSON, keyword arguments), refusing unknown and missing keys.

        :param data: field name -> value
        :raises ValueError: one line naming the bad key or value and what is allowed
        """
        owner = cls.owner
        if not isinstance(data, Mapping):
            raise ValueError(f"{owner} must be a mapping of settings, got {data!r}")
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        check_keys(owner, data, fields)
        missing = [
            n
            for n, f in fields.items()
            if n not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{owner} needs {', '.join(repr(m) for m in missing)}; it has {sorted(data) or 'nothing'}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (nested settings as dicts): what ``config.json`` holds."""
        return dataclasses.asdict(self)
