"""Tests marked ``gpu`` run where CUDA is available (scripts/gpu_check.sh runs them all) and are skipped here."""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
