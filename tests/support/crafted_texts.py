"""Seeded texts that put in front of the compiled language ID kernel (metaclip/extraction/_lid.pyx)
what fastText's own reading decides: its separators (\\0, \\v, \\f besides the white space Python
splits on), a written `</s>` (the line ends there), label tokens known and unknown, UTF-8 of one
to four bytes, continuation bytes at n-gram boundaries, words longer than any n-gram, words of
the model's vocabulary and empty texts. (No lone surrogates: an Arrow string is valid UTF-8.)
"""

from __future__ import annotations

import random

SEPARATORS = [" ", " ", " ", "  ", "\t", "\0", "\v", "\f", "\r\n", "\x1c", "\xa0", "\u3000", "\x85"]
TOKENS = ["</s>", "__label__en", "__label__fr", "__label__", "__label__zz", "<", ">", "<>", "I"]
WORDS = ["the", "de", "und", "photo", "image", "chat", "собака", "東京", "الصورة", "फोटो", "über"]
ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "!\"#$%&'()*+,-./:;=?@[\\]^_`{|}~",
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ",  # two bytes
    "абвгдежзийклмнопрстуфхцчшщъыьэюяЖЩЮ",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "的一是在不了有和人这中大为上个国我以要他",  # three bytes
    "あいうえおかきくけこさしすせそたちつてと",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "अआइईउऊएऐओऔकखगघङचछजझञ",
    "\u0301\u0308\u200d\ufeff\ufffd",  # combining marks, zero widths, replacement character
    "😀😃🎉🐶🌍🚀👍🏽",  # four bytes
]


def _word(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(TOKENS)
    if roll < 0.3:
        return rng.choice(WORDS)
    length = rng.choice([1, 1, 2, 3, 4, 5, 8, 13, 40, 300])
    if rng.random() < 0.5:
        alphabet = rng.choice(ALPHABETS)
        return "".join(rng.choice(alphabet) for _ in range(length))
    return "".join(rng.choice(rng.choice(ALPHABETS)) for _ in range(length))


def crafted_texts(seed: int = 0, count: int = 4000) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = [None, "", " ", "\0", "</s>", "</s> after", "__label__en"]
    for _ in range(count):
        words = [_word(rng) for _ in range(rng.choice([1, 1, 2, 3, 5, 8, 20, 60]))]
        text = words[0]
        for word in words[1:]:
            text += rng.choice(SEPARATORS) + word
        if rng.random() < 0.1:
            text = rng.choice(SEPARATORS) + text + rng.choice(SEPARATORS)
        texts.append(text)
    return texts
