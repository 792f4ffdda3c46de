// Package sizing sizes a HuggingFace model for onboarding: its parameter
// count (from the Hub's safetensors summary or estimated from config.json),
// bytes per parameter, memory, the GPU count by the onboarding workflow's
// rule, and the workflow's Step 0 fit check against a GPU inventory.
package sizing

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/nvidia/adbot/onboarding/hub"
)

// Config is a decoded config.json (or one of its nested configs).
type Config struct {
	m map[string]any
	// path names where this config sits, e.g. "config.json" or "config.json:text_config".
	path string
}

// ParseConfig decodes a config.json. name is used in errors (a file path or a model id).
func ParseConfig(name string, data []byte) (*Config, error) {
	var m map[string]any
	if err := json.Unmarshal(hub.PythonJSON(data), &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	if m == nil {
		return nil, fmt.Errorf("decode %s: not a JSON object", name)
	}
	return &Config{m: m, path: name}, nil
}

// Has reports whether key is present and not null.
func (c *Config) Has(key string) bool {
	v, ok := c.m[key]
	return ok && v != nil
}

// String returns a string field ("" when absent or not a string).
func (c *Config) String(key string) string {
	s, _ := c.m[key].(string)
	return s
}

// Strings returns a list-of-strings field.
func (c *Config) Strings(key string) []string {
	l, _ := c.m[key].([]any)
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Bool returns a bool field, def when absent.
func (c *Config) Bool(key string, def bool) bool {
	if b, ok := c.m[key].(bool); ok {
		return b
	}
	return def
}

// Sub returns a nested object (text_config, vision_config, quantization_config), or nil.
func (c *Config) Sub(key string) *Config {
	m, ok := c.m[key].(map[string]any)
	if !ok {
		return nil
	}
	return &Config{m: m, path: c.path + ":" + key}
}

// Int returns an integer field and whether it is present as a whole number.
func (c *Config) Int(key string) (int64, bool) {
	f, ok := c.m[key].(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// IntOr returns an integer field or def.
func (c *Config) IntOr(key string, def int64) int64 {
	if v, ok := c.Int(key); ok {
		return v
	}
	return def
}

// Ints returns a list-of-integers field.
func (c *Config) Ints(key string) []int64 {
	l, _ := c.m[key].([]any)
	var out []int64
	for _, v := range l {
		if f, ok := v.(float64); ok {
			out = append(out, int64(f))
		}
	}
	return out
}

// MissingFieldError names a field that the estimate needs and the config lacks.
type MissingFieldError struct {
	Config string
	Field  string
}

func (e *MissingFieldError) Error() string {
	return fmt.Sprintf("%s: field %q is missing or not a usable value", e.Config, e.Field)
}

// req reads required positive integer fields into the estimator, recording
// the first missing one.
type req struct {
	c   *Config
	err error
}

func (r *req) int(key string) int64 {
	v, ok := r.c.Int(key)
	if (!ok || v <= 0) && r.err == nil {
		r.err = &MissingFieldError{Config: r.c.path, Field: key}
	}
	return v
}

// first returns the first of keys that is present.
func (r *req) first(keys ...string) int64 {
	for _, k := range keys {
		if v, ok := r.c.Int(k); ok && v > 0 {
			return v
		}
	}
	if r.err == nil {
		r.err = &MissingFieldError{Config: r.c.path, Field: keys[0]}
	}
	return 0
}
