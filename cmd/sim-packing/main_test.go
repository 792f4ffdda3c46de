package main

import (
	"testing"
	"time"
)

func TestSimulateSmall(t *testing.T) {
	work := Workload(40, 7)
	lb := LowerBound(work, 16)
	packed, err := Simulate(work, 2, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	single, err := Simulate(work, 2, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	if packed < lb || single < lb {
		t.Fatalf("makespan below its lower bound: packed %s single %s bound %s", packed, single, lb)
	}
	if packed >= single {
		t.Errorf("side by side (%s) no better than one per host (%s)", packed, single)
	}
}

func TestSimulateExact(t *testing.T) {
	// Four 2-GPU cycles of an hour fill one 8-GPU host at once: one hour.
	work := []Job{{0, 2, time.Hour}, {1, 2, time.Hour}, {2, 2, time.Hour}, {3, 2, time.Hour}}
	got, err := Simulate(work, 1, 8, 0)
	if err != nil || got != time.Hour {
		t.Fatalf("makespan %s, %v; want 1h", got, err)
	}
	got, err = Simulate(work, 1, 8, 1)
	if err != nil || got != 4*time.Hour {
		t.Fatalf("one per host: makespan %s, %v; want 4h", got, err)
	}
	if _, err := Simulate([]Job{{0, 3, time.Hour}}, 1, 8, 0); err == nil {
		t.Error("a 3-GPU cycle was accepted")
	}
}
