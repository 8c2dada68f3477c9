"""tinyadapt: embedded few-shot adaptation from Python.

w* blobs (read, inspect, make, write), PyTorch state_dicts to w* and back, and the device
runtime in this process (``simulate``) or in a firmware under QEMU or on a board's serial
port (``connect``). Every number comes from the same Rust code as the ``meta-train`` CLI and
the firmware, so what Python computes is the device's bits.
"""

from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
BOARDS: List[str]
"""The emulated boards ``connect`` boots under QEMU (``qemu-an386``, …)."""

ArrayLike = npt.ArrayLike
StrPath = Union[str, "PathLike[str]"]

class BlobError(ValueError):
    """A w* blob, a state_dict or the arrays to make a blob were refused."""

class DeviceError(RuntimeError):
    """The device refused a request (it goes on serving), or the link to it failed."""

class Blob:
    """A validated w* blob: θ0, the inner step sizes α, the steps, which layers adapt."""

    def __init__(self, data: bytes) -> None:
        """The blob in ``data``, checked as the device checks it (raises BlobError)."""
    @staticmethod
    def read(path: StrPath) -> "Blob":
        """The blob in the file at ``path``."""
    @staticmethod
    def make(
        shape: Sequence[int],
        theta0: ArrayLike,
        alpha: ArrayLike,
        *,
        steps: int,
        k: int,
        algorithm: Optional[str] = None,
        loss: str = "mse",
        x_mean: Optional[ArrayLike] = None,
        x_std: Optional[ArrayLike] = None,
        y_mean: Optional[ArrayLike] = None,
        y_std: Optional[ArrayLike] = None,
        loss_bound: Optional[float] = None,
        seed: int = 0,
    ) -> "Blob":
        """A blob from arrays (θ0 in the blob's order; α one value or one per parameter)."""
    @staticmethod
    def from_state_dict(
        source: Union[StrPath, bytes, Mapping[str, ArrayLike]],
        *,
        steps: Optional[int] = None,
        k: Optional[int] = None,
        alpha: Optional[float] = None,
        algorithm: Optional[str] = None,
        loss: Optional[str] = None,
        layers: Optional[Sequence[str]] = None,
        x_mean: Optional[ArrayLike] = None,
        x_std: Optional[ArrayLike] = None,
        y_mean: Optional[ArrayLike] = None,
        y_std: Optional[ArrayLike] = None,
        loss_bound: Optional[float] = None,
        seed: Optional[int] = None,
    ) -> "Blob":
        """A blob from a PyTorch MLP's state_dict (safetensors file or dict of arrays)."""
    def state_dict(self, layout: str = "sequential") -> Dict[str, npt.NDArray[np.float32]]:
        """The model as a state_dict of float32 arrays ("sequential" or "learn2learn" keys)."""
    def save_state_dict(self, path: StrPath, layout: str = "sequential") -> None:
        """Writes ``state_dict(layout)`` as a safetensors file, with the inner loop's settings."""
    def to_bytes(self) -> bytes:
        """The blob's bytes, as flashed."""
    def __bytes__(self) -> bytes: ...
    def write(self, path: StrPath) -> None:
        """Writes the blob to ``path`` atomically."""
    def inspect(self) -> str:
        """What ``meta-train inspect`` prints."""
    def layers(
        self, values: Optional[ArrayLike] = None
    ) -> List[Tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]:
        """``(weight, bias)`` per layer in PyTorch's layout, of θ0 or of ``values``."""
    def firmware(self, capacity: Optional[int] = None) -> str:
        """The firmware that serves this blob (``mlp-1-40-40-1-k10``)."""
    @property
    def shape(self) -> List[int]: ...
    @property
    def params(self) -> int: ...
    @property
    def loss(self) -> str: ...
    @property
    def algorithm(self) -> str: ...
    @property
    def alpha_kind(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def trained_k(self) -> int: ...
    @property
    def adapts(self) -> List[int]: ...
    @property
    def loss_bound(self) -> float: ...
    @property
    def seed(self) -> int: ...
    @property
    def signature(self) -> int: ...
    @property
    def head_start(self) -> str: ...
    @property
    def has_body(self) -> bool: ...
    @property
    def views(self) -> str: ...
    @property
    def theta0(self) -> npt.NDArray[np.float32]: ...
    @property
    def alpha(self) -> npt.NDArray[np.float32]: ...
    @property
    def x_mean(self) -> npt.NDArray[np.float32]: ...
    @property
    def x_std(self) -> npt.NDArray[np.float32]: ...
    @property
    def y_mean(self) -> npt.NDArray[np.float32]: ...
    @property
    def y_std(self) -> npt.NDArray[np.float32]: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...

class AdaptReport:
    """What one adaptation did."""

    loss_before: float
    loss_after: float
    steps: int
    undone: Optional[int]
    cause: Optional[str]
    """"non-finite", "above-bound", "rose", or None."""
    ticks: int

class Device:
    """A device that adapts: the runtime in this process or a firmware over its link."""

    @property
    def name(self) -> str: ...
    @property
    def ram(self) -> int:
        """Bytes of RAM the adapter occupies on the device."""
    def status(self) -> Dict[str, Any]: ...
    def memory(self) -> Dict[str, int]: ...
    def push(
        self, x: ArrayLike, y: Optional[ArrayLike] = None, *, label: Optional[int] = None
    ) -> int: ...
    def push_many(
        self,
        xs: ArrayLike,
        ys: Optional[ArrayLike] = None,
        *,
        labels: Optional[Sequence[int]] = None,
    ) -> int: ...
    def clear(self) -> None: ...
    def reset(self) -> None: ...
    def adapt(self, steps: Optional[int] = None, *, unchecked: bool = False) -> AdaptReport: ...
    def predict(self, x: ArrayLike) -> npt.NDArray[np.float32]: ...
    def classify(self, x: ArrayLike) -> Tuple[int, npt.NDArray[np.float32]]: ...
    def params(self) -> npt.NDArray[np.float32]: ...
    def load(self, blob: Blob) -> None: ...
    def logs(self) -> List[str]: ...
    def instructions(self, ticks: int) -> Optional[int]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Device": ...
    def __exit__(self, *args: object) -> bool: ...

def simulate(blob: Blob, capacity: Optional[int] = None) -> Device:
    """The device runtime in this process: the host simulation the CLI checks firmware against."""

def connect(
    on: str,
    blob: Optional[Blob] = None,
    *,
    firmware: Optional[StrPath] = None,
    capacity: Optional[int] = None,
) -> Device:
    """A device over its link: an emulated board (BOARDS), a board file, or a serial port."""

def sinusoid_tasks(
    count: int, k: int, seed: int = 0, test_points: int = 100
) -> List[Dict[str, Any]]:
    """The held-out sinusoid tasks ``meta-train eval`` adapts on."""
