package trainer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unsafe"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
	"mom/trainer/mpi"
)

// DefaultBucketBytes is the gradient bucket size of data-parallel training
// when Options.BucketBytes is 0.
const DefaultBucketBytes = 25 << 20

// DefaultCheckEvery is how often data-parallel ranks compare parameter
// checksums when Options.CheckEvery is 0.
const DefaultCheckEvery = 100

// ErrStoppedWithOthers ends a rank that stopped because another rank was
// asked to (a signal reached that one only): the ranks stop together.
var ErrStoppedWithOthers = errors.New("stopped with the other ranks (another rank was asked to stop)")

// dataParallel is this process's part of a data-parallel run (package
// doc, "Several GPUs"): every rank reads the whole global batch (the
// streams are deterministic by position) and trains on its own rows of
// it, with the whole batch's loss weights; the gradients are summed over
// the ranks in buckets while the backward runs; every rank then takes the
// same optimizer step. Rank 0 alone writes the run folder.
type dataParallel struct {
	w          *mpi.World
	rank, size int
	rows       int // rows of each global micro-batch this rank trains on

	buckets []gradBucket
	closing [][]int // closing[s] lists the buckets backward stage s completes, in order
	// The tied token embedding's deferred backward (mom.Model's
	// DeferEmbeddingBackward; gatherB -1 without): bucket gatherB gathers
	// every rank's gradient rows into gathered, and scatter adds them into the
	// summed table gradient, the same on every rank, after the table's own
	// buckets have been written back.
	gatherB  int
	gathered *nn.Tensor
	scatter  *nn.Embedding
	stage    gradStaging
	red      *mpi.Reducer
	// The control bucket, summed after the gradients: the step's loss
	// record (sums and counts per modality) and the stop flag.
	ctrlB    int
	ctrlDown *gpu.HostReadBuffer // this rank's loss record, from the device
	ctrl     []float32           // (Len(ctrlB)) what this rank sends
	sum      *nn.Checksum        // of the parameters
	every    int                 // checksum every this many steps

	stop  bool       // the ranks agreed to stop after the step just taken
	spans []mpi.Span // the step's reductions, gradient buckets then control
}

// commStats are a step's communication times: the wall time during which
// the MPI threads were summing the step's buckets (the union of the
// reductions' spans: with several lanes they run side by side), and the
// part of it before the backward had finished (before the last bucket
// reached the host).
type commStats struct {
	comm, overlap time.Duration
	// exposed is the time from the backward's end (the last bucket on the
	// host) to the optimizer step's submit: the GPU idles for the
	// communication not hidden behind the backward and for writing the
	// sums back (upload, part of exposed).
	exposed, upload time.Duration
}

