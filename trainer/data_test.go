package trainer

import (
	"reflect"
	"strings"
	"testing"
)

func TestDefaultVocab(t *testing.T) {
	cases := []struct {
		mods []Modality
		want [][2]uint32
	}{
		{nil, [][2]uint32{{0, 100}}},
		{[]Modality{Text}, [][2]uint32{{0, 100}}},
		{[]Modality{Image}, [][2]uint32{{0, 100}, {100, 164}}},
		{[]Modality{Text, Image, Speech}, [][2]uint32{{0, 100}, {100, 164}, {164, 196}}},
		{[]Modality{Speech}, [][2]uint32{{0, 100}, {100, 100}, {100, 132}}},
	}
	for _, c := range cases {
		v := DefaultVocab(c.mods, 100, 64, 32)
		if !reflect.DeepEqual(v.Ranges, c.want) {
			t.Errorf("DefaultVocab(%v) = %v, want %v", c.mods, v.Ranges, c.want)
		}
		if err := v.Validate(); err != nil {
			t.Errorf("DefaultVocab(%v): %v", c.mods, err)
		}
	}
	v := DefaultVocab([]Modality{Speech, Image}, 100, 64, 32)
	if v.Size() != 196 {
		t.Errorf("Size = %d", v.Size())
	}
	for id, want := range map[uint32]Modality{0: Text, 99: Text, 100: Image, 163: Image, 164: Speech, 195: Speech} {
		if m, err := v.ModalityOf(id); err != nil || m != want {
			t.Errorf("ModalityOf(%d) = %v, %v; want %v", id, m, err, want)
		}
	}
	for _, id := range []uint32{196, IgnoreIndex} {
		if _, err := v.ModalityOf(id); err == nil || !strings.Contains(err.Error(), "outside the vocabulary [0, 196)") {
			t.Errorf("ModalityOf(%d): %v", id, err)
		}
	}
	if !v.Has(Speech) || DefaultVocab([]Modality{Speech}, 10, 10, 10).Has(Image) || DefaultVocab(nil, 10, 10, 10).Has(Speech) {
		t.Error("Has is wrong")
	}
}

func TestVocabValidate(t *testing.T) {
	cases := []struct {
		r    [][2]uint32
		want string
	}{
		{nil, "no ranges"},
		{[][2]uint32{{0, 1}, {1, 2}, {2, 3}, {3, 4}}, "4 ranges, there are 3 modalities"},
		{[][2]uint32{{1, 10}}, "text [1, 10) must start at 0"},
		{[][2]uint32{{0, 0}}, "text is empty"},
		{[][2]uint32{{0, 10}, {5, 20}}, "overlap: text [0, 10) and image [5, 20)"},
		{[][2]uint32{{0, 10}, {12, 20}}, "gap: text ends at 10, image starts at 12"},
		{[][2]uint32{{0, 10}, {10, 5}}, "image [10, 5) ends before it starts"},
	}
	for _, c := range cases {
		err := Vocab{c.r}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%v) = %v, want %q", c.r, err, c.want)
		}
	}
}

func TestModalityNames(t *testing.T) {
	for i, n := range ModalityNames {
		m, err := ParseModality(n)
		if err != nil || int(m) != i || m.String() != n {
			t.Errorf("ParseModality(%s) = %v, %v", n, m, err)
		}
	}
	if _, err := ParseModality("video"); err == nil {
		t.Error("ParseModality(video) succeeded")
	}
	if s := Modality(7).String(); s != "modality(7)" {
		t.Errorf("String = %s", s)
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
