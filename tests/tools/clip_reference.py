#!/usr/bin/env python3
"""Stdlib-only reference of OpenAI CLIP's simple_tokenizer.py, used to derive and cross-check the
expected ids in tests/test_tokenizer.cpp (the C++ tokenizer is written separately).

CLIP needs `ftfy` and `regex`, which are not installable here, so this script emulates:
  * `regex`'s \\p{L}, \\p{N}, \\s with unicodedata categories / str.isspace, and its IGNORECASE
    literal alternatives with simple case folding;
  * the ftfy.fix_text defaults that matter for captions: HTML entities (when the line has no '<'),
    whole-string mojibake (latin-1 / sloppy windows-1252 bytes that decode as UTF-8), C1 controls,
    Latin ligatures, full/half-width forms, curly quotes, line breaks, terminal escapes, control
    characters, NFC.
The BPE loop, byte encoder, vocabulary layout, html.unescape (stdlib), str.lower and the
whitespace clean-up are CLIP's own code paths.

Usage: clip_reference.py VOCAB.txt.gz 'text' ...   -> one JSON list of ids per text
"""
import gzip
import html
import html.entities
import json
import re
import sys
import unicodedata
from functools import lru_cache


@lru_cache()
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    pairs = set()
    prev = word[0]
    for ch in word[1:]:
        pairs.add((prev, ch))
        prev = ch
    return pairs


# ---------------------------------------------------------------- ftfy subset
SINGLE_QUOTE_RE = re.compile("[\u02bc\u2018-\u201b]")
DOUBLE_QUOTE_RE = re.compile("[\u201c-\u201f]")
LIGATURES = {ord("Ĳ"): "IJ", ord("ĳ"): "ij", ord("ŉ"): "ʼn", ord("Ǳ"): "DZ", ord("ǲ"): "Dz", ord("ǳ"): "dz",
             ord("Ǆ"): "DŽ", ord("ǅ"): "Dž", ord("ǆ"): "dž", ord("Ǉ"): "LJ", ord("ǈ"): "Lj", ord("ǉ"): "lj",
             ord("Ǌ"): "NJ", ord("ǋ"): "Nj", ord("ǌ"): "nj", ord("ﬀ"): "ff", ord("ﬁ"): "fi", ord("ﬂ"): "fl",
             ord("ﬃ"): "ffi", ord("ﬄ"): "ffl", ord("ﬅ"): "ſt", ord("ﬆ"): "st"}
WIDTH_MAP = {0x3000: " "}
for _i in range(0xFF01, 0xFFF0):
    _alt = unicodedata.normalize("NFKC", chr(_i))
    if _alt != chr(_i):
        WIDTH_MAP[_i] = _alt
CONTROL_CHARS = {i: None for r in (range(0x00, 0x09), [0x0B], range(0x0E, 0x20), [0x7F], range(0x206A, 0x2070),
                                   [0xFEFF], range(0xFFF9, 0xFFFD)) for i in r}
HTML_ENTITY_RE = re.compile(r"&#?[0-9A-Za-z]{1,24};")
HTML_ENTITIES = {}
for _name, _char in html.entities.html5.items():
    if _name.endswith(";"):
        HTML_ENTITIES["&" + _name] = _char
        if _name == _name.lower():
            _up = "&" + _name.upper()
            if html.unescape(_up) == _up:
                HTML_ENTITIES[_up] = _char.upper()
ANSI_RE = re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")
C1_RE = re.compile("[\x80-\x9f]")


def sloppy_cp1252_decode_byte(b):
    try:
        return bytes([b]).decode("windows-1252")
    except UnicodeDecodeError:
        return chr(b)


# ftfy's sloppy codecs read byte 0x1A as U+FFFD; neither direction of that is reproduced, so
# U+001A (and U+FFFD) cannot be encoded.
SLOPPY_1252_ENCODE = {ord(sloppy_cp1252_decode_byte(b)): b for b in range(256) if b != 0x1A}