// newDataParallel plans the buckets of t's model and makes everything the
// reductions need, once.
func newDataParallel(t *trainer) (*dataParallel, error) {
	w := t.o.World
	p := &dataParallel{w: w, rank: w.Rank(), size: w.Size(), rows: t.o.Batch / w.Size(), every: t.o.CheckEvery, gatherB: -1}
	if p.every == 0 {
		p.every = DefaultCheckEvery
	}
	maxBytes := t.o.BucketBytes
	if maxBytes <= 0 {
		maxBytes = DefaultBucketBytes
	}
	m := t.m
	elem := mpi.Float32
	if t.o.GradExchange == ExchangeBF16 {
		elem = mpi.BFloat16
	}
	pad := func(n int) int { return mpi.PaddedLen(n, p.size, elem) }
	// A tied embedding's table gradient gets the head's part in the first
	// backward stage and the scatter of the token rows in the last. Left
	// as it is, the whole table (the largest parameter) would be summed
	// after the backward, with the GPU idle. Deferred, the table goes out
	// after the head's stage, and the rows are gathered after the last
	// stage and scattered on every rank: worth it while every rank's rows
	// (float32) are at most half the table's bytes in the exchange.
	src, emb := m.EmbeddingRows(), m.Param(mom.NameEmbed)
	deferred := gatherPays(t.o.EmbeddingGather, t.o.GradExchange, p.size, src.Len(), emb.G.Len()) && m.DeferEmbeddingBackward()
	var err error
	fail := func(e error) (*dataParallel, error) {
		p.release()
		return nil, e
	}
	p.buckets = planBuckets(m.BackwardStages(), m.GradsFinishedBy, maxBytes, bucketAlign(t.o.GradExchange), pad)
	p.closing = make([][]int, m.BackwardStages())
	if deferred {
		T, D := src.Shape[0], src.Shape[1]
		if p.gathered, err = nn.NewTensorIn(t.d, gpu.MemScratch, "embedding gradient rows of every rank", p.size*T, D); err != nil {
			return fail(err)
		}
		if p.scatter, err = nn.NewEmbedding(t.d, nn.EmbeddingArgs{E: emb.W, DOut: p.gathered, DE: emb.G}); err != nil {
			return fail(fmt.Errorf("trainer: the embedding's scatter of every rank's rows: %w", err))
		}
		n := p.size * T * D
		p.gatherB = len(p.buckets)
		p.buckets = append(p.buckets, gradBucket{n: n, padded: mpi.PaddedLen(n, p.size, mpi.Float32), last: m.BackwardStages() - 1,
			gather: &rowGather{src: src, dst: p.gathered, slot: p.rank * T * D}})
	}
	lens := make([]int, 0, len(p.buckets)+1)
	elems := make([]mpi.Elem, 0, len(p.buckets)+1)
	for i, b := range p.buckets {
		p.closing[b.last] = append(p.closing[b.last], i)
		lens = append(lens, b.n)
		if b.gather != nil {
			elems = append(elems, mpi.Float32)
		} else {
			elems = append(elems, elem)
		}
	}
	n := m.Cfg.LossSlots()
	// The control bucket (losses, the overflow flag, checksums) is float32.
	lens = append(lens, n+1+ctrlOverflowWords)
	elems = append(elems, mpi.Float32)
	p.ctrlB = len(p.buckets)
	if p.red, err = w.NewReducerElems(lens, elems, mpi.Auto); err != nil {
		return fail(err)
	}
	for i, b := range p.buckets {
		if p.red.Len(i) != b.padded {
			return fail(fmt.Errorf("trainer: bucket %d: the reduction pads %d values to %d, the plan to %d", i, b.n, p.red.Len(i), b.padded))
		}
	}
	p.ctrl = make([]float32, p.red.Len(p.ctrlB))
	p.spans = make([]mpi.Span, len(lens))
	if p.stage, err = newGradStaging(t.d, p.buckets, t.o.GradExchange); err != nil {
		return fail(err)
	}
	if p.ctrlDown, err = t.d.NewHostReadBuffer("loss record", int64(4*(n+ctrlOverflowWords))); err != nil {
		return fail(err)
	}
	ws := make([]*nn.Tensor, len(m.Params))
	for i, q := range m.Params {
		ws[i] = q.W
	}
	if p.sum, err = nn.NewChecksum(t.d, ws); err != nil {
		return fail(err)
	}
	return p, nil
}

// Options.EmbeddingGather: the tied embedding's gradient in data-parallel
// training.
const (
	GatherAuto = "auto"
	GatherOn   = "on"
	GatherOff  = "off"
)

// gatherPays reports whether a data-parallel run on ranks ranks should
// defer a tied embedding's backward (newDataParallel; the model decides
// whether it can): with GatherOn, or with GatherAuto ("") when gathering
// every rank's rows (rows values each, float32) moves at most half the
// bytes of the table's gradient (table values) in the exchange. On 2 H200s
// (94m, 8x512 per GPU, bfloat16 exchange) it cut the time the GPU waits
// after the backward from 9.6 to 4.3 ms a step (1.63x -> 1.70x over one
// GPU).
func gatherPays(mode, exchange string, ranks, rows, table int) bool {
	switch mode {
	case GatherOn:
		return true
	case GatherOff:
		return false
	}
	per := 4
	if exchange == ExchangeBF16 {
		per = 2
	}
	return 2*4*ranks*rows <= per*table
}

