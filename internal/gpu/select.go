package gpu

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// EnvGPUs is the environment variable that restricts the GPUs a runner uses.
const EnvGPUs = "ADBOT_GPUS"

// Selection is the set of GPUs a runner may use: all of them ("auto", the
// default), none ("none"), a list of NVML indices ("0,2,3"), or mocked
// ones ("mock:8xH100-80GB", see MockSpec).
type Selection struct {
	// None: use no GPU at all, and do not load NVML.
	None bool
	// List holds the chosen indices, ascending and distinct; nil means all.
	List []int
	// Mock, when set, replaces NVML with go-nvml's mock of these GPUs, all
	// of which are used.
	Mock *MockSpec
}

// selectionForm is the accepted forms of ADBOT_GPUS, for error messages.
const selectionForm = "want auto, none, GPU indices like 0,2,3, or " + MockForm

// String renders s the way ParseSelection reads it.
func (s Selection) String() string {
	switch {
	case s.Mock != nil:
		return s.Mock.String()
	case s.None:
		return "none"
	case s.List == nil:
		return "auto"
	}
	parts := make([]string, len(s.List))
	for i, n := range s.List {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// ParseSelection reads an ADBOT_GPUS value: "" or "auto" (every GPU), "none",
// a comma-separated list of distinct non-negative indices ("0,2,3"), or a
// mock spec ("mock:8xH100-80GB", see ParseMock).
func ParseSelection(v string) (Selection, error) {
	v = strings.TrimSpace(v)
	switch lv := strings.ToLower(v); {
	case lv == "" || lv == "auto" || lv == "all":
		return Selection{}, nil
	case lv == "none":
		return Selection{None: true}, nil
	case lv == "mock" || strings.HasPrefix(lv, MockPrefix):
		m, err := ParseMock(v)
		if err != nil {
			return Selection{}, err
		}
		return Selection{Mock: &m}, nil
	}
	var list []int
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return Selection{}, fmt.Errorf("%s=%q: empty entry; %s", EnvGPUs, v, selectionForm)
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 || n > 1023 {
			return Selection{}, fmt.Errorf("%s=%q: %q is not a GPU index; %s", EnvGPUs, v, part, selectionForm)
		}
		if slices.Contains(list, n) {
			return Selection{}, fmt.Errorf("%s=%q: GPU %d is listed twice", EnvGPUs, v, n)
		}
		list = append(list, n)
	}
	slices.Sort(list)
	return Selection{List: list}, nil
}

// SelectionFromEnv parses ADBOT_GPUS.
func SelectionFromEnv() (Selection, error) { return ParseSelection(os.Getenv(EnvGPUs)) }

// Indices returns the NVML indices s selects on a host with count GPUs. A
// listed index the host does not have is an error naming it.
func (s Selection) Indices(count int) ([]int, error) {
	if s.None {
		return nil, nil
	}
	if s.List == nil || s.Mock != nil {
		all := make([]int, count)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	for _, n := range s.List {
		if n >= count {
			return nil, fmt.Errorf("%s=%s names GPU %d, but this host has %d GPU(s)%s", EnvGPUs, s, n, count, indexRange(count))
		}
	}
	return slices.Clone(s.List), nil
}

func indexRange(count int) string {
	switch count {
	case 0:
		return ""
	case 1:
		return " (index 0)"
	}
	return fmt.Sprintf(" (indices 0-%d)", count-1)
}
