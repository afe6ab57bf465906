"""Settings from the command line and from YAML files, strictly: every script's settings are one
:class:`syre_rl.settings.Settings` dataclass; ``parse_dataclass`` turns its fields into ``--flags`` (help from
the field's ``help`` metadata, abbreviations off), and ``load_yaml`` reads presets and sweep files with YAML 1.2
numbers (``1e-3`` is a number, not the text PyYAML's YAML 1.1 makes of it). Every refusal is one line: the
file and line of malformed YAML, or the flag, key or value and what is allowed."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import typing
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml

from syre_rl.settings import field_types

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-3``, ``+.5`` and ``1E3`` are numbers) and no duplicate
    keys (PyYAML keeps the last one silently; YAML 1.2 forbids them)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice; give it once", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$|^[-+]?(\d+\.\d*|\.\d+)$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"
    ),
    list("-+0123456789."),
)


def yaml_value(text: str, where: str = "value") -> Any:
    """One YAML 1.2 scalar or flow value: ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"[1, 2]"`` -> [1, 2]."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise ValueError(f"{where} {text!r} is not a YAML value ({getattr(error, 'problem', error)})") from None


def load_yaml(path: str | Path, what: str = "file") -> dict[str, Any]:
    """A YAML file holding a mapping (a preset, a sweep specification).

    :param what: what the file is, for messages
    :raises ValueError: one line starting with the path: a missing, empty or malformed file (with the line
        number) or one that is not a mapping
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"{path}: cannot read this {what}: {error.strerror}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"{path}{line}: malformed YAML in this {what}: {problem}") from None
    if not isinstance(data, dict):
        found = "nothing" if data is None else f"a {type(data).__name__}"
        raise ValueError(f"{path}: this {what} must hold a mapping of settings, but it holds {found}")
    return data


def parse_assignments(text: str) -> dict[str, Any]:
    """``"gamma=1e-3,decoupled=true"`` -> ``{"gamma": 0.001, "decoupled": True}`` (values read as YAML 1.2)."""
    settings = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"method setting {item!r} is not key=value (e.g. gamma=1e-3,scale=0.1)")
        if key.strip() in settings:
            raise ValueError(f"method setting {key.strip()!r} is given twice in {text!r}; give it once")
        settings[key.strip()] = yaml_value(value.strip(), f"method setting {key.strip()}")
    return settings


def parse_seeds(text: str) -> list[int]:
    """``"0-7"`` -> ``[0, 1, ..., 7]``; ``"0,3,5"`` -> ``[0, 3, 5]``; ranges and single seeds mix (``"0-2,9"``)."""
    seeds: list[int] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        low, sep, high = item.partition("-")
        try:
            seeds += list(range(int(low), int(high) + 1)) if sep else [int(item)]
        except ValueError:
            raise ValueError(f"seeds {text!r}: {item!r} is neither a seed nor a range like 0-7") from None
        if sep and int(high) < int(low):
            raise ValueError(f"seeds {text!r}: the range {item!r} is empty; write it low-high")
    return seeds


class StrictParser(argparse.ArgumentParser):
    """argparse with abbreviations off and one-line errors."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        """One line, no usage block: ``prog: error: message``."""
        if message.endswith("expected one argument"):
            message += " (a value that starts with '-' goes after '=', as in --seeds=-1)"
        self.exit(2, f"{self.prog}: error: {message}\n")


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``str`` -> str."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) is not None and len(args) == 1 else annotation


def _reading(parse: Any) -> Any:
    """``parse`` as an argparse ``type=``: its ValueError message is kept (argparse would replace it)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def parse_dataclass(cls: type[T], description: str, argv: list[str] | None = None, prog: str | None = None) -> T:
    """Parse ``argv`` into an instance of the settings dataclass ``cls``.

    Booleans become ``--flag / --no-flag``; ``choices`` metadata restricts values; a field's ``parse`` metadata
    reads its text (e.g. :func:`parse_assignments`); ``aliases`` metadata adds flags that mean the same (an old
    name); fields with ``cli=False`` metadata are not flags (they are filled in later, e.g. resolved settings).
    Defaults are the dataclass's. Abbreviated flags are refused.

    :param cls: a dataclass whose fields carry ``metadata={"help": ...}``
    :param description: the ``--help`` description, shown as written (a script passes its ``__doc__``)
    :param argv: arguments (default: ``sys.argv[1:]``)
    :param prog: the program's name in messages (default: argparse's, the script's file name)
    :return: the settings; a bad flag or value exits with status 2 and one line
    """
    parser = StrictParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    types = field_types(cls)
    for field in dataclasses.fields(cls):
        if not field.metadata.get("cli", True):
            continue
        kind = _base_type(types[field.name])
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        text = field.metadata.get("help", "")
        if default not in (None, {}) and kind is not bool:
            text += f" (default: {default})"
        kwargs: dict[str, Any] = dict(default=default, help=text)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is typing.Literal:
            kwargs.update(choices=typing.get_args(kind))
        else:
            # int("1.7") and float("true") fail: argparse refuses them in one line, never truncating
            convert = _reading(field.metadata["parse"]) if "parse" in field.metadata else kind
            kwargs.update(type=convert, choices=field.metadata.get("choices"), metavar=field.metadata.get("metavar"))
        flags = ["--" + field.name.replace("_", "-"), *field.metadata.get("aliases", ())]  # old names too
        parser.add_argument(*flags, dest=field.name, **kwargs)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return cls(**vars(args))
    except ValueError as error:
        parser.error(str(error))


def resume_command(prog: str, argv: list[str] | None = None) -> str:
    """The command line that continues a run: the script's with the same flags and ``--resume``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python", f"scripts/{prog}", *args, *([] if "--resume" in args else ["--resume"])])
