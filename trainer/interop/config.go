package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"mom/mom"
)

// hfConfig holds the fields of transformers' MambaConfig that shape the
// model (config.json of a MambaForCausalLM folder). Other fields are
// ignored.
type hfConfig struct {
	ModelType         string          `json:"model_type"`
	HiddenSize        *int            `json:"hidden_size"`
	StateSize         *int            `json:"state_size"`
	NumHiddenLayers   *int            `json:"num_hidden_layers"`
	Expand            *int            `json:"expand"`
	ConvKernel        *int            `json:"conv_kernel"`
	TimeStepRank      json.RawMessage `json:"time_step_rank"`
	IntermediateSize  *int            `json:"intermediate_size"`
	VocabSize         *int            `json:"vocab_size"`
	LayerNormEpsilon  *float64        `json:"layer_norm_epsilon"`
	TieWordEmbeddings *bool           `json:"tie_word_embeddings"`
	UseBias           *bool           `json:"use_bias"`
	UseConvBias       *bool           `json:"use_conv_bias"`
	HiddenAct         *string         `json:"hidden_act"`
}

// ssmConfig holds mamba_ssm's MambaConfig (config.json beside
// pytorch_model.bin).
type ssmConfig struct {
	DModel               *int            `json:"d_model"`
	DIntermediate        *int            `json:"d_intermediate"`
	NLayer               *int            `json:"n_layer"`
	VocabSize            *int            `json:"vocab_size"`
	SSMCfg               map[string]any  `json:"ssm_cfg"`
	AttnLayerIdx         []int           `json:"attn_layer_idx"`
	RMSNorm              *bool           `json:"rms_norm"`
	PadVocabSizeMultiple *int            `json:"pad_vocab_size_multiple"`
	TieEmbeddings        *bool           `json:"tie_embeddings"`
	NormEpsilon          *float64        `json:"norm_epsilon"`
	MixtureOfMamba       *paperSection   `json:"mixture_of_mamba"`
	ResidualInFP32       json.RawMessage `json:"residual_in_fp32"`
	FusedAddNorm         json.RawMessage `json:"fused_add_norm"`
	AttnCfg              json.RawMessage `json:"attn_cfg"`
}

// paperSection is the "mixture_of_mamba" object of a paper export's
// config.json: the modality order and vocabulary, and which projections
// are split (under the paper's ModelArgs names).
type paperSection struct {
	NModalities     int      `json:"n_modalities"`
	Modalities      []string `json:"modalities"`
	VocabRanges     [][2]int `json:"vocab_ranges"`
	Setting         string   `json:"setting"`
	DoNotSplitIn    bool     `json:"do_not_split_in_proj"`
	DoNotSplitX     bool     `json:"do_not_split_x_proj"`
	DoNotSplitDt    bool     `json:"do_not_split_dt_proj"`
	DoNotSplitOut   bool     `json:"do_not_split_out_proj"`
	PatchDim        int      `json:"patch_dim,omitempty"`
	ImageLossWeight float64  `json:"image_loss_weight,omitempty"`
}

// momFile is mom.json: mom's own config of an exported model.
type momFile struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	Config  json.RawMessage `json:"config"`
	Source  string          `json:"source,omitempty"`
	Step    int             `json:"step"`
}

const (
	momFileFormat  = "mom-export"
	momFileVersion = 1
)

// parsed is what a config.json says.
type parsed struct {
	Config   mom.Config
	Format   Format
	Notes    []string
	ConvBias bool // the mixers have a conv1d bias
}

// parseConfig reads a config.json of the ecosystem: transformers'
// MambaConfig, mamba_ssm's MambaConfig, or a paper export (mamba_ssm's
// with a "mixture_of_mamba" object). A dense model's config is text-only
// (see Model.Config). Every field that mom cannot represent is an error
// that names it.
func parseConfig(b []byte) (parsed, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return parsed{}, fmt.Errorf("config.json is not a JSON object: %w", err)
	}
	if _, ok := probe["d_model"]; ok {
		return parseSSMConfig(b)
	}
	if _, ok := probe["hidden_size"]; ok {
		return parseHFConfig(b)
	}
	return parsed{}, errors.New("config.json is neither transformers' MambaConfig (hidden_size, model_type \"mamba\") nor mamba_ssm's (d_model, n_layer)")
}

