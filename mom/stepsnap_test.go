package mom

import (
	"fmt"
	"math"
	"testing"

	"mom/gpu"
)

// TestStepSnapshot: restoring a snapshot makes the streams repeat exactly
// what they did after it was saved (logits, predicted noise and, sampling
// at a temperature, the ids drawn, since the step counters come back too);
// going on without the restore gives other logits (so that the test can
// fail). A forced run from the snapshot equals the single steps' predicted
// noise bit for bit.
func TestStepSnapshot(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []Setting{Transfusion, ThreeModal} {
			t.Run(string(setting), func(t *testing.T) {
				c, err := Preset("tiny", setting, AllSplits)
				if err != nil {
					t.Fatal(err)
				}
				const B, L, saved = 3, 14, 6
				f := newStepFixture(t, d, c, B, L, 35)
				s := f.s
				if err := s.SetSampling(SampleParams{Temperature: 1.5, Seed: 4}); err != nil {
					t.Fatal(err)
				}
				sn, err := s.NewSnapshot()
				if err != nil {
					t.Fatal(err)
				}
				defer sn.Release()
				if err := s.Reset(); err != nil {
					t.Fatal(err)
				}
				for pos := 0; pos < saved; pos++ {
					f.feed(t, pos)
					if _, err := s.Step(); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Save(sn); err != nil {
					t.Fatal(err)
				}
				// Free-running steps after the snapshot: the sampled ids feed
				// the next step.
				run := func() (logits []float32, ids []uint32) {
					for pos := saved; pos < L; pos++ {
						got, err := s.Step()
						if err != nil {
							t.Fatal(err)
						}
						ids = append(ids, got...)
						l, err := s.Logits()
						if err != nil {
							t.Fatal(err)
						}
						logits = append(logits, l...)
					}
					return logits, ids
				}
				l1, ids1 := run()
				l2, _ := run() // on from where the first run ended
				if err := s.Restore(sn); err != nil {
					t.Fatal(err)
				}
				l3, ids3 := run()
				if fmt.Sprint(ids1) != fmt.Sprint(ids3) {
					t.Errorf("ids after the restore %v, after the save %v", ids3, ids1)
				}
				same, differ := true, 0.0
				for i := range l1 {
					if math.Float32bits(l1[i]) != math.Float32bits(l3[i]) {
						same = false
					}
					differ = math.Max(differ, math.Abs(float64(l1[i]-l2[i])))
				}
				if !same {
					t.Error("logits after the restore differ from those after the save")
				}
				if differ < 1e-3 {
					t.Errorf("without the restore the logits change by at most %.2g: the test cannot tell", differ)
				}

				// Forced steps from the snapshot (positions saved..L of the
				// batch) against single steps.
				n := L - saved
				fs, err := s.NewForcedSteps(n)
				if err != nil {
					t.Fatal(err)
				}
				defer fs.Release()
				P := c.PatchDim
				ids := make([]uint32, n*B)
				var patches []float32
				if c.Continuous() {
					patches = make([]float32, n*B*P)
				}
				for i := 0; i < n; i++ {
					for st := 0; st < B; st++ {
						k := st*L + saved + i
						ids[i*B+st] = f.b.Inputs[k]
						if P > 0 {
							copy(patches[(i*B+st)*P:(i*B+st+1)*P], f.b.NoisyPatches[k*P:(k+1)*P])
						}
					}
				}
				if err := fs.Run(sn, ids, patches); err != nil {
					t.Fatal(err)
				}
				if !c.Continuous() {
					if _, err := fs.Pred(); err == nil {
						t.Error("predicted noise of a discrete setting: no error")
					}
					return
				}
				forced, err := fs.Pred()
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Restore(sn); err != nil {
					t.Fatal(err)
				}
				single := f.runSteps(t, saved)
				for i := 0; i < n; i++ {
					for k, want := range single[saved+i].pred {
						if got := forced[i*B*P+k]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("position %d value %d: forced %v, single steps %v", saved+i, k, got, want)
						}
					}
				}
				if err := fs.Run(nil, ids[:B], nil); err == nil {
					t.Error("a forced run with too few ids: no error")
				}
			})
		}
	})
}

