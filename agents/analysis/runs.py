"""Runs on disk: the folders holding TensorBoard event files, their experiment, method and seed, and their scalars.

A run's method and seed come from its ``config.json`` (``method``, ``seed``; a ``label`` names a variant of a
method, compared as its own group), else from the folder name ``METHOD_sSEED`` or ``METHOD_sSEED_K`` (K: repeat
index); its experiment is the config's ``env`` or ``benchmark``, else the parent folder's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from syre_rl.agents.runs import stopped_record

RUN_NAME = re.compile(r"^(?P<method>.+)_s(?P<seed>\d+)(?:_(?P<repeat>\d+))?$")
FRESH = re.compile(r"^fresh-task(?P<task>\d+)$")  # a fresh network trained on task k only
PLASTICITY = re.compile(r"^plasticity/(?P<target>[^/]+)/layer(?P<layer>\d+)/(?P<metric>[^/]+)$")
RETURN, FRICTION, TASK = "rollout/ep_rew_mean", "env/friction", "env/task"
STOPPED_AT = "stopped_at"  # the summary's row of runs stopped on a non-finite value: seed -> the env step
ENTROPY_LOSS = "train/entropy_loss"  # SB3's: minus the policy's mean entropy
TEST_ACCURACY, SEEN_ACCURACY, ONLINE_ACCURACY = "task/test_accuracy", "task/mean_seen_accuracy", "task/online_accuracy"

Scalars = dict[str, tuple[np.ndarray, np.ndarray]]  # tag -> (steps, values), both shape (points,)


@dataclass(frozen=True)
class Run:
    """One training run.

    :param path: the folder holding its event files
    :param experiment: env id or benchmark name (else the parent folder's name)
    :param method: e.g. ``vanilla``, ``syre``, ``syre-ar``
    :param seed: its seed
    :param repeat: K of a ``METHOD_sSEED_K`` folder, 1 otherwise
    """

    path: Path
    experiment: str
    method: str
    seed: int
    repeat: int = 1


Methods = dict[str, list[Run]]  # one experiment's runs: method -> its runs
RESUMED = re.compile(r"^progress_from_(?P<step>\d+)\.csv$")  # an RL run's log after a resume at that step


def resumed_at(run: Run) -> list[int]:
    """The steps at which an RL run was resumed (its ``progress_from_<step>.csv`` logs), in order. An RL resume
    is not exact (new episodes, new random draws), so a published number should come from a run without any."""
    steps = [int(m["step"]) for p in run.path.iterdir() if (m := RESUMED.match(p.name))]
    return sorted(steps)


def stopped_at(run: Run) -> int | None:
    """The env step at which training stopped the run on a non-finite value (its ``stopped.json``), or None."""
    record = stopped_record(run.path)
    return int(record["step"]) if record is not None else None


def wall_clock(run: Run) -> tuple[float, float, float] | None:
    """When a run ran, from the wall times of its logged points (events holding a summary): (first, last, the
    seconds between the first and the last point of each event file, summed: a resumed run's time without its
    pause), or None without points."""
    spans = []
    for path in sorted(run.path.glob("events.out.tfevents.*")):
        times = [event.wall_time for event in EventFileLoader(str(path)).Load() if event.HasField("summary")]
        if times:
            spans.append((min(times), max(times)))
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans), sum(b - a for a, b in spans)


def ran_batched(run: Run) -> bool:
    """Whether the run trained as a member of a batch (its ``config.json`` says ``batched``)."""
    return bool(_config(run.path).get("batched"))


def find_runs(root: str | Path) -> list[Run]:
    """Every folder under ``root`` (``root`` included) holding TensorBoard event files, sorted by path.

    :raise ValueError: ``root`` is not a folder, or a run's method and seed cannot be told
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"runs folder '{root}' does not exist or is not a folder")
    return [_describe(folder) for folder in sorted({p.parent for p in root.rglob("events.out.tfevents.*")})]


