package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"mom/mom"
	"mom/trainer/atomicfile"
	"mom/trainer/safetensors"
)

// hfOut is the config.json of an hf export: transformers' MambaConfig.
type hfOut struct {
	Architectures       []string `json:"architectures"`
	ModelType           string   `json:"model_type"`
	VocabSize           int      `json:"vocab_size"`
	HiddenSize          int      `json:"hidden_size"`
	StateSize           int      `json:"state_size"`
	NumHiddenLayers     int      `json:"num_hidden_layers"`
	Expand              int      `json:"expand"`
	IntermediateSize    int      `json:"intermediate_size"`
	ConvKernel          int      `json:"conv_kernel"`
	TimeStepRank        int      `json:"time_step_rank"`
	LayerNormEpsilon    pyFloat  `json:"layer_norm_epsilon"`
	UseBias             bool     `json:"use_bias"`
	UseConvBias         bool     `json:"use_conv_bias"`
	HiddenAct           string   `json:"hidden_act"`
	ResidualInFP32      bool     `json:"residual_in_fp32"`
	TieWordEmbeddings   bool     `json:"tie_word_embeddings"`
	TimeStepScale       pyFloat  `json:"time_step_scale"`
	TimeStepMin         pyFloat  `json:"time_step_min"`
	TimeStepMax         pyFloat  `json:"time_step_max"`
	TimeStepInitScheme  string   `json:"time_step_init_scheme"`
	TimeStepFloor       pyFloat  `json:"time_step_floor"`
	RescalePrenormResid bool     `json:"rescale_prenorm_residual"`
	InitializerRange    pyFloat  `json:"initializer_range"`
	UseCache            bool     `json:"use_cache"`
	DType               string   `json:"torch_dtype"`
}

// pyFloat is a float64 that JSON always writes as a float (1.0, not 1):
// transformers' configs check their fields' types strictly.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(float64(f))
	if err == nil && !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, err
}

// ssmOut is the config.json of a mamba_ssm export (mamba_ssm's
// MambaConfig) and, with MixtureOfMamba, of a paper export.
type ssmOut struct {
	DModel               int            `json:"d_model"`
	DIntermediate        int            `json:"d_intermediate"`
	NLayer               int            `json:"n_layer"`
	VocabSize            int            `json:"vocab_size"`
	SSMCfg               map[string]any `json:"ssm_cfg"`
	AttnLayerIdx         []int          `json:"attn_layer_idx"`
	AttnCfg              map[string]any `json:"attn_cfg"`
	RMSNorm              bool           `json:"rms_norm"`
	ResidualInFP32       bool           `json:"residual_in_fp32"`
	FusedAddNorm         bool           `json:"fused_add_norm"`
	PadVocabSizeMultiple int            `json:"pad_vocab_size_multiple"`
	TieEmbeddings        bool           `json:"tie_embeddings"`
	MixtureOfMamba       *paperSection  `json:"mixture_of_mamba,omitempty"`
}

