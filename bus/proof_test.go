package bus

import "testing"

func TestLeaseProof(t *testing.T) {
	secret, hash := NewLeaseProof()
	other, _ := NewLeaseProof()
	if secret == other {
		t.Fatal("two proofs share a secret")
	}
	l := Lease{Runner: "gpu-a", ProofSHA256: hash}
	tests := []struct {
		name   string
		lease  Lease
		secret string
		want   bool
	}{
		{"holder", l, secret, true},
		{"another secret", l, other, false},
		{"the hash itself", l, hash, false},
		{"empty secret", l, "", false},
		{"lease without proof", Lease{Runner: "gpu-a"}, secret, false},
	}
	for _, tc := range tests {
		if got := LeaseProven(tc.lease, tc.secret); got != tc.want {
			t.Errorf("%s: LeaseProven = %v, want %v", tc.name, got, tc.want)
		}
	}
}
