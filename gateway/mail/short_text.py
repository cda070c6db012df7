"""Reading the shape of a few words of 8-bit text: Cyrillic, Greek, Hebrew, or western.

A statistical detector needs more bytes than a subject or a one-line reply holds, but the
shape of short text already tells a lot. In western languages an 8-bit byte is a letter
inside a word of ASCII letters ("Grüße", "café"); in Cyrillic, Greek and Hebrew whole
words are 8-bit. When most 8-bit bytes sit in such words, each single-byte charset mail
uses for those scripts (windows-1251, KOI8-R, windows-1253, windows-1255) reads the text,
and the reading whose words are cased like words (lower, Capitalised or UPPER), hold no
symbols nor word-final letters inside a word, and use the common letters of their language
scores best; it is taken only when it reads like real text on average, and windows-1251,
by far the most common, wins ties. Anything else is left to the caller's windows-1252
reading (`None`).
"""

from __future__ import annotations

import math
import re
import unicodedata

_WORD = re.compile(rb"[A-Za-z\x80-\xff]+")
_ASCII_LETTER = re.compile(rb"[A-Za-z]")
_LETTERS = re.compile(r"[^\W\d_]+")
_PUNCTUATION = frozenset("«»—–…“”„‘’‚№€§°±·\u00a0\u00ad•™©®")
_RARE = 0.05  # the frequency (percent) given to a letter its language's table lacks
_MIN_MEAN = 0.6  # mean log-frequency per letter below which a reading is not believed
_MISCASED = 3.0  # cost per letter of a word cased like no word ("пПХБЕР")
_SYMBOL = 5.0  # cost of a symbol among the letters (box drawing from the wrong table)

# Letter frequencies in percent: Russian, with the other letters windows-1251 carries
# (Ukrainian, Belarusian, Serbian, Macedonian) at rough values of their own languages.
_CYRILLIC = {
    **dict(zip("оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё", (
        10.97, 8.45, 8.01, 7.35, 6.70, 6.26, 5.47, 4.73, 4.54, 4.40, 3.49, 3.21, 2.98, 2.81,
        2.62, 2.01, 1.90, 1.74, 1.70, 1.65, 1.59, 1.44, 1.21, 0.97, 0.94, 0.73, 0.64, 0.48,
        0.36, 0.32, 0.26, 0.04, 0.50,
    ))),
    "і": 4.0, "ї": 0.6, "є": 0.8, "ґ": 0.1, "ў": 0.3, "ј": 1.0, "љ": 0.3, "њ": 0.5, "ћ": 0.3,
    "ђ": 0.1, "џ": 0.1, "ѓ": 0.1, "ќ": 0.1, "ѕ": 0.05,
}  # fmt: skip
_GREEK = dict(zip("αοιετνσηυρπκμλςωδγθχφβζξψ", (
    12.0, 9.8, 8.8, 8.0, 7.9, 6.7, 4.5, 4.5, 4.2, 4.4, 4.0, 4.0, 3.3, 2.9, 2.6, 1.9, 1.7,
    1.7, 1.2, 1.1, 0.8, 0.5, 0.4, 0.3, 0.15,
)))  # fmt: skip
_HEBREW = dict(zip("יוהלאמרבתשנדעקכחםפןגסצטזךףץ", (
    11.0, 10.0, 9.0, 7.0, 6.0, 6.0, 5.5, 5.0, 5.0, 4.5, 4.5, 3.0, 3.0, 2.5, 2.5, 2.3, 2.5,
    1.8, 1.5, 1.3, 1.3, 1.2, 1.2, 0.9, 0.5, 0.3, 0.2,
)))  # fmt: skip
_READINGS = (("cp1251", _CYRILLIC), ("koi8_r", _CYRILLIC), ("cp1253", _GREEK), ("cp1255", _HEBREW))
_WORD_FINAL = frozenset("ςםןךףץ")  # letters written only at the end of a word


def guess_short(data: bytes) -> str | None:
    """The Cyrillic, Greek or Hebrew codec 8-bit `data` is written in, or None."""
    high = sum(byte >= 0x80 for byte in data)
    foreign = sum(
        len(word) for word in _WORD.findall(data) if len(word) >= 2 and not _ASCII_LETTER.search(word)
    )
    if foreign < 3 or foreign * 3 < high * 2:  # western: 8-bit letters inside ASCII words
        return None
    best, best_mean = None, _MIN_MEAN
    for codec, frequencies in _READINGS:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        mean = _mean_score(text, frequencies)
        if mean > best_mean:
            best, best_mean = codec, mean
    return best


def _mean_score(text: str, frequencies: dict[str, float]) -> float:
    """Mean log-frequency per non-ASCII letter, less the costs of miscased words and symbols."""
    total, letters = 0.0, 0
    for word in _LETTERS.findall(text):
        foreign = [char for char in word if not char.isascii()]
        if not foreign:
            continue
        letters += len(foreign)
        if not _cased_like_a_word(word) or _WORD_FINAL.intersection(word[:-1]):
            total -= _MISCASED * len(foreign)
        for char in foreign:
            lower = char.lower()
            found = frequencies.get(lower) or frequencies.get(unicodedata.normalize("NFD", lower)[0])
            total += math.log(found or _RARE)
    symbols = sum(
        1 for char in text if not char.isascii() and not char.isalpha() and char not in _PUNCTUATION
    )
    total -= _SYMBOL * symbols
    return total / letters if letters else -math.inf


def _cased_like_a_word(word: str) -> bool:
    """lower, Capitalised, UPPER, or a script without case (Hebrew)."""
    cased = [char for char in word if char.isupper() or char.islower()]
    if not cased:
        return True
    return word.islower() or word.isupper() or (word[0].isupper() and word[1:].islower())