def ftfy_unescape_html(text):
    def fixup(m):
        t = m.group(0)
        if t in HTML_ENTITIES:
            return HTML_ENTITIES[t]
        if t.startswith("&#"):
            u = html.unescape(t)
            return t if ";" in u else u
        return t
    return HTML_ENTITY_RE.sub(fixup, text)


def fix_encoding(text):
    while True:
        if all(ord(c) < 128 for c in text):
            return text
        raw = None
        if all(ord(c) < 256 for c in text):
            raw = text.encode("latin-1")
        elif all(ord(c) in SLOPPY_1252_ENCODE for c in text):
            raw = bytes(SLOPPY_1252_ENCODE[ord(c)] for c in text)
        if raw is None:
            return text
        try:
            fixed = raw.decode("utf-8")
        except UnicodeDecodeError:
            return text
        if fixed == text:
            return text
        text = fixed


def fix_segment(text, unescape):
    while True:
        orig = text
        if unescape:
            text = ftfy_unescape_html(text)
        text = fix_encoding(text)
        text = C1_RE.sub(lambda m: sloppy_cp1252_decode_byte(ord(m.group(0))), text)
        text = text.translate(LIGATURES)
        text = text.translate(WIDTH_MAP)
        text = SINGLE_QUOTE_RE.sub("'", DOUBLE_QUOTE_RE.sub('"', text))
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n") \
                   .replace("\u2029", "\n").replace("\u0085", "\n")
        text = ANSI_RE.sub("", text)
        text = text.translate(CONTROL_CHARS)
        text = unicodedata.normalize("NFC", text)
        if text == orig:
            return text


def fix_text(text):
    out, pos, unescape = [], 0, True
    while pos < len(text):
        brk = text.find("\n", pos) + 1
        if brk == 0:
            brk = len(text)
        seg = text[pos:brk]
        if "<" in seg:
            unescape = False
        out.append(fix_segment(seg, unescape))
        pos = brk
    return "".join(out)


# ---------------------------------------------------------------- `regex` subset
def is_space(c):  # regex's \s: Unicode White_Space
    return c in "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" or "\u2000" <= c <= "\u200a"


def is_letter(c):
    return unicodedata.category(c) in ("Lu", "Ll", "Lt", "Lm", "Lo")


def is_number(c):
    return unicodedata.category(c) in ("Nd", "Nl", "No")


LITERALS = ["<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]


def fold(c):
    return {"\u017f": "s", "\u212a": "k"}.get(c, c.lower() if len(c.lower()) == 1 else c)


def findall(text):
    out, i, n = [], 0, len(text)
    while i < n:
        hit = None
        for lit in LITERALS:
            seg = text[i:i + len(lit)]
            if len(seg) == len(lit) and all(fold(a) == fold(b) for a, b in zip(seg, lit)):
                hit = seg
                break
        if hit is None:
            c = text[i]
            if is_letter(c):
                j = i
                while j < n and is_letter(text[j]):
                    j += 1
                hit = text[i:j]
            elif is_number(c):
                hit = c
            elif not is_space(c):
                j = i
                while j < n and not (is_space(text[j]) or is_letter(text[j]) or is_number(text[j])):
                    j += 1
                hit = text[i:j]
        if hit is None:
            i += 1
        else:
            out.append(hit)
            i += len(hit)
    return out


def whitespace_clean(text):
    out, in_space = [], False
    for c in text:
        if is_space(c):
            in_space = True
        else:
            if in_space and out:
                out.append(" ")
            in_space = False
            out.append(c)
    return "".join(out)


# ---------------------------------------------------------------- CLIP's tokenizer
class SimpleTokenizer:
    def __init__(self, bpe_path):
        self.byte_encoder = bytes_to_unicode()
        merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")
        merges = merges[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for m in merges:
            vocab.append("".join(m))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def clean(self, text):
        text = fix_text(text)
        text = html.unescape(html.unescape(text))
        return whitespace_clean(text.strip()).strip()

    def encode(self, text):
        ids = []
        text = self.clean(text).lower()
        for token in findall(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids


if __name__ == "__main__":
    tok = SimpleTokenizer(sys.argv[1])
    for t in sys.argv[2:]:
        print(json.dumps(tok.encode(t)))
