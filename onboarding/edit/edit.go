// Package edit holds what every file edit of the onboarding toolkit shares:
// edits are pure functions of the old bytes, and files are replaced
// atomically so that none is ever left half-written.
//
// Sub-packages edit one kind of file each: registry (models.yaml),
// modelconfig (a model's config YAML), matrix (supported-models.md),
// cookbook (the notebook) and initpy (models/custom/__init__.py).
package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Func edits a file's bytes: it returns the new bytes and whether they
// differ. It must be idempotent: applied to its own output it reports no change.
type Func func(old []byte) (new []byte, changed bool, err error)

// File applies f to the file at path and, when it changed something, writes
// the result atomically (a temporary file in the same folder, then rename),
// keeping the file's mode. A missing file reads as empty when create is true.
func File(path string, create bool, f Func) (changed bool, err error) {
	old, err := os.ReadFile(path)
	mode := fs.FileMode(0o644)
	switch {
	case err == nil:
		if st, serr := os.Stat(path); serr == nil {
			mode = st.Mode().Perm()
		}
	case errors.Is(err, fs.ErrNotExist) && create:
		old = nil
	default:
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	out, changed, err := f(old)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return false, nil
	}
	if err := WriteAtomic(path, out, mode); err != nil {
		return false, err
	}
	return true, nil
}

// WriteAtomic writes data to path through a temporary file in the same
// folder and a rename, so that readers see the old file or the new one,
// never a part.
func WriteAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return nil
}
