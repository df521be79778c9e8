package media

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Grid layout, in output pixels.
const (
	gridPad        = 6  // around and between cells
	gridCaptionGap = 3  // between an image and its caption
	gridMinChars   = 16 // a cell is at least this many caption characters wide
	gridMaxLines   = 3  // caption lines per cell; the rest is cut with "..."
)

// Grid lays images out in rows of cols cells on white, each image scaled
// up by the integer factor scale (every pixel becomes a scale x scale
// block, so the tokens stay visible) and centred in its cell, with its
// caption below in a 7x13 bitmap font, wrapped at spaces to the cell's
// width and cut after three lines. Images may differ in size and
// channels; the result is RGB. captions may be nil (no captions) or hold
// one string per image. It is meant for looking at data and samples
// (`mom data show`).
func Grid(images []*Image, captions []string, cols, scale int) (*Image, error) {
	if len(images) == 0 {
		return nil, errors.New("media: grid of no images")
	}
	if cols <= 0 || scale <= 0 {
		return nil, fmt.Errorf("media: grid with %d columns at scale %d: both must be positive", cols, scale)
	}
	if captions != nil && len(captions) != len(images) {
		return nil, fmt.Errorf("media: grid of %d images with %d captions", len(images), len(captions))
	}
	face := basicfont.Face7x13
	cellW, imgH := 0, 0
	for i, im := range images {
		if err := im.check(); err != nil {
			return nil, fmt.Errorf("media: grid image %d: %w", i, err)
		}
		cellW, imgH = max(cellW, im.W*scale), max(imgH, im.H*scale)
	}
	if captions != nil {
		cellW = max(cellW, gridMinChars*face.Advance)
	}
	chars := cellW / face.Advance
	lines := make([][]string, len(images))
	nLines := 0
	for i := range captions {
		lines[i] = wrapCaption(captions[i], chars, gridMaxLines)
		nLines = max(nLines, len(lines[i]))
	}
	cellH := imgH
	if nLines > 0 {
		cellH += gridCaptionGap + nLines*face.Height
	}
	rows := (len(images) + cols - 1) / cols
	ncol := min(cols, len(images))
	W := gridPad + ncol*(cellW+gridPad)
	H := gridPad + rows*(cellH+gridPad)
	if int64(W)*int64(H) > MaxImagePixels {
		return nil, fmt.Errorf("media: grid of %dx%d pixels is over the limit of %d", W, H, MaxImagePixels)
	}
	canvas := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(canvas, canvas.Rect, image.White, image.Point{}, draw.Src)
	for i, im := range images {
		cx := gridPad + (i%cols)*(cellW+gridPad)
		cy := gridPad + (i/cols)*(cellH+gridPad)
		ox := cx + (cellW-im.W*scale)/2
		oy := cy + (imgH-im.H*scale)/2
		for y := range im.H * scale {
			for x := range im.W * scale {
				p := ((y/scale)*im.W + x/scale) * im.C
				var r, g, b uint8
				if im.C == 1 {
					r = imagePix8(im.Pix[p])
					g, b = r, r
				} else {
					r, g, b = imagePix8(im.Pix[p]), imagePix8(im.Pix[p+1]), imagePix8(im.Pix[p+2])
				}
				canvas.SetRGBA(ox+x, oy+y, color.RGBA{r, g, b, 0xff})
			}
		}
		d := font.Drawer{Dst: canvas, Src: image.Black, Face: face}
		for l, line := range lines[i] {
			d.Dot = fixed.P(cx, cy+imgH+gridCaptionGap+l*face.Height+face.Ascent)
			d.DrawString(line)
		}
	}
	out := &Image{W: W, H: H, C: 3, Pix: make([]float32, W*H*3)}
	for i := range W * H {
		out.Pix[3*i] = float32(canvas.Pix[4*i]) / 255
		out.Pix[3*i+1] = float32(canvas.Pix[4*i+1]) / 255
		out.Pix[3*i+2] = float32(canvas.Pix[4*i+2]) / 255
	}
	return out, nil
}

// wrapCaption breaks s into at most maxLines lines of at most width
// characters, at spaces where it can (a longer word is cut), marking a cut
// with "...". Characters outside printable ASCII become '?', as the font
// has no glyphs for most of them.
func wrapCaption(s string, width, maxLines int) []string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case r < ' ' || r > '~':
			return '?'
		}
		return r
	}, s)
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		for len(word) > 0 {
			switch {
			case line == "" && len(word) <= width:
				line, word = word, ""
			case line != "" && len(line)+1+len(word) <= width:
				line, word = line+" "+word, ""
			case line == "":
				line, word = word[:width], word[width:]
				lines = append(lines, line)
				line = ""
			default:
				lines = append(lines, line)
				line = ""
			}
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	if len(lines) > maxLines {
		last := lines[maxLines-1]
		if len(last)+3 > width {
			last = last[:max(0, width-3)]
		}
		lines = append(lines[:maxLines-1], last+"...")
	}
	return lines
}
