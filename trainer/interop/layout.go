package interop

import (
	"fmt"
	"strings"

	"mom/mom"
)

// Format is a checkpoint layout of the Mamba ecosystem.
type Format string

// The export formats.
const (
	HF       Format = "hf"        // transformers' MambaForCausalLM
	MambaSSM Format = "mamba_ssm" // mamba_ssm's MambaLMHeadModel
	Paper    Format = "paper"     // the paper's MixtureOfMamba mixer inside mamba_ssm's LM wrapper
)

// Formats lists the formats, for messages.
var Formats = []Format{HF, MambaSSM, Paper}

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want hf, mamba_ssm or paper)", s)
}

// DenseOnly reports whether the format holds only dense Mamba models.
func (f Format) DenseOnly() bool { return f != Paper }

// Piece is a contiguous block of a mom parameter: the whole tensor
// (Group < 0) or weight set Group of a split (per-modality) one.
type Piece struct {
	Param string
	Group int
}

// FileTensor is one tensor of an exported file and the mom parameter
// pieces it concatenates, in order, along its first dimension.
type FileTensor struct {
	Name   string
	Shape  []int
	Pieces []Piece
	// TiedHead marks lm_head.weight written as a copy of the embedding of a
	// model with tied embeddings: an import may find it absent, and where
	// present it must equal the embedding.
	TiedHead bool
	// ConvBias marks conv1d.bias, absent from models without a conv bias
	// (mom's is then zero).
	ConvBias bool
}

// Names of the ecosystem (mamba_ssm's MambaLMHeadModel; transformers
// renames embedding to embeddings).
const (
	ssmEmbed = "backbone.embedding.weight"
	hfEmbed  = "backbone.embeddings.weight"
	ssmNormF = "backbone.norm_f.weight"
	ssmHead  = "lm_head.weight"
)

func ssmLayer(i int, name string) string { return fmt.Sprintf("backbone.layers.%d.%s", i, name) }

