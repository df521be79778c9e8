package ref

import "fmt"

// BuildRouting groups rows by modality: perm (rows) lists the rows of
// modality 0, then of modality 1, and so on, each group in its original
// order (stable); offsets (groups+1) holds where each group starts in perm,
// offsets[groups] = rows. A modality id >= groups is an error naming the row.
func BuildRouting(perm, offsets []uint32, modality []uint32, groups int) error {
	if len(perm) != len(modality) {
		return fmt.Errorf("ref: BuildRouting: perm has %d entries for %d rows", len(perm), len(modality))
	}
	if len(offsets) != groups+1 {
		return fmt.Errorf("ref: BuildRouting: offsets has %d entries, want groups+1 = %d", len(offsets), groups+1)
	}
	for i := range offsets {
		offsets[i] = 0
	}
	for t, m := range modality {
		if int(m) >= groups {
			return fmt.Errorf("ref: BuildRouting: row %d has modality %d, want < %d", t, m, groups)
		}
		offsets[m+1]++
	}
	for g := 0; g < groups; g++ {
		offsets[g+1] += offsets[g]
	}
	next := append([]uint32(nil), offsets[:groups]...)
	for t, m := range modality {
		perm[next[m]] = uint32(t)
		next[m]++
	}
	return nil
}
