package trainer

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"mom/trainer/runfolder"
)

// Run is a finished (or running) run read back from its folder.
type Run struct {
	Name      string // for tables and legends (told apart from another run's by LoadRuns)
	Dir       string
	Dense     bool
	Config    runfolder.Config
	HasConfig bool // config.json was present
	Records   []Record
}

// LoadRun reads dir/metrics.jsonl (and config.json when present). A torn
// last line (a run still writing) is skipped; a malformed line elsewhere is
// an error naming the file and line.
func LoadRun(dir string) (*Run, error) {
	cfg, has, err := runfolder.ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	r := &Run{Name: cfg.Name, Dir: dir, Dense: cfg.Dense, Config: cfg, HasConfig: has}
	recs, err := runfolder.ReadMetrics(filepath.Join(dir, runfolder.MetricsFile))
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", dir, err)
	}
	r.Records = recs
	return r, nil
}

// LoadRuns reads run folders and names them so that no two share a name
// (runfolder.DisplayNames).
func LoadRuns(dirs ...string) ([]*Run, error) {
	var runs []*Run
	var names []string
	for _, d := range dirs {
		r, err := LoadRun(d)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
		names = append(names, r.Name)
	}
	for i, n := range runfolder.DisplayNames(names, dirs) {
		runs[i].Name = n
	}
	return runs, nil
}

// PairRuns checks that two runs can be compared by Compare and tells the
// dense baseline from the MoM run by their configs, whatever the order
// given. The runs must differ only in their splits: the same setting,
// data, vocabulary and loss kinds, one dense and one MoM. Otherwise it
// returns an error saying what differs, unless force is set, which turns
// each problem into a warning (the first run then counts as the baseline
// when the configs cannot tell). A run without config.json cannot be
// checked: a warning says so.
func PairRuns(a, b *Run, force bool) (dense, moe *Run, warnings []string, err error) {
	var problems []string
	dense, moe = a, b
	switch {
	case !a.HasConfig || !b.HasConfig:
		for _, r := range []*Run{a, b} {
			if !r.HasConfig {
				warnings = append(warnings, fmt.Sprintf("%s has no %s: its kind, data and vocabulary are not checked", r.Dir, runfolder.ConfigFile))
			}
		}
		switch {
		case (a.HasConfig && !a.Dense) || (b.HasConfig && b.Dense):
			dense, moe = b, a
		case !a.HasConfig && !b.HasConfig:
			warnings = append(warnings, fmt.Sprintf("taking %s, the first run named, as the dense baseline", a.Name))
		}
	case a.Dense == b.Dense:
		problems = append(problems, fmt.Sprintf("both runs are %s (%s and %s): compare a dense run with a MoM run", a.Config.Kind(), a.Name, b.Name))
	case b.Dense:
		dense, moe = b, a
	}
	if a.HasConfig && b.HasConfig {
		diff := func(what, x, y string) {
			if x != y {
				problems = append(problems, fmt.Sprintf("the runs differ in %s: %s has %s, %s has %s", what, a.Name, orNone(x), b.Name, orNone(y)))
			}
		}
		diff("setting", a.Config.ModelField("setting"), b.Config.ModelField("setting"))
		diff("data", a.Config.Data, b.Config.Data)
		diff("held-out data", a.Config.EvalData, b.Config.EvalData)
		diff("vocabulary", a.Config.ModelField("vocab_ranges"), b.Config.ModelField("vocab_ranges"))
		diff("loss kinds", lossKinds(a.Config), lossKinds(b.Config))
		var trained []string
		for _, f := range []struct {
			name string
			x, y any
		}{
			{"steps", a.Config.TotalSteps(), b.Config.TotalSteps()}, {"batch", a.Config.Batch, b.Config.Batch},
			{"seq_len", a.Config.SeqLen, b.Config.SeqLen}, {"accum", a.Config.Accum, b.Config.Accum},
			{"lr", a.Config.LR, b.Config.LR}, {"warmup", a.Config.Warmup, b.Config.Warmup},
			{"segments", len(a.Config.Segments), len(b.Config.Segments)},
		} {
			if a.Config.Has(f.name) && b.Config.Has(f.name) && fmt.Sprint(f.x) != fmt.Sprint(f.y) || f.name == "segments" && f.x != f.y {
				trained = append(trained, fmt.Sprintf("%s %v vs %v", f.name, f.x, f.y))
			}
		}
		if len(trained) > 0 {
			warnings = append(warnings, fmt.Sprintf("the runs were trained differently (%s: %s): the comparison mixes that in",
				a.Name+" vs "+b.Name, strings.Join(trained, ", ")))
		}
		if a.Config.Has("eval_batches") && b.Config.Has("eval_batches") && a.Config.EvalBatches != b.Config.EvalBatches {
			warnings = append(warnings, fmt.Sprintf("the held-out losses average different numbers of batches (%s %d, %s %d)",
				a.Name, a.Config.EvalBatches, b.Name, b.Config.EvalBatches))
		}
	}
	if len(problems) > 0 {
		if !force {
			return nil, nil, warnings, fmt.Errorf("compare: %s (--force compares them anyway)", strings.Join(problems, "; "))
		}
		warnings = append(warnings, problems...)
	}
	return dense, moe, warnings, nil
}

