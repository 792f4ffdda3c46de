// Package termlog reads the logs that onboarding's tools write to a terminal
// (build_and_run_ad.py, pytest): line by line, of any length, without line
// ends or colour escapes.
package termlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// ansi matches a terminal escape sequence such as a colour ("\x1b[31m").
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// Lines calls fn with each line of r, numbered from 1, without its "\n" or
// "\r\n" and with terminal escape sequences removed. A last line without a
// line end counts. It returns how many lines were read and fn's first error,
// as is, or a read error naming what is read ("pytest log") and after which
// line it came.
func Lines(r io.Reader, what string, fn func(n int, line string) error) (int, error) {
	br := bufio.NewReader(r)
	n := 0
	for {
		raw, err := br.ReadString('\n')
		if raw == "" && err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, fmt.Errorf("read %s after line %d: %w", what, n, err)
		}
		n++
		line := strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		if strings.Contains(line, "\x1b[") {
			line = ansi.ReplaceAllString(line, "")
		}
		if err := fn(n, line); err != nil {
			return n, err
		}
	}
}