// Layout lists the file tensors of config c in format f, in a fixed order.
// For hf and mamba_ssm, c must be dense; paper writes each split
// projection's weight sets as the experts local_experts_<proj>.M.
func Layout(c mom.Config, f Format) ([]FileTensor, error) {
	if f.DenseOnly() && !c.Splits.Dense() {
		return nil, fmt.Errorf("interop: the %s format holds dense Mamba models; this model splits %s per modality: export it with --format paper", f, c.Splits)
	}
	if f.DenseOnly() && c.Continuous() {
		return nil, fmt.Errorf("interop: the %s format has no place for Transfusion's continuous patch projections (%s, %s): export it with --format paper", f, mom.NamePatchIn, mom.NamePatchOut)
	}
	if _, err := Format(f).check(); err != nil {
		return nil, err
	}
	D, E, N, R, K, V, G := c.DModel, c.ED(), c.DState, c.DtRank, c.DConv, c.Vocab, c.Groups()
	whole := func(p string) []Piece { return []Piece{{p, -1}} }
	var out []FileTensor
	embed := ssmEmbed
	if f == HF {
		embed = hfEmbed
	}
	out = append(out, FileTensor{Name: embed, Shape: []int{V, D}, Pieces: whole(mom.NameEmbed)})
	if c.Continuous() {
		out = append(out, FileTensor{Name: mom.NamePatchIn, Shape: []int{D, c.PatchDim}, Pieces: whole(mom.NamePatchIn)})
	}
	for i := 0; i < c.Layers; i++ {
		lp := func(n string) string { return mom.LayerParam(i, n) }
		mx := func(n string) string { return ssmLayer(i, "mixer."+n) }
		// proj adds a projection: one tensor when dense, one per expert when split.
		proj := func(split bool, name string, rows int, cols int, parts ...string) {
			if !split {
				ps := make([]Piece, len(parts))
				for k, p := range parts {
					ps[k] = Piece{lp(p), -1}
				}
				out = append(out, FileTensor{Name: mx(name + ".weight"), Shape: []int{rows, cols}, Pieces: ps})
				return
			}
			for g := 0; g < G; g++ {
				ps := make([]Piece, len(parts))
				for k, p := range parts {
					ps[k] = Piece{lp(p), g}
				}
				out = append(out, FileTensor{Name: mx(fmt.Sprintf("local_experts_%s.%d.weight", name, g)), Shape: []int{rows, cols}, Pieces: ps})
			}
		}
		out = append(out, FileTensor{Name: ssmLayer(i, "norm.weight"), Shape: []int{D}, Pieces: whole(lp("norm.weight"))})
		proj(c.Splits.In, "in_proj", 2*E, D, "mixer.in_proj_x.weight", "mixer.in_proj_z.weight")
		out = append(out,
			FileTensor{Name: mx("conv1d.weight"), Shape: []int{E, 1, K}, Pieces: whole(lp("mixer.conv1d.weight"))},
			FileTensor{Name: mx("conv1d.bias"), Shape: []int{E}, Pieces: whole(lp("mixer.conv1d.bias")), ConvBias: true})
		proj(c.Splits.X, "x_proj", R+2*N, E, "mixer.x_proj_dt.weight", "mixer.x_proj_B.weight", "mixer.x_proj_C.weight")
		proj(c.Splits.Dt, "dt_proj", E, R, "mixer.dt_proj.weight")
		if c.Splits.Dt {
			for g := 0; g < G; g++ {
				out = append(out, FileTensor{Name: mx(fmt.Sprintf("local_experts_dt_proj.%d.bias", g)), Shape: []int{E}, Pieces: []Piece{{lp("mixer.dt_proj.bias"), g}}})
			}
		} else {
			out = append(out, FileTensor{Name: mx("dt_proj.bias"), Shape: []int{E}, Pieces: whole(lp("mixer.dt_proj.bias"))})
		}
		out = append(out,
			FileTensor{Name: mx("A_log"), Shape: []int{E, N}, Pieces: whole(lp("mixer.A_log"))},
			FileTensor{Name: mx("D"), Shape: []int{E}, Pieces: whole(lp("mixer.D"))})
		proj(c.Splits.Out, "out_proj", D, E, "mixer.out_proj.weight")
	}
	out = append(out, FileTensor{Name: ssmNormF, Shape: []int{D}, Pieces: whole(mom.NameNormF)})
	switch {
	case !c.TieEmbeddings:
		out = append(out, FileTensor{Name: ssmHead, Shape: []int{V, D}, Pieces: whole(mom.NameHead)})
	case f != HF:
		// mamba_ssm's state dict holds lm_head.weight (tied to the
		// embedding); transformers' save_pretrained leaves it out.
		out = append(out, FileTensor{Name: ssmHead, Shape: []int{V, D}, Pieces: whole(mom.NameEmbed), TiedHead: true})
	}
	if c.Continuous() {
		out = append(out, FileTensor{Name: mom.NamePatchOut, Shape: []int{c.PatchDim, D}, Pieces: whole(mom.NamePatchOut)})
	}
	return out, nil
}

func (f Format) check() (Format, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return f, fmt.Errorf("interop: %w", err)
	}
	return f, nil
}

// pieceRange returns the element range [lo, hi) of a piece inside its
// parameter of spec s.
func pieceRange(s mom.ParamSpec, p Piece) (int, int, error) {
	n := s.Len()
	if p.Group < 0 {
		return 0, n, nil
	}
	if s.Groups <= 1 || p.Group >= s.Groups {
		return 0, 0, fmt.Errorf("interop: %s has %d weight sets, no set %d", s.Name, s.Groups, p.Group)
	}
	per := n / s.Groups
	return p.Group * per, (p.Group + 1) * per, nil
}

// normalizeName maps transformers' embedding name to mamba_ssm's, which
// Layout uses for every format but hf (transformers' own loader accepts
// both the same way).
func normalizeName(n string) string {
	if n == hfEmbed {
		return ssmEmbed
	}
	return n
}

func shapeString(s []int) string {
	p := make([]string, len(s))
	for i, x := range s {
		p[i] = fmt.Sprint(x)
	}
	return "(" + strings.Join(p, ", ") + ")"
}
