package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SynthConfig configures the synthetic stream (NewSynthetic).
type SynthConfig struct {
	// Generators names each modality's generator, in modality-id order
	// (the modality table's Synthetic column): "markov" (modality 0 must
	// be one), "grid", "periodic" or "field" (continuous patches).
	Generators []string
	Vocab      Vocab // one non-empty range per generator
	Seed       uint64
	Split      string // "train" or "eval": disjoint streams ("" means "train")
	P          int    // patch size, for "field" modalities
}

// Generator names of the synthetic stream.
const (
	GenMarkov   = "markov"
	GenGrid     = "grid"
	GenPeriodic = "periodic"
	GenField    = "field"
)

// The synthetic stream's layout. Documents alternate a text segment and a
// segment of another modality (chosen uniformly among the enabled ones;
// text again when text is alone).
const (
	synthTextMin   = 16 // text segment length, uniform in [min, max]
	synthTextMax   = 96
	synthGrid      = 8 // image segments are synthGrid x synthGrid tokens, row-major
	synthSpeechLen = 48
	synthPeriodMin = 3 // speech period, uniform in [min, max]
	synthPeriodMax = 8
	synthSkipMax   = 64 // a row starts this many tokens (uniform in [0, max)) into its document
	synthRank      = 4  // rank of continuous image patches
	synthVersion   = 1  // bump when the generated data change
)

// Text: a sparse Markov chain. Token v is followed by its j-th successor
// (a fixed pseudo-random token, from the seed) with probability
// synthSucc[j], and by a uniformly random token with the rest.
var synthSucc = [...]float64{0.45, 0.25, 0.12, 0.08} // sum 0.9

// Image (discrete): the token at grid cell (r, c) is the rounded mean of its
// left and upper neighbours (just the one that exists on the first row and
// column; uniform at (0, 0)) plus a small step e, clamped to the image
// range: e in -2..2 with these probabilities.
var synthImageStep = [...]float64{0.1, 0.2, 0.4, 0.2, 0.1}

// Speech: a random pattern of period p repeated, each token replaced by a
// uniformly random one with probability synthSpeechNoise.
const synthSpeechNoise = 0.15

// synthStream is the synthetic Stream.
type synthStream struct {
	c           SynthConfig
	others      []int // modalities besides 0
	continuous  bool
	world       uint64    // from the seed: the structure shared by both splits
	stream      uint64    // from the seed and the split: which samples
	basis       []float64 // (synthRank, P) patch directions
	freq        [synthRank][2]float64
	fingerprint string

	sample uint64 // next row's sample index

	pcg *rand.PCG // reseeded for every row
	rng *rand.Rand

	// per-row scratch
	toks  []uint32
	mods  []uint32
	patch []float32
}