func (p *dataParallel) release() {
	if p.red != nil {
		p.red.Release()
	}
	if p.stage != nil {
		p.stage.Release()
	}
	if p.ctrlDown != nil {
		p.ctrlDown.Release()
	}
	if p.sum != nil {
		p.sum.Release()
	}
	if p.scatter != nil {
		p.scatter.Release()
	}
	if p.gathered != nil {
		p.gathered.Release()
	}
	p.red, p.stage, p.ctrlDown, p.sum, p.scatter, p.gathered = nil, nil, nil, nil, nil, nil
}

// describe is one line about the job for the log.
func (p *dataParallel) describe(t *trainer) string {
	most := 0
	for _, b := range p.buckets {
		most = max(most, b.n)
	}
	how := fmt.Sprintf("summed through MPI-3 shared memory by %d threads per rank", p.w.Threads())
	if p.red.Method() != mpi.SharedMemory {
		how = fmt.Sprintf("summed all-to-all on %d MPI thread(s) per rank", p.w.Lanes())
	}
	ex := "float32"
	if t.o.GradExchange == ExchangeBF16 {
		ex = "bfloat16 (rounded on both ways, summed in float32)"
	}
	gather := ""
	if p.gatherB >= 0 {
		gather = fmt.Sprintf(" (the tied embedding's table after the head's stage, its token rows, %.1f MiB, gathered in float32 after the last)",
			float64(4*p.buckets[p.gatherB].n)/(1<<20))
	}
	return fmt.Sprintf("data-parallel over %d ranks (%s): %d of every %d rows per rank, gradients in %d buckets (largest %.1f MiB)%s "+
		"exchanged as %s, %s, checksums every %d steps",
		p.size, p.w.Library(), p.rows, t.o.Batch, len(p.buckets), float64(4*most)/(1<<20), gather, ex, how, p.every)
}

