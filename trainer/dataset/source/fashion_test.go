package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// idxBytes encodes an IDX file of unsigned bytes with the given
// dimensions and data.
func idxBytes(dims []int, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

// fashionFixture is a small data set: n images of rows x cols whose pixel
// j of image i is byte(i*7+j), labelled i % 10.
func fashionFixture(n, rows, cols int) (images, labels []byte) {
	pix := make([]byte, n*rows*cols)
	lab := make([]byte, n)
	for i := range n {
		lab[i] = byte(i % 10)
		for j := range rows * cols {
			pix[i*rows*cols+j] = byte(i*7 + j)
		}
	}
	return idxBytes([]int{n, rows, cols}, pix), idxBytes([]int{n}, lab)
}

func writeFashionGz(t *testing.T, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeFashion writes the four files of a fixture data set into a new
// folder, gzipped (or not), with the given overrides by file name.
func writeFashion(t *testing.T, nTrain, nTest int, gz bool, override map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{}
	files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"] = fashionFixture(nTrain, 3, 2)
	files["t10k-images-idx3-ubyte"], files["t10k-labels-idx1-ubyte"] = fashionFixture(nTest, 3, 2)
	for k, v := range override {
		files[k] = v
	}
	for name, b := range files {
		if gz {
			writeFashionGz(t, filepath.Join(dir, name+".gz"), b)
		} else if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFashionMNISTFixture(t *testing.T) {
	for _, tc := range []struct {
		name                string
		gz                  bool
		limit               int
		wantTrain, wantTest int
	}{
		{"gzip, all", true, 0, 13, 4},
		{"plain, all", false, 0, 13, 4},
		{"limit 5", true, 5, 5, 4},
		{"limit over the count", true, 100, 13, 4},
	} {
		dir := writeFashion(t, 13, 4, tc.gz, nil)
		train, test, err := FashionMNIST(dir, tc.limit)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(train) != tc.wantTrain || len(test) != tc.wantTest {
			t.Fatalf("%s: %d train and %d test images, want %d and %d", tc.name, len(train), len(test), tc.wantTrain, tc.wantTest)
		}
		for split, items := range map[string][]Image{"train": train, "test": test} {
			for i, it := range items {
				if want := fmt.Sprintf("fashion-mnist/%s/%d", split, i); it.ID != want {
					t.Fatalf("%s: ID %q, want %q", tc.name, it.ID, want)
				}
				if it.Label != FashionMNISTClasses()[i%10] || it.Source != "fashion-mnist" {
					t.Fatalf("%s: %s label %q source %q", tc.name, it.ID, it.Label, it.Source)
				}
				im := it.Image
				if im.W != 2 || im.H != 3 || im.C != 1 || len(im.Pix) != 6 {
					t.Fatalf("%s: %s is %dx%dx%d", tc.name, it.ID, im.W, im.H, im.C)
				}
				for j, v := range im.Pix {
					if want := float32(byte(i*7+j)) / 255; v != want {
						t.Fatalf("%s: %s pixel %d = %v, want %v", tc.name, it.ID, j, v, want)
					}
				}
			}
		}
	}
}

func TestFashionMNISTErrors(t *testing.T) {
	img, lab := fashionFixture(5, 3, 2)
	badMagic := append([]byte{0, 0, 0x09}, img[3:]...)
	wrongDims := idxBytes([]int{5, 6}, make([]byte, 30))
	labBad := append([]byte(nil), lab...)
	labBad[len(labBad)-2] = 10
	for _, tc := range []struct {
		name     string
		override map[string][]byte
		want     []string // substrings of the error
	}{
		{"bad magic", map[string][]byte{"train-images-idx3-ubyte": badMagic}, []string{"train-images-idx3-ubyte.gz", "offset 2", "element type"}},
		{"not idx", map[string][]byte{"train-images-idx3-ubyte": []byte("hello world")}, []string{"offset 0", "bad magic"}},
		{"wrong dimensions", map[string][]byte{"t10k-images-idx3-ubyte": wrongDims}, []string{"t10k-images-idx3-ubyte.gz", "offset 3", "2 dimensions, want 3"}},
		{"truncated data", map[string][]byte{"train-images-idx3-ubyte": img[:len(img)-4]}, []string{"train-images-idx3-ubyte.gz", "truncated", fmt.Sprintf("offset %d", len(img)-4)}},
		{"truncated header", map[string][]byte{"train-labels-idx1-ubyte": lab[:6]}, []string{"train-labels-idx1-ubyte.gz", "offset 6", "truncated in dimension 0"}},
		{"trailing data", map[string][]byte{"train-labels-idx1-ubyte": append(append([]byte(nil), lab...), 0)}, []string{"train-labels-idx1-ubyte.gz", fmt.Sprintf("offset %d", len(lab)), "data after"}},
		{"count mismatch", map[string][]byte{"train-labels-idx1-ubyte": idxBytes([]int{4}, make([]byte, 4))}, []string{"5 images", "4 labels"}},
		{"label out of range", map[string][]byte{"t10k-labels-idx1-ubyte": labBad}, []string{"t10k-labels-idx1-ubyte.gz", fmt.Sprintf("offset %d", len(lab)-2), "label 10"}},
		{"zero-width images", map[string][]byte{"train-images-idx3-ubyte": idxBytes([]int{5, 0, 2}, nil)}, []string{"offset 8", "dimension 1 is 0"}},
		{"huge items", map[string][]byte{"train-images-idx3-ubyte": idxBytes([]int{5, 1 << 16, 1 << 16}, nil)}, []string{"offset 12", "dimension 2"}},
		{"huge count", map[string][]byte{"train-images-idx3-ubyte": idxBytes([]int{1<<31 + 5, 3, 2}, nil)}, []string{"offset 4", "item count"}},
	} {
		dir := writeFashion(t, 5, 5, true, tc.override)
		_, _, err := FashionMNIST(dir, 0)
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
	// A missing folder and a file that is not gzip.
	if _, _, err := FashionMNIST(filepath.Join(t.TempDir(), "none"), 0); err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte") {
		t.Errorf("missing folder: error %v", err)
	}
	dir := writeFashion(t, 5, 5, true, nil)
	os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), []byte("plain"), 0o644)
	if _, _, err := FashionMNIST(dir, 0); err == nil || !strings.Contains(err.Error(), "not a gzip file") {
		t.Errorf("not gzip: error %v", err)
	}
}

// TestFashionMNISTInstalled reads the installed data set, when there is one.
func TestFashionMNISTInstalled(t *testing.T) {
	if _, err := os.Stat(filepath.Join(FashionMNISTDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST is not installed at %s (Debian package dataset-fashion-mnist): %v", FashionMNISTDir, err)
	}
	train, test, err := FashionMNIST(FashionMNISTDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 60000 || len(test) != 10000 {
		t.Fatalf("%d training and %d test images, want 60000 and 10000", len(train), len(test))
	}
	counts := map[string]int{}
	for _, it := range test {
		counts[it.Label]++
		if it.Image.W != 28 || it.Image.H != 28 || it.Image.C != 1 {
			t.Fatalf("%s is %dx%dx%d", it.ID, it.Image.W, it.Image.H, it.Image.C)
		}
	}
	for _, c := range FashionMNISTClasses() {
		if counts[c] != 1000 { // the test split is balanced
			t.Errorf("class %q has %d test images, want 1000", c, counts[c])
		}
	}
	few, _, err := FashionMNIST(FashionMNISTDir, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range few {
		if few[i].Label != train[i].Label || few[i].ID != train[i].ID {
			t.Fatalf("limited read item %d differs from the full read", i)
		}
	}
}

// TestFashionMNISTNounsInWordNet checks every class's noun against the
// installed WordNet noun index.
func TestFashionMNISTNounsInWordNet(t *testing.T) {
	f, err := os.Open("/usr/share/wordnet/index.noun")
	if err != nil {
		t.Skipf("WordNet is not installed (Debian package wordnet-base): %v", err)
	}
	defer f.Close()
	lemmas := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l, _, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(sc.Text(), " ") {
			lemmas[l] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	nouns, classes := FashionMNISTNouns(), FashionMNISTClasses()
	if len(nouns) != 10 || len(classes) != 10 {
		t.Fatalf("%d nouns and %d classes", len(nouns), len(classes))
	}
	for i, n := range nouns {
		if !lemmas[strings.ReplaceAll(n, " ", "_")] {
			t.Errorf("noun %q (class %q) is not in WordNet's index.noun", n, classes[i])
		}
		if !strings.Contains(classes[i], n) {
			t.Errorf("noun %q is not part of its class name %q", n, classes[i])
		}
	}
}

// FuzzReadIDX checks that no input makes the IDX reader panic or allocate
// beyond what it reads, and that what it accepts is consistent.
func FuzzReadIDX(f *testing.F) {
	img, lab := fashionFixture(3, 2, 2)
	f.Add(img, 3, 0)
	f.Add(lab, 1, 0)
	f.Add(lab, 1, 2)
	f.Add(img[:10], 3, 0)
	f.Add(idxBytes([]int{1 << 30, 1 << 12, 1 << 12}, nil), 3, 0)
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 1, 7, 9}, 1, 0)
	f.Fuzz(func(t *testing.T, b []byte, ndims, limit int) {
		if ndims < 1 || ndims > 4 {
			return
		}
		r, err := readIDX(bytes.NewReader(b), "fuzz", ndims, limit)
		if err != nil {
			return
		}
		item := 1
		for _, d := range r.dims[1:] {
			item *= d
		}
		n := r.count
		if limit > 0 && limit < n {
			n = limit
		}
		if len(r.data) != n*item || len(r.dims) != ndims || int64(len(b)) < r.dataOffset+int64(len(r.data)) {
			t.Fatalf("dims %v count %d limit %d: %d data bytes from %d input bytes", r.dims, r.count, limit, len(r.data), len(b))
		}
		if n == r.count && int64(len(b)) != r.dataOffset+int64(len(r.data)) {
			t.Fatalf("accepted %d trailing bytes", int64(len(b))-r.dataOffset-int64(len(r.data)))
		}
	})
}