// NewSynthetic returns a deterministic synthetic interleaved multimodal
// stream. Documents alternate segments of modality 0 (16-96 tokens from a
// sparse Markov chain: each token has a few likely successors) with
// segments of another modality chosen uniformly, each made by its
// generator: "grid" (8x8 = 64 tokens, row-major; a token follows from its
// left and upper neighbours), "periodic" (48 tokens: a noisy periodic
// sequence, period 3-8), "markov" (a segment of that modality's own chain)
// or "field" (64 continuous patches), so each modality's loss falls at its
// own rate.
//
// Row k of the stream (counted over all batches: batch n of size B holds
// rows nB..nB+B-1) is a window of L+1 tokens of a document generated from
// (seed, split, k) alone: the same seed and position give the same batch,
// whatever came before, and State/Restore round-trip exactly. The
// structure (the Markov chains, the patch basis) depends on the seed only,
// so the "train" and "eval" splits share it while their samples differ.
//
// "field" (continuous) positions carry the placeholder id (the first id of
// the modality's range) and a clean P-dim patch: a rank-4 smooth field
// over the 8x8 grid (cosines of the cell position with per-image
// amplitudes and phases along fixed directions). Positions whose input or
// target is a continuous position then get IgnoreIndex targets (their loss
// is the diffusion loss on the patches, not cross-entropy).
func NewSynthetic(c SynthConfig) (Stream, error) {
	s, err := newSynth(c)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// legacyGenerators are the generators of modality ids 0-2 before the
// modality table (their streams keep their fingerprints).
var legacyGenerators = [][]string{{GenMarkov}, {GenGrid, GenField}, {GenPeriodic}}

func newSynth(c SynthConfig) (*synthStream, error) {
	if err := c.Vocab.Validate(); err != nil {
		return nil, fmt.Errorf("trainer: synthetic data: %w", err)
	}
	switch c.Split {
	case "":
		c.Split = "train"
	case "train", "eval":
	default:
		return nil, fmt.Errorf(`trainer: synthetic data: split %q, want "train" or "eval"`, c.Split)
	}
	if len(c.Generators) == 0 {
		return nil, errors.New("trainer: synthetic data: no modalities (generators)")
	}
	if len(c.Generators) != len(c.Vocab.Ranges) {
		return nil, fmt.Errorf("trainer: synthetic data: %d generators for a vocabulary of %d modalities", len(c.Generators), len(c.Vocab.Ranges))
	}
	if c.Generators[0] != GenMarkov {
		return nil, fmt.Errorf("trainer: synthetic data: modality 0 uses %q, want %q (its segments separate the others)", c.Generators[0], GenMarkov)
	}
	if c.P < 0 {
		return nil, fmt.Errorf("trainer: synthetic data: P = %d", c.P)
	}
	s := &synthStream{c: c, pcg: rand.NewPCG(0, 0)}
	s.rng = rand.New(s.pcg)
	legacy := len(c.Generators) <= len(legacyGenerators)
	for m, g := range c.Generators {
		switch g {
		case GenMarkov, GenGrid, GenPeriodic, GenField:
		default:
			return nil, fmt.Errorf("trainer: synthetic data: modality %d has the unknown generator %q (want markov, grid, periodic or field)", m, g)
		}
		if !c.Vocab.Has(m) {
			return nil, fmt.Errorf("trainer: synthetic data: %s is enabled but the vocabulary has no %s ids", c.Vocab.Name(m), c.Vocab.Name(m))
		}
		if m > 0 {
			s.others = append(s.others, m)
		}
		if g == GenField {
			s.continuous = true
		}
		if legacy && !slices.Contains(legacyGenerators[m], g) {
			legacy = false
		}
	}
	if s.continuous && c.P <= 0 {
		return nil, fmt.Errorf("trainer: synthetic data: continuous (field) modalities need P > 0, have %d", c.P)
	}
	if !s.continuous {
		s.c.P = 0
	}

	s.world = mix64(c.Seed ^ 0x6d6f6d2d776f726c) // "mom-worl"
	s.stream = mix64(s.world ^ mix64(splitKey(s.c.Split)))
	if s.continuous {
		r := rand.New(rand.NewPCG(s.world, 0x7061746368)) // "patch"
		s.basis = make([]float64, synthRank*s.c.P)
		// Unit-variance patches: E[a^2] = 1, E[cos^2] = 1/2, so each
		// component contributes 2/rank * 1/2 per element.
		scale := math.Sqrt(2.0 / synthRank)
		for i := range s.basis {
			s.basis[i] = r.NormFloat64() * scale
		}
		for k := range s.freq {
			s.freq[k] = [2]float64{float64(r.IntN(3)), float64(r.IntN(3))}
		}
	}
	ids := make([]int, len(c.Generators))
	for i := range ids {
		ids[i] = i
	}
	var gens []string
	if !legacy {
		gens = c.Generators
	}
	fp, _ := json.Marshal(struct {
		V     int
		M     []int
		G     []string `json:",omitempty"`
		R     [][2]uint32
		C     bool
		P     int
		Split string
		Seed  uint64
	}{synthVersion, ids, gens, c.Vocab.Ranges, s.continuous, s.c.P, s.c.Split, c.Seed})
	s.fingerprint = fmt.Sprintf("%016x", mix64(hashBytes(fp)))
	return s, nil
}

func splitKey(split string) uint64 { return hashBytes([]byte("split:" + split)) }

// mix64 is the SplitMix64 finaliser: a bijective scramble of 64 bits.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hashBytes is a 64-bit FNV-1a hash followed by mix64.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

// successor is the j-th likely successor of token v (0-based within
// modality m's range of n ids) in m's Markov chain.
func (s *synthStream) successor(m int, v uint32, j int, n uint32) uint32 {
	key := mix64(uint64(v)<<3 | uint64(j))
	if m > 0 {
		key = mix64(key ^ uint64(m))
	}
	return uint32(mix64(s.world^key) % uint64(n))
}

// synthState is the stream position State returns.
type synthState struct {
	Kind        string `json:"kind"`
	Seed        uint64 `json:"seed"`
	Split       string `json:"split"`
	Fingerprint string `json:"fingerprint"`
	Sample      uint64 `json:"sample"` // rows produced so far
}

// State returns the position: the number of rows produced, with the
// stream's identity.
func (s *synthStream) State() (json.RawMessage, error) {
	return json.Marshal(synthState{"synthetic", s.c.Seed, s.c.Split, s.fingerprint, s.sample})
}

// Restore moves to a position State gave, from a stream with the same
// configuration.
func (s *synthStream) Restore(raw json.RawMessage) error {
	var st synthState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("trainer: synthetic data: restoring position: %w", err)
	}
	switch {
	case st.Kind != "synthetic":
		return fmt.Errorf("trainer: synthetic data: cannot restore a %q position", st.Kind)
	case st.Seed != s.c.Seed || st.Split != s.c.Split:
		return fmt.Errorf("trainer: synthetic data: position is of seed %d split %s, this stream is seed %d split %s", st.Seed, st.Split, s.c.Seed, s.c.Split)
	case st.Fingerprint != s.fingerprint:
		return errors.New("trainer: synthetic data: position is of a stream with other modalities, vocabulary or patch size")
	}
	s.sample = st.Sample
	return nil
}

