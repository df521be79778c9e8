package mom

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"mom/gpu"
)

func TestSettingsTable(t *testing.T) {
	for _, s := range Settings() {
		if err := validateModalities(s.Modalities); err != nil {
			t.Errorf("setting %s: %v", s.Name, err)
		}
		got, err := LookupSetting(s.Name)
		if err != nil || !reflect.DeepEqual(got.Modalities, s.Modalities) {
			t.Errorf("LookupSetting(%s) = %v, %v", s.Name, got, err)
		}
	}
	if _, err := LookupSetting("video"); err == nil || !strings.Contains(err.Error(), "chameleon, transfusion, three") {
		t.Errorf("unknown setting: %v", err)
	}
	c, _ := Preset("tiny", Transfusion, AllSplits)
	if !c.Continuous() || c.ModalityIndex("image") != 1 || c.ModalityIndex("speech") != -1 {
		t.Errorf("transfusion: continuous %v, image %d, speech %d", c.Continuous(), c.ModalityIndex("image"), c.ModalityIndex("speech"))
	}
	if g, ok := c.ModalityOf(uint32(c.VocabRanges[1][0])); !ok || g != 1 {
		t.Errorf("ModalityOf(first image id) = %d, %v", g, ok)
	}
	if _, ok := c.ModalityOf(uint32(c.Vocab)); ok {
		t.Error("ModalityOf(vocab size) found a modality")
	}
}

func TestRegisterSettingRejects(t *testing.T) {
	video := Modality{Name: "video", Loss: NextToken, Tokenizer: "vq", Synthetic: "grid", Color: "#123456", Key: "4"}
	with := func(f func(*Modality)) []Modality {
		v := video
		f(&v)
		return []Modality{TextModality, v}
	}
	cases := []struct {
		s    SettingSpec
		want string
	}{
		{SettingSpec{Name: "", Modalities: []Modality{TextModality}}, "needs a name"},
		{SettingSpec{Name: Chameleon, Modalities: []Modality{TextModality}}, "already registered"},
		{SettingSpec{Name: "x"}, "0 modalities"},
		{SettingSpec{Name: "x", Modalities: []Modality{ImagePatches, TextModality}}, "modality 0 (image) is continuous"},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Name = "text" })}, `two modalities are called "text"`},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Name = "a b" })}, "want a plain word"},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Loss = "l2" })}, `unknown loss "l2"`},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Continuous = true })}, "only they, are trained by the diffusion loss"},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Color = "red" })}, `colour "red"`},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Key = "1" })}, "window key 1 is taken"},
		{SettingSpec{Name: "x", Modalities: with(func(m *Modality) { m.Key = "Q" })}, "want one of 1-9"},
	}
	for _, c := range cases {
		if err := RegisterSetting(c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RegisterSetting(%+v) = %v, want %q", c.s, err, c.want)
		}
	}
}

// TestConfigJSON: a config round-trips through JSON, and the configs of
// runs made before the modality table (modalities as plain names) still
// load, with the rows of their setting.
func TestConfigJSON(t *testing.T) {
	for _, s := range []Setting{Chameleon, Transfusion, ThreeModal} {
		c, _ := Preset("tiny", s, AllSplits)
		var back Config
		if err := json.Unmarshal(c.JSON(), &back); err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("%s: round trip gave %+v, %v", s, back, err)
		}
		old := strings.Replace(string(c.JSON()), string(mustJSON(t, c.Modalities)), string(mustJSON(t, c.ModalityNames())), 1)
		if old == string(c.JSON()) {
			t.Fatal("the old form was not made")
		}
		var fromOld Config
		if err := json.Unmarshal([]byte(old), &fromOld); err != nil || !reflect.DeepEqual(fromOld, c) || fromOld.Validate() != nil {
			t.Errorf("%s: old config gave %+v, %v", s, fromOld.Modalities, err)
		}
	}
	for _, bad := range []struct{ js, want string }{
		{`{"setting": "chameleon", "modalities": ["text", "speech"]}`, "do not match the chameleon setting's"},
		{`{"setting": "nope", "modalities": ["text"]}`, `unknown setting "nope"`},
		{`{"setting": "chameleon", "modalities": 7}`, "want a list of modality rows or names"},
	} {
		var c Config
		if err := json.Unmarshal([]byte(bad.js), &c); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.js, err, bad.want)
		}
	}
	c, _ := Preset("tiny", ThreeModal, Splits{})
	c.Modalities = []Modality{TextModality, SpeechUnits, ImageTokens}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "modality 1 is speech") {
		t.Errorf("modalities out of order: %v", err)
	}
	c, _ = Preset("tiny", Transfusion, Splits{})
	c.VocabRanges[1][1]++
	c.Vocab++
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "has 33 ids, want 32") {
		t.Errorf("continuous range: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Four is a setting with a fourth modality, video frames as discrete
// tokens: one table row (and, for real data, a tokenizer).
const Four Setting = "four-test"

var VideoTokens = Modality{Name: "video", Loss: NextToken, Tokenizer: "video-vq", Synthetic: "grid", Color: "#9467bd", Key: "4", DefaultVocab: 40}

var registerFour sync.Once

func fourSetting(t *testing.T) {
	registerFour.Do(func() {
		if err := RegisterSetting(SettingSpec{Name: Four, Modalities: []Modality{TextModality, ImageTokens, SpeechUnits, VideoTokens}}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFourModalities: adding a modality is a table row. A model of four
// modalities builds, has four weight sets per split projection, and one
// GPU step on a batch of all four matches the reference model.
func TestFourModalities(t *testing.T) {
	fourSetting(t)
	c, err := Preset("tiny", Four, AllSplits)
	if err != nil {
		t.Fatal(err)
	}
	if c.Groups() != 4 || c.VocabRanges[3] != [2]int{192, 232} {
		t.Fatalf("groups %d, ranges %v", c.Groups(), c.VocabRanges)
	}
	for _, s := range c.ParamSpecs() {
		if strings.Contains(s.Name, "out_proj") && s.Shape[0] != 4 {
			t.Errorf("%s has shape %v, want 4 weight sets", s.Name, s.Shape)
		}
	}
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		const B, L = 2, 24
		rng := rand.New(rand.NewPCG(4, 4))
		b := randomBatch(c, B, L, rng)
		seen := map[uint32]bool{}
		for _, m := range b.Modality {
			seen[m] = true
		}
		if len(seen) != 4 {
			t.Fatalf("the batch has modalities %v, want all four", seen)
		}
		params := float32Params(c, rng)
		want, _, err := RefStep(c, params, b, B, L, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := gpuStep(t, d, c, params, b, B, L)
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-4*math.Abs(want[i])+1e-5 {
				t.Errorf("loss record[%d] = %g, reference %g", i, got[i], want[i])
			}
		}
		l, err := c.DecodeLosses(got)
		if err != nil || len(l.PerModality) != 4 || l.PerModality["video"] <= 0 {
			t.Errorf("losses %v, %v", l, err)
		}
	})
}
