package termlog

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func collect(t *testing.T, r io.Reader) ([]string, int, error) {
	t.Helper()
	var got []string
	n, err := Lines(r, "test log", func(i int, line string) error {
		if i != len(got)+1 {
			t.Errorf("line %q numbered %d, want %d", line, i, len(got)+1)
		}
		got = append(got, line)
		return nil
	})
	return got, n, err
}

func TestLines(t *testing.T) {
	long := strings.Repeat("x", 1<<17) // longer than bufio's default buffer
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", nil},
		{"no last line end", "a\nb", []string{"a", "b"}},
		{"crlf", "a\r\nb\r\n", []string{"a", "b"}},
		{"one cr kept", "a\r\r\n", []string{"a\r"}},
		{"blank lines", "\n\n", []string{"", ""}},
		{"colours", "\x1b[1m\x1b[31mFAILED\x1b[0m x\n", []string{"FAILED x"}},
		{"long", long + "\nend", []string{long, "end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := collect(t, strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("lines (-got +want):\n%s", diff)
			}
			if n != len(tt.want) {
				t.Errorf("n = %d, want %d", n, len(tt.want))
			}
		})
	}
}

func TestLinesErrors(t *testing.T) {
	stop := errors.New("stop")
	n, err := Lines(strings.NewReader("a\nb\nc\n"), "test log", func(i int, _ string) error {
		if i == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("fn's error: got %d, %v; want 2, %v", n, err, stop)
	}
	boom := errors.New("boom")
	got, n, err := collect(t, io.MultiReader(strings.NewReader("a\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "read test log after line 1: boom") || n != 1 || len(got) != 1 {
		t.Errorf("read error: got %q, %d, %v", got, n, err)
	}
}

func FuzzLines(f *testing.F) {
	f.Add("a\r\nb\x1b[0m\nc")
	f.Add("\x1b[\n\r\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		n, err := Lines(strings.NewReader(in), "test log", func(_ int, line string) error {
			if strings.Contains(line, "\n") {
				t.Fatalf("line %q holds a line end", line)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Count(in, "\n"); n != want && n != want+1 {
			t.Errorf("%d lines from %d line ends", n, want)
		}
	})
}
