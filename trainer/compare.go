package trainer

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Run is a finished (or running) run read back from its folder.
type Run struct {
	Name    string
	Dir     string
	Dense   bool
	Records []Record
}

// LoadRun reads dir/metrics.jsonl (and config.json when present). A torn
// last line (a run still writing) is skipped; a malformed line elsewhere is
// an error naming the file and line.
func LoadRun(dir string) (*Run, error) {
	r := &Run{Name: filepath.Base(dir), Dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		var rc struct {
			Name  string `json:"name"`
			Dense bool   `json:"dense"`
		}
		if err := json.Unmarshal(b, &rc); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
		}
		if rc.Name != "" {
			r.Name = rc.Name
		}
		r.Dense = rc.Dense
	}
	recs, err := ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", dir, err)
	}
	r.Records = recs
	return r, nil
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
	fmt.Fprintf(w, "FLOPs for %s to reach %s's final held-out loss:\n", mom.Name, dense.Name)
	for _, r := range rs {
		if r.Reached {
			fmt.Fprintf(w, "  %-7s dense final %.4f; MoM reaches it at %.3g FLOPs = %5.1f%% of dense's %.3g (MoM final %.4f)\n",
				r.Modality, r.DenseLoss, r.MoMFLOPs, r.Percent, r.DenseFLOPs, r.MoMLoss)
		} else {
			fmt.Fprintf(w, "  %-7s dense final %.4f; MoM does not reach it (MoM final %.4f)\n", r.Modality, r.DenseLoss, r.MoMLoss)
		}
	}
}

// JSON encodes the record as one line of metrics.jsonl (keys sorted,
// non-finite numbers as strings).
func (r Record) JSON() ([]byte, error) { return appendRecord(nil, r) }
