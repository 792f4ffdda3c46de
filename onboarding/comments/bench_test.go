package comments

import (
	"fmt"
	"strings"
	"testing"
)

// benchLog is a pytest-like log of about 8 MiB.
func benchLog() string {
	var b strings.Builder
	for i := 0; b.Len() < 8<<20; i++ {
		fmt.Fprintf(&b, "tests/unittest/auto_deploy/singlegpu/models/test_x_modeling.py::test_case[%d] PASSED %s\n", i, strings.Repeat("x", i%120))
	}
	return b.String()
}

func BenchmarkSplit(b *testing.B) {
	log := benchLog()
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		if _, err := Split(Post{Title: "bench", Log: log, Collapsed: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJoin(b *testing.B) {
	log := benchLog()
	bodies, err := Split(Post{Title: "bench", Log: log, Collapsed: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		if _, err := Join(bodies); err != nil {
			b.Fatal(err)
		}
	}
}
