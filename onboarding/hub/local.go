package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ErrNotCached means the local HuggingFace cache holds no snapshot of a model.
var ErrNotCached = errors.New("not in the local HuggingFace cache")

// CacheDir is the HuggingFace hub cache folder as huggingface_hub finds it:
// $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
// ($XDG_CACHE_HOME/huggingface/hub when that is set). getenv is os.Getenv in
// production and a map lookup in tests.
func CacheDir(getenv func(string) string) string {
	if d := getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "huggingface", "hub")
	}
	return ""
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Snapshot is a folder holding a model's files: a snapshot in the HF cache
// (models--org--name/snapshots/<sha>/) or any folder with a config.json.
type Snapshot struct {
	// ModelID is org/name ("" when read from a bare folder and not given).
	ModelID string
	// Revision is the snapshot's commit sha ("" for a bare folder).
	Revision string
	// Dir is the folder.
	Dir string
}

// CachedSnapshot finds a model's snapshot in the cache folder cacheDir:
// models--{org}--{name}/refs/{revision} names the commit (revision "" means
// main); a 40-hex revision names the snapshot directly.
func CachedSnapshot(cacheDir, id, revision string) (*Snapshot, error) {
	if err := ValidateModelID(id); err != nil {
		return nil, err
	}
	if cacheDir == "" {
		return nil, fmt.Errorf("find %s in the HuggingFace cache: no cache folder (set HF_HUB_CACHE or HF_HOME): %w", id, ErrNotCached)
	}
	repo := filepath.Join(cacheDir, "models--"+strings.ReplaceAll(id, "/", "--"))
	if revision == "" {
		revision = "main"
	}
	sha := revision
	if !shaRE.MatchString(revision) {
		if strings.Contains(revision, "..") {
			return nil, fmt.Errorf("find %s in the HuggingFace cache: revision %q is not a ref name", id, revision)
		}
		b, err := os.ReadFile(filepath.Join(repo, "refs", filepath.FromSlash(revision)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("find %s@%s in the HuggingFace cache %s: %w", id, revision, cacheDir, ErrNotCached)
		}
		if err != nil {
			return nil, fmt.Errorf("find %s in the HuggingFace cache: %w", id, err)
		}
		sha = strings.TrimSpace(string(b))
		if !shaRE.MatchString(sha) {
			return nil, fmt.Errorf("find %s in the HuggingFace cache: %s holds %q, not a commit sha", id, filepath.Join(repo, "refs", revision), clip(sha))
		}
	}
	dir := filepath.Join(repo, "snapshots", sha)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("find %s@%s in the HuggingFace cache %s: no snapshot folder %s: %w", id, revision, cacheDir, sha, ErrNotCached)
	}
	return &Snapshot{ModelID: id, Revision: sha, Dir: dir}, nil
}

// ConfigPath reads a model from a config.json path (or a folder holding one):
// the folder is taken as the snapshot.
func ConfigPath(path, id string) (*Snapshot, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read model config %s: %w", path, err)
	}
	dir := path
	if !st.IsDir() {
		if filepath.Base(path) != "config.json" {
			return nil, fmt.Errorf("read model config %s: want a file named config.json or its folder", path)
		}
		dir = filepath.Dir(path)
	}
	return &Snapshot{ModelID: id, Dir: dir}, nil
}

// ReadFile reads one file of the snapshot.
func (s *Snapshot) ReadFile(name string) ([]byte, error) {
	if strings.Contains(name, "..") {
		return nil, fmt.Errorf("read %s: not a plain path", name)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", name, s.name(), err)
	}
	return b, nil
}

func (s *Snapshot) name() string {
	if s.ModelID != "" {
		return s.ModelID
	}
	return s.Dir
}

// Files lists the snapshot's files (slash-separated, relative, sorted).
func (s *Snapshot) Files() ([]string, error) {
	var out []string
	err := filepath.WalkDir(s.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != s.Dir {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(s.Dir, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list files of %s: %w", s.name(), err)
	}
	sort.Strings(out)
	return out, nil
}

// Config reads the snapshot's config.json.
func (s *Snapshot) Config() ([]byte, error) { return s.ReadFile("config.json") }

// Tensors counts the checkpoint's parameters from the safetensors headers in
// the snapshot, reading only the headers. It returns nil (and no error) when
// the checkpoint is not all there: no .safetensors files, or a shard that
// model.safetensors.index.json names is absent (a download that skipped weights).
func (s *Snapshot) Tensors() (*TensorCounts, error) {
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	var shards []string
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
		if strings.HasSuffix(f, ".safetensors") && !strings.Contains(f, "/") {
			shards = append(shards, f)
		}
	}
	if have["model.safetensors.index.json"] {
		b, err := s.ReadFile("model.safetensors.index.json")
		if err != nil {
			return nil, err
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("decode model.safetensors.index.json of %s: %w", s.name(), err)
		}
		set := map[string]bool{}
		for _, f := range idx.WeightMap {
			set[f] = true
		}
		shards = shards[:0]
		for f := range set {
			if !have[f] {
				return nil, nil
			}
			shards = append(shards, f)
		}
		sort.Strings(shards)
	}
	if len(shards) == 0 {
		return nil, nil
	}
	var total TensorCounts
	for _, f := range shards {
		c, err := readHeaderFile(filepath.Join(s.Dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", f, s.name(), err)
		}
		total.Add(c)
	}
	return &total, nil
}

func readHeaderFile(path string) (TensorCounts, error) {
	f, err := os.Open(path)
	if err != nil {
		return TensorCounts{}, err
	}
	defer f.Close()
	return ReadSafetensorsHeader(f)
}

// Model builds what the Hub's /api/models answer would say from the
// snapshot: id, revision, the config summary, the files and, when the
// checkpoint is all there, the safetensors counts.
func (s *Snapshot) Model() (*Model, error) {
	cfg, err := s.Config()
	if err != nil {
		return nil, err
	}
	m, err := ModelFromConfig(s.ModelID, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.Dir, "config.json"), err)
	}
	m.SHA = s.Revision
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		m.Siblings = append(m.Siblings, File{Name: f})
	}
	tc, err := s.Tensors()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		m.Tensors = &Tensors{Parameters: tc.Parameters, Total: tc.Total()}
	}
	return m, nil
}

// ModelFromConfig fills a Model's config summary from a config.json.
func ModelFromConfig(id string, config []byte) (*Model, error) {
	var c Config
	if err := json.Unmarshal(PythonJSON(config), &c); err != nil {
		return nil, fmt.Errorf("decode config.json: %w", err)
	}
	return &Model{ID: id, Config: c}, nil
}
