package source

import (
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

// isImageFile reports whether a file name has a PNG or JPEG extension.
func isImageFile(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// readImageCaptions reads a captions file: a JSONL index of
// {"file": "relative/path.png", "caption": "..."} (see readFileIndex).
func readImageCaptions(r io.Reader, name string) ([]fileEntry, error) {
	return readFileIndex(r, name, "caption", "a .png, .jpg or .jpeg", isImageFile)
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
	caps, err := readImageCaptions(f, captions)
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
			return fmt.Errorf("source: %s line %d: no image %q under %s", captions, c.Line, c.File, dir)
		}
		byFile[c.File] = c.Text
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