// configJSON returns config.json for c in format f.
func configJSON(c mom.Config, f Format) ([]byte, error) {
	var v any
	switch f {
	case HF:
		v = hfOut{
			Architectures: []string{"MambaForCausalLM"}, ModelType: "mamba",
			VocabSize: c.Vocab, HiddenSize: c.DModel, StateSize: c.DState, NumHiddenLayers: c.Layers,
			Expand: c.Expand, IntermediateSize: c.ED(), ConvKernel: c.DConv, TimeStepRank: c.DtRank,
			LayerNormEpsilon: pyFloat(c.Eps), UseBias: false, UseConvBias: true, HiddenAct: "silu", ResidualInFP32: true,
			TieWordEmbeddings: c.TieEmbeddings,
			// initialisation settings (mom's, as transformers names them).
			// rescale_prenorm_residual must stay false: transformers
			// 5.24's from_pretrained re-initialises out_proj.weight over
			// the loaded weights when it is true.
			TimeStepScale: 1, TimeStepMin: 1e-3, TimeStepMax: 1e-1, TimeStepInitScheme: "random", TimeStepFloor: 1e-4,
			RescalePrenormResid: false, InitializerRange: 0.02, UseCache: true, DType: "float32",
		}
	case MambaSSM, Paper:
		o := ssmOut{
			DModel: c.DModel, NLayer: c.Layers, VocabSize: c.Vocab,
			SSMCfg:       map[string]any{"d_state": c.DState, "d_conv": c.DConv, "expand": c.Expand, "dt_rank": c.DtRank},
			AttnLayerIdx: []int{}, AttnCfg: map[string]any{},
			RMSNorm: true, ResidualInFP32: true, FusedAddNorm: true, PadVocabSizeMultiple: 1, TieEmbeddings: c.TieEmbeddings,
		}
		if c.Eps != 1e-5 {
			return nil, fmt.Errorf("interop: the model's norm epsilon is %g; mamba_ssm's config has no field for it and uses 1e-5", c.Eps)
		}
		if f == Paper {
			o.MixtureOfMamba = &paperSection{
				NModalities: c.Groups(), Modalities: c.ModalityNames(), VocabRanges: c.VocabRanges, Setting: string(c.Setting),
				DoNotSplitIn: !c.Splits.In, DoNotSplitX: !c.Splits.X, DoNotSplitDt: !c.Splits.Dt, DoNotSplitOut: !c.Splits.Out,
				PatchDim: c.PatchDim, ImageLossWeight: c.DiffusionWeight,
			}
		}
		v = o
	default:
		return nil, fmt.Errorf("interop: unknown format %q", f)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ExportResult says what Export wrote.
type ExportResult struct {
	Dir     string
	Files   []string // file names in Dir
	Tensors int
	Notes   []string
}

// Export writes the checkpoint at ckpt (a run, checkpoints or step folder)
// to the new folder out in format f. Nothing is written when the model
// does not fit the format, and an existing out is refused. The folder is
// assembled under a temporary name beside out and renamed into place.
func Export(ckpt string, f Format, out string) (*ExportResult, error) {
	if _, err := f.check(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("interop: %s already exists; export writes a new folder", out)
	}
	m, err := ReadRun(ckpt)
	if err != nil {
		return nil, err
	}
	files, err := exportFiles(m, f)
	if err != nil {
		return nil, err
	}
	res := &ExportResult{Dir: out, Notes: m.Notes}
	for _, fl := range files {
		res.Files = append(res.Files, fl.name)
	}
	if err := writeFolder(out, files); err != nil {
		return nil, err
	}
	lay, _ := Layout(m.Config, f)
	res.Tensors = len(lay)
	if m.Tokenizer == nil {
		res.Notes = append(res.Notes, "the run has no text tokenizer (synthetic data): no tokenizer.json written")
	}
	return res, nil
}

// folderFile is one file of a folder to write: bytes, or tensors.
type folderFile struct {
	name    string
	data    []byte
	tensors []safetensors.Tensor
	meta    map[string]string
}

// exportFiles assembles an export folder's files.
func exportFiles(m *Model, f Format) ([]folderFile, error) {
	ts, err := m.FileTensors(f)
	if err != nil {
		return nil, err
	}
	cj, err := configJSON(m.Config, f)
	if err != nil {
		return nil, err
	}
	mj, err := json.MarshalIndent(momFile{Format: momFileFormat, Version: momFileVersion, Config: m.Config.JSON(), Source: m.Source}, "", "  ")
	if err != nil {
		return nil, err
	}
	files := []folderFile{
		{name: fileConfig, data: cj},
		{name: fileWeights, tensors: ts, meta: map[string]string{"format": "pt", "exported_by": "mom", "mom_format": string(f)}},
		{name: fileMom, data: append(mj, '\n')},
	}
	if m.Tokenizer != nil {
		files = append(files, folderFile{name: fileTokenizer, data: m.Tokenizer})
	}
	return files, nil
}

// writeFolder creates out with files, atomically: the files go into a
// temporary folder beside out, which is renamed to out only when complete.
func writeFolder(out string, files []folderFile) error {
	return writeFolderWith(out, files, nil)
}

// writeFolderWith is writeFolder with more to write (by extra, into the
// temporary folder) before the rename.
func writeFolderWith(out string, files []folderFile, extra func(tmp string) error) error {
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(out)+"-")
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	for _, f := range files {
		p := filepath.Join(tmp, f.name)
		var err error
		if f.tensors != nil {
			err = safetensors.Write(p, f.tensors, f.meta)
		} else {
			err = atomicfile.WriteFile(p, f.data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("interop: writing %s: %w", filepath.Join(out, f.name), err)
		}
	}
	if extra != nil {
		if err := extra(tmp); err != nil {
			return fmt.Errorf("interop: writing %s: %w", out, err)
		}
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("interop: %s appeared while writing; nothing was replaced", out)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	done = true
	return atomicfile.SyncDir(parent)
}
