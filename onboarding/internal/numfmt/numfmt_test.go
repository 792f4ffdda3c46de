package numfmt

import "testing"

func TestCommas(t *testing.T) {
	tests := map[int64]string{
		0:         "0",
		999:       "999",
		1000:      "1,000",
		131072:    "131,072",
		751632384: "751,632,384",
		-1234:     "-1,234",
		-999:      "-999",
	}
	for n, want := range tests {
		if got := Commas(n); got != want {
			t.Errorf("Commas(%d) = %q, want %q", n, got, want)
		}
	}
}
