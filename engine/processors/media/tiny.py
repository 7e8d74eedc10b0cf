"""A random-weight Whisper model, built offline, for tests and benchmarks.

No model can be downloaded where jobtui is tested, and the smallest real one is
~75 MB. This builds a complete CTranslate2 Whisper model (weights, vocabulary,
``config.json``, ``tokenizer.json``, ``preprocessor_config.json``) with the real
model's token layout (51,865 tokens, so it counts as multilingual and detects
languages) and tiny dimensions, from NumPy random numbers. faster-whisper loads and
runs it like any other: features, voice activity, language detection, beam search,
word timestamps and assembly all run for real. What it "hears" is noise: assert the
structure and timing of its output, never words.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Whisper's multilingual layout: 50,257 text tokens, then the special tokens, the 99
# language tokens and 1,501 timestamps (0.00 .. 30.00 s).
TEXT_TOKENS = 50_257
LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu "
    "ta no th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn "
    "bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn "
    "mt sa lb my bo tl mg as tt haw ln ha ba jw su"
).split()
TIMESTAMPS = 1_501
SPECIALS_AFTER_LANGS = (
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
)


def vocabulary() -> list[str]:
    """Every token string in id order, as the real multilingual models have them."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())  # the 256 byte-level characters
    tokens = list(alphabet)
    letters = "abcdefghijklmnopqrstuvwxyz"
    i = 0
    while len(tokens) < TEXT_TOKENS:
        # " wxyz"-like filler words (Ġ is the byte-level space): decoded text looks
        # like words, so word timestamps and line wrapping have something to split.
        n, word = i, ""
        while True:
            word = letters[n % 26] + word
            n //= 26
            if n == 0:
                break
        tokens.append("\u0120" + word)
        i += 1
    tokens += ["<|endoftext|>", "<|startoftranscript|>"]
    tokens += [f"<|{lang}|>" for lang in LANGUAGES]
    tokens += list(SPECIALS_AFTER_LANGS)
    tokens += ["<|%.2f|>" % (i * 0.02) for i in range(TIMESTAMPS)]
    return tokens


def _tokenizer_json(tokens: list[str]) -> str:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    text = {t: i for i, t in enumerate(tokens[:TEXT_TOKENS])}
    tok = Tokenizer(models.BPE(vocab=text, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Added in id order, so each special token gets the id it has in the vocabulary.
    tok.add_special_tokens([AddedToken(t, special=True) for t in tokens[TEXT_TOKENS:]])
    assert tok.token_to_id("<|0.00|>") == tokens.index("<|0.00|>")
    return str(tok.to_str())


def build_random_whisper(
    out_dir: str | os.PathLike[str],
    *,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 2,
    n_mels: int = 80,
    seed: int = 0,
) -> Path:
    """Write a random-weight Whisper model to ``out_dir`` (about 4 MB, int8)."""
    import numpy as np
    from ctranslate2.specs import whisper_spec

    rng = np.random.default_rng(seed)
    d, ff = d_model, 4 * d_model
    tokens = vocabulary()
    vocab = len(tokens)

    def w(*shape: int) -> Any:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    def zeros(n: int) -> Any:
        return np.zeros(n, dtype=np.float32)

    def norm(spec: Any) -> None:
        spec.gamma = np.ones(d, dtype=np.float32)
        spec.beta = zeros(d)

    def linear(spec: Any, out: int, inp: int) -> None:
        spec.weight = w(out, inp)
        spec.bias = zeros(out)

    def ffn(spec: Any) -> None:
        norm(spec.layer_norm)
        linear(spec.linear_0, ff, d)
        linear(spec.linear_1, d, ff)

    spec = whisper_spec.WhisperSpec(layers, heads, layers, heads)
    enc = spec.encoder
    enc.conv1.weight, enc.conv1.bias = w(d, n_mels, 3), zeros(d)
    enc.conv2.weight, enc.conv2.bias = w(d, d, 3), zeros(d)
    enc.position_encodings.encodings = w(1500, d)
    norm(enc.layer_norm)
    for layer in enc.layer:
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        ffn(layer.ffn)
    dec = spec.decoder
    dec.embeddings.weight = w(vocab, d)
    dec.position_encodings.encodings = w(448, d)
    norm(dec.layer_norm)
    dec.projection.weight = dec.embeddings.weight
    for layer in dec.layer:
        norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], 3 * d, d)
        linear(layer.self_attention.linear[1], d, d)
        norm(layer.attention.layer_norm)
        linear(layer.attention.linear[0], d, d)
        linear(layer.attention.linear[1], 2 * d, d)
        linear(layer.attention.linear[2], d, d)
        ffn(layer.ffn)

    eot = tokens.index("<|endoftext|>")
    spec.config.suppress_ids = [tokens.index("<|startoftranscript|>")]
    spec.config.suppress_ids_begin = [220, eot]
    spec.config.lang_ids = [tokens.index(f"<|{lang}|>") for lang in LANGUAGES]
    spec.config.alignment_heads = [
        (layers // 2 + i, h) for i in range(layers // 2) for h in range(heads)
    ]
    # CTranslate2 (4.8) counts a model as multilingual when its vocabulary holds an
    # empty token, as the converted multilingual models do; the tokenizer keeps the
    # filler word at that id (it never decodes an empty token well).
    ct2_tokens = list(tokens)
    ct2_tokens[TEXT_TOKENS - 1] = ""
    spec.register_vocabulary(ct2_tokens)
    spec.validate()
    spec.optimize(quantization="int8")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec.save(str(out))
    (out / "tokenizer.json").write_text(_tokenizer_json(tokens), encoding="utf-8")
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "feature_size": n_mels,
                "sampling_rate": 16000,
                "hop_length": 160,
                "chunk_length": 30,
                "n_fft": 400,
            }
        ),
        encoding="utf-8",
    )
    return out
