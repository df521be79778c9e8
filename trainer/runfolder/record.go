package runfolder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Record is one line of a run's metrics.jsonl. Conventional keys:
//
//	step          int     optimizer steps taken when the record was made (required)
//	tokens        int     training tokens consumed
//	flops         float   training FLOPs spent
//	wall_s        float   seconds of training so far (over every segment of the run)
//	lr            float   learning rate of the step
//	loss          float   mean loss over all positions with a target
//	loss_<name>   float   the loss of one modality (loss_text, loss_image, ...)
//	step_ms       float   milliseconds per step
//	tokens_per_s  float   throughput (of the whole job: every rank's tokens)
//	split         string  "train" or "eval" (absent: "train")
//	grad_norm     float   global gradient norm before clipping
//	sample_s      float   seconds training paused to take samples at this step (or
//	                      since the previous record); not part of step_ms
//
// A data-parallel run's training records add:
//
//	ranks            int    the number of ranks
//	comm_ms          float  the step's gradient reductions, milliseconds
//	                        (waiting for slower ranks to get there included)
//	comm_overlap_ms  float  the part of comm_ms that ran while the backward did
//	comm_exposed_ms  float  from the backward's end to the optimizer step's
//	                        submit (the GPU waits): the rest of the
//	                        communication and writing the sums back
//	upload_ms        float  writing the summed gradients back to the device
//
// Values are anything encoding/json encodes. JSON has no NaN or infinity,
// so float NaN, +Inf and -Inf are written as the strings "NaN", "+Inf" and
// "-Inf" (a diverged value is recorded, not lost); ParseRecord turns them
// back into floats. Numbers read back are float64.
type Record map[string]any

// Splits of a record.
const (
	SplitTrain = "train"
	SplitEval  = "eval"
)

// LossPrefix starts the key of a modality's loss: loss_<name>.
const LossPrefix = "loss_"

// Step returns the record's step (false when it has none or it is not a
// number).
func (r Record) Step() (int64, bool) {
	switch v := r["step"].(type) {
	case float64:
		return int64(v), true
	case int:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// Float returns a numeric value, NaN when the key is absent or not a
// number.
func (r Record) Float(key string) float64 {
	switch v := r[key].(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int:
		return float64(v)
	case int64:
		return float64(v)
	}
	return math.NaN()
}

// Split is "train" or "eval".
func (r Record) Split() string {
	if s, ok := r["split"].(string); ok && s != "" {
		return s
	}
	return SplitTrain
}

// Losses returns the per-modality losses (the loss_<name> keys), by name.
func (r Record) Losses() map[string]float64 {
	out := map[string]float64{}
	for k := range r {
		if name, ok := strings.CutPrefix(k, LossPrefix); ok && name != "" {
			out[name] = r.Float(k)
		}
	}
	return out
}

// JSON encodes the record as one line of metrics.jsonl (keys sorted,
// non-finite numbers as strings), without the newline.
func (r Record) JSON() ([]byte, error) { return appendRecord(nil, r) }

// ParseRecord decodes one metrics line: a JSON object with a "step" that
// is a non-negative integer and, when present, a "split" of "train" or
// "eval". Numbers become float64; the strings "NaN", "+Inf" and "-Inf"
// become those floats.
func ParseRecord(line []byte) (Record, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value on the line")
	}
	if r == nil {
		return nil, errors.New("not a JSON object: null")
	}
	for k, v := range r {
		if s, ok := v.(string); ok {
			switch s {
			case "NaN":
				r[k] = math.NaN()
			case "+Inf":
				r[k] = math.Inf(1)
			case "-Inf":
				r[k] = math.Inf(-1)
			}
		}
	}
	v, ok := r["step"]
	if !ok {
		return nil, errors.New(`no "step"`)
	}
	s, ok := v.(float64)
	if !ok {
		return nil, fmt.Errorf(`"step" %v is not a number`, v)
	}
	if s != math.Trunc(s) || s < 0 || s > 1<<53 {
		return nil, fmt.Errorf(`"step" %v is not a non-negative integer`, s)
	}
	for k, v := range r {
		if numericKey(k) {
			if _, ok := v.(float64); !ok && v != nil {
				return nil, fmt.Errorf("%q is %v, not a number", k, v)
			}
		}
	}
	if sp, ok := r["split"]; ok {
		if sp != SplitTrain && sp != SplitEval {
			return nil, fmt.Errorf(`"split" is %v, want "train" or "eval"`, sp)
		}
	}
	return r, nil
}

// numericKey reports whether a record key holds a number (or null).
func numericKey(k string) bool {
	switch k {
	case "tokens", "flops", "wall_s", "lr", "loss", "step_ms", "tokens_per_s", "grad_norm", "sample_s",
		"ranks", "comm_ms", "comm_overlap_ms", "comm_exposed_ms", "upload_ms":
		return true
	}
	return strings.HasPrefix(k, LossPrefix)
}

// appendRecord appends r's JSON encoding, keys sorted, non-finite floats as
// strings.
func appendRecord(b []byte, r Record) ([]byte, error) {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b = append(b, kb...)
		b = append(b, ':')
		v := r[k]
		switch x := v.(type) {
		case float64:
			v = finiteOrString(x)
		case float32:
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				v = finiteOrString(float64(x))
			}
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		b = append(b, vb...)
	}
	return append(b, '}'), nil
}

// finiteOrString maps NaN and the infinities to their string names.
func finiteOrString(x float64) any {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	}
	return x
}
