"""Digit images for the MLP experiment, flattened and scaled to [-1, 1] like the noise inputs.

``digits`` is scikit-learn's bundled 8x8 set (1,797 images, no network). ``mnist`` is read from
local IDX or parquet files when a folder is given, else from the Hub's ``ylecun/mnist``.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sublearn.core.errors import DataError


@dataclass(frozen=True)
class Digits:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]


def _tensors(name, x_train, y_train, x_test, y_test, scale: float) -> Digits:
    def to_x(a):
        return torch.tensor(np.asarray(a, dtype=np.float32).reshape(len(a), -1) / scale * 2 - 1)

    def to_y(a):
        return torch.tensor(np.asarray(a, dtype=np.int64))

    return Digits(name, to_x(x_train), to_y(y_train), to_x(x_test), to_y(y_test))


def load_sklearn_digits(seed: int = 0, test_share: float = 0.25) -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=test_share, random_state=seed, stratify=data.target
    )
    return _tensors("digits", x_tr, y_tr, x_te, y_te, scale=16.0)


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: no {stem}[.gz] file")


def _decode_png_column(images) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(img["bytes"]))) for img in images])


def load_mnist(folder: Path | None = None) -> Digits:
    """MNIST from IDX files (train-images-idx3-ubyte, ...) or parquet files (train/test with
    ``image`` and ``label`` columns, as on the Hub) in ``folder``; from the Hub if no folder."""
    if folder is not None:
        folder = Path(folder)
        if (folder / "train.parquet").is_file():
            import polars as pl

            parts = [pl.read_parquet(folder / f"{split}.parquet") for split in ("train", "test")]
            arrays = [
                (_decode_png_column(p["image"].to_list()), p["label"].to_numpy()) for p in parts
            ]
            return _tensors("mnist", *arrays[0], *arrays[1], scale=255.0)
        return _tensors(
            "mnist",
            _read_idx(_find(folder, "train-images-idx3-ubyte")),
            _read_idx(_find(folder, "train-labels-idx1-ubyte")),
            _read_idx(_find(folder, "t10k-images-idx3-ubyte")),
            _read_idx(_find(folder, "t10k-labels-idx1-ubyte")),
            scale=255.0,
        )
    from datasets import load_dataset

    hub = load_dataset("ylecun/mnist")
    arrays = [
        (np.stack([np.asarray(im) for im in hub[s]["image"]]), np.asarray(hub[s]["label"]))
        for s in ("train", "test")
    ]
    return _tensors("mnist", *arrays[0], *arrays[1], scale=255.0)


def load_digit_images(name: str, seed: int = 0, folder: Path | None = None) -> Digits:
    if name == "digits":
        return load_sklearn_digits(seed)
    if name == "mnist":
        return load_mnist(folder)
    raise DataError(f"dataset: unknown {name!r} (choose digits or mnist)")
