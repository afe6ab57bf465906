"""Which functions does a command-line setting pass through before it acts? Profiles every call from a script's
``main(argv)`` until the first ``Syre.before_step`` (the decay) and lists each function that received the
value in an argument other than ``self``: as a number, inside text, or inside a dict, list or dataclass (two
levels deep). The standard library's own frames are left out; SB3's and yaml's are kept.

    .venv/bin/python -m tests.trace_setting      # train_ppo.py --syre --syre-gamma 0.000123457 on the tiny preset
"""

from __future__ import annotations

import dataclasses
import os
import runpy
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
VALUE = 0.000123457
# functions that only look at the value (checks) or write it down (records) rather than pass it on
CHECKS = {
    "check_value",
    "conforms",
    "check_keys",
    "check_range",
    "canonical_name",
    "__instancecheck__",
    "check_syre_settings",
}
# (file, function) that write the settings down: config.json, the HParams tab, the run's logging
RECORDS = {
    ("runs.py", "write_json_atomic"),
    ("runs.py", "new_run_dir"),
    ("callbacks.py", "__init__"),
    ("rl.py", "_train"),
}
TEXTS = ("0.000123457", "1.23457e-04")


def holds(value: object, depth: int = 0) -> str | None:
    """``"number"`` or ``"text"`` when ``value`` carries VALUE (two levels deep), else None."""
    if isinstance(value, float) and value == VALUE:
        return "number"
    if isinstance(value, str):
        return "text" if any(t in value for t in TEXTS) else None
    if depth > 2:
        return None
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value[:50])
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    else:
        return None
    found = {holds(v, depth + 1) for v in items} - {None}
    return "text" if "text" in found else "number" if found else None


def trace(script: str, argv: list[str]) -> list[tuple[str, str, str]]:
    """``(how, file, function)`` for each function the value reached, in order, ending with the decay."""
    stdlib = os.path.dirname(os.__file__)
    seen: list[tuple[str, str, str]] = []

    def profile(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        if code.co_name == "before_step":
            seen.append(("decay", code.co_filename, code.co_name))
            sys.setprofile(None)
            return
        if code.co_filename.startswith(stdlib) and "site-packages" not in code.co_filename:
            return
        names = code.co_varnames[
            : code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & 4) + bool(code.co_flags & 8)
        ]
        try:
            how = {holds(frame.f_locals.get(n)) for n in names if n not in ("self", "cls")} - {None}
        except Exception:  # a half-built object whose dataclass fields are not all set yet
            return
        if how and not any(f == code.co_filename and n == code.co_name for _, f, n in seen):
            seen.append(("text" if "text" in how else "number", code.co_filename, code.co_name))

    main = runpy.run_path(str(ROOT / "scripts" / script))["main"]
    sys.setprofile(profile)
    try:
        main(argv)
    finally:
        sys.setprofile(None)
    return seen


def train_ppo_gamma(logdir: str) -> list[tuple[str, str, str]]:
    """The trace of ``--syre-gamma`` in a short ``train_ppo.py --syre`` run on the tiny test preset."""
    return trace(
        "train_ppo.py",
        [
            "--syre",
            "--syre-gamma",
            str(VALUE),
            "--preset",
            str(ROOT / "tests" / "tiny-preset.yaml"),
            "--timesteps",
            "128",
            "--logdir",
            logdir,
            "--no-progress",
            "--metrics-every",
            "0",
            "--device",
            "cpu",
        ],
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        calls = train_ppo_gamma(tmp)
    for how, file, name in calls:
        print(f"{how:6} {os.path.relpath(file, ROOT)}:{name}")
    ours = [c for c in calls if c[0] != "decay" and "site-packages" not in c[1]]
    records = [c for c in ours if (Path(c[1]).name, c[2]) in RECORDS]
    checks = [c for c in ours if c[2] in CHECKS]
    print(
        f"{len(calls) - 1} functions before the decay, {len(ours)} of them ours in {len({c[1] for c in ours})} "
        f"files: {len(ours) - len(records) - len(checks)} hand it on, {len(checks)} check it, {len(records)} record "
        f"it; {sum(c[0] == 'text' for c in calls)} received it as text"
    )
