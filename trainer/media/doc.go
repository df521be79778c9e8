// Package media holds the in-memory forms of raw images and audio that the
// dataset builder and the tokenizers pass around, and their file formats:
// images from PNG and JPEG (resized, grey or RGB) and to PNG (also as
// labelled grids), audio from and to WAV, resampled to the tokenizer's
// rate.
package media
