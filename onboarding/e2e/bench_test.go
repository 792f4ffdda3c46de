package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkParseLog reads a log of about 8 MiB: the recorded run between
// 20,000 lines of other log records each time.
func BenchmarkParseLog(b *testing.B) {
	run, err := os.ReadFile(filepath.Join("testdata", "run-rank-first.log"))
	if err != nil {
		b.Fatal(err)
	}
	noise := strings.Repeat("[11/27/2026-10:01:05] [TRT-LLM AUTO-DEPLOY] [RANK 0] [I] [stage=compile, transform=fuse_rmsnorm] elapsed time: total=0.013s, pre_cleanup=0.000s, apply=0.013s\n", 20000)
	var sb strings.Builder
	for sb.Len() < 8<<20 {
		sb.WriteString(noise)
		sb.Write(run)
	}
	log := sb.String()
	b.SetBytes(int64(len(log)))
	for b.Loop() {
		if _, err := ParseLog(strings.NewReader(log)); err != nil {
			b.Fatal(err)
		}
	}
}