func textOnly(name string, d, layers, n, k, expand, r, v int, eps float64, tie bool) mom.Config {
	return mom.Config{Name: name, DModel: d, Layers: layers, DState: n, DConv: k, Expand: expand, DtRank: r,
		Vocab: v, VocabRanges: [][2]int{{0, v}}, Modalities: []mom.Modality{mom.TextModality}, Eps: eps, TieEmbeddings: tie}
}

// checkDims validates sizes mom's kernels take; field names are the
// file's.
func checkDims(fields map[string]int) error {
	for _, k := range sortedKeys(fields) {
		if fields[k] <= 0 {
			return fmt.Errorf("config.json: %s must be positive, got %d", k, fields[k])
		}
	}
	return nil
}

func parseHFConfig(b []byte) (parsed, error) {
	var h hfConfig
	if err := json.Unmarshal(b, &h); err != nil {
		return parsed{}, fmt.Errorf("config.json (transformers MambaConfig): %w", err)
	}
	if h.ModelType != "" && h.ModelType != "mamba" {
		return parsed{}, fmt.Errorf("config.json: model_type %q; mom reads Mamba (model_type \"mamba\"), not Mamba-2 or its variants", h.ModelType)
	}
	if h.HiddenSize == nil || h.NumHiddenLayers == nil || h.VocabSize == nil {
		return parsed{}, errors.New("config.json: hidden_size, num_hidden_layers and vocab_size are required")
	}
	var notes []string
	d, layers, v := *h.HiddenSize, *h.NumHiddenLayers, *h.VocabSize
	n, k, expand := or(h.StateSize, 16), or(h.ConvKernel, 4), or(h.Expand, 2)
	if err := checkDims(map[string]int{"hidden_size": d, "num_hidden_layers": layers, "vocab_size": v, "state_size": n, "conv_kernel": k, "expand": expand}); err != nil {
		return parsed{}, err
	}
	r, err := dtRank(h.TimeStepRank, d, "time_step_rank")
	if err != nil {
		return parsed{}, err
	}
	if h.IntermediateSize != nil && *h.IntermediateSize != expand*d {
		return parsed{}, fmt.Errorf("config.json: intermediate_size %d is not expand*hidden_size = %d", *h.IntermediateSize, expand*d)
	}
	if h.UseBias != nil && *h.UseBias {
		return parsed{}, errors.New("config.json: use_bias is true; mom's in_proj and out_proj have no bias")
	}
	if h.HiddenAct != nil && *h.HiddenAct != "silu" && *h.HiddenAct != "swish" {
		return parsed{}, fmt.Errorf("config.json: hidden_act %q; mom's mixer uses silu", *h.HiddenAct)
	}
	eps := 1e-5
	if h.LayerNormEpsilon != nil {
		eps = *h.LayerNormEpsilon
	} else {
		notes = append(notes, "config.json has no layer_norm_epsilon: 1e-5 taken")
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		return parsed{}, fmt.Errorf("config.json: layer_norm_epsilon %g must be positive", eps)
	}
	c := textOnly("imported", d, layers, n, k, expand, r, v, eps, orBool(h.TieWordEmbeddings, true))
	return parsed{c, HF, notes, orBool(h.UseConvBias, true)}, nil
}

