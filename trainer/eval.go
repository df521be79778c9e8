package trainer

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
	"mom/trainer/data"
	"mom/trainer/dataset"
	"mom/trainer/tokenizer/bpe"
)

// EvalOptions configure Evaluate.
type EvalOptions struct {
	// Data is a dataset folder whose held-out split is scored; "" takes
	// the run's data (its dataset's held-out split, its held-out token
	// file, or the synthetic stream's held-out split).
	Data string
	// Batches is the number of held-out batches of the run's shape; 0
	// scores the whole held-out split once (each position once; the
	// synthetic stream, which has no end, then gets DefaultOptions'
	// EvalBatches).
	Batches int
}

// EvalResult are the held-out figures of a checkpoint.
type EvalResult struct {
	Checkpoint string `json:"checkpoint"`
	Step       int    `json:"step"`
	Data       string `json:"data"`
	// Whole is true when the whole held-out split was scored once;
	// Batches batches of Batch x SeqLen positions were run.
	Whole     bool  `json:"whole_split"`
	Batches   int   `json:"batches"`
	Batch     int   `json:"batch"`
	SeqLen    int   `json:"seq_len"`
	Positions int64 `json:"positions"`
	// Loss is the total as the trainer reports it (mom.Losses.Total): the
	// mean next-token loss plus lambda times the mean diffusion loss.
	Loss       float64                  `json:"loss"`
	Modalities map[string]*ModalityEval `json:"modalities"`
	Order      []string                 `json:"-"` // the modalities in id order
}

// ModalityEval are one modality's held-out figures.
type ModalityEval struct {
	// Kind is the modality's loss: "next-token" or "diffusion".
	Kind mom.Loss `json:"kind"`
	// Targets is the number of positions scored: next-token targets in the
	// modality's range, or the modality's continuous positions.
	Targets int64 `json:"targets"`
	// Loss is the mean cross-entropy in nats per target, or the mean
	// squared error of the predicted noise (per position, averaged over
	// the patch) for a diffusion modality; Perplexity is exp(Loss) for
	// next-token modalities.
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity,omitempty"`
	// Accuracy is the fraction of targets equal to the argmax of the
	// logits restricted to the modality's range (next-token modalities).
	Accuracy *float64 `json:"accuracy,omitempty"`
	// BitsPerByte (text, where the dataset has its tokenizer) is the
	// total nats of the text targets / ln 2 / the UTF-8 bytes they decode
	// to (markers decode to none); Bytes is that count.
	BitsPerByte *float64 `json:"bits_per_byte,omitempty"`
	Bytes       int64    `json:"bytes,omitempty"`
}

// evalSeed is the stream of the held-out noise: the trainer's evaluate
// uses the same, so that the figures are the trainer's on the same
// batches.
const evalSeed = 0x6576616c

// Eval is an evaluation opened on the host: the held-out data and the
// text tokenizer, checked against the model, before any device work.
type Eval struct {
	tr      *Trained
	o       EvalOptions
	stream  data.Stream
	desc    string
	n       int64 // tokens of a finite split; 0: the synthetic stream
	start   json.RawMessage
	byteLen []int32
}

// NewEval opens the held-out data of an evaluation (see Evaluate) and
// checks it against the model; it touches no device.
func NewEval(tr *Trained, o EvalOptions) (*Eval, error) {
	if o.Batches < 0 {
		return nil, fmt.Errorf("trainer: eval: --batches %d must not be negative", o.Batches)
	}
	stream, desc, n, textTok, err := evalStream(tr, o.Data)
	if err != nil {
		return nil, err
	}
	e := &Eval{tr: tr, o: o, stream: stream, desc: desc, n: n}
	if e.start, err = stream.State(); err != nil {
		e.Close()
		return nil, err
	}
	if textTok != nil {
		e.byteLen = TextByteLengths(textTok)
	}
	return e, nil
}

// Close releases the held-out data.
func (e *Eval) Close() {
	if cl, ok := e.stream.(io.Closer); ok {
		cl.Close()
	}
}

// Evaluate scores the model of tr on held-out data: per modality the
// loss, perplexity, accuracy and (text) bits per byte. The batches are
// the trainer's held-out batches (the run's batch shape, the split from
// its start, Transfusion's noise drawn as the trainer's evaluation draws
// it), so with Batches = the run's eval batches the losses are the
// trainer's last held-out losses for that checkpoint.
func Evaluate(d *gpu.Device, tr *Trained, o EvalOptions) (*EvalResult, error) {
	e, err := NewEval(tr, o)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Run(d)
}

