// Package dataset builds, describes and opens dataset folders: what `mom
// data build` writes and `mom train --data DIR` reads.
//
// A dataset folder holds:
//
//	dataset.json               the manifest (Manifest): setting, modalities,
//	                           vocabulary ranges, marker tokens, tokenizer
//	                           files, splits with their sizes and SHA-256,
//	                           sources, document counts, the tokenizers'
//	                           figures, seed and build time
//	train.momtok, eval.momtok  the two splits as token files (package
//	                           trainer/data), held out by source item: one
//	                           image, sentence or utterance never lands in
//	                           both
//	tokenizer.json             the text tokenizer (byte-level BPE, Hugging
//	                           Face tokenizers format)
//	image_vq.safetensors       the image tokenizer (discrete settings)
//	speech_units.safetensors   the speech tokenizer (three modalities)
//
// Training reads the token files only, never raw media.
package dataset