// step records and runs one optimizer step: the micro-batches' forward and
// backward passes, the last backward in stages with each finished bucket
// handed to the MPI thread as soon as it reaches the host, the summed
// gradients written back, the summed loss record put in t.lossBuf at
// slot, then the clip norm and AdamW.
func (p *dataParallel) step(ctx context.Context, t *trainer, step int, slot, slotBytes int64) (st commStats, err error) {
	o := t.o
	for micro := 0; micro < o.Accum; micro++ {
		if err := t.nextTrainBatch(step); err != nil {
			return st, err
		}
		if p.scatter != nil && micro == o.Accum-1 {
			// The deferred scatter takes every rank's rows of this
			// micro-batch, in rank order: the whole micro-batch's ids.
			if err := p.scatter.Update(t.mb.Inputs); err != nil {
				return st, fmt.Errorf("trainer: step %d: %w", step, err)
			}
		}
		r := t.d.NewRecorder()
		if micro == 0 {
			t.m.RecordZeroGrads(r)
		}
		t.m.RecordForward(r)
		if micro < o.Accum-1 {
			t.m.RecordBackward(r)
			if err := r.Submit(); err != nil {
				return st, fmt.Errorf("trainer: step %d: %w; %s", step, err, t.ckptNote())
			}
			continue
		}
		t.m.RecordLosses(r, p.ctrlDown.Buffer(), 0)
		// The loss record is mapped after the first submit; in mixed
		// precision the casts' overflow flag follows it, known after the
		// last stage, so the record is mapped then.
		mapped, last := false, t.m.BackwardStages()-1
		for s := 0; s <= last; s++ {
			t.m.RecordBackwardStage(r, s)
			if s == last {
				t.recordOverflowDown(r, p.ctrlDown.Buffer(), int64(4*t.m.Cfg.LossSlots()))
			}
			// Each bucket the stage completes goes out in a submit of
			// its own, so that its map waits for its copy only.
			for _, b := range p.closing[s] {
				p.stage.RecordOut(r, b)
				if err := r.Submit(); err != nil {
					return st, fmt.Errorf("trainer: step %d: %w; %s", step, err, t.ckptNote())
				}
				if !mapped && (t.ls == nil || s == last) {
					if err := p.ctrlDown.Map(); err != nil {
						return st, err
					}
					mapped = true
				}
				if err := p.stage.Out(b); err != nil {
					return st, err
				}
				r = t.d.NewRecorder()
			}
		}
		// Stages after the last bucket (none, as planBuckets closes one at
		// the last stage) would be here.
		if err := r.Submit(); err != nil {
			return st, fmt.Errorf("trainer: step %d: %w; %s", step, err, t.ckptNote())
		}
		if !mapped {
			if err := p.ctrlDown.Map(); err != nil {
				return st, err
			}
		}
	}
	// Each bucket goes to the MPI thread as soon as it is on the host;
	// the GPU carries on with the later stages meanwhile, and the sums
	// that are back are written to the device (after the backward, in
	// queue order) while later buckets are still on their way.
	next := 0 // the next bucket whose sums to write back
	var backwardDone time.Time
	collect := func(block bool) error {
		if !block && !p.red.Ready(next) {
			return nil
		}
		sums, sp, err := p.red.Wait(next)
		if err != nil {
			return fmt.Errorf("trainer: step %d: %w", step, err)
		}
		p.spans[next] = sp
		up := time.Now()
		if err := p.stage.In(next, sums); err != nil {
			return fmt.Errorf("trainer: step %d: %w", step, err)
		}
		if next == p.gatherB {
			// The table's own buckets, before this one, are written
			// back: add every rank's rows.
			r := t.d.NewRecorder()
			p.scatter.RecordBackward(r)
			if err := r.Submit(); err != nil {
				return fmt.Errorf("trainer: step %d: the embedding's scatter: %w", step, err)
			}
		}
		st.upload += time.Since(up)
		p.stage.Done(next)
		next++
		return nil
	}
	for b := range p.buckets {
		v, err := p.stage.WaitOut(b)
		if err != nil {
			return st, fmt.Errorf("trainer: step %d: gradient bucket %d: %w", step, b, err)
		}
		if err := p.red.Start(b, v); err != nil {
			return st, err
		}
		for next < b && p.red.Ready(next) {
			if err := collect(false); err != nil {
				return st, err
			}
		}
	}
	backwardDone = time.Now()
	raw, err := p.ctrlDown.Wait()
	if err != nil {
		return st, fmt.Errorf("trainer: step %d: loss record: %w", step, err)
	}
	n := t.m.Cfg.LossSlots()
	copy(p.ctrl[:n], unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), n))
	p.ctrl[n+1] = t.overflowWord(raw, n)
	p.ctrlDown.Unmap()
	p.ctrl[n] = 0
	if ctx.Err() != nil {
		p.ctrl[n] = 1
	}
	if err := p.red.Start(p.ctrlB, p.ctrl); err != nil {
		return st, err
	}
	for next < len(p.buckets) {
		if err := collect(true); err != nil {
			return st, err
		}
	}
	sums, sp, err := p.red.Wait(p.ctrlB)
	if err != nil {
		return st, fmt.Errorf("trainer: step %d: %w", step, err)
	}
	p.spans[p.ctrlB] = sp
	st.comm, st.overlap = spanTimes(p.spans, backwardDone)
	if err := t.lossBuf.WriteFloat32(int(slot/4), sums[:n]); err != nil {
		return st, err
	}
	p.stop = sums[n] > 0
	if err := t.shareOverflow(sums[n+1]); err != nil {
		return st, fmt.Errorf("trainer: step %d: %w", step, err)
	}
	r := t.d.NewRecorder()
	t.norm.Record(r)
	t.recordStepTail(r, slot)
	t.opt.Record(r)
	if err := r.Submit(); err != nil {
		return st, fmt.Errorf("trainer: step %d: %w; %s", step, err, t.ckptNote())
	}
	st.exposed = time.Since(backwardDone)
	return st, nil
}