// TestStepIDSets: streams restricted to id sets (a modality's range and an
// end marker; a range with a hole) draw only from them, greedy or
// sampling, and greedy takes the set's argmax; SetAllowed ends a set.
func TestStepIDSets(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B = 4
		f := newStepFixture(t, d, c, B, 4, 36)
		s, V := f.s, c.Vocab
		speech := c.VocabRanges[2]
		sets := []IDSet{{{5, 6}, speech}, {{0, 3}, {7, c.VocabRanges[0][1]}}}
		if err := s.SetIDSets(sets); err != nil {
			t.Fatal(err)
		}
		use := []int{0, 1, -1, 0}
		for _, p := range []SampleParams{{}, {Temperature: 3, Seed: 5}} {
			if err := s.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := s.SetSampling(p); err != nil {
				t.Fatal(err)
			}
			if err := s.UseIDSets(use); err != nil {
				t.Fatal(err)
			}
			if err := s.SetInputs([]uint32{1, 2, 3, 4}); err != nil {
				t.Fatal(err)
			}
			hitMarker := false
			for step := 0; step < 12; step++ {
				ids, err := s.Step()
				if err != nil {
					t.Fatal(err)
				}
				logits, err := s.Logits()
				if err != nil {
					t.Fatal(err)
				}
				for st, id := range ids {
					if use[st] < 0 {
						continue
					}
					set := sets[use[st]]
					if !set.Contains(int(id)) {
						t.Errorf("%+v step %d stream %d drew %d outside its set %v", p, step, st, id, set)
					}
					hitMarker = hitMarker || id == 5
					if p.Temperature == 0 {
						row := logits[st*V : (st+1)*V]
						best := -1
						for i, v := range row {
							if set.Contains(i) && (best < 0 || v > row[best]) {
								best = i
							}
						}
						if int(id) != best {
							t.Errorf("greedy step %d stream %d: %d, the set's argmax is %d", step, st, id, best)
						}
					}
				}
			}
			t.Logf("%+v: the end marker drawn: %v", p, hitMarker)
		}
		if err := s.UseIDSets([]int{0, 2, 0, 0}); err == nil {
			t.Error("an unregistered set: no error")
		}
		if err := s.SetIDSets(make([]IDSet, 9)); err == nil {
			t.Error("more sets than room: no error")
		}
		if err := s.SetIDSets([]IDSet{{{0, V + 1}}}); err == nil {
			t.Error("a set past the vocabulary: no error")
		}
		// SetAllowed takes the streams off their sets: the whole vocabulary
		// again, so greedy takes the row's argmax.
		if err := s.SetAllowed(nil); err != nil {
			t.Fatal(err)
		}
		if err := s.SetSampling(SampleParams{}); err != nil {
			t.Fatal(err)
		}
		ids, err := s.Step()
		if err != nil {
			t.Fatal(err)
		}
		logits, err := s.Logits()
		if err != nil {
			t.Fatal(err)
		}
		for st, id := range ids {
			row := logits[st*V : (st+1)*V]
			for i, v := range row {
				if math.IsNaN(float64(v)) || v > row[id] {
					t.Fatalf("stream %d after SetAllowed(nil): id %d, but logit %d is %v > %v", st, id, i, v, row[id])
				}
			}
		}
	})
}

// TestStepSnapshotRelease: snapshots and forced runs made and released many
// times leave the live object counts where they started.
func TestStepSnapshotRelease(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", Transfusion, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewModel(d, c, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		s, err := NewStepModel(m, 2, StepOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		cycle := func() {
			sn, err := s.NewSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Save(sn); err != nil {
				t.Fatal(err)
			}
			fs, err := s.NewForcedSteps(3)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.Run(sn, make([]uint32, 6), nil); err != nil {
				t.Fatal(err)
			}
			fs.Release()
			sn.Release()
		}
		cycle()
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		before := d.LiveObjects()
		for i := 0; i < 10; i++ {
			cycle()
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		if after := d.LiveObjects(); fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("live objects changed over 10 cycles: %v -> %v", before, after)
		}
	})
}
