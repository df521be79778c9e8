// Package fstest holds file-system assertions shared by the trainer's tests.
package fstest

import (
	"os"
	"strings"
	"testing"
)

// AssertOnlyFiles fails unless dir holds exactly the named entries (no
// temporary files left behind).
func AssertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
