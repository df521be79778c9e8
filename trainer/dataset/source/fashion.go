package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"mom/trainer/media"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the data set (Xiao, Rasul and Vollgraf, 2017: 60,000 training and 10,000
// test images of 28x28 grey clothing, ten classes).
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// fashionClasses are the ten class names in label order, lower case.
var fashionClasses = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

// fashionNouns are the WordNet noun lemmas (as in WordNet's index.noun,
// spaces written as spaces) of the classes: every class name is a WordNet
// noun except "ankle boot", whose head noun "boot" is.
var fashionNouns = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"}

// FashionMNISTClasses returns the ten Fashion-MNIST class names in label
// order, lower case: "t-shirt", "trouser", "pullover", "dress", "coat",
// "sandal", "shirt", "sneaker", "bag", "ankle boot". The data set's own
// names are "T-shirt/top" and "Trouser"; "t-shirt" and "trouser" are the
// WordNet nouns nearest to them.
func FashionMNISTClasses() []string { return append([]string(nil), fashionClasses...) }

// FashionMNISTNouns returns, in label order, the WordNet noun under which
// each class can be looked up (for glosses): the class name itself, except
// "boot" for "ankle boot", which WordNet does not list.
func FashionMNISTNouns() []string { return append([]string(nil), fashionNouns...) }

// fashionSplits names the files of each split, as the data set ships them
// (the ".gz" forms; the uncompressed ones are read when those are absent).
var fashionSplits = [2]struct{ name, images, labels string }{
	{"train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
	{"test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
}

// FashionMNIST reads the Fashion-MNIST training and test splits from dir
// (FashionMNISTDir for the installed package): the IDX files
// train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
// t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (or the same
// names without ".gz"). Images become one-channel media images with
// values byte/255; Label is the class name (FashionMNISTClasses); IDs are
// "fashion-mnist/train/<i>" and "fashion-mnist/test/<i>", i counting from
// 0 in file order; Source is "fashion-mnist". A limit > 0 reads only the
// first limit items of each split. The files' magic numbers, dimensions
// and counts are checked, labels must be below 10, and the image and label
// files of a split must hold the same number of items; errors name the
// file and the byte offset (in the uncompressed data).
func FashionMNIST(dir string, limit int) (train, test []Image, err error) {
	var out [2][]Image
	for s, split := range fashionSplits {
		ims, err := readFashionSplit(dir, split.name, split.images, split.labels, limit)
		if err != nil {
			return nil, nil, err
		}
		out[s] = ims
	}
	return out[0], out[1], nil
}

func readFashionSplit(dir, split, imagesName, labelsName string, limit int) ([]Image, error) {
	img, err := readIDXFile(dir, imagesName, 3, limit)
	if err != nil {
		return nil, err
	}
	lab, err := readIDXFile(dir, labelsName, 1, limit)
	if err != nil {
		return nil, err
	}
	if img.count != lab.count {
		return nil, fmt.Errorf("source: fashion-mnist %s split: %s holds %d images but %s holds %d labels", split, img.file, img.count, lab.file, lab.count)
	}
	rows, cols := img.dims[1], img.dims[2]
	n := len(lab.data)
	out := make([]Image, n)
	for i := range n {
		l := lab.data[i]
		if int(l) >= len(fashionClasses) {
			return nil, fmt.Errorf("source: %s: offset %d: label %d of item %d is not a class (0-%d)", lab.file, lab.dataOffset+int64(i), l, i, len(fashionClasses)-1)
		}
		im := &media.Image{W: cols, H: rows, C: 1, Pix: make([]float32, rows*cols)}
		for j, b := range img.data[i*rows*cols : (i+1)*rows*cols] {
			im.Pix[j] = float32(b) / 255
		}
		out[i] = Image{
			ID:     fmt.Sprintf("fashion-mnist/%s/%d", split, i),
			Source: "fashion-mnist",
			Image:  im,
			Label:  fashionClasses[l],
		}
	}
	return out, nil
}

// idxFile is what readIDX read: the dimensions from the header (dims[0] is the
// item count), the bytes of the first items read, and where they start.
type idxFile struct {
	file       string
	dims       []int
	count      int
	data       []byte
	dataOffset int64
}

// readIDXFile opens name.gz in dir (or name itself when there is no .gz)
// and reads it as an IDX file of ndims dimensions.
func readIDXFile(dir, name string, ndims, limit int) (*idxFile, error) {
	path := filepath.Join(dir, name+".gz")
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if g, err2 := os.Open(filepath.Join(dir, name)); err2 == nil {
			defer g.Close()
			return readIDX(bufio.NewReader(g), g.Name(), ndims, limit)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("source: fashion-mnist: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("source: %s: not a gzip file: %w", path, err)
	}
	defer zr.Close()
	return readIDX(zr, path, ndims, limit)
}

// IDX limits: an item of at most 16 Mi values, at most 2^31-1 items.
const (
	idxMaxItem  = 1 << 24
	idxMaxCount = 1<<31 - 1
)

// readIDX reads an IDX file (LeCun's MNIST format): two zero bytes, the
// type code 0x08 (unsigned bytes), the number of dimensions, each
// dimension as a big-endian uint32 (the first is the item count), then the
// values. It reads the first limit items (all when limit <= 0); having read
// all it also checks that nothing follows them. Memory grows with the data
// actually present, never with a header's claims.
func readIDX(r io.Reader, file string, ndims, limit int) (*idxFile, error) {
	var head [4]byte
	if n, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("source: %s: offset %d: truncated in the 4-byte magic number: %v", file, n, err)
	}
	if head[0] != 0 || head[1] != 0 {
		return nil, fmt.Errorf("source: %s: offset 0: bad magic % x: not an IDX file (want 00 00 08 %02x)", file, head, ndims)
	}
	if head[2] != 0x08 {
		return nil, fmt.Errorf("source: %s: offset 2: element type 0x%02x, want 0x08 (unsigned byte)", file, head[2])
	}
	if int(head[3]) != ndims {
		return nil, fmt.Errorf("source: %s: offset 3: %d dimensions, want %d", file, head[3], ndims)
	}
	dims := make([]int, ndims)
	item := 1
	for i := range dims {
		var b [4]byte
		off := 4 + 4*i
		if n, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("source: %s: offset %d: truncated in dimension %d: %v", file, off+n, i, err)
		}
		d := binary.BigEndian.Uint32(b[:])
		switch {
		case i == 0 && d > idxMaxCount:
			return nil, fmt.Errorf("source: %s: offset %d: item count %d is too large", file, off, d)
		case i > 0 && (d == 0 || uint64(item)*uint64(d) > idxMaxItem):
			return nil, fmt.Errorf("source: %s: offset %d: dimension %d is %d (items must be 1 to %d values)", file, off, i, d, idxMaxItem)
		}
		dims[i] = int(d)
		if i > 0 {
			item *= int(d)
		}
	}
	count := dims[0]
	n := count
	if limit > 0 && limit < n {
		n = limit
	}
	start := int64(4 + 4*ndims)
	want := int64(n) * int64(item)
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, r, want)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("source: %s: offset %d: truncated: %d items of %d bytes need %d bytes of data, the file ends after %d", file, start+got, n, item, want, got)
		}
		return nil, fmt.Errorf("source: %s: offset %d: %w", file, start+got, err)
	}
	if n == count {
		var one [1]byte
		k, err := io.ReadFull(r, one[:])
		if k > 0 {
			return nil, fmt.Errorf("source: %s: offset %d: data after the %d items the header declares", file, start+want, count)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("source: %s: offset %d: %w", file, start+want, err)
		}
	}
	return &idxFile{file: file, dims: dims, count: count, data: buf.Bytes(), dataOffset: start}, nil
}