// Next fills b with the next b.B rows.
func (s *synthStream) Next(b *Batch) error {
	if err := b.check(s.c.P); err != nil {
		return fmt.Errorf("trainer: synthetic data: %w", err)
	}
	L, P := b.L, s.c.P
	if cap(s.toks) < L+1 {
		s.toks = make([]uint32, L+1)
		s.mods = make([]uint32, L+1)
		if P > 0 {
			s.patch = make([]float32, (L+1)*P)
		}
	}
	s.toks, s.mods = s.toks[:L+1], s.mods[:L+1]
	if P > 0 {
		s.patch = s.patch[:(L+1)*P]
	}
	if P == 0 && b.P > 0 {
		clear(b.Patches)
	}
	for row := 0; row < b.B; row++ {
		s.row(s.sample)
		s.sample++
		o := row * L
		copy(b.Inputs[o:o+L], s.toks[:L])
		copy(b.Targets[o:o+L], s.toks[1:])
		copy(b.Modality[o:o+L], s.mods[:L])
		if P > 0 {
			copy(b.Patches[o*P:(o+L)*P], s.patch[:L*P])
			cont := func(m uint32) bool { return s.c.Generators[m] == GenField }
			for t := 0; t < L; t++ {
				if cont(s.mods[t]) || cont(s.mods[t+1]) {
					b.Targets[o+t] = IgnoreIndex
				}
			}
		}
	}
	return nil
}

// emitter writes a row's tokens, skipping the first skip ones.
type emitter struct {
	s    *synthStream
	skip int
	n    int // tokens written
}

func (e *emitter) full() bool { return e.n == len(e.s.toks) }

// put appends one token and returns its P-dim patch slot, zeroed (nil
// when the stream has no patches or the token was skipped or fell past the
// row's end).
func (e *emitter) put(id uint32, m int) []float32 {
	if e.skip > 0 {
		e.skip--
		return nil
	}
	if e.full() {
		return nil
	}
	e.s.toks[e.n] = id
	e.s.mods[e.n] = uint32(m)
	var dst []float32
	if P := e.s.c.P; P > 0 {
		dst = e.s.patch[e.n*P : (e.n+1)*P]
		clear(dst)
	}
	e.n++
	return dst
}