// Run runs the evaluation on d, from the start of the held-out data.
func (e *Eval) Run(d *gpu.Device) (_ *EvalResult, err error) {
	tr, o, stream, desc, n, byteLen := e.tr, e.o, e.stream, e.desc, e.n, e.byteLen
	if err := stream.Restore(e.start); err != nil {
		return nil, err
	}
	c := tr.Config
	B, L := tr.Batch, tr.SeqLen
	if B <= 0 || L <= 1 {
		def := DefaultOptions()
		B, L = def.Batch, def.SeqLen
	}
	res := &EvalResult{Checkpoint: tr.Name(), Step: tr.Checkpoint.Step, Data: desc, Batch: B, SeqLen: L,
		Batches: o.Batches, Modalities: map[string]*ModalityEval{}, Order: c.ModalityNames()}
	if res.Batches == 0 {
		if n <= 0 {
			res.Batches = DefaultOptions().EvalBatches
		} else {
			res.Whole = true
			res.Batches = int((n - 1 + int64(B*L) - 1) / int64(B*L))
		}
	}

	seed := tr.Seed
	if seed == 0 && tr.Run == "" {
		seed = DefaultOptions().Seed
	}
	opts := DefaultOptions()
	opts.Config, opts.Batch, opts.SeqLen, opts.Seed = c, B, L, seed
	t := &trainer{o: opts, d: d, rng: rand.New(rand.NewPCG(seed, evalSeed))}
	defer t.close()
	if t.m, err = tr.NewModel(d, B, L); err != nil {
		return nil, err
	}
	T, G := B*L, c.Groups()
	batch, err := data.NewBatch(B, L, c.PatchDim)
	if err != nil {
		return nil, err
	}
	// The argmax of each position's logits within its target's modality
	// range: the sampler at temperature 0 over the model's logits.
	logits, err := t.m.LogitsTensor()
	if err != nil {
		return nil, err
	}
	var own []*nn.Tensor
	defer func() {
		for _, x := range own {
			x.Release()
		}
	}()
	ten := func(name string, shape ...int) *nn.Tensor {
		if err != nil {
			return nil
		}
		var x *nn.Tensor
		if x, err = nn.NewTensor(d, "eval."+name, shape...); err == nil {
			own = append(own, x)
		}
		return x
	}
	argmax, allowed, pos := ten("argmax", T), ten("allowed", T, 2), ten("pos", T)
	if err != nil {
		return nil, err
	}
	sm, err := nn.NewSampler(d, nn.SamplerArgs{Logits: logits, IDs: argmax, Allowed: allowed, Pos: pos})
	if err != nil {
		return nil, err
	}
	defer sm.Release()
	if err := sm.SetParams(nn.SampleParams{}); err != nil {
		return nil, err
	}
	lossBuf, err := d.NewBuffer("eval.losses", int64(4*c.LossSlots()), gpu.UsageTensor)
	if err != nil {
		return nil, err
	}
	defer lossBuf.Release()

	slots := make([]float64, c.LossSlots())
	correct := make([]int64, G)
	var textBytes int64
	win := make([]uint32, 2*T)
	for bi := 0; bi < res.Batches; bi++ {
		if err := stream.Next(batch); err != nil {
			return nil, fmt.Errorf("trainer: eval: batch %d: %w", bi, err)
		}
		if err := t.toModelBatch(batch); err != nil {
			return nil, fmt.Errorf("trainer: eval: batch %d: %w", bi, err)
		}
		mb := &t.mb
		if res.Whole {
			// Positions past the split's last target wrap to its start:
			// they score nothing (a causal model's earlier positions do not
			// see them).
			for i := 0; i < T; i++ {
				if int64(bi)*int64(T)+int64(i) < n-1 {
					continue
				}
				mb.Targets[i] = mom.IgnoreIndex
				if c.Modalities[mb.Modality[i]].Continuous {
					mb.Modality[i], mb.Inputs[i] = 0, uint32(c.VocabRanges[0][0])
					P := c.PatchDim
					clear(mb.NoisyPatches[i*P : (i+1)*P])
					clear(mb.Noise[i*P : (i+1)*P])
				}
			}
		}
		for i, tg := range mb.Targets {
			win[2*i], win[2*i+1] = 0, 0
			if tg != mom.IgnoreIndex {
				r := c.VocabRanges[mb.TargetModality[i]]
				win[2*i], win[2*i+1] = uint32(r[0]), uint32(r[1])
			}
		}
		if err := allowed.UploadU32(win); err != nil {
			return nil, err
		}
		if err := t.m.SetBatch(mb, 1); err != nil {
			return nil, fmt.Errorf("trainer: eval: batch %d: %w", bi, err)
		}
		r := d.NewRecorder()
		t.m.RecordForwardWith(r, sm.Record)
		t.m.RecordLosses(r, lossBuf, 0)
		if err := r.Submit(); err != nil {
			return nil, fmt.Errorf("trainer: eval: batch %d: %w", bi, err)
		}
		v, err := lossBuf.ReadFloat32(0, c.LossSlots())
		if err != nil {
			return nil, err
		}
		for k := range slots {
			slots[k] += float64(v[k])
		}
		ids, err := argmax.DownloadU32()
		if err != nil {
			return nil, err
		}
		for i, tg := range mb.Targets {
			if tg == mom.IgnoreIndex {
				continue
			}
			g := mb.TargetModality[i]
			if ids[i] == tg {
				correct[g]++
			}
			if g == 0 && byteLen != nil && int(tg) < len(byteLen) {
				textBytes += int64(byteLen[tg])
			}
		}
		res.Positions += int64(T)
	}
	var ceSum, ceCnt, mseSum, mseCnt float64
	for g, row := range c.Modalities {
		me := &ModalityEval{Kind: row.Loss}
		sum, cnt := slots[g], slots[G+g]
		if row.Continuous {
			sum, cnt = slots[2*G+g], slots[3*G+g]
			mseSum += sum
			mseCnt += cnt
		} else {
			ceSum += sum
			ceCnt += cnt
		}
		me.Targets = int64(cnt)
		if cnt > 0 {
			me.Loss = sum / cnt
			if !row.Continuous {
				me.Perplexity = math.Exp(me.Loss)
				acc := float64(correct[g]) / cnt
				me.Accuracy = &acc
			}
		}
		if g == 0 && byteLen != nil && textBytes > 0 {
			bpb := BitsPerByte(sum, textBytes)
			me.BitsPerByte, me.Bytes = &bpb, textBytes
		}
		res.Modalities[row.Name] = me
	}
	if ceCnt > 0 {
		res.Loss = ceSum / ceCnt
	}
	if mseCnt > 0 {
		res.Loss += c.DiffusionWeight * mseSum / mseCnt
	}
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
		return res, fmt.Errorf("trainer: eval: the held-out loss is %v", res.Loss)
	}
	return res, nil
}

