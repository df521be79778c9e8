// Package safetensors reads and writes the safetensors tensor file format.
//
// The format (as published with the Hugging Face safetensors library):
//
//	8 bytes     N, the header length, unsigned 64-bit little-endian
//	N bytes     a JSON object (UTF-8, may be padded at the end with spaces):
//	              {"<tensor name>": {"dtype": "F32", "shape": [2, 3],
//	                                 "data_offsets": [begin, end]}, ...,
//	               "__metadata__": {"key": "value", ...}}   (optional)
//	rest        the data section: every tensor's bytes, little-endian,
//	            row-major, at [begin, end) relative to the section's start
//
// The writer sorts tensors by name, lays them out back to back in that
// order and pads the header with spaces to a multiple of 8 bytes so that
// the data section starts aligned. The reader accepts what the reference
// implementation accepts: tensors must tile the data section exactly (no
// overlap, no hole, no trailing bytes).
package safetensors
