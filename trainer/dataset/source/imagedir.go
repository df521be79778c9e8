package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"mom/trainer/media"
)

// imageCaption is one line of an image folder's captions file.
type imageCaption struct {
	File    string `json:"file"`
	Caption string `json:"caption"`
	line    int
}

// imageCaptionMaxLine bounds one line of a captions file.
const imageCaptionMaxLine = 1 << 20

// isImageFile reports whether a file name has a PNG or JPEG extension.
func isImageFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// parseImageCaptions reads a captions file: one JSON object per line,
// {"file": "relative/path.png", "caption": "..."}, blank lines ignored.
// file is a slash-separated path relative to the image folder (no "..",
// no leading "/") with a PNG or JPEG extension, named once; caption is
// not blank. Errors name the file and line.
func parseImageCaptions(r io.Reader, name string) ([]imageCaption, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), imageCaptionMaxLine)
	var out []imageCaption
	seen := map[string]int{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var c imageCaption
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("source: %s line %d: want {\"file\": ..., \"caption\": ...}: %v", name, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("source: %s line %d: more than one JSON value on the line", name, line)
		}
		c.line = line
		c.Caption = strings.TrimSpace(c.Caption)
		switch {
		case c.File == "":
			return nil, fmt.Errorf("source: %s line %d: no \"file\"", name, line)
		case !fs.ValidPath(c.File) || c.File == ".":
			return nil, fmt.Errorf("source: %s line %d: file %q is not a clean relative path inside the image folder (slash-separated, no \"..\")", name, line, c.File)
		case !isImageFile(c.File):
			return nil, fmt.Errorf("source: %s line %d: file %q is not a .png, .jpg or .jpeg", name, line, c.File)
		case c.Caption == "":
			return nil, fmt.Errorf("source: %s line %d: file %q has an empty caption", name, line, c.File)
		}
		if prev, ok := seen[c.File]; ok {
			return nil, fmt.Errorf("source: %s line %d: file %q already captioned on line %d", name, line, c.File, prev)
		}
		seen[c.File] = line
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("source: %s line %d: line longer than %d bytes", name, line+1, imageCaptionMaxLine)
		}
		return nil, fmt.Errorf("source: %s after line %d: %w", name, line, err)
	}
	return out, nil
}

// WalkImageFolder is ImageFolder one image at a time: it checks the
// captions against the folder first (so that nothing is decoded when they
// disagree), then decodes the images in path order and hands each to fn,
// which may resize it and drop the original, so that a folder of large
// photographs never sits in memory at once. An error from fn stops the
// walk and is returned.
func WalkImageFolder(dir, captions string, fn func(Image) error) error {
	f, err := os.Open(captions)
	if err != nil {
		return fmt.Errorf("source: image captions: %w", err)
	}
	caps, err := parseImageCaptions(f, captions)
	f.Close()
	if err != nil {
		return err
	}
	files := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isImageFile(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("source: image folder %s: %w", dir, err)
	}
	byFile := make(map[string]string, len(caps))
	for _, c := range caps {
		if !files[c.File] {
			return fmt.Errorf("source: %s line %d: no image %q under %s", captions, c.line, c.File, dir)
		}
		byFile[c.File] = c.Caption
	}
	var missing []string
	for f := range files {
		if _, ok := byFile[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		more := ""
		if len(missing) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(missing)-1)
		}
		return fmt.Errorf("source: image %s%s under %s has no caption in %s: every image needs one", filepath.Join(dir, filepath.FromSlash(missing[0])), more, dir, captions)
	}
	names := make([]string, 0, len(byFile))
	for f := range byFile {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, rel := range names {
		im, err := media.ReadImage(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("source: image folder: %w", err)
		}
		if err := fn(Image{ID: "user-image/" + rel, Source: "user-image", Image: im, Caption: byFile[rel]}); err != nil {
			return err
		}
	}
	return nil
}

// ImageFolder reads every PNG and JPEG file under dir (any depth, any size
// and colour model: see media.DecodeImage; extensions .png, .jpg, .jpeg
// in any case) with its caption from captions, a JSONL file of lines
// {"file": "relative/path.png", "caption": "..."} where file is
// slash-separated and relative to dir. Every image needs a caption and
// every line must name an existing image, once; errors name the line or
// the image. Images come in path order, with ID "user-image/<relpath>",
// Source "user-image" and no label. The images keep their size: see
// WalkImageFolder to resize them as they are read.
func ImageFolder(dir, captions string) ([]Image, error) {
	var out []Image
	err := WalkImageFolder(dir, captions, func(im Image) error {
		out = append(out, im)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
