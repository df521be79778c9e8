package bpe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/tokenizer.json from testdata/corpus.txt")

// fixtureConfig is how testdata/tokenizer.json is trained from
// testdata/corpus.txt, one text per line (newline included).
var fixtureConfig = TrainConfig{VocabSize: 1000, Specials: []string{"<|bos|>", "<|eos|>", "<|pad|>"}}

func lines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(data), "\n")
}

// TestFixtureTokenizer trains the fixture tokenizer again and checks that
// training is deterministic: the same bytes as testdata/tokenizer.json
// (with -update, it rewrites that file instead).
func TestFixtureTokenizer(t *testing.T) {
	tok, err := Train(slices.Values(lines(t, "testdata/corpus.txt")), fixtureConfig)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Size() != fixtureConfig.VocabSize {
		t.Fatalf("trained %d ids, want %d", tok.Size(), fixtureConfig.VocabSize)
	}
	path := filepath.Join("testdata", "tokenizer.json")
	if *update {
		if err := tok.Save(path); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s; now run testdata/make_fixture.py", path)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.JSON(); !bytes.Equal(got, want) {
		t.Fatalf("training again gave a different tokenizer.json (%d bytes, want %d): training is not deterministic, or the code changed (rerun with -update and make_fixture.py)", len(got), len(want))
	}
}

type fixture struct {
	Version   string `json:"tokenizers_version"`
	TokSHA    string `json:"tokenizer_sha256"`
	PySaveSHA string `json:"python_save_sha256"`
	Cases     []fixtureCase
}

type fixtureCase struct {
	Text    string
	Pre     []string
	IDs     []uint32
	Decoded string
}

func loadFixture(t *testing.T) (*fixture, []byte) {
	t.Helper()
	data, err := os.ReadFile("testdata/fixture.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != f.TokSHA {
		t.Fatalf("testdata/fixture.json was made from another tokenizer.json: rerun testdata/make_fixture.py")
	}
	if len(f.Cases) < 100 {
		t.Fatalf("the fixture has only %d cases", len(f.Cases))
	}
	return &f, raw
}

// TestPythonFixture checks the Go tokenizer against the Python library's
// pre-tokenization, ids and decoding of every fixture string.
func TestPythonFixture(t *testing.T) {
	f, _ := loadFixture(t)
	tok, err := Load("testdata/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fixture from tokenizers %s: %d cases", f.Version, len(f.Cases))
	bad := 0
	for i, c := range f.Cases {
		var pre []string
		PreTokenize(c.Text, func(p string) { pre = append(pre, ByteLevel(p)) })
		if !slices.Equal(pre, c.Pre) {
			t.Errorf("case %d %q: pieces %q, Python %q", i, c.Text, pre, c.Pre)
			bad++
		}
		ids := tok.Encode(c.Text)
		if !slices.Equal(ids, c.IDs) && !(len(ids) == 0 && len(c.IDs) == 0) {
			t.Errorf("case %d %q: ids %v, Python %v", i, c.Text, ids, c.IDs)
			bad++
		}
		back, err := tok.Decode(c.IDs)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
		} else if back != c.Text {
			t.Errorf("case %d: decoded %q, want %q", i, back, c.Text)
		}
		if c.Decoded != c.Text {
			t.Errorf("case %d: Python decoded %q to %q", i, c.Text, c.Decoded)
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
}

// TestSaveMatchesPython checks that Save writes the bytes that the Python
// library writes when it saves the same tokenizer.
func TestSaveMatchesPython(t *testing.T) {
	f, raw := loadFixture(t)
	tok, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(saved)
	if got := hex.EncodeToString(sum[:]); got != f.PySaveSHA {
		t.Errorf("Save wrote sha256 %s, Python's save of the same tokenizer has %s", got, f.PySaveSHA)
	}
}