def _describe(folder: Path) -> Run:
    match = RUN_NAME.match(folder.name)
    info = {"method": match["method"], "seed": match["seed"]} if match else {}
    config = _config(folder)
    info.update({key: config[key] for key in ("method", "seed") if config.get(key) is not None})
    if config.get("label"):  # a variant of a method (e.g. one decay of a sweep) is compared as its own group
        info["method"] = config["label"]
    if "method" not in info or "seed" not in info:
        raise ValueError(
            f"cannot tell the method and seed of run '{folder}': no config.json with 'method' and "
            f"'seed', and the folder name is not METHOD_sSEED or METHOD_sSEED_K"
        )
    experiment = config.get("env") or config.get("benchmark") or folder.parent.name
    repeat = int(match["repeat"] or 1) if match else 1
    return Run(folder, str(experiment), str(info["method"]), int(info["seed"]), repeat)


def _config(folder: Path) -> dict:
    """A run's ``config.json``, empty when it has none."""
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def check_event_file(path: Path) -> int:
    """Refuse a damaged event file. TensorBoard's reader checks every record's CRC but, at the first that fails,
    stops reading that file without a word, so a flipped byte silently drops every later point; the records the
    file's framing holds are counted here and compared with what the reader returns. A last record cut short (a
    run killed mid-write, or still writing) is not damage.

    :return: the number of records read
    :raises ValueError: one line naming the file and the first record the reader could not read
    """
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    raw = path.read_bytes()
    records, offset, framing = 0, 0, True
    while offset + 12 <= len(raw):  # a record: length (8 bytes), its CRC (4), data, the data's CRC (4)
        header = raw[offset : offset + 8]
        if masked_crc32c(header) != int.from_bytes(raw[offset + 8 : offset + 12], "little"):
            framing = False  # a damaged length: nothing after it can be framed
            break
        end = offset + 12 + int.from_bytes(header, "little") + 4
        if end > len(raw):
            break
        records, offset = records + 1, end
    try:
        read = sum(1 for _ in EventFileLoader(str(path)).Load())
    except Exception:  # TensorBoard's readers raise their own DataLossError and friends
        read = -1
    if read < records or records == 0 or not framing:
        where = f"at record {max(read, 0) + 1}" + (f" of {records}" if framing else "") if records else "at its start"
        raise ValueError(
            f"{path} is damaged {where}: its checksum fails, and TensorBoard would silently drop every later point; "
            "move it away to compare the rest"
        )
    return read


def load_scalars(run: Run | str | Path) -> Scalars:
    """All scalar tags of a run, every point (no subsampling).

    :return: tag -> (steps, values), both float arrays sorted by step; a step logged twice keeps its last value
    :raises ValueError: naming an event file that holds no readable event (an event file starts with one)
    """
    folder = Path(run.path if isinstance(run, Run) else run)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        check_event_file(path)
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    scalars = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        steps = np.array([p.step for p in points], dtype=float)
        values = np.array([p.value for p in points], dtype=float)
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        keep = np.append(steps[1:] != steps[:-1], True)  # np.interp needs increasing x
        scalars[tag] = (steps[keep], values[keep])
    return scalars


def latest_repeats(runs: Iterable[Run]) -> tuple[list[Run], list[Run]]:
    """Keep one run per (experiment, method, seed), the latest repeat, so that a seed counts once in the
    intervals; returns (kept, left out)."""
    runs = list(runs)
    latest: dict[tuple, Run] = {}
    for run in runs:
        key = (run.experiment, run.method, run.seed)
        if key not in latest or (run.repeat, str(run.path)) > (latest[key].repeat, str(latest[key].path)):
            latest[key] = run
    kept = set(map(id, latest.values()))
    return list(latest.values()), [run for run in runs if id(run) not in kept]


def group_runs(runs: Iterable[Run]) -> dict[str, Methods]:
    """experiment -> method -> runs, all sorted."""
    groups: dict[str, Methods] = {}
    for run in sorted(runs, key=lambda r: (r.experiment, r.method, r.seed, r.repeat, str(r.path))):
        groups.setdefault(run.experiment, {}).setdefault(run.method, []).append(run)
    return groups


def logged(methods: Methods, scalars: dict[Run, Scalars]) -> set[str]:
    """The tags that some run of an experiment logged."""
    return set().union(*(scalars[run] for runs in methods.values() for run in runs))
