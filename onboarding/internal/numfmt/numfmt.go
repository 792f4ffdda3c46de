// Package numfmt writes numbers the way onboarding's texts show them to
// people.
package numfmt

import "fmt"

// Commas writes n with a comma between groups of three digits:
// 751632384 is "751,632,384", -1234 is "-1,234".
func Commas(n int64) string {
	s := fmt.Sprint(n)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return sign + string(out)
}