// spanTimes returns the length of the union of spans and the part of it
// before cut. It sorts spans.
func spanTimes(spans []mpi.Span, cut time.Time) (total, before time.Duration) {
	slices.SortFunc(spans, func(a, b mpi.Span) int { return a.Start.Compare(b.Start) })
	var cur mpi.Span
	add := func(sp mpi.Span) {
		if !sp.End.After(sp.Start) {
			return
		}
		total += sp.End.Sub(sp.Start)
		if end := minTime(sp.End, cut); end.After(sp.Start) {
			before += end.Sub(sp.Start)
		}
	}
	for i, sp := range spans {
		switch {
		case i == 0:
			cur = sp
		case sp.Start.After(cur.End):
			add(cur)
			cur = sp
		case sp.End.After(cur.End):
			cur.End = sp.End
		}
	}
	if len(spans) > 0 {
		add(cur)
	}
	return total, before
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sumEval adds the ranks' held-out loss sums (the control bucket).
func (p *dataParallel) sumEval(acc []float32) ([]float32, error) {
	n := len(acc)
	clear(p.ctrl)
	copy(p.ctrl, acc)
	if err := p.red.Start(p.ctrlB, p.ctrl); err != nil {
		return nil, err
	}
	sums, _, err := p.red.Wait(p.ctrlB)
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), sums[:n]...), nil
}

// checkParams compares the parameters' checksums of every rank; all ranks
// call it at the same steps, and all return the same answer.
func (p *dataParallel) checkParams(t *trainer, step int) error {
	r := t.d.NewRecorder()
	p.sum.Record(r)
	if err := r.Submit(); err != nil {
		return err
	}
	sums, err := p.sum.Read()
	if err != nil {
		return err
	}
	raw := make([]byte, 4*len(sums))
	for i, v := range sums {
		binary.LittleEndian.PutUint32(raw[4*i:], v)
	}
	all, err := p.w.Allgather(raw)
	if err != nil {
		return fmt.Errorf("trainer: step %d: comparing parameter checksums: %w", step, err)
	}
	slots := p.sum.Slots()
	for k := 1; k < p.size; k++ {
		var differ []string
		for i := range sums {
			a := binary.LittleEndian.Uint32(all[4*i:])
			b := binary.LittleEndian.Uint32(all[len(raw)*k+4*i:])
			if a != b {
				differ = append(differ, slots[i].Tensor.Name)
			}
		}
		if len(differ) > 0 {
			more := ""
			if len(differ) > 3 {
				more = fmt.Sprintf(" and %d more", len(differ)-3)
				differ = differ[:3]
			}
			return fmt.Errorf("trainer: after step %d the parameters of rank %d differ from rank 0's (%s%s): the ranks have diverged "+
				"(different GPUs or drivers computing differently, or a fault); %s", step, k, strings.Join(differ, ", "), more, t.ckptNote())
		}
	}
	return nil
}

// startState is what rank 0 sends the others when a run starts: where the
// loop starts and everything restored from the run folder.
type startState struct {
	Err        string          `json:"err,omitempty"`
	Step       int             `json:"step"`
	Restored   bool            `json:"restored"` // the parameters and optimizer state come from a checkpoint (sent after this)
	RNG        []byte          `json:"rng"`
	Data       json.RawMessage `json:"data"`
	Sched      Schedule        `json:"sched"`
	WallBase   float64         `json:"wall_base"`
	CkptStep   int             `json:"ckpt_step"`
	Checkpoint string          `json:"checkpoint"`
	// LossScale is rank 0's loss scale (mixed precision): restored from
	// the checkpoint, or the first.
	LossScale *nn.LossScaleState `json:"loss_scale,omitempty"`
}

