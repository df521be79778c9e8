package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"os"

	xdraw "golang.org/x/image/draw"

	"mom/trainer/atomicfile"
)

// MaxImagePixels bounds the width times height of an image that
// DecodeImage accepts (32 megapixels, e.g. 8192x4096), checked from the
// file's header before any pixel is decoded, so that a corrupt or hostile
// header cannot make the decoder allocate gigabytes.
const MaxImagePixels = 1 << 25

// maxImageFileBytes bounds the encoded size DecodeImage reads.
const maxImageFileBytes = 256 << 20

// DecodeImage reads a PNG or JPEG image of any size and colour model. A
// grey file (8- or 16-bit grey, or a palette of only opaque greys) becomes
// one channel (C=1); everything else, grey with an alpha channel included,
// becomes RGB (C=3). Transparency is
// composited over black (the premultiplied colour), which is the
// background of the Fashion-MNIST images the tokenizers are trained on.
// Other formats, and images over MaxImagePixels, are errors.
func DecodeImage(r io.Reader) (*Image, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxImageFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("media: reading image: %w", err)
	}
	if len(b) > maxImageFileBytes {
		return nil, fmt.Errorf("media: image file is over %d bytes", maxImageFileBytes)
	}
	var dec func(io.Reader) (image.Image, error)
	var cfgDec func(io.Reader) (image.Config, error)
	var format string
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		format, dec, cfgDec = "PNG", png.Decode, png.DecodeConfig
	case bytes.HasPrefix(b, []byte{0xff, 0xd8}):
		format, dec, cfgDec = "JPEG", jpeg.Decode, jpeg.DecodeConfig
	default:
		return nil, errors.New("media: image is neither PNG nor JPEG (unknown signature)")
	}
	cfg, err := cfgDec(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("media: decoding %s header: %w", format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("media: %s image is %dx%d", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("media: %s image is %dx%d, over the limit of %d pixels", format, cfg.Width, cfg.Height, MaxImagePixels)
	}
	img, err := dec(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("media: decoding %s: %w", format, err)
	}
	return FromImage(img), nil
}

// ReadImage reads a PNG or JPEG file (see DecodeImage).
func ReadImage(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	defer f.Close()
	im, err := DecodeImage(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return im, nil
}

// FromImage converts a Go image to an Image: one channel when its colour
// model is grey (see DecodeImage), three otherwise, alpha composited over
// black.
func FromImage(src image.Image) *Image {
	r := src.Bounds()
	w, h := r.Dx(), r.Dy()
	if isGreyImage(src) {
		im := &Image{W: w, H: h, C: 1, Pix: make([]float32, w*h)}
		if g, ok := src.(*image.Gray); ok {
			for y := range h {
				row := g.Pix[y*g.Stride : y*g.Stride+w]
				for x, v := range row {
					im.Pix[y*w+x] = float32(v) / 255
				}
			}
			return im
		}
		for y := range h {
			for x := range w {
				c := color.Gray16Model.Convert(src.At(r.Min.X+x, r.Min.Y+y)).(color.Gray16)
				im.Pix[y*w+x] = float32(c.Y) / 65535
			}
		}
		return im
	}
	im := &Image{W: w, H: h, C: 3, Pix: make([]float32, w*h*3)}
	switch src.(type) {
	case *image.RGBA64, *image.NRGBA64:
		// 16 bits per channel: keep them.
		for y := range h {
			for x := range w {
				cr, cg, cb, _ := src.At(r.Min.X+x, r.Min.Y+y).RGBA()
				o := (y*w + x) * 3
				im.Pix[o], im.Pix[o+1], im.Pix[o+2] = float32(cr)/65535, float32(cg)/65535, float32(cb)/65535
			}
		}
		return im
	}
	// 8 bits per channel: the standard library's fast conversions (YCbCr,
	// NRGBA, paletted, CMYK) into premultiplied RGBA.
	rgba, ok := src.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Rect, src, r.Min, draw.Src)
	} else {
		rgba = rgba.SubImage(r).(*image.RGBA)
	}
	for y := range h {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*w]
		for x := range w {
			o := (y*w + x) * 3
			im.Pix[o] = float32(row[4*x]) / 255
			im.Pix[o+1] = float32(row[4*x+1]) / 255
			im.Pix[o+2] = float32(row[4*x+2]) / 255
		}
	}
	return im
}

// isGreyImage reports whether an image's colour model holds only greys.
func isGreyImage(src image.Image) bool {
	switch s := src.(type) {
	case *image.Gray, *image.Gray16:
		return true
	case *image.Paletted:
		for _, c := range s.Palette {
			r, g, b, a := c.RGBA()
			if r != g || g != b || a != 0xffff {
				return false
			}
		}
		return len(s.Palette) > 0
	}
	return false
}

// check reports an image whose sizes and pixel count disagree.
func (im *Image) check() error {
	if im == nil {
		return errors.New("media: nil image")
	}
	if im.W <= 0 || im.H <= 0 || (im.C != 1 && im.C != 3) {
		return fmt.Errorf("media: image %dx%d with %d channels: sizes must be positive and channels 1 or 3", im.W, im.H, im.C)
	}
	if len(im.Pix) != im.W*im.H*im.C {
		return fmt.Errorf("media: image %dx%dx%d has %d values, want %d", im.W, im.H, im.C, len(im.Pix), im.W*im.H*im.C)
	}
	return nil
}

