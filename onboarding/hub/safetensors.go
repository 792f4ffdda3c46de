package hub

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
)

// MaxSafetensorsHeader bounds the JSON header read from a .safetensors file.
// Real headers are kilobytes to a few megabytes; the format itself caps them
// at 100 MB.
const MaxSafetensorsHeader = 100 << 20

// TensorCounts is what a safetensors header says about its tensors: the
// number of elements per dtype ("BF16", "F32", "F8_E4M3", "U8", ...).
type TensorCounts struct {
	// Parameters counts elements per dtype, as the Hub's safetensors.parameters does.
	Parameters map[string]int64
	// Tensors is how many tensors the header lists.
	Tensors int
}

// Total is the number of elements over all dtypes.
func (c TensorCounts) Total() int64 {
	var n int64
	for _, v := range c.Parameters {
		n += v
	}
	return n
}

// Add folds o into c (for sharded checkpoints).
func (c *TensorCounts) Add(o TensorCounts) {
	if c.Parameters == nil {
		c.Parameters = map[string]int64{}
	}
	for k, v := range o.Parameters {
		c.Parameters[k] += v
	}
	c.Tensors += o.Tensors
}

// Dtypes lists the dtypes present, sorted.
func (c TensorCounts) Dtypes() []string {
	out := make([]string, 0, len(c.Parameters))
	for k := range c.Parameters {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ReadSafetensorsHeader reads only the 8-byte length and the JSON header of a
// .safetensors file (never the tensor data) and counts its elements per dtype.
func ReadSafetensorsHeader(r io.ReaderAt) (TensorCounts, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return TensorCounts{}, fmt.Errorf("read safetensors header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n == 0 || n > MaxSafetensorsHeader {
		return TensorCounts{}, fmt.Errorf("safetensors header length %d is out of range (1..%d)", n, MaxSafetensorsHeader)
	}
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 8); err != nil {
		return TensorCounts{}, fmt.Errorf("read safetensors header (%d bytes): %w", n, err)
	}
	return ParseSafetensorsHeader(buf)
}

// ParseSafetensorsHeader counts the elements of the tensors that a
// safetensors JSON header describes.
func ParseSafetensorsHeader(header []byte) (TensorCounts, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return TensorCounts{}, fmt.Errorf("decode safetensors header: %w", err)
	}
	out := TensorCounts{Parameters: map[string]int64{}}
	for name, v := range raw {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype   string  `json:"dtype"`
			Shape   []int64 `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &t); err != nil {
			return TensorCounts{}, fmt.Errorf("decode safetensors header: tensor %q: %w", name, err)
		}
		if t.Dtype == "" || t.Shape == nil {
			return TensorCounts{}, fmt.Errorf("decode safetensors header: tensor %q has no dtype or shape", name)
		}
		elems := int64(1)
		for _, d := range t.Shape {
			if d < 0 {
				return TensorCounts{}, fmt.Errorf("decode safetensors header: tensor %q has a negative dimension", name)
			}
			if d != 0 && elems > math.MaxInt64/d {
				return TensorCounts{}, fmt.Errorf("decode safetensors header: tensor %q is too large", name)
			}
			elems *= d
		}
		if out.Parameters[t.Dtype] > math.MaxInt64-elems {
			return TensorCounts{}, fmt.Errorf("decode safetensors header: element count overflows")
		}
		out.Parameters[t.Dtype] += elems
		out.Tensors++
	}
	return out, nil
}
