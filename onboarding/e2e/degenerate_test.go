package e2e

import (
	"strings"
	"testing"
)

func TestDegenerate(t *testing.T) {
	tests := []struct {
		name, out string
		bad       bool
	}{
		{"sentence", "The universe is about 93 billion light years across.", false},
		{"short repeat is an answer", "yes yes", false},
		{"empty", "", true},
		{"blank", " \n\t", true},
		{"one token repeated", "the the the the the the", true},
		{"repeated across lines", "!!\n!! !!\n!!", true},
		{"two tokens alternating", "a b a b a b", false},
		{"one character repeated", "################", true},
		{"one character, spaced", "P P PP PPPP PPPPPP", true},
		{"short run of one character", "!!!", false},
		{"mostly one character", "PPPPPPPPPPPPPPPQ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Degenerate(tt.out) != ""; got != tt.bad {
				t.Errorf("Degenerate(%q) = %q, want degenerate %v", tt.out, Degenerate(tt.out), tt.bad)
			}
		})
	}
}

func TestJudgeFailsDegenerateOutput(t *testing.T) {
	var log []Pair
	for i := range DefaultBatchSize {
		out := "A sensible answer."
		if i == 3 {
			out = strings.Repeat("token ", 12)
		}
		log = append(log, Pair{Index: i, Prompt: DefaultPrompts[i], Output: out, Rank: -1})
	}
	v := Judge(Run{Log: log, Expected: DefaultBatchSize})
	if v.OK || !strings.Contains(v.Reason, "[PROMPT 3]") {
		t.Errorf("Judge = %+v, want a failure naming [PROMPT 3]", v)
	}
}
