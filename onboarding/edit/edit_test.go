package edit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(path, []byte("a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	add := func(old []byte) ([]byte, bool, error) {
		if string(old) == "a\nb\n" {
			return old, false, nil
		}
		return append(old, "b\n"...), true, nil
	}
	for i, want := range []bool{true, false} {
		changed, err := File(path, false, add)
		if err != nil || changed != want {
			t.Fatalf("run %d: %v %v", i, changed, err)
		}
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "a\nb\n" || st.Mode().Perm() != 0o600 {
		t.Errorf("got %q mode %v", b, st.Mode())
	}
	// A failing edit leaves the file and no temporary behind.
	_, err := File(path, false, func([]byte) ([]byte, bool, error) { return nil, false, errors.New("boom") })
	if err == nil || err.Error() != path+": boom" {
		t.Errorf("error %v, want it to name the file", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}
	// Missing file: created only when asked.
	nf := filepath.Join(dir, "sub", "new.txt")
	if _, err := File(nf, false, add); err == nil {
		t.Error("missing file without create: no error")
	}
	if ch, err := File(nf, true, add); err != nil || !ch {
		t.Errorf("create: %v %v", ch, err)
	}
}
