"""Settings from command lines and YAML (agents/config.py): YAML 1.2 numbers, one-line refusals, no abbreviations."""

from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from syre_rl.agents.config import load_yaml, parse_assignments, parse_dataclass, yaml_value
from syre_rl.settings import Settings


@pytest.mark.parametrize(
    "text,value",
    [
        ("1e-3", 0.001),
        ("1.0e-3", 0.001),
        ("+.5", 0.5),
        ("2.5E+2", 250.0),
        ("-.5e1", -5.0),
        ("16", 16),
        ("1.", 1.0),
        ("true", True),
        ("x1e3", "x1e3"),
        ("1e", "1e"),
        (".inf", float("inf")),
        ("[1, 2]", [1, 2]),
    ],
)
def test_yaml_values_read_yaml_1_2_numbers(text, value):
    assert yaml_value(text) == value and type(yaml_value(text)) is type(value)


def test_parse_assignments():
    assert parse_assignments("gamma=1e-3, decoupled=true,every=100,moment_reset=mean") == {
        "gamma": 0.001,
        "decoupled": True,
        "every": 100,
        "moment_reset": "mean",
    }
    assert parse_assignments("") == {}
    with pytest.raises(ValueError, match="method setting 'gamma' is not key=value"):
        parse_assignments("gamma")


@pytest.mark.parametrize(
    "text,match",
    [
        ("", r"x.yaml: this preset must hold a mapping of settings, but it holds nothing"),
        ("a: 1\nb: [1, 2\nc: 3\n", r"x.yaml:3: malformed YAML in this preset: expected ',' or ']'"),
        ("just text\n", "but it holds a str"),
    ],
)
def test_load_yaml_refusals_are_one_line_with_file_and_line(tmp_path, text, match):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as error:
        load_yaml(path, "preset")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="missing.yaml: cannot read this preset: No such file or directory"):
        load_yaml(tmp_path / "missing.yaml", "preset")


@dataclass(frozen=True)
class Flags(Settings):
    owner = "flags"
    timesteps: int = field(default=10, metadata={"help": "steps"})
    rate: float | None = field(default=None, metadata={"help": "rate"})
    mode: Literal["a", "b"] = field(default="a", metadata={"help": "mode"})
    fast: bool = field(default=False, metadata={"help": "fast"})
    args: dict[str, Any] = field(default_factory=dict, metadata={"help": "k=v", "parse": parse_assignments})
    filled: int | None = field(default=None, metadata={"cli": False})

    def check(self) -> None:
        if self.timesteps < 1:
            raise ValueError(f"--timesteps must be >= 1, got {self.timesteps}")


def test_parse_dataclass_builds_typed_settings():
    flags = parse_dataclass(
        Flags, "", ["--timesteps", "5", "--rate", "1e-3", "--mode", "b", "--fast", "--args", "gamma=0.5"]
    )
    assert flags == Flags(timesteps=5, rate=0.001, mode="b", fast=True, args={"gamma": 0.5})


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--timestep", "5"], "unrecognized arguments: --timestep 5"),  # abbreviations are off
        (["--timesteps", "1.7"], "argument --timesteps: invalid int value: '1.7'"),
        (["--timesteps", "true"], "argument --timesteps: invalid int value: 'true'"),
        (["--rate", "false"], "argument --rate: invalid float value: 'false'"),
        (["--mode", "c"], "argument --mode: invalid choice: 'c'"),
        (["--args", "gamma"], "argument --args: method setting 'gamma' is not key=value"),
        (["--timesteps", "0"], "--timesteps must be >= 1, got 0"),
        (["--filled", "3"], "unrecognized arguments: --filled 3"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_dataclass(Flags, "", argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    "text,line,key",
    [
        ("seeds: [0]\ngrid: []\nseeds: [1]\n", 3, "seeds"),
        ("grid:\n  - {method: syre, method_args: {gamma: 1.0, gamma: 2.0}}\n", 2, "gamma"),
        ("algo: ppo\nalgo_kwargs:\n  n_steps: 8\n  n_steps: 16\n", 4, "n_steps"),
    ],
)
def test_a_key_given_twice_is_refused_naming_the_file_line_and_key(tmp_path, text, line, key):
    """PyYAML keeps the last of two equal keys silently; YAML 1.2 forbids them, and so do we."""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"spec.yaml:{line}: .*the key '{key}' is given twice; give it once"):
        load_yaml(path)


def test_a_method_setting_given_twice_is_refused():
    with pytest.raises(ValueError, match="method setting 'gamma' is given twice in 'gamma=0.1,gamma=0.2'"):
        parse_assignments("gamma=0.1,gamma=0.2")
