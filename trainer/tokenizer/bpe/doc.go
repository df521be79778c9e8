// Package bpe is a byte-level BPE text tokenizer (the GPT-2 scheme) that
// reads and writes the Hugging Face `tokenizers` tokenizer.json format, so
// the Python library loads a tokenizer trained here and encodes every
// string to the same ids.
//
// Encoding follows the Python library step by step:
//
//  1. Added (special) tokens are split out of the input first, leftmost
//     match first and the longest of those starting there; each becomes
//     its own id and is never merged with its neighbours.
//
//  2. The rest is pre-tokenized as the ByteLevel pre-tokenizer does with
//     add_prefix_space false and use_regex true: the GPT-2 pattern
//
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
//     written out by hand (see PreTokenize), since Go's regexp has no
//     look-ahead. Each piece's bytes map to printable characters through
//     the GPT-2 bytes-to-unicode table.
//
//  3. Within a piece, the pair of adjacent symbols with the lowest merge
//     rank is merged, the leftmost on a tie, until no pair has a merge.
//
// Ids: a tokenizer trained here has its special tokens first (ids
// 0..len-1, in the order given), then the 256 byte tokens in byte order,
// then one id per new token that a merge made, in merge order. Parse also
// takes files laid out differently (GPT-2's own, for one) as long as their
// encoding is one this package reproduces exactly; it refuses, naming the
// field, anything it cannot (a normalizer, another pre-tokenizer, dropout,
// byte fallback, a post-processor that adds tokens, ...).
//
// Train learns merges from an iterator of texts: words are counted once,
// pair counts and the words each pair occurs in are kept and updated
// incrementally after each merge, and ties between equally frequent pairs
// go to the pair with the smaller ids, so the same texts and config always
// give the same tokenizer.
//
// The package was written from the format's documentation and tested
// against the Python library through testdata/fixture.json, which
// testdata/make_fixture.py writes.
package bpe
