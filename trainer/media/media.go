package media

import "fmt"

// Image is a picture of H rows of W pixels of C channels (1 grey, 3 RGB),
// each value in [0, 1], row-major: Pix[(y*W+x)*C+c].
type Image struct {
	W, H, C int
	Pix     []float32
}

// NewImage allocates a black image.
func NewImage(w, h, c int) (*Image, error) {
	if w <= 0 || h <= 0 || (c != 1 && c != 3) {
		return nil, fmt.Errorf("media: image %dx%d with %d channels: sizes must be positive and channels 1 or 3", w, h, c)
	}
	return &Image{W: w, H: h, C: c, Pix: make([]float32, w*h*c)}, nil
}

// At returns channel c of pixel (x, y).
func (im *Image) At(x, y, c int) float32 { return im.Pix[(y*im.W+x)*im.C+c] }

// Audio is mono sound: Samples in [-1, 1] at Rate samples per second.
type Audio struct {
	Rate    int
	Samples []float32
}

// Seconds is the audio's duration.
func (a *Audio) Seconds() float64 {
	if a.Rate <= 0 {
		return 0
	}
	return float64(len(a.Samples)) / float64(a.Rate)
}
