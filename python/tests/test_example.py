"""The PyTorch example, where torch is installed (it is too large for CI: about 4 GB)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "torch_maml.py"


def test_a_maml_model_trained_in_torch_adapts_on_the_device_as_in_torch(tmp_path):
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, EXAMPLE, "--iterations", "100", "--tasks", "20", "--on", "qemu-an386",
         "--out", tmp_path / "m.safetensors"],
        capture_output=True, text=True, check=True,
    ).stdout
    gap = float(re.search(r"prediction: (\S+)", out).group(1))
    assert gap < 1e-4, out
    assert "bit-identical" in out, out
