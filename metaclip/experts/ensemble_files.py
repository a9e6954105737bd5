"""Reading the experts' logits, targets and routing weights for metaclip.experts.ensemble.

numpy only: logits are read from .npy / .npz files with allow_pickle=False, and torch/pickle
files are refused by name, so nothing read from an input can run code. Every mistake is a
one-line UserError naming the file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from metaclip.errors import UserError
from metaclip.io import storage

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".pickle")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1].lower()


def _refuse_torch(uri: str) -> None:
    if _name(uri).endswith(TORCH_SUFFIXES):
        raise UserError(
            f"{uri}: torch/pickle files are never loaded (they can run code); save the logits "
            'with numpy instead, e.g. np.save("expert-0.npy", logits.numpy())'
        )


def _read(uri: str, **storage_options: Any) -> bytes:
    try:
        return storage.read_bytes(uri, **storage_options)
    except FileNotFoundError:
        raise UserError(f"{uri}: no such file") from None
    except OSError as exc:
        raise UserError(f"{uri}: cannot read: {_first_line(exc)}") from None


def _load_arrays(uri: str, data: bytes) -> dict[str, np.ndarray]:
    """Arrays of an .npy (key "") or .npz file; never unpickles (object arrays are refused)."""
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded as npz:
            return {key: npz[key] for key in npz.files}
    except Exception as exc:  # numpy raises many types on bad bytes (TokenError, BadZipFile...)
        raise UserError(
            f"{uri}: not a readable numpy array file (damaged, or pickled/object data, which is "
            f"never loaded): {_first_line(exc)}"
        ) from None


def _check_logits(uri: str, logits: np.ndarray) -> np.ndarray:
    if logits.dtype.kind not in "iuf":
        raise UserError(f"{uri}: logits must be numbers, not dtype {logits.dtype}")
    if logits.ndim != 2:
        raise UserError(f"{uri}: logits must be 2-D (samples x classes), not shape {logits.shape}")
    if logits.size == 0:
        raise UserError(f"{uri}: logits are empty (shape {logits.shape})")
    if logits.dtype.kind == "f" and not np.isfinite(logits).all():
        raise UserError(f"{uri}: logits hold NaN or infinite values")
    return logits


def check_targets(name: str, targets: np.ndarray, n: int | None = None,
                   n_classes: int | None = None) -> np.ndarray:
    if targets.dtype.kind not in "iu":
        raise UserError(f"{name}: targets must be integers, not dtype {targets.dtype}")
    if targets.ndim != 1 or targets.size == 0:
        raise UserError(f"{name}: targets must be a non-empty 1-D array, not shape "
                        f"{targets.shape}")
    if n is not None and len(targets) != n:
        raise UserError(f"{name}: {len(targets)} targets for {n} samples")
    low, high = int(targets.min()), int(targets.max())
    if low < 0 or (n_classes is not None and high >= n_classes):
        bound = f"[0, {n_classes})" if n_classes is not None else "non-negative"
        raise UserError(f"{name}: targets must be class indices {bound}, found {low}..{high}")
    return targets.astype(np.int64, copy=False)


def read_logits(uri: str, **storage_options: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """One expert's logits (N x C) and, from an .npz holding them, its targets (else None).

    .npy: the logits array. .npz: arrays `logits` and optionally `targets` (N,).
    """
    _refuse_torch(uri)
    if not _name(uri).endswith((".npy", ".npz")):
        raise UserError(f"{uri}: logits must be a .npy or .npz file")
    arrays = _load_arrays(uri, _read(uri, **storage_options))
    if "" in arrays:
        return _check_logits(uri, arrays[""]), None
    if "logits" not in arrays:
        raise UserError(f"{uri}: the .npz holds no `logits` array (it has: "
                        f"{', '.join(sorted(arrays)) or 'nothing'})")
    logits = _check_logits(uri, arrays["logits"])
    targets = arrays.get("targets")
    if targets is not None:
        targets = check_targets(uri, targets, *logits.shape)
    return logits, targets


def _parse_int_lines(uri: str, text: str) -> np.ndarray:
    values: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(int(line.strip()))
        except ValueError:
            bad = line.strip()[:40]
            raise UserError(f"{uri}: line {number} is not an integer: {bad!r}") from None
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        raise UserError(f"{uri}: a target does not fit a 64-bit integer") from None


def read_targets(uri: str, n_classes: int | None = None, **storage_options: Any) -> np.ndarray:
    """Class index per sample: a .npy of integers (N,), an .npz with `targets`, or a text file
    with one integer per line (blank lines skipped)."""
    _refuse_torch(uri)
    data = _read(uri, **storage_options)
    if _name(uri).endswith((".npy", ".npz")):
        arrays = _load_arrays(uri, data)
        key = "" if "" in arrays else "targets"
        if key not in arrays:
            raise UserError(f"{uri}: the .npz holds no `targets` array")
        targets = arrays[key]
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            message = "targets must be .npy or UTF-8 text, one integer a line"
            raise UserError(f"{uri}: {message}") from None
        targets = _parse_int_lines(uri, text)
    return check_targets(uri, targets, n_classes=n_classes)


def _parse_numbers(text: str) -> list[float] | None:
    """Comma-separated numbers, or None when `text` is not that (then it names a file)."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        return None


def read_weights(source: str | Sequence[float], **storage_options: Any) -> np.ndarray:
    """Routing weights: a JSON file written by `metaclip route` (key `weights`) or holding a
    list, a comma-separated string ("0.2,0.8"), or a sequence of numbers. Any finite numbers
    are accepted as given (the reference neither clips nor renormalises them); their count is
    checked against the experts where the two meet (`evaluate`, `ensemble_logits`)."""
    name = "weights"
    if isinstance(source, str):
        values: Any = _parse_numbers(source)
        if values is None:
            name = source
            try:
                values = orjson.loads(_read(source, **storage_options))
            except orjson.JSONDecodeError as exc:
                raise UserError(f"{source}: not JSON: {_first_line(exc)}") from None
            if isinstance(values, dict):
                if "weights" not in values:
                    raise UserError(f"{source}: no `weights` key (is it `metaclip route`'s?)")
                values = values["weights"]
    else:
        values = list(source)
    return _check_weights(name, values)


def _check_weights(name: str, values: Any) -> np.ndarray:
    if not isinstance(values, list | tuple | np.ndarray) or len(values) == 0:
        raise UserError(f"{name}: weights must be a non-empty list of numbers")
    if any(isinstance(v, bool) or not isinstance(v, int | float | np.number) for v in values):
        raise UserError(f"{name}: weights must be numbers")
    weights = np.asarray(values, dtype=np.float64)
    if weights.ndim != 1 or not np.isfinite(weights).all():
        raise UserError(f"{name}: weights must be finite numbers, one per expert")
    return weights
