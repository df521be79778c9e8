package data

import (
	"strings"
	"testing"
)

// testVocab lays out modalities text, image, speech, video, ... with the
// given sizes.
func testVocab(sizes ...int) Vocab {
	names := []string{"text", "image", "speech", "video"}
	v := Vocab{}
	next := uint32(0)
	for i, n := range sizes {
		v.Names = append(v.Names, names[i])
		v.Ranges = append(v.Ranges, [2]uint32{next, next + uint32(n)})
		next += uint32(n)
	}
	return v
}

func TestVocab(t *testing.T) {
	v := testVocab(100, 64, 32)
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	if v.Size() != 196 || v.String() != "text [0, 100), image [100, 164), speech [164, 196)" {
		t.Errorf("Size %d, String %s", v.Size(), v)
	}
	for id, want := range map[uint32]int{0: 0, 99: 0, 100: 1, 163: 1, 164: 2, 195: 2} {
		if m, err := v.ModalityOf(id); err != nil || m != want {
			t.Errorf("ModalityOf(%d) = %v, %v; want %v", id, m, err, want)
		}
	}
	for _, id := range []uint32{196, IgnoreIndex} {
		if _, err := v.ModalityOf(id); err == nil || !strings.Contains(err.Error(), "outside the vocabulary [0, 196)") {
			t.Errorf("ModalityOf(%d): %v", id, err)
		}
	}
	if !v.Has(2) || v.Has(3) || v.Has(-1) || testVocab(10, 0, 5).Has(1) {
		t.Error("Has is wrong")
	}
	if v.Name(1) != "image" || v.Name(5) != "modality(5)" {
		t.Errorf("Name: %s %s", v.Name(1), v.Name(5))
	}
	if !v.Equal(testVocab(100, 64, 32)) || v.Equal(testVocab(100, 64, 31)) {
		t.Error("Equal is wrong")
	}
}

func TestVocabValidate(t *testing.T) {
	nine := Vocab{}
	for i := range 10 {
		nine.Names = append(nine.Names, string(rune('a'+i)))
		nine.Ranges = append(nine.Ranges, [2]uint32{uint32(i), uint32(i + 1)})
	}
	cases := []struct {
		v    Vocab
		want string
	}{
		{Vocab{}, "no ranges"},
		{nine, "10 ranges, at most 9"},
		{Vocab{[]string{"text"}, [][2]uint32{{1, 10}}}, "text [1, 10) must start at 0"},
		{Vocab{[]string{"text"}, [][2]uint32{{0, 0}}}, "text is empty"},
		{testVocab(10, 10), ""},
		{Vocab{[]string{"text", "image"}, [][2]uint32{{0, 10}, {5, 20}}}, "overlap: text [0, 10) and image [5, 20)"},
		{Vocab{[]string{"text", "image"}, [][2]uint32{{0, 10}, {12, 20}}}, "gap: text ends at 10, image starts at 12"},
		{Vocab{[]string{"text", "image"}, [][2]uint32{{0, 10}, {10, 5}}}, "image [10, 5) ends before it starts"},
		{Vocab{[]string{"text"}, [][2]uint32{{0, 10}, {10, 15}}}, "2 ranges but 1 names"},
		{Vocab{[]string{"text", "text"}, [][2]uint32{{0, 10}, {10, 15}}}, `name "text", which is empty or taken`},
	}
	for _, c := range cases {
		err := c.v.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("Validate(%v) = %v", c.v, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%v) = %v, want %q", c.v, err, c.want)
		}
	}
}

func TestNewBatch(t *testing.T) {
	b, err := NewBatch(2, 3, 4)
	if err != nil || len(b.Inputs) != 6 || len(b.Targets) != 6 || len(b.Modality) != 6 || len(b.Patches) != 24 || b.P != 4 {
		t.Fatalf("NewBatch(2, 3, 4) = %+v, %v", b, err)
	}
	if b, _ := NewBatch(2, 3, 0); b.Patches != nil {
		t.Error("patches without P")
	}
	for _, d := range [][3]int{{0, 1, 0}, {1, 0, 0}, {1, 1, -1}} {
		if _, err := NewBatch(d[0], d[1], d[2]); err == nil {
			t.Errorf("NewBatch%v succeeded", d)
		}
	}
}