// BitsPerByte is nats / ln 2 / bytes.
func BitsPerByte(nats float64, bytes int64) float64 { return nats / math.Ln2 / float64(bytes) }

// TextByteLengths are the UTF-8 bytes each text id decodes to, 0 for the
// tokenizer's added tokens (the markers, which stand for no text).
func TextByteLengths(tok *bpe.Tokenizer) []int32 {
	out := make([]int32, tok.Size())
	for id := range out {
		s, err := tok.Decode([]uint32{uint32(id)})
		if err == nil {
			out[id] = int32(len(s))
		}
	}
	for _, name := range tok.Specials() {
		if id, ok := tok.Special(name); ok {
			out[id] = 0
		}
	}
	return out
}

// evalStream opens the held-out data: a dataset's eval split (dir, or the
// run's dataset), the run's held-out token file, or the synthetic
// stream's held-out split. n is the number of tokens of a finite split
// (0 for the synthetic stream); tok the text tokenizer where the data has
// one.
func evalStream(tr *Trained, dir string) (s data.Stream, desc string, n int64, tok *bpe.Tokenizer, err error) {
	c := tr.Config
	if dir == "" && tr.Data != "" && tr.Data != "synthetic" && dataset.IsDataset(tr.Data) {
		dir = tr.Data
	}
	switch {
	case dir != "":
		ds, err := tr.Dataset(dir)
		if err != nil {
			return nil, "", 0, nil, err
		}
		f, err := ds.OpenSplit("eval")
		if err != nil {
			return nil, "", 0, nil, err
		}
		if err := checkTokFile(f, ds.Path(ds.Manifest.Splits["eval"].File), c); err != nil {
			f.Close()
			return nil, "", 0, nil, err
		}
		if p := ds.TokenizerPath("text"); p != "" {
			if tok, err = bpe.Load(p); err != nil {
				f.Close()
				return nil, "", 0, nil, fmt.Errorf("trainer: eval: %w", err)
			}
		}
		return f, dir + " (held-out split)", f.Len(), tok, nil
	case tr.Data == "" || tr.Data == "synthetic":
		gens := make([]string, len(c.Modalities))
		for i, m := range c.Modalities {
			gens[i] = m.Synthetic
		}
		seed := tr.Seed
		if seed == 0 {
			seed = DefaultOptions().Seed
		}
		s, err := data.NewSynthetic(data.SynthConfig{Generators: gens, Vocab: data.VocabOf(c), Seed: seed, Split: "eval", P: c.PatchDim})
		if err != nil {
			return nil, "", 0, nil, err
		}
		return s, "synthetic (held-out split)", 0, nil, nil
	case tr.EvalData != "":
		f, err := data.OpenTokFile(tr.EvalData)
		if err != nil {
			return nil, "", 0, nil, err
		}
		if err := checkTokFile(f, tr.EvalData, c); err != nil {
			f.Close()
			return nil, "", 0, nil, err
		}
		return f, tr.EvalData, f.Len(), nil, nil
	}
	return nil, "", 0, nil, fmt.Errorf("trainer: eval: %s trained on the token file %s without held-out data: give --data DIR (a dataset folder)", tr.Name(), tr.Data)
}
