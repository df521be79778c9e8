package nn

import (
	"fmt"

	"mom/gpu"
)

// Routing is the routing table of one batch of rows over groups modalities,
// built on the host from the modality ids and kept on the device for the
// grouped kernels: a permutation that lists the rows of modality 0, then 1,
// and so on (each group in its original order), and each group's offset in
// it. Every GroupedLinear of the batch reads the same Routing; Update it once
// per batch, after submitting the previous step and before submitting the
// step that uses it (the upload goes through the queue, between the two).
type Routing struct {
	rows, groups int
	perm         *Tensor // (rows) u32: the rows of each group, group after group
	offsets      *Tensor // (groups+1) u32: group g is perm[offsets[g] .. offsets[g+1])
	hostPerm     []uint32
	hostOff      []uint32
	hostNext     []uint32
	counts       []int
}

// NewRouting allocates the tables for rows rows over groups modalities. Until
// the first Update every group is empty (the grouped ops compute nothing).
func NewRouting(d *gpu.Device, rows, groups int) (*Routing, error) {
	if rows <= 0 || groups <= 0 {
		return nil, fmt.Errorf("nn: Routing: need rows > 0 and groups > 0, got rows %d, groups %d", rows, groups)
	}
	if rows >= 1<<31 {
		return nil, fmt.Errorf("nn: Routing: %d rows do not fit the kernels' 32-bit indices", rows)
	}
	perm, err := NewTensor(d, "routing.perm", rows)
	if err != nil {
		return nil, fmt.Errorf("nn: Routing: %w", err)
	}
	offsets, err := NewTensor(d, "routing.offsets", groups+1)
	if err != nil {
		perm.Release()
		return nil, fmt.Errorf("nn: Routing: %w", err)
	}
	rt := &Routing{rows: rows, groups: groups, perm: perm, offsets: offsets,
		hostPerm: make([]uint32, rows), hostOff: make([]uint32, groups+1), hostNext: make([]uint32, groups), counts: make([]int, groups)}
	if err := rt.upload(); err != nil {
		return nil, err
	}
	return rt, nil
}

// Update builds the tables from the modality id of every row (len(modality)
// == rows, ids < groups) and uploads them; it records no GPU work. The
// uploads are ordered before any later submit.
func (rt *Routing) Update(modality []uint32) error {
	if len(modality) != rt.rows {
		return fmt.Errorf("nn: Routing.Update: %d modality ids for %d rows", len(modality), rt.rows)
	}
	for t, m := range modality {
		if int(m) >= rt.groups {
			return fmt.Errorf("nn: Routing.Update: row %d has modality id %d, want < %d groups", t, m, rt.groups)
		}
	}
	for g := range rt.counts {
		rt.counts[g] = 0
	}
	for _, m := range modality {
		rt.counts[m]++
	}
	// A counting sort: offsets are the prefix sums of the counts, and each
	// row goes to the next free place of its group (stable).
	rt.hostOff[0] = 0
	for g, c := range rt.counts {
		rt.hostOff[g+1] = rt.hostOff[g] + uint32(c)
	}
	next := rt.hostNext
	copy(next, rt.hostOff[:rt.groups])
	for t, m := range modality {
		rt.hostPerm[next[m]] = uint32(t)
		next[m]++
	}
	return rt.upload()
}

func (rt *Routing) upload() error {
	if err := rt.perm.UploadU32(rt.hostPerm); err != nil {
		return fmt.Errorf("nn: Routing: %w", err)
	}
	if err := rt.offsets.UploadU32(rt.hostOff); err != nil {
		return fmt.Errorf("nn: Routing: %w", err)
	}
	return nil
}

// Counts returns the rows per modality of the last Update.
func (rt *Routing) Counts() []int { return append([]int(nil), rt.counts...) }

// Rows is the number of rows the tables route.
func (rt *Routing) Rows() int { return rt.rows }

// Groups is the number of modalities.
func (rt *Routing) Groups() int { return rt.groups }

// Release frees the device tables.
func (rt *Routing) Release() {
	rt.perm.Release()
	rt.offsets.Release()
}

// Tables reads the device tables back (for tests and debugging; it waits
// for the GPU).
func (rt *Routing) Tables() (perm, offsets []uint32, err error) {
	if perm, err = rt.perm.DownloadU32(); err != nil {
		return nil, nil, err
	}
	if offsets, err = rt.offsets.DownloadU32(); err != nil {
		return nil, nil, err
	}
	return perm, offsets, nil
}