// begin starts the run on every rank: rank 0 starts or resumes it in its
// folder (trainer.begin) and sends the others the state to start from,
// the parameters and optimizer state too when they come from a
// checkpoint (so the other ranks need not see the run folder); the others
// start fresh from the seed or take what rank 0 sent. Then every rank
// checks that all hold the same parameters.
func (p *dataParallel) begin(t *trainer) (int, error) {
	var s startState
	if p.rank == 0 {
		step, err := t.begin()
		if err != nil {
			s.Err = err.Error()
		} else {
			s = startState{Step: step, Restored: t.ckptStep >= 0, Sched: t.sched, WallBase: t.wallBase,
				CkptStep: t.ckptStep, Checkpoint: t.res.Checkpoint}
			if s.RNG, err = t.pcg.MarshalBinary(); err == nil {
				s.Data, err = t.train.State()
			}
			if err == nil && t.ls != nil {
				var ls nn.LossScaleState
				ls, err = t.ls.Get()
				s.LossScale = &ls
			}
			if err != nil {
				s.Err = err.Error()
			}
		}
		msg, _ := json.Marshal(s)
		if _, berr := p.bcastBytes(msg); berr != nil {
			return 0, errors.Join(err, berr)
		}
		if err != nil {
			return 0, err
		}
		if s.Err != "" {
			return 0, errors.New(s.Err)
		}
	} else {
		msg, err := p.bcastBytes(nil)
		if err != nil {
			return 0, err
		}
		if err := json.Unmarshal(msg, &s); err != nil {
			return 0, fmt.Errorf("trainer: rank %d: the start state from rank 0: %w", p.rank, err)
		}
		if s.Err != "" {
			return 0, fmt.Errorf("trainer: rank 0 could not start the run: %s", s.Err)
		}
		if err := t.initFresh(); err != nil {
			return 0, err
		}
		t.pcg = &rand.PCG{}
		if err := t.pcg.UnmarshalBinary(s.RNG); err != nil {
			return 0, fmt.Errorf("trainer: rank %d: RNG state from rank 0: %w", p.rank, err)
		}
		t.rng = rand.New(t.pcg)
		if err := t.train.Restore(s.Data); err != nil {
			return 0, fmt.Errorf("trainer: rank %d: data position from rank 0: %w", p.rank, err)
		}
		t.sched, t.wallBase, t.ckptStep, t.res.Checkpoint = s.Sched, s.WallBase, s.CkptStep, s.Checkpoint
		if t.ls != nil && s.LossScale != nil {
			if err := t.ls.Set(*s.LossScale); err != nil {
				return 0, fmt.Errorf("trainer: rank %d: loss scale from rank 0: %w", p.rank, err)
			}
		}
	}
	if s.Restored {
		if err := p.bcastState(t); err != nil {
			return 0, err
		}
	}
	if err := p.checkParams(t, s.Step); err != nil {
		return 0, err
	}
	return s.Step, nil
}

// bcastBytes sends rank 0's msg to every rank (its length first).
func (p *dataParallel) bcastBytes(msg []byte) ([]byte, error) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(msg)))
	if err := p.w.Bcast(n[:], 0); err != nil {
		return nil, err
	}
	if p.rank != 0 {
		msg = make([]byte, binary.LittleEndian.Uint64(n[:]))
	}
	if len(msg) > 0 {
		if err := p.w.Bcast(msg, 0); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// bcastState sends rank 0's parameters and optimizer state to the others.
func (p *dataParallel) bcastState(t *trainer) error {
	for i, q := range t.m.Params {
		for _, x := range []*nn.Tensor{q.W, t.mstate[i], t.vstate[i]} {
			var v []float32
			var err error
			if p.rank == 0 {
				if v, err = x.Download(); err != nil {
					return fmt.Errorf("trainer: sending %s: %w", x.Name, err)
				}
			} else {
				v = make([]float32, x.Len())
			}
			if err := p.w.Bcast(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)), 0); err != nil {
				return fmt.Errorf("trainer: sending %s: %w", x.Name, err)
			}
			if p.rank != 0 {
				if err := x.Upload(v); err != nil {
					return fmt.Errorf("trainer: rank %d: %s from rank 0: %w", p.rank, x.Name, err)
				}
			}
		}
	}
	return nil
}

// deviceName names the device config.json records: rank 0's, with the
// number of ranks in a data-parallel run.
func (t *trainer) deviceName() string {
	if t.ranks() > 1 {
		return fmt.Sprintf("%s, rank 0 of %d data-parallel ranks", t.d, t.ranks())
	}
	return t.d.String()
}