// Validate checks that an image's sizes are positive, its channels 1 or
// 3 and its pixel count W*H*C.
func (im *Image) Validate() error { return im.check() }

// Gray returns a one-channel copy: the luma (ITU-R BT.601 weights, as Go's
// color.GrayModel) of an RGB image, a plain copy of a grey one.
func (im *Image) Gray() *Image {
	g := &Image{W: im.W, H: im.H, C: 1, Pix: make([]float32, im.W*im.H)}
	if im.C == 1 {
		copy(g.Pix, im.Pix)
		return g
	}
	for i := range g.Pix {
		p := im.Pix[3*i : 3*i+3]
		g.Pix[i] = 0.299*p[0] + 0.587*p[1] + 0.114*p[2]
	}
	return g
}

// Resize returns the image scaled to w x h (the aspect ratio is not
// kept) with a Catmull-Rom filter whose support widens with the
// reduction, so that downscaling averages over the source area instead
// of sampling it (no aliasing). It works at 16 bits per channel and
// clamps to [0, 1]. A size that is not positive returns nil; the same
// size returns a copy.
func (im *Image) Resize(w, h int) *Image {
	if w <= 0 || h <= 0 || im.check() != nil {
		return nil
	}
	if w == im.W && h == im.H {
		return &Image{W: w, H: h, C: im.C, Pix: append([]float32(nil), im.Pix...)}
	}
	src := im.toRGBA64()
	dst := image.NewRGBA64(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Rect, src, src.Rect, xdraw.Src, nil)
	out := &Image{W: w, H: h, C: im.C, Pix: make([]float32, w*h*im.C)}
	for y := range h {
		for x := range w {
			o := y*dst.Stride + 8*x
			p := dst.Pix[o : o+6]
			r := float32(uint16(p[0])<<8|uint16(p[1])) / 65535
			if im.C == 1 {
				out.Pix[y*w+x] = r
				continue
			}
			g := float32(uint16(p[2])<<8|uint16(p[3])) / 65535
			b := float32(uint16(p[4])<<8|uint16(p[5])) / 65535
			i := (y*w + x) * 3
			out.Pix[i], out.Pix[i+1], out.Pix[i+2] = r, g, b
		}
	}
	return out
}

// imagePix16 maps a value in [0, 1] (clamped) to 16 bits, rounding.
func imagePix16(v float32) uint16 {
	switch {
	case !(v > 0):
		return 0
	case v >= 1:
		return 0xffff
	}
	return uint16(v*65535 + 0.5)
}

// imagePix8 maps a value in [0, 1] (clamped) to 8 bits, rounding.
func imagePix8(v float32) uint8 {
	switch {
	case !(v > 0):
		return 0
	case v >= 1:
		return 0xff
	}
	return uint8(v*255 + 0.5)
}

// toRGBA64 is the image as opaque 16-bit RGBA (grey replicated).
func (im *Image) toRGBA64() *image.RGBA64 {
	dst := image.NewRGBA64(image.Rect(0, 0, im.W, im.H))
	for y := range im.H {
		for x := range im.W {
			var r, g, b uint16
			i := (y*im.W + x) * im.C
			if im.C == 1 {
				r = imagePix16(im.Pix[i])
				g, b = r, r
			} else {
				r, g, b = imagePix16(im.Pix[i]), imagePix16(im.Pix[i+1]), imagePix16(im.Pix[i+2])
			}
			o := y*dst.Stride + 8*x
			p := dst.Pix[o : o+8]
			p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = uint8(r>>8), uint8(r), uint8(g>>8), uint8(g), uint8(b>>8), uint8(b), 0xff, 0xff
		}
	}
	return dst
}

// ToImage converts the image to an 8-bit Go image: *image.Gray for one
// channel, opaque *image.RGBA for three, values rounded and clamped to
// [0, 1].
func (im *Image) ToImage() (image.Image, error) {
	if err := im.check(); err != nil {
		return nil, err
	}
	if im.C == 1 {
		g := image.NewGray(image.Rect(0, 0, im.W, im.H))
		for i, v := range im.Pix {
			g.Pix[i] = imagePix8(v)
		}
		return g, nil
	}
	rgba := image.NewRGBA(image.Rect(0, 0, im.W, im.H))
	for i := range im.W * im.H {
		p := rgba.Pix[4*i : 4*i+4]
		p[0], p[1], p[2], p[3] = imagePix8(im.Pix[3*i]), imagePix8(im.Pix[3*i+1]), imagePix8(im.Pix[3*i+2]), 0xff
	}
	return rgba, nil
}

// EncodePNG writes the image as an 8-bit PNG: grey for one channel, RGB
// for three.
func EncodePNG(w io.Writer, im *Image) error {
	img, err := im.ToImage()
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("media: encoding PNG: %w", err)
	}
	return nil
}

// WritePNG writes the image to path as a PNG (see EncodePNG), atomically:
// a failure leaves any previous file intact.
func WritePNG(path string, im *Image) error {
	if err := im.check(); err != nil {
		return fmt.Errorf("%w (writing %s)", err, path)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return EncodePNG(w, im) })
}
