// Package data holds the training data's in-memory and on-disk forms:
// batches (Batch) and the streams that fill them (Stream), the unified
// vocabulary (Vocab), the deterministic synthetic interleaved multimodal
// stream (NewSynthetic) and the token file format of real datasets
// (tokfile.go: token ids, per-token modalities and continuous patches,
// checked whole when opened).
package data
