package mom

import (
	"fmt"

	"mom/nn"
)

// IDSet is a set of token ids: a union of half-open ranges [lo, hi). A
// span of modality M draws from M's vocabulary range and M's end marker,
// say: IDSet{range, {end, end + 1}}.
type IDSet [][2]int

// Cover is the smallest range that holds the set.
func (x IDSet) Cover() [2]int {
	if len(x) == 0 {
		return [2]int{}
	}
	c := x[0]
	for _, r := range x[1:] {
		c[0], c[1] = min(c[0], r[0]), max(c[1], r[1])
	}
	return c
}

// Contains reports whether id is in the set.
func (x IDSet) Contains(id int) bool {
	for _, r := range x {
		if id >= r[0] && id < r[1] {
			return true
		}
	}
	return false
}

// SetIDSets registers the id sets that UseIDSets restricts streams to (at
// most StepOptions.IDSets), replacing those registered before. Register
// them once, before sampling: it uploads one bit per id per set.
func (s *StepModel) SetIDSets(sets []IDSet) error {
	if max := s.idMask.Shape[0]; len(sets) > max {
		return fmt.Errorf("mom: id sets: %d sets, the step model has room for %d (StepOptions.IDSets)", len(sets), max)
	}
	raw := make([][][2]int, len(sets))
	cover := make([][2]int, len(sets))
	for i, x := range sets {
		if len(x) == 0 {
			return fmt.Errorf("mom: id set %d is empty", i)
		}
		raw[i], cover[i] = x, x.Cover()
	}
	bits, err := nn.MaskWords(raw, s.Cfg.Vocab)
	if err != nil {
		return fmt.Errorf("mom: %w", err)
	}
	if err := s.idMask.UploadU32(bits); err != nil {
		return fmt.Errorf("mom: id sets: %w", err)
	}
	s.setCover = cover
	return nil
}

// UseIDSets restricts stream i's draws to the registered set use[i] (-1:
// the whole vocabulary), for the steps of later submits. The sampler then
// reads the set's covering range only, in which the ids outside the set
// are masked.
func (s *StepModel) UseIDSets(use []int) error {
	if len(use) != s.Streams {
		return fmt.Errorf("mom: id sets: %d choices for %d streams", len(use), s.Streams)
	}
	sel, win := make([]uint32, s.Streams), make([]uint32, 2*s.Streams)
	for i, g := range use {
		switch {
		case g == -1:
			sel[i] = nn.MaskNone
		case g < 0 || g >= len(s.setCover):
			return fmt.Errorf("mom: id sets: stream %d asks for set %d of %d registered", i, g, len(s.setCover))
		default:
			sel[i] = uint32(g)
			win[2*i], win[2*i+1] = uint32(s.setCover[g][0]), uint32(s.setCover[g][1])
		}
	}
	if err := s.allowed.UploadU32(win); err != nil {
		return fmt.Errorf("mom: id sets: %w", err)
	}
	if err := s.idSel.UploadU32(sel); err != nil {
		return fmt.Errorf("mom: id sets: %w", err)
	}
	return nil
}

// noIDSets takes every stream off its id set.
func (s *StepModel) noIDSets() error {
	sel := make([]uint32, s.Streams)
	for i := range sel {
		sel[i] = nn.MaskNone
	}
	return s.idSel.UploadU32(sel)
}
