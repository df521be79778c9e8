#!/usr/bin/env python3
"""Writes fixture.json: how the Python `tokenizers` library encodes many
strings with the Go-trained tokenizer.json beside this script.

The Go tests (fixture_test.go) check that package bpe pre-tokenizes and
encodes every string to the same pieces and ids, decodes the ids back to
the string, and saves the tokenizer to the bytes that Python saves. CI has
no Python, so the fixture is kept in the repository. To remake it, from the
repository root:

    go test ./trainer/tokenizer/bpe/ -run TestFixtureTokenizer -update   # trains testdata/tokenizer.json from testdata/corpus.txt
    pip install tokenizers
    python3 trainer/tokenizer/bpe/testdata/make_fixture.py

The first step only matters when the training code or corpus changed; the
Go test fails when tokenizer.json no longer matches the fixture.
"""

import hashlib
import json
import os
import random
import sys

import tokenizers
from tokenizers import Tokenizer, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))

FIXED = [
    "",
    "Hello world",
    "Hello, world! How are you today?",
    "In the beginning God created the heaven and the earth.",
    "The quick brown fox jumps over the lazy dog.",
    # contractions, lower and upper case
    "It's they're we've I'm we'll he'd don't",
    "IT'S THEY'RE WE'VE I'M WE'LL HE'D DON'T",
    "'s 't 're 've 'm 'll 'd",
    "''s '''t 'res 'vee 'mm 'lll 'dd",
    "'S 'T 'RE 'VE 'M 'LL 'D 'Ll 'lL",
    "rock'n'roll o'clock ma'am y'all",
    "' s ' t ' re",
    "'",
    "x'",
    # digits and numbers
    "1 12 123 1234 12345 3.14159 1,000,000 -42 +7 1e10 0x1F",
    "2024-03-14T09:30:00Z",
    "½ ¾ ² ³ Ⅻ ٣٤ ໒ ５ 𝟙",
    "abc123def 123abc",
    # punctuation
    "!!! ??? ... --- *** ((())) [[[]]] {{{}}} ### @@@ $$$ %%% ^^^ &&& ~~~ ``` |||",
    "a.b,c;d:e!f?g",
    " !x ?y  .z",
    "\"quoted\" and 'single' and (parens)",
    # white space
    "a  b   c    d",
    "  leading spaces",
    "trailing spaces  ",
    "trailing space ",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "a\tb\t\tc",
    "line one\nline two\n\nline four\n",
    "\r\n windows \r\n",
    "  \n  x",
    " \t x",
    "\t x",
    "x \n",
    "x\n ",
    "end with newline\n",
    "\u00a0nbsp\u00a0\u00a0x",
    "thin\u2009space\u3000ideographic\u2028line\u2029para",
    "vt\u000bff\u000cnel\u0085x",
    "unit\u001fsep\u001crec",
    # accented letters, scripts
    "Café naïve façade résumé jalapeño Zürich São Paulo Kraków Ærø Œuvre",
    "cafe\u0301 e\u0301\u0301 n\u0303",
    "Ελληνικά κείμενα русский текст עברית العربية हिन्दी ไทย",
    "日本語の文章です。中文句子很短。한국어 문장입니다。",
    "ǅemal ǈ ǋ",
    "ß ẞ ﬁ ﬂ",
    # emoji and symbols
    "😀 😂 👍🏽 🎉 🇫🇷 👩\u200d💻 ❤️",
    "😀😀😀",
    "™©®€£¥§¶†‡•…‰",
    "∑ x² = ∫ f(x) dx ≤ ∞; α + β = γ; √2 ≈ 1.414",
    # invalid-looking mixes (valid Unicode that spells bytes)
    "\u0000\u0001\u007f\u0080\u00ff",
    "Ã©Ã¨ mojibake â€™",
    "\ufffd\ufffd replacement",
    "\ufeffBOM at start",
    "zero\u200bwidth\u200cjoin\u200dx",
    "\U0010fffd private \ue000 use",
    "\u0301 leading combining mark",
    "ĠĊ byte-level look-alikes Ġthe",
    # special tokens inside text
    "<|bos|>",
    "<|bos|>Hello<|eos|>",
    "text<|bos|>text",
    " <|bos|> spaced <|eos|> ",
    "<|bos|><|eos|><|pad|>",
    "<|bos|<|eos|>|>",
    "<|bo s|> <|BOS|> <|bos",
    "<|eos|><|eos|>\n<|pad|>",
]

# Pieces for random strings: every class of the pre-tokenizer's pattern and
# the edges between them.
POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    + list("0123456789")
    + list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~")
    + [" ", " ", " ", "  ", "\t", "\n", "\r", "\u00a0", "\u2009", "\u3000", "\u0085", "\u000b", "\u000c", "\u001c"]
    + ["'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'r", "'v", "'l"]
    + ["é", "e\u0301", "ß", "ǅ", "Ⅻ", "½", "²", "٣", "日本", "語", "한", "😀", "👍🏽", "\u200d", "\ufeff", "\ufffd"]
    + ["\u0000", "\u007f", "\u0080", "\u00ff", "Ġ", "Ċ", "the", " the", "and", "ing", "tion"]
    + ["<|bos|>", "<|eos|>", "<|pad|>", "<|bo", "s|>", "<|", "|>"]
)


def random_strings(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(POOL) for _ in range(k)))
    return out


def main():
    path = os.path.join(HERE, "tokenizer.json")
    with open(path, "rb") as f:
        raw = f.read()
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    cases = []
    for text in FIXED + random_strings(600, 8):
        ids = tok.encode(text).ids
        cases.append({
            "text": text,
            "pre": [p for p, _ in pre.pre_tokenize_str(text)],
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
        })
    fixture = {
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_sha256": hashlib.sha256(raw).hexdigest(),
        "python_save_sha256": hashlib.sha256(tok.to_str(pretty=True).encode("utf-8")).hexdigest(),
        "cases": cases,
    }
    out = os.path.join(HERE, "fixture.json")
    with open(out, "w", encoding="ascii") as f:
        f.write("{\n")
        for key in ("tokenizers_version", "tokenizer_sha256", "python_save_sha256"):
            f.write(f"  {json.dumps(key)}: {json.dumps(fixture[key])},\n")
        f.write('  "cases": [\n')
        f.write(",\n".join("    " + json.dumps(c, ensure_ascii=True) for c in cases))
        f.write("\n  ]\n}\n")
    print(f"{out}: {len(cases)} cases, tokenizers {tokenizers.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