func orNone(s string) string {
	if s == "" || s == `""` {
		return "none recorded"
	}
	return s
}

// lossKinds lists a run's modalities with their loss: "text:next-token,
// image:diffusion".
func lossKinds(c runfolder.Config) string {
	var parts []string
	for _, m := range c.ModalityRows() {
		parts = append(parts, m.Name+":"+m.Loss)
	}
	return strings.Join(parts, ",")
}

func num(r Record, key string) (float64, bool) {
	v, ok := r[key]
	if !ok {
		return 0, false
	}
	f, ok := v.(float64)
	return f, ok && !math.IsNaN(f)
}

// curve returns (flops, loss) points of split records for a loss key.
func (r *Run) curve(split, key string) (xs, ys []float64) {
	for _, rec := range r.Records {
		if s, _ := rec["split"].(string); s != split {
			continue
		}
		x, ok1 := num(rec, "flops")
		y, ok2 := num(rec, key)
		if ok1 && ok2 {
			xs = append(xs, x)
			ys = append(ys, y)
		}
	}
	return xs, ys
}

// Reach is the paper's headline comparison for one modality: the training
// FLOPs a Mixture-of-Mamba run needs to reach the dense run's final loss.
type Reach struct {
	Modality   string
	DenseLoss  float64 // the dense run's final held-out loss
	DenseFLOPs float64 // the dense run's total training FLOPs
	MoMLoss    float64 // the MoM run's final held-out loss
	MoMFLOPs   float64 // FLOPs at which MoM first reached DenseLoss (interpolated)
	Reached    bool
	Percent    float64 // 100 · MoMFLOPs / DenseFLOPs
}

// Compare measures, per modality and for the total, where the MoM run's
// held-out loss first reaches the dense run's final held-out loss.
func Compare(dense, mom *Run) ([]Reach, error) {
	keys := map[string]bool{}
	for _, rec := range dense.Records {
		for k := range rec {
			if strings.HasPrefix(k, "loss") {
				keys[k] = true
			}
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []Reach
	for _, key := range names {
		dx, dy := dense.curve("eval", key)
		mx, my := mom.curve("eval", key)
		if len(dx) == 0 || len(mx) == 0 {
			continue
		}
		r := Reach{Modality: strings.TrimPrefix(strings.TrimPrefix(key, "loss"), "_"), DenseLoss: dy[len(dy)-1],
			DenseFLOPs: dx[len(dx)-1], MoMLoss: my[len(my)-1]}
		if r.Modality == "" {
			r.Modality = "total"
		}
		for i := range mx {
			if my[i] <= r.DenseLoss {
				r.Reached = true
				r.MoMFLOPs = mx[i]
				if i > 0 && my[i-1] > my[i] {
					// Interpolate linearly between the two evaluations.
					f := (my[i-1] - r.DenseLoss) / (my[i-1] - my[i])
					r.MoMFLOPs = mx[i-1] + f*(mx[i]-mx[i-1])
				}
				break
			}
		}
		if r.Reached && r.DenseFLOPs > 0 {
			r.Percent = 100 * r.MoMFLOPs / r.DenseFLOPs
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("compare: runs %s and %s share no held-out loss curves", dense.Name, mom.Name)
	}
	return out, nil
}

// FormatReach renders a comparison as a table.
func FormatReach(w io.Writer, dense, mom *Run, rs []Reach) {
	fmt.Fprintf(w, "FLOPs for %s (MoM) to reach %s's (dense) final held-out loss:\n", mom.Name, dense.Name)
	for _, r := range rs {
		if r.Reached {
			fmt.Fprintf(w, "  %-7s dense final %.4f; MoM reaches it at %.3g FLOPs = %5.1f%% of dense's %.3g (MoM final %.4f)\n",
				r.Modality, r.DenseLoss, r.MoMFLOPs, r.Percent, r.DenseFLOPs, r.MoMLoss)
		} else {
			fmt.Fprintf(w, "  %-7s dense final %.4f; MoM does not reach it (MoM final %.4f)\n", r.Modality, r.DenseLoss, r.MoMLoss)
		}
	}
}
