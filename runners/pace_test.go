package runners

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
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

// TestGHTransportTokenStaysWithTheAPI: a redirect to another host (GitHub
// sends downloads to storage hosts) does not carry the installation token.
func TestGHTransportTokenStaysWithTheAPI(t *testing.T) {
	var storageAuth string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageAuth = r.Header.Get("Authorization")
	}))
	defer storage.Close()
	var apiAuth string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiAuth = r.Header.Get("Authorization")
		http.Redirect(w, r, storage.URL+"/blob", http.StatusFound)
	}))
	defer api.Close()
	u, _ := url.Parse(api.URL)
	cl := &http.Client{Transport: &ghTransport{
		base:  http.DefaultTransport,
		token: func(context.Context) (string, error) { return "ghs_secret_token", nil },
		pace:  &pacer{},
		host:  u.Host,
	}}
	resp, err := cl.Get(api.URL + "/repos/o/r/actions/runs/1/logs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if apiAuth != "token ghs_secret_token" {
		t.Errorf("API request Authorization = %q, want the token", apiAuth)
	}
	if storageAuth != "" {
		t.Errorf("redirect to another host carried Authorization %q", storageAuth)
	}
}