func parseSSMConfig(b []byte) (parsed, error) {
	var s ssmConfig
	if err := json.Unmarshal(b, &s); err != nil {
		return parsed{}, fmt.Errorf("config.json (mamba_ssm MambaConfig): %w", err)
	}
	if s.DModel == nil || s.NLayer == nil || s.VocabSize == nil {
		return parsed{}, errors.New("config.json: d_model, n_layer and vocab_size are required")
	}
	if s.DIntermediate != nil && *s.DIntermediate != 0 {
		return parsed{}, fmt.Errorf("config.json: d_intermediate %d adds an MLP to each block; mom's blocks are Mamba mixers only", *s.DIntermediate)
	}
	if len(s.AttnLayerIdx) > 0 {
		return parsed{}, fmt.Errorf("config.json: attn_layer_idx %v makes a hybrid with attention layers; mom has none", s.AttnLayerIdx)
	}
	if s.RMSNorm != nil && !*s.RMSNorm {
		return parsed{}, errors.New("config.json: rms_norm is false (LayerNorm); mom's blocks use RMSNorm")
	}
	d, layers, v := *s.DModel, *s.NLayer, *s.VocabSize
	pad := or(s.PadVocabSizeMultiple, 8)
	if err := checkDims(map[string]int{"d_model": d, "n_layer": layers, "vocab_size": v, "pad_vocab_size_multiple": pad}); err != nil {
		return parsed{}, err
	}
	var notes []string
	if v%pad != 0 {
		padded := v + pad - v%pad
		notes = append(notes, fmt.Sprintf("vocab_size %d padded to %d (pad_vocab_size_multiple %d), as mamba_ssm does", v, padded, pad))
		v = padded
	}
	n, k, expand := 16, 4, 2
	convBias := true
	var rank json.RawMessage
	for key, val := range s.SSMCfg {
		switch key {
		case "d_state", "d_conv", "expand":
			f, ok := val.(float64)
			if !ok || f != math.Trunc(f) || f <= 0 || f > 1<<20 {
				return parsed{}, fmt.Errorf("config.json: ssm_cfg.%s = %v, want a positive integer", key, val)
			}
			switch key {
			case "d_state":
				n = int(f)
			case "d_conv":
				k = int(f)
			case "expand":
				expand = int(f)
			}
		case "dt_rank":
			rank, _ = json.Marshal(val)
		case "layer":
			if val != "Mamba1" {
				return parsed{}, fmt.Errorf("config.json: ssm_cfg.layer %v; mom reads Mamba1 mixers", val)
			}
		case "bias":
			if val != false {
				return parsed{}, errors.New("config.json: ssm_cfg.bias is true; mom's in_proj and out_proj have no bias")
			}
		case "conv_bias":
			b, ok := val.(bool)
			if !ok {
				return parsed{}, fmt.Errorf("config.json: ssm_cfg.conv_bias %v, want a bool", val)
			}
			convBias = b
		case "dt_min", "dt_max", "dt_init", "dt_scale", "dt_init_floor", "use_fast_path":
			// initialisation and kernel choices: no effect on a trained model
		default:
			return parsed{}, fmt.Errorf("config.json: ssm_cfg.%s is not a Mamba1 setting mom knows", key)
		}
	}
	r, err := dtRank(rank, d, "ssm_cfg.dt_rank")
	if err != nil {
		return parsed{}, err
	}
	eps := 1e-5
	if s.NormEpsilon != nil {
		eps = *s.NormEpsilon
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		return parsed{}, fmt.Errorf("config.json: norm_epsilon %g must be positive", eps)
	}
	c := textOnly("imported", d, layers, n, k, expand, r, v, eps, orBool(s.TieEmbeddings, true))
	if s.MixtureOfMamba == nil {
		return parsed{c, MambaSSM, notes, convBias}, nil
	}
	p := s.MixtureOfMamba
	spec, err := mom.LookupSetting(mom.Setting(p.Setting))
	if err != nil {
		return parsed{}, fmt.Errorf("config.json: mixture_of_mamba: %w", err)
	}
	names := (mom.Config{Modalities: spec.Modalities}).ModalityNames()
	if strings.Join(names, ",") != strings.Join(p.Modalities, ",") {
		return parsed{}, fmt.Errorf("config.json: mixture_of_mamba.modalities %v, the %s setting's are %v", p.Modalities, p.Setting, names)
	}
	c.Modalities, c.VocabRanges, c.Setting = spec.Modalities, p.VocabRanges, spec.Name
	c.Splits = mom.Splits{In: !p.DoNotSplitIn, X: !p.DoNotSplitX, Dt: !p.DoNotSplitDt, Out: !p.DoNotSplitOut}
	c.PatchDim, c.DiffusionWeight = p.PatchDim, p.ImageLossWeight
	if p.NModalities != len(p.Modalities) {
		return parsed{}, fmt.Errorf("config.json: mixture_of_mamba.n_modalities %d but %d modalities listed", p.NModalities, len(p.Modalities))
	}
	if len(c.VocabRanges) > 0 && c.VocabRanges[len(c.VocabRanges)-1][1] != v {
		return parsed{}, fmt.Errorf("config.json: mixture_of_mamba.vocab_ranges end at %d, vocab_size is %d", c.VocabRanges[len(c.VocabRanges)-1][1], v)
	}
	if err := c.Validate(); err != nil {
		return parsed{}, fmt.Errorf("config.json: mixture_of_mamba: %w", err)
	}
	return parsed{c, Paper, notes, convBias}, nil
}

