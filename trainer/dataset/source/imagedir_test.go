package source

import (
	"errors"
	"image"
	"image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/trainer/media"
)

// imageFolderFixture writes a folder with a grey PNG, an RGB PNG in a
// sub-folder and a JPEG, plus a non-image file, and returns the folder and
// the captions that fit it.
func imageFolderFixture(t *testing.T) (dir string, captions string) {
	t.Helper()
	dir = t.TempDir()
	grey := &media.Image{W: 3, H: 2, C: 1, Pix: []float32{0, 0.2, 0.4, 0.6, 0.8, 1}}
	rgb := &media.Image{W: 2, H: 2, C: 3, Pix: make([]float32, 12)}
	for i := range rgb.Pix {
		rgb.Pix[i] = float32(i) / 11
	}
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.MkdirAll(filepath.Join(dir, "album.png"), 0o755) // a folder, not an image
	if err := media.WritePNG(filepath.Join(dir, "grey.png"), grey); err != nil {
		t.Fatal(err)
	}
	if err := media.WritePNG(filepath.Join(dir, "sub", "rgb.PNG"), rgb); err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 16, 8))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	f, err := os.Create(filepath.Join(dir, "photo.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(f, img, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not an image"), 0o644)
	captions = `{"file": "grey.png", "caption": "a grey ramp"}

{"file": "sub/rgb.PNG", "caption": "  colours  "}
{"file": "photo.jpg", "caption": "a light photo"}
`
	return dir, captions
}

func writeImageCaptions(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "captions.jsonl")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageFolder(t *testing.T) {
	dir, caps := imageFolderFixture(t)
	items, err := ImageFolder(dir, writeImageCaptions(t, caps))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, caption string
		w, h, c     int
	}{
		{"user-image/grey.png", "a grey ramp", 3, 2, 1},
		{"user-image/photo.jpg", "a light photo", 16, 8, 3},
		{"user-image/sub/rgb.PNG", "colours", 2, 2, 3},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.ID != w.id || it.Caption != w.caption || it.Source != "user-image" || it.Label != "" {
			t.Errorf("item %d: %q %q %q %q, want %q %q", i, it.ID, it.Caption, it.Source, it.Label, w.id, w.caption)
		}
		if it.Image.W != w.w || it.Image.H != w.h || it.Image.C != w.c {
			t.Errorf("item %d is %dx%dx%d, want %dx%dx%d", i, it.Image.W, it.Image.H, it.Image.C, w.w, w.h, w.c)
		}
	}
	if items[0].Image.Pix[5] != 1 || items[0].Image.Pix[1] != float32(51)/255 {
		t.Errorf("grey image values %v", items[0].Image.Pix)
	}
	// WalkImageFolder stops at fn's error.
	stop := errors.New("stop")
	n := 0
	err = WalkImageFolder(dir, writeImageCaptions(t, caps), func(Image) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("walk stopped after %d images with %v", n, err)
	}
}

func TestImageFolderErrors(t *testing.T) {
	dir, caps := imageFolderFixture(t)
	lines := strings.Split(strings.TrimSpace(caps), "\n")
	for _, tc := range []struct {
		name, captions string
		want           []string
	}{
		{"missing caption", lines[0] + "\n" + lines[2], []string{"photo.jpg", "no caption"}},
		{"two missing", lines[0], []string{"(and 1 more)"}},
		{"caption for no image", caps + `{"file": "gone.png", "caption": "x"}`, []string{"line 5", "no image \"gone.png\""}},
		{"directory is not an image", caps + `{"file": "album.png", "caption": "x"}`, []string{"line 5", "no image \"album.png\""}},
		{"duplicate", caps + lines[0], []string{"line 5", "already listed on line 1"}},
		{"bad json", caps + "{file: 1}", []string{"line 5"}},
		{"two objects", `{"file": "grey.png", "caption": "x"} {}`, []string{"line 1", "more than one"}},
		{"empty caption", `{"file": "grey.png", "caption": "  "}`, []string{"line 1", `the caption of "grey.png" is empty`}},
		{"no file", `{"caption": "x"}`, []string{"line 1", `string "file"`}},
		{"escaping path", `{"file": "../grey.png", "caption": "x"}`, []string{"line 1", "must be a relative path inside the folder"}},
		{"absolute path", `{"file": "/etc/x.png", "caption": "x"}`, []string{"line 1", "must be a relative path inside the folder"}},
		{"not an image name", `{"file": "notes.txt", "caption": "x"}`, []string{"line 1", "not a .png, .jpg or .jpeg"}},
		{"long line", `{"file": "grey.png", "caption": "` + strings.Repeat("x", fileIndexMaxLine) + `"}`, []string{"line 1", "longer than"}},
	} {
		_, err := ImageFolder(dir, writeImageCaptions(t, tc.captions))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, w)
			}
		}
	}
	// A corrupt image is named.
	os.WriteFile(filepath.Join(dir, "grey.png"), []byte("broken"), 0o644)
	if _, err := ImageFolder(dir, writeImageCaptions(t, caps)); err == nil || !strings.Contains(err.Error(), "grey.png") {
		t.Errorf("corrupt image: error %v", err)
	}
	if _, err := ImageFolder(dir, filepath.Join(dir, "none.jsonl")); err == nil || !strings.Contains(err.Error(), "none.jsonl") {
		t.Errorf("missing captions file: error %v", err)
	}
	if _, err := ImageFolder(filepath.Join(dir, "nodir"), writeImageCaptions(t, caps)); err == nil || !strings.Contains(err.Error(), "nodir") {
		t.Errorf("missing folder: error %v", err)
	}
}

// FuzzImageCaptions checks that the captions reader never panics and that
// what it accepts obeys its rules.
func FuzzImageCaptions(f *testing.F) {
	f.Add(`{"file": "a.png", "caption": "x"}`)
	f.Add("{\"file\": \"a/b.JPG\", \"caption\": \"y\"}\n\n{\"file\": \"c.jpeg\", \"caption\": \"z\"}\n")
	f.Add(`{"file": "a.png", "caption": "x"}` + "\n" + `{"file": "a.png", "caption": "x"}`)
	f.Add(`{"file": "../a.png", "caption": "x"}`)
	f.Add(`{"file": 3}`)
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		caps, err := readImageCaptions(strings.NewReader(s), "fuzz.jsonl")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.jsonl") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, c := range caps {
			if c.Text == "" || !isImageFile(c.File) || !fs.ValidPath(c.File) || seen[c.File] || c.Line < 1 {
				t.Fatalf("accepted %+v", c)
			}
			seen[c.File] = true
		}
	})
}
