package sample

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"mom/mom"
	"mom/trainer/dataset"
)

// Options say what to sample.
type Options struct {
	// Prompt is the text the samples continue; "" starts them from the
	// document marker alone (an unconditional sample).
	Prompt string
	// Modality is what follows the prompt: "text" (or "", the default) lets
	// the model write on, opening spans of discrete modalities as it
	// chooses; another modality's name makes each sample one item of it (an
	// image, an utterance), begun with its marker right after the prompt.
	Modality string
	// MaxTokens caps the tokens generated per sample (default 256). A span
	// of the model's chosen length (speech) ends at its end marker or at
	// this cap.
	MaxTokens int
	// Params choose how tokens are drawn: temperature (0: greedy), top-k,
	// top-p, seed. The seed also draws the diffusion noise.
	Params mom.SampleParams
	// Steps is the number of noise levels a diffusion sampler visits (1 to
	// mom.TimestepBuckets; 0: all of them); Diffusion names the sampler:
	// "ddpm" (default) or "ddim".
	Steps     int
	Diffusion string
}

// DefaultMaxTokens is Options.MaxTokens when unset.
const DefaultMaxTokens = 256

// Check fills the defaults and checks the options against the vocabulary:
// a known modality, an id set to start from, sampler settings in range.
// It needs no device.
func (o *Options) Check(v *Vocab) error {
	if o.Modality == "" {
		o.Modality = v.Cfg.Modalities[0].Name
	}
	m, err := v.Modality(o.Modality)
	if err != nil {
		return err
	}
	if o.Prompt == "" && !v.HasDoc && m == 0 {
		return fmt.Errorf("sample: an empty prompt: the dataset has no %s marker to start a document from, so the %s setting's text needs a prompt to continue (--prompt)", dataset.SpecialDoc, v.Cfg.Setting)
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	if o.MaxTokens < 0 {
		return fmt.Errorf("sample: --max-tokens %d must be positive", o.MaxTokens)
	}
	if err := o.Params.Validate(); err != nil {
		return err
	}
	continuous := v.Cfg.Modalities[m].Continuous
	if !continuous && (o.Steps != 0 || o.Diffusion != "") {
		return fmt.Errorf("sample: --steps and --sampler choose a diffusion sampler; the %s modality's tokens are sampled, not denoised", o.Modality)
	}
	if continuous {
		if o.Diffusion == "" {
			o.Diffusion = Samplers[0]
		}
		if !slices.Contains(Samplers, o.Diffusion) {
			return fmt.Errorf("sample: unknown diffusion sampler %q (want %s)", o.Diffusion, strings.Join(Samplers, " or "))
		}
		if o.Steps == 0 {
			o.Steps = mom.TimestepBuckets
		}
		if _, err := Levels(o.Steps); err != nil {
			return err
		}
	}
	if m > 0 && !continuous && v.ItemLen(m) > o.MaxTokens {
		return fmt.Errorf("sample: one %s item is %d tokens, more than --max-tokens %d", o.Modality, v.ItemLen(m), o.MaxTokens)
	}
	return nil
}

// Sampler draws samples from a model in the step mode: one stream per
// sample. It shares the parameters of the Model it was made from (so
// samples taken between training steps see the latest weights) and
// allocates everything else once: the step model, and as they are first
// needed a prefill per prompt length and a snapshot and forced run for
// diffusion (a prefill per prompt length: a few fixed prompts cost
// nothing after their first use). Release it before the Model. A Sampler
// is not safe for concurrent use.
type Sampler struct {
	v       *Vocab
	s       *mom.StepModel
	N       int
	prefill map[int]*mom.Prefill
	forced  map[int]*mom.ForcedSteps
	snap    *mom.StepSnapshot

	textSet int   // the id set of free text
	spanSet []int // per modality: the id set inside its spans (-1: none)
	use     []int // host scratch: each stream's id set now
	inputs  []uint32
	chunk   int // most steps per submit (generateSteps; tests lower it)
}

// testHookPred, set by tests, sees each diffusion pass's input patches
// and predicted noise per stream, (span, patch).
var testHookPred func(level, stream int, x, eps []float32)

// maxPrefills bounds the prefills kept (one per prompt length).
const maxPrefills = 8

// generateSteps is the most steps recorded into one submit where no
// stream can change its id set in between (inside fixed-length spans).
const generateSteps = 32

// New makes a sampler of n streams for model m.
func New(m *mom.Model, v *Vocab, n int) (_ *Sampler, err error) {
	if m == nil || v == nil {
		return nil, errors.New("sample: no model or vocabulary")
	}
	if a, b := string(m.Cfg.JSON()), string(v.Cfg.JSON()); a != b {
		return nil, errors.New("sample: the vocabulary was made for another model config")
	}
	if n <= 0 {
		return nil, fmt.Errorf("sample: %d samples, want at least 1", n)
	}
	c := v.Cfg
	st, err := mom.NewStepModel(m, n, mom.StepOptions{GenerateSteps: generateSteps, IDSets: c.Groups()})
	if err != nil {
		return nil, err
	}
	s := &Sampler{v: v, s: st, N: n, prefill: map[int]*mom.Prefill{}, forced: map[int]*mom.ForcedSteps{},
		spanSet: make([]int, c.Groups()), use: make([]int, n), inputs: make([]uint32, n), chunk: generateSteps}
	defer func() {
		if err != nil {
			s.Release()
		}
	}()
	// Free text: the text range without the markers that only the
	// sampler places (the document marker, every end marker) and without
	// the begin markers of continuous modalities (diffusion runs for a
	// whole batch of samples at once; ask for one with Modality).
	var banned []int
	if v.HasDoc {
		banned = append(banned, int(v.Doc))
	}
	sets := []mom.IDSet{nil}
	for g, row := range c.Modalities {
		s.spanSet[g] = -1
		if g == 0 {
			continue
		}
		banned = append(banned, int(v.Finish[g]))
		if row.Continuous {
			banned = append(banned, int(v.Begin[g]))
			continue
		}
		set := mom.IDSet{c.VocabRanges[g]}
		if v.ItemLen(g) == 0 {
			set = append(set, [2]int{int(v.Finish[g]), int(v.Finish[g]) + 1})
		}
		s.spanSet[g] = len(sets)
		sets = append(sets, set)
	}
	sets[0] = without(c.VocabRanges[0], banned)
	s.textSet = 0
	if err := st.SetIDSets(sets); err != nil {
		return nil, err
	}
	return s, nil
}

// without is the range r less the ids banned.
func without(r [2]int, banned []int) mom.IDSet {
	b := slices.Clone(banned)
	slices.Sort(b)
	var out mom.IDSet
	lo := r[0]
	for _, id := range b {
		if id < lo || id >= r[1] {
			continue
		}
		if id > lo {
			out = append(out, [2]int{lo, id})
		}
		lo = id + 1
	}
	if lo < r[1] {
		out = append(out, [2]int{lo, r[1]})
	}
	return out
}

// Result is one Sample call's samples.
type Result struct {
	Prompt   string
	Modality string
	Options  Options
	Samples  []Sample
	// Steps is the step-mode steps each stream ran after the prompt (a
	// diffusion sampler: levels x span); Tokens the ids generated over all
	// samples; Seconds the wall time after the prompt's prefill.
	Steps, Tokens int
	Seconds       float64

	v       *Vocab // decodes the samples (Decode)
	m       int    // the modality asked for
	decoded bool
}

// Sample is one stream's sample.
type Sample struct {
	// IDs are the ids generated after the prompt (markers included; a
	// diffusion sample's image has none: see Patches).
	IDs []uint32
	// Text is the prompt and the text generated after it; a span shows as
	// "[image 1]", "[speech 1]" (numbered per sample).
	Text string
	// Items are the decoded spans in order: *media.Image or *media.Audio.
	Items []Item
	// Stop says why the sample ended: "end" (its end-of-document marker),
	// "item" (the asked-for item is complete) or "max-tokens".
	Stop string
}

// Item is one decoded span.
type Item struct {
	Modality string
	Kind     string // "image" or "audio"
	Value    any    // *media.Image or *media.Audio
	// IDs are the span's ids relative to its range (nil for continuous
	// spans); Patches a continuous span's denoised patches.
	IDs     []uint32
	Patches []float32
	// Err is why the span could not be decoded (cut off by the token cap,
	// say); Value is then nil.
	Err error
}

// stream modes besides a modality id (a span of it).
const (
	modeText = 0
	modeDone = -1
)

// Sample draws one sample per stream, all continuing the same prompt,
// and decodes them (Generate, then Result.Decode).
func (s *Sampler) Sample(o Options) (*Result, error) {
	res, err := s.Generate(o)
	if err != nil {
		return nil, err
	}
	res.Decode()
	return res, nil
}

// Generate draws one sample per stream, all continuing the same prompt,
// on the device, and leaves the decoding of their text and discrete spans
// (speech's Griffin-Lim among them) to Result.Decode (or Result.Write),
// which needs no device and may run on another goroutine while the
// Sampler (or the model it shares parameters with) goes on: training
// takes samples between its steps and writes them in the background.
func (s *Sampler) Generate(o Options) (*Result, error) {
	v, c := s.v, s.v.Cfg
	if err := o.Check(v); err != nil {
		return nil, err
	}
	m, _ := v.Modality(o.Modality)
	prompt := v.Prompt(o.Prompt)
	if m > 0 {
		prompt = append(prompt, v.Begin[m])
	}
	if err := s.s.SetSampling(o.Params); err != nil {
		return nil, err
	}
	res := &Result{Prompt: o.Prompt, Modality: o.Modality, Options: o, Samples: make([]Sample, s.N)}
	var err error
	if c.Modalities[m].Continuous {
		err = s.diffuse(res, prompt, m, o)
	} else {
		err = s.generate(res, prompt, m, o)
	}
	if err != nil {
		return nil, err
	}
	res.v, res.m = v, m
	return res, nil
}

// Decode writes every sample's text and decodes its discrete spans into
// Items (a diffusion sample's image is decoded by Generate already). It
// needs no device; a second call does nothing. Result.Write calls it.
func (r *Result) Decode() {
	if r.v == nil || r.decoded {
		return
	}
	r.decoded = true
	for i := range r.Samples {
		r.v.decode(&r.Samples[i], r.Prompt, r.m)
	}
}

// start puts the prompt into every stream: the parallel prefill of all
// but its last feed tokens into stream 0, copied to the others; the last
// feed tokens are left as every stream's next input. feedLast 0 prefills
// the whole prompt.
func (s *Sampler) start(prompt []uint32, feedLast int) error {
	n := len(prompt) - feedLast
	if n == 0 {
		return s.s.Reset()
	}
	pf, ok := s.prefill[n]
	if !ok {
		if len(s.prefill) >= maxPrefills {
			for k, p := range s.prefill {
				p.Release()
				delete(s.prefill, k)
			}
		}
		var err error
		if pf, err = s.s.NewPrefill(1, n); err != nil {
			return err
		}
		s.prefill[n] = pf
	}
	if err := pf.Run(0, prompt[:n], nil); err != nil {
		return err
	}
	if s.N > 1 {
		return s.s.Broadcast(0)
	}
	return nil
}

// generate samples tokens: free text, or one item of modality m.
func (s *Sampler) generate(res *Result, prompt []uint32, m int, o Options) error {
	v := s.v
	if err := s.start(prompt, 1); err != nil {
		return err
	}
	for i := range s.inputs {
		s.inputs[i] = prompt[len(prompt)-1]
	}
	if err := s.s.SetInputs(s.inputs); err != nil {
		return err
	}
	mode := make([]int, s.N)   // modeText, a span's modality, or modeDone
	inSpan := make([]int, s.N) // tokens of the current span
	for i := range mode {
		mode[i] = m
	}
	// Free text can open a span (and so change its id set) when its set
	// holds a discrete modality's begin marker.
	textOpens := false
	for g := 1; g < len(v.Begin); g++ {
		textOpens = textOpens || s.spanSet[g] >= 0
	}
	t0 := time.Now()
	active := s.N
	cur := slices.Repeat([]int{-2}, s.N) // the id sets uploaded
	// grow bounds a chunk in which a stream may end: from 2 steps,
	// doubling, so that a sample that ends soon wastes few steps.
	grow := min(2, s.chunk)
	for active > 0 {
		// Up to s.chunk steps in one submit, where no stream can change
		// its id set within: no more than any stream's fixed-length span
		// has left (its end marker is placed after it) or its token cap
		// allows. A stream that could change its set at any step (free
		// text that may open a span, a span of chosen length that may
		// close with the sample going on) takes one step at a time: the
		// next step's set depends on this step's draw.
		chunk, growing := s.chunk, false
		for i, md := range mode {
			if md == modeDone {
				s.use[i] = s.textSet
				continue
			}
			switch n := v.ItemLen(max(md, 0)); {
			case md > 0 && n > 0:
				s.use[i] = s.spanSet[md]
				chunk = min(chunk, n-inSpan[i])
			case md > 0:
				s.use[i] = s.spanSet[md]
				if m == 0 {
					chunk = 1
				}
				growing = true
			default:
				s.use[i] = s.textSet
				if textOpens {
					chunk = 1
				}
				growing = true
			}
			chunk = min(chunk, o.MaxTokens-len(res.Samples[i].IDs))
		}
		if growing {
			chunk = min(chunk, grow)
			grow = min(2*grow, s.chunk)
		}
		chunk = max(chunk, 1)
		if !slices.Equal(cur, s.use) {
			if err := s.s.UseIDSets(s.use); err != nil {
				return err
			}
			copy(cur, s.use)
		}
		ids, err := s.steps(chunk)
		if err != nil {
			return err
		}
		res.Steps += chunk
		forced := false
		for k := 0; k < chunk; k++ {
			row := ids[k*s.N : (k+1)*s.N]
			for i, id := range row {
				if mode[i] == modeDone {
					continue
				}
				smp := &res.Samples[i]
				smp.IDs = append(smp.IDs, id)
				res.Tokens++
				var force uint32
				doForce := false
				switch md := mode[i]; {
				case md == modeText:
					if id == v.End {
						mode[i], smp.Stop = modeDone, "end"
					} else if g := v.beginOf(id); g > 0 {
						mode[i], inSpan[i] = g, 0
					}
				case id == v.Finish[md]: // a span of chosen length ends
					mode[i] = modeText
					if m > 0 {
						mode[i], smp.Stop = modeDone, "item"
					}
				default:
					inSpan[i]++
					if n := v.ItemLen(md); n > 0 && inSpan[i] == n {
						// A complete item: its end marker follows.
						smp.IDs = append(smp.IDs, v.Finish[md])
						res.Tokens++
						mode[i], force, doForce = modeText, v.Finish[md], true
						if m > 0 {
							mode[i], smp.Stop = modeDone, "item"
						}
					}
				}
				if mode[i] != modeDone && len(smp.IDs) >= o.MaxTokens {
					mode[i], smp.Stop = modeDone, "max-tokens"
				}
				if mode[i] == modeDone {
					active--
				}
				s.inputs[i] = id
				if doForce && mode[i] != modeDone {
					s.inputs[i], forced = force, true
				}
			}
		}
		if forced && active > 0 {
			if err := s.s.SetInputs(s.inputs); err != nil {
				return err
			}
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	return nil
}

// Prompt is the ids a prompt starts a sample with: the document marker
// (where the dataset has one) and the text's tokens.
func (v *Vocab) Prompt(text string) []uint32 {
	var ids []uint32
	if v.HasDoc {
		ids = append(ids, v.Doc)
	}
	return v.Text.EncodeAppend(ids, text)
}

// steps runs n steps (one submit) and returns the ids, (n, streams).
func (s *Sampler) steps(n int) ([]uint32, error) {
	if n == 1 {
		return s.s.Step()
	}
	return s.s.Generate(n)
}

// ensureSnapshot makes the sampler's snapshot on first use.
func (s *Sampler) ensureSnapshot() error {
	if s.snap != nil {
		return nil
	}
	var err error
	s.snap, err = s.s.NewSnapshot()
	return err
}

// beginOf returns the modality whose begin marker id is, or 0.
func (v *Vocab) beginOf(id uint32) int {
	for g := 1; g < len(v.Begin); g++ {
		if v.Begin[g] == id {
			return g
		}
	}
	return 0
}

// diffuse denoises one span of the continuous modality m per stream,
// conditioned on the prompt (which ends with m's begin marker).
func (s *Sampler) diffuse(res *Result, prompt []uint32, m int, o Options) error {
	c := s.v.Cfg
	NP, P, N := s.v.ItemLen(m), c.PatchDim, s.N
	levels, err := Levels(o.Steps)
	if err != nil {
		return err
	}
	if err := s.ensureSnapshot(); err != nil {
		return err
	}
	fs, ok := s.forced[NP]
	if !ok {
		if fs, err = s.s.NewForcedSteps(NP); err != nil {
			return err
		}
		s.forced[NP] = fs
	}
	// The state after the prompt and the begin marker: where every pass
	// over the span starts.
	if err := s.start(prompt, 0); err != nil {
		return err
	}
	if err := s.s.Save(s.snap); err != nil {
		return err
	}
	t0 := time.Now()
	rngs := make([]*rand.Rand, N)
	x := make([][]float32, N) // per stream (span, patch)
	for i := range x {
		rngs[i] = rand.New(rand.NewPCG(o.Params.Seed, 0x646966660000+uint64(i)))
		x[i] = make([]float32, NP*P)
		for k := range x[i] {
			x[i][k] = float32(rngs[i].NormFloat64())
		}
	}
	ids := make([]uint32, NP*N)
	patches := make([]float32, NP*N*P)
	eps := make([]float32, NP*P)
	ddpm := o.Diffusion == "ddpm"
	for k, b := range levels {
		for j := range ids {
			ids[j] = uint32(c.VocabRanges[m][0] + b)
		}
		for i := 0; i < N; i++ { // (stream, span, patch) -> (span, stream, patch)
			for q := 0; q < NP; q++ {
				copy(patches[(q*N+i)*P:(q*N+i+1)*P], x[i][q*P:(q+1)*P])
			}
		}
		if err := fs.Run(s.snap, ids, patches); err != nil {
			return err
		}
		pred, err := fs.Pred()
		if err != nil {
			return err
		}
		next := -1
		if k+1 < len(levels) {
			next = levels[k+1]
		}
		for i := 0; i < N; i++ {
			for q := 0; q < NP; q++ {
				copy(eps[q*P:(q+1)*P], pred[(q*N+i)*P:(q*N+i+1)*P])
			}
			if testHookPred != nil {
				testHookPred(b, i, x[i], eps)
			}
			denoise(x[i], eps, b, next, ddpm, rngs[i])
		}
		res.Steps += NP
	}
	for i := range res.Samples {
		smp := &res.Samples[i]
		smp.Stop = "item"
		it := Item{Modality: c.Modalities[m].Name, Kind: s.v.codecs[m].kind(), Patches: x[i]}
		it.Value, it.Err = s.v.codecs[m].decode(nil, x[i])
		smp.Items = append(smp.Items, it)
		res.Tokens += NP
	}
	res.Seconds = time.Since(t0).Seconds()
	return nil
}

// decode writes a sample's text and decodes its discrete spans.
func (v *Vocab) decode(smp *Sample, prompt string, m int) {
	c := v.Cfg
	var text strings.Builder
	text.WriteString(prompt)
	var run []uint32 // text ids not yet written
	flush := func() {
		if len(run) > 0 {
			t, err := v.Text.Decode(run)
			if err != nil {
				t = fmt.Sprintf("[%v]", err)
			}
			text.WriteString(t)
			run = run[:0]
		}
	}
	count := map[string]int{}
	mode := m
	var span []uint32
	closeSpan := func() {
		g := mode
		name := c.Modalities[g].Name
		count[name]++
		it := Item{Modality: name, Kind: v.codecs[g].kind(), IDs: slices.Clone(span)}
		if n := v.ItemLen(g); n > 0 && len(span) != n {
			it.Err = fmt.Errorf("the span holds %d of the %d tokens of one %s (cut off by --max-tokens)", len(span), n, name)
		} else if len(span) == 0 {
			it.Err = fmt.Errorf("an empty %s span", name)
		} else {
			it.Value, it.Err = v.codecs[g].decode(span, nil)
		}
		smp.Items = append(smp.Items, it)
		flush()
		fmt.Fprintf(&text, "[%s %d]", name, count[name])
		span = span[:0]
	}
	if c.Modalities[m].Continuous {
		fmt.Fprintf(&text, "[%s 1]", c.Modalities[m].Name)
		smp.Text = text.String()
		return
	}
	for _, id := range smp.IDs {
		switch {
		case mode == modeText:
			if g := v.beginOf(id); g > 0 {
				mode = g
				continue
			}
			if !v.isSpecial(id) {
				run = append(run, id)
			}
		case id == v.Finish[mode]:
			closeSpan()
			mode = modeText
		default:
			span = append(span, id-uint32(c.VocabRanges[mode][0]))
		}
	}
	if mode != modeText {
		closeSpan()
	}
	flush()
	smp.Text = text.String()
}

// Release frees the step model and everything made for it.
func (s *Sampler) Release() {
	for _, p := range s.prefill {
		p.Release()
	}
	for _, f := range s.forced {
		f.Release()
	}
	if s.snap != nil {
		s.snap.Release()
	}
	if s.s != nil {
		s.s.Release()
	}
	s.prefill, s.forced, s.snap, s.s = nil, nil, nil, nil
}
