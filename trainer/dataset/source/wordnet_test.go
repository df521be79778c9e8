package source

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// dataFile lays out synset lines as a data file: the license-style header,
// then each line with its byte offset put in front of it.
func dataFile(lines ...string) string {
	var b strings.Builder
	b.WriteString("  1 This is a header line in the style of the license.  \n  2   \n")
	for _, l := range lines {
		fmt.Fprintf(&b, "%08d %s  \n", b.Len(), l)
	}
	return b.String()
}

func TestParseDataLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		line   string
		ssType byte
		words  []string
		gloss  string
		def    string
	}{
		{"noun", `00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which is perceived  `,
			'n', []string{"entity"}, "that which is perceived", "that which is perceived"},
		{"two words, example", `04197391 06 n 02 shirt 0 Shirt_Dress 1 001 @ 03595614 n 0000 | a garment worn on the upper half of the body; "he wore a shirt"  `,
			'n', []string{"shirt", "Shirt_Dress"}, `a garment worn on the upper half of the body; "he wore a shirt"`, "a garment worn on the upper half of the body"},
		{"verb with frames", `00001740 29 v 02 breathe 0 respire 3 001 * 00005041 v 0000 02 + 02 00 + 08 00 | draw air; "I can breathe"  `,
			'v', []string{"breathe", "respire"}, `draw air; "I can breathe"`, "draw air"},
		{"verb without frames", `00002325 29 v 01 respire 1 000 | undergo respiration`, 'v', []string{"respire"}, "undergo respiration", "undergo respiration"},
		{"adjective markers", `00014358 00 s 02 abounding 0 galore(ip) 0 001 & 00013887 a 0000 | existing in abundance`,
			's', []string{"abounding", "galore(ip)"}, "existing in abundance", "existing in abundance"},
		{"hex word count", `00000001 00 r 0a a 0 b 0 c 0 d 0 e 0 f 0 g 0 h 0 i 0 j f 000 | ten words`,
			'r', strings.Fields("a b c d e f g h i j"), "ten words", "ten words"},
		{"only an example", `00000001 00 n 01 x 0 000 | "quoted only"`, 'n', []string{"x"}, `"quoted only"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseDataLine(tc.line)
			if err != nil {
				t.Fatal(err)
			}
			if s.ssType != tc.ssType || !slices.Equal(s.words, tc.words) || s.gloss != tc.gloss || s.definition() != tc.def {
				t.Errorf("got type %c words %q gloss %q definition %q", s.ssType, s.words, s.gloss, s.definition())
			}
		})
	}
	for _, tc := range []struct{ name, line, want string }{
		{"no gloss bar", "00000001 00 n 01 x 0 000", "no '|'"},
		{"bad offset", "0000x001 00 n 01 x 0 000 | g", "synset offset"},
		{"bad type", "00000001 00 q 01 x 0 000 | g", "synset type"},
		{"no words", "00000001 00 n 00 000 | g", "no words"},
		{"too few words", "00000001 00 n 03 x 0 000 | g", "lex_id"},
		{"pointer cut", "00000001 00 n 01 x 0 002 @ 00000002 n 0000 | g", "pointer 2 of 2"},
		{"frame not +", "00000001 00 v 01 x 0 000 01 - 02 00 | g", "frame 1"},
		{"extra field", "00000001 00 n 01 x 0 000 extra | g", "unexpected"},
		{"ends early", "00000001 | g", "ends before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDataLine(tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseIndexLine(t *testing.T) {
	l, offs, err := parseIndexLine("ankle_boot n 3 2 @ ~ 3 1 00000300 00000100 00000200  ")
	if err != nil || l != "ankle boot" || !slices.Equal(offs, []int64{300, 100, 200}) {
		t.Errorf("got %q %v %v", l, offs, err)
	}
	for _, line := range []string{"x n", "x n 2 0 1 1 00000001", "x n a 0 1 1 1", "x n 1 0 1 1 zz"} {
		if _, _, err := parseIndexLine(line); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func TestWordNetGlosses(t *testing.T) {
	dir := t.TempDir()
	noun := dataFile(
		`06 n 02 coat 0 Ankle_Boot 0 000 | a layer of paint; "two coats"`,
		`06 n 01 coat 1 000 | an outer garment with sleeves`,
		`06 n 01 shirt 0 000 | a garment for the upper body`,
		`06 n 01 thing 0 000 | "only an example"`,
	)
	write(t, dir, map[string]string{"data.noun": noun})
	g, err := WordNetGlosses(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"coat":       {"a layer of paint", "an outer garment with sleeves"},
		"ankle boot": {"a layer of paint"},
		"shirt":      {"a garment for the upper body"},
	}
	if len(g) != len(want) {
		t.Errorf("lemmas %v", g)
	}
	for l, w := range want {
		if !slices.Equal(g[l], w) {
			t.Errorf("%q: %q, want %q", l, g[l], w)
		}
	}
	// With an index, the senses come in its order.
	offsets := []int{}
	for line := range strings.Lines(noun) {
		if !strings.HasPrefix(line, " ") {
			var off int
			fmt.Sscanf(line, "%d", &off)
			offsets = append(offsets, off)
		}
	}
	write(t, dir, map[string]string{"index.noun": fmt.Sprintf("  1 header\ncoat n 2 1 @ 2 0 %08d %08d  \n", offsets[1], offsets[0])})
	g, err = WordNetGlosses(dir)
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{"an outer garment with sleeves", "a layer of paint"}; !slices.Equal(g["coat"], w) {
		t.Errorf("coat in sense order: %q, want %q", g["coat"], w)
	}

	write(t, dir, map[string]string{"index.noun": "coat n x\n"})
	if _, err := WordNetGlosses(dir); err == nil || !strings.Contains(err.Error(), "index.noun line 1") {
		t.Errorf("bad index: %v", err)
	}
	write(t, dir, map[string]string{"data.noun": noun + "00000007 06 n 01 x 0 000 | wrong offset\n"})
	if _, err := WordNetGlosses(dir); err == nil || !strings.Contains(err.Error(), "data.noun line 7: synset offset 00000007") {
		t.Errorf("wrong offset: %v", err)
	}
	write(t, dir, map[string]string{"data.noun": noun + "garbage\n"})
	if _, err := WordNetGlosses(dir); err == nil || !strings.Contains(err.Error(), "data.noun line 7") {
		t.Errorf("bad line: %v", err)
	}
	write(t, dir, map[string]string{"data.noun": noun + "\xff\n"})
	if _, err := WordNetGlosses(dir); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("invalid UTF-8 at byte offset %d", len(noun))) {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := WordNetGlosses(t.TempDir()); err == nil || !strings.Contains(err.Error(), "wordnet-base") {
		t.Errorf("missing files: %v", err)
	}
}

func TestWordNetTexts(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"data.noun": dataFile(`06 n 01 shirt 0 000 | a garment; "a red shirt"`),
		"data.verb": dataFile(`29 v 01 breathe 0 000 01 + 02 00 | draw air`),
		"data.adj":  dataFile(`00 a 01 able 0 000 | having the means`, `00 s 01 galore(ip) 0 000 | in abundance`),
		"data.adv":  dataFile(`02 r 01 barely 0 000 | only just`),
	})
	got, err := WordNetTexts(dir)
	if err != nil {
		t.Fatal(err)
	}
	var gotS []string
	for _, x := range got {
		if x.Source != "wordnet" {
			t.Errorf("%s: source %q", x.ID, x.Source)
		}
		gotS = append(gotS, x.ID+" "+x.Text)
	}
	h := len(dataFile())
	want := []string{
		fmt.Sprintf("wordnet/noun/%08d a garment; \"a red shirt\"", h),
		fmt.Sprintf("wordnet/verb/%08d draw air", h),
		fmt.Sprintf("wordnet/adj/%08d having the means", h),
		fmt.Sprintf("wordnet/adj/%08d in abundance", h+len(dataFile(`00 a 01 able 0 000 | having the means`))-h),
		fmt.Sprintf("wordnet/adv/%08d only just", h),
	}
	if !slices.Equal(gotS, want) {
		t.Errorf("got  %q\nwant %q", gotS, want)
	}
	if _, err := WordNetTexts(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "data.noun") {
		t.Errorf("missing folder: %v", err)
	}
}
