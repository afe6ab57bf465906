"""Command-line parsing from a dataclass: every field becomes a ``--flag`` whose help is the field's ``help``
metadata, so one dataclass holds each script's settings and ``--help`` shows all of them."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def _base_type(annotation: Any) -> type:
    """``int | None`` -> int; ``str`` -> str."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def parse_dataclass(cls: type[T], description: str, argv: list[str] | None = None) -> T:
    """Parse ``argv`` into an instance of the dataclass ``cls``.

    Booleans become ``--flag / --no-flag``; ``choices`` metadata restricts values; defaults are the
    dataclass's. Fields annotated ``X | None`` default to None, meaning "decided later" (e.g. by a preset).

    :param cls: a dataclass whose fields carry ``metadata={"help": ...}`` (and optionally ``choices``)
    :param description: the ``--help`` description, shown as written (a script passes its ``__doc__``)
    :param argv: arguments (default: ``sys.argv[1:]``)
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        kind = _base_type(hints[field.name])
        text = field.metadata.get("help", "")
        if field.default is not None and kind is not bool:
            text += f" (default: {field.default})"
        kwargs: dict[str, Any] = dict(default=field.default, help=text)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=kind, choices=field.metadata.get("choices"), metavar=field.metadata.get("metavar"))
        parser.add_argument(flag, dest=field.name, **kwargs)
    return cls(**vars(parser.parse_args(argv)))
