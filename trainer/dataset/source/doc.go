// Package source reads the raw material that `mom data build` turns into
// datasets: the corpora installed by the set-up (Debian's Fashion-MNIST,
// fortunes, the King James Bible, WordNet's glosses), speech synthesised
// by espeak-ng, and a user's own folders of text, captioned images and
// transcribed recordings. Every item carries a stable ID: the dataset
// splits train from held-out by these IDs, so that one image, sentence or
// utterance never lands in both.
package source