// dtRank reads a dt rank: an integer or "auto" (ceil(d_model/16)); absent
// means auto.
func dtRank(raw json.RawMessage, d int, field string) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `"auto"` {
		return (d + 15) / 16, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || f <= 0 || f > 1<<20 {
		return 0, fmt.Errorf("config.json: %s is %s, want a positive integer or \"auto\"", field, truncate(string(raw), 32))
	}
	return int(f), nil
}

// parseMomFile reads mom.json and checks that its config agrees with the
// sizes config.json gave.
func parseMomFile(b []byte, base mom.Config) (mom.Config, error) {
	var f momFile
	if err := json.Unmarshal(b, &f); err != nil {
		return mom.Config{}, fmt.Errorf("mom.json: %w", err)
	}
	if f.Format != momFileFormat || f.Version != momFileVersion {
		return mom.Config{}, fmt.Errorf("mom.json: format %q version %d, want %q version %d", truncate(f.Format, 32), f.Version, momFileFormat, momFileVersion)
	}
	var c mom.Config
	if err := json.Unmarshal(f.Config, &c); err != nil {
		return mom.Config{}, fmt.Errorf("mom.json: config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return mom.Config{}, fmt.Errorf("mom.json: %w", err)
	}
	type dims struct{ d, l, n, k, e, r, v int }
	a := dims{c.DModel, c.Layers, c.DState, c.DConv, c.Expand, c.DtRank, c.Vocab}
	b2 := dims{base.DModel, base.Layers, base.DState, base.DConv, base.Expand, base.DtRank, base.Vocab}
	if a != b2 || c.TieEmbeddings != base.TieEmbeddings {
		return mom.Config{}, fmt.Errorf("mom.json describes d_model %d, %d layers, d_state %d, d_conv %d, expand %d, dt_rank %d, vocabulary %d, tied %v; config.json says %d, %d, %d, %d, %d, %d, %d, %v",
			a.d, a.l, a.n, a.k, a.e, a.r, a.v, c.TieEmbeddings, b2.d, b2.l, b2.n, b2.k, b2.e, b2.r, b2.v, base.TieEmbeddings)
	}
	if base.Setting != "" && (c.Splits != base.Splits || c.Setting != base.Setting) {
		return mom.Config{}, fmt.Errorf("mom.json describes setting %s with splits %s; config.json says %s with %s", c.Setting, c.Splits, base.Setting, base.Splits)
	}
	if base.Setting == "" && !c.Splits.Dense() {
		return mom.Config{}, fmt.Errorf("mom.json describes splits %s, but config.json is of a dense format", c.Splits)
	}
	return c, nil
}

func or(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func orBool(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
