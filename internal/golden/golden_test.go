package golden

import (
	"fmt"
	"strings"
	"testing"
)

// recorder stands for the test Check is given, keeping what it reports.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// stop is what Fatalf panics with, as testing's Fatalf stops the test.
type stop struct{}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
	panic(stop{})
}

// check runs Check on r, recovering from Fatalf.
func check(r *recorder, name string, got []byte) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(stop); !ok {
				panic(p)
			}
		}
	}()
	Check(r, name, got)
}

func TestCheck(t *testing.T) {
	if *update {
		t.Skip("compares with its own testdata, which -update must not rewrite")
	}
	tests := []struct {
		name, file, got string
		want            string // substring of the one error reported; "" for none
		fatal           bool
	}{
		{name: "same", file: "hello.golden", got: "hello\n"},
		{name: "differs", file: "hello.golden", got: "hullo\n", want: "testdata/hello.golden differs (-got +want)"},
		{name: "absent", file: "absent.golden", got: "x", want: "run go test -update to create it", fatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			check(r, tt.file, []byte(tt.got))
			if tt.want == "" {
				if len(r.errors) != 0 {
					t.Errorf("reported %q, want nothing", r.errors)
				}
				return
			}
			if len(r.errors) != 1 || !strings.Contains(r.errors[0], tt.want) || r.fatal != tt.fatal {
				t.Errorf("reported %q (fatal %v), want one error holding %q (fatal %v)", r.errors, r.fatal, tt.want, tt.fatal)
			}
		})
	}
}
