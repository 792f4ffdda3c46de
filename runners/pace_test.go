package runners

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPacerHourlyBudget(t *testing.T) {
	p := &pacer{perHour: 3}
	ctx := context.Background()
	for i := range 3 {
		if err := p.wait(ctx); err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	// The fourth write in the hour must wait for the first to age out.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fourth write within the hour: %v, want a wait", err)
	}
	p.mu.Lock()
	at := p.recent[len(p.recent)-1]
	p.mu.Unlock()
	if d := time.Until(at); d < 59*time.Minute {
		t.Errorf("fourth write booked %s from now, want about an hour", d)
	}
}

func TestPacerSpacing(t *testing.T) {
	p := &pacer{interval: time.Hour}
	if err := p.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second write: %v, want it spaced an interval after the first", err)
	}
}
