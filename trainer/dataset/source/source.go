package source

import "mom/trainer/media"

// Text is a passage of prose.
type Text struct {
	ID     string // stable and unique within its source, e.g. "fortunes/art#12"
	Source string // e.g. "fortunes", "bible-kjv", "wordnet", "user-text"
	Text   string
}

// Image is a picture with its class label (where the source has one) and
// caption (where the source has one; the builder writes captions for
// labelled images).
type Image struct {
	ID      string // e.g. "fashion-mnist/train/123"
	Source  string
	Image   *media.Image
	Label   string // class name, e.g. "ankle boot"; "" when unlabelled
	Caption string
}

// Utterance is speech with its transcript.
type Utterance struct {
	ID         string
	Source     string
	Audio      *media.Audio
	Transcript string
}