// row generates sample k into the scratch buffers.
func (s *synthStream) row(k uint64) {
	s.pcg.Seed(mix64(s.stream^k), mix64(s.stream+k))
	r := s.rng
	e := &emitter{s: s, skip: r.IntN(synthSkipMax)}
	for !e.full() {
		s.markovSegment(r, e, 0)
		if e.full() || len(s.others) == 0 {
			continue
		}
		m := s.others[r.IntN(len(s.others))]
		switch s.c.Generators[m] {
		case GenGrid:
			s.gridSegment(r, e, m)
		case GenField:
			s.fieldSegment(r, e, m)
		case GenPeriodic:
			s.periodicSegment(r, e, m)
		case GenMarkov:
			s.markovSegment(r, e, m)
		}
	}
}

func (s *synthStream) markovSegment(r *rand.Rand, e *emitter, m int) {
	lo, hi := s.c.Vocab.Range(m)
	n := hi - lo
	length := synthTextMin + r.IntN(synthTextMax-synthTextMin+1)
	v := r.Uint32N(n)
	for i := 0; i < length && !e.full(); i++ {
		if i > 0 {
			u := r.Float64()
			next, picked := uint32(0), false
			for j, p := range synthSucc {
				if u < p {
					next, picked = s.successor(m, v, j, n), true
					break
				}
				u -= p
			}
			if !picked {
				next = r.Uint32N(n)
			}
			v = next
		}
		e.put(lo+v, m)
	}
}

func (s *synthStream) fieldSegment(r *rand.Rand, e *emitter, m int) {
	lo, _ := s.c.Vocab.Range(m)
	var amp, phase [synthRank]float64
	for k := range amp {
		amp[k] = r.NormFloat64()
		phase[k] = 2 * math.Pi * r.Float64()
	}
	P := s.c.P
	for cell := 0; cell < synthGrid*synthGrid && !e.full(); cell++ {
		dst := e.put(lo, m)
		if dst == nil {
			continue
		}
		row, col := float64(cell/synthGrid), float64(cell%synthGrid)
		var w [synthRank]float64
		for k := range w {
			f := s.freq[k]
			w[k] = amp[k] * math.Cos(2*math.Pi*(f[0]*col+f[1]*row)/synthGrid+phase[k])
		}
		for j := range dst {
			x := 0.0
			for k := range w {
				x += w[k] * s.basis[k*P+j]
			}
			dst[j] = float32(x)
		}
	}
}

func (s *synthStream) gridSegment(r *rand.Rand, e *emitter, m int) {
	lo, hi := s.c.Vocab.Range(m)
	n := int(hi - lo)
	var grid [synthGrid * synthGrid]int
	for cell := range grid {
		row, col := cell/synthGrid, cell%synthGrid
		var v int
		switch {
		case row == 0 && col == 0:
			v = r.IntN(n)
		case row == 0:
			v = grid[cell-1]
		case col == 0:
			v = grid[cell-synthGrid]
		default:
			v = (grid[cell-1] + grid[cell-synthGrid] + 1) / 2
		}
		if cell > 0 {
			u := r.Float64()
			step := len(synthImageStep) - 1
			for i, p := range synthImageStep {
				if u < p {
					step = i
					break
				}
				u -= p
			}
			v = min(max(v+step-len(synthImageStep)/2, 0), n-1)
		}
		grid[cell] = v
		if e.full() {
			return
		}
		e.put(lo+uint32(v), m)
	}
}

func (s *synthStream) periodicSegment(r *rand.Rand, e *emitter, m int) {
	lo, hi := s.c.Vocab.Range(m)
	n := hi - lo
	p := synthPeriodMin + r.IntN(synthPeriodMax-synthPeriodMin+1)
	var pattern [synthPeriodMax]uint32
	for i := 0; i < p; i++ {
		pattern[i] = r.Uint32N(n)
	}
	for t := 0; t < synthSpeechLen && !e.full(); t++ {
		v := pattern[t%p]
		if r.Float64() < synthSpeechNoise {
			v = r.Uint32N(n)
		}
		e.put(lo+v, m)
	}
}
