package jobpage

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nvidia/adbot/runners"
)

// chromium finds a Chromium or Chrome binary. Without one the browser test
// is skipped, except under CI, where .ci/run installs Debian's chromium and
// its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium binary on PATH: .ci/run installs Debian's chromium (apt-get install chromium)")
	}
	t.Skip("no chromium binary on PATH (apt-get install chromium to run the browser test)")
	return ""
}

// poll waits, with a generous deadline, until the JavaScript expression is
// true on the open page. It asserts that something happens, not how fast.
func poll(what, expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))(ctx, t); err != nil {
			return fmt.Errorf("wait for %s (%s): %w", what, expr, err)
		}
		return nil
	})
}

// TestBrowser opens the pages in a real headless Chromium: the page loads,
// output published on NATS appears on the open page (as text), and phases
// recorded in the job bucket move the progress bars, with no reload.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	r := newRig(t, Config{}, Deps{Now: time.Now})
	srv := httptest.NewServer(r.page.Handler()) // on 127.0.0.1: a loopback client
	t.Cleanup(srv.Close)
	j := sampleJob()
	j.Created = time.Now().Add(-3 * time.Minute)
	r.putJob(t, j)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1100))
	if os.Geteuid() == 0 { // CI runs as root, where Chromium's sandbox cannot start
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()

	shots := os.Getenv("JOBPAGE_SCREENSHOTS") // a folder: keep screenshots to look at
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			if shots == "" {
				return nil
			}
			b, err := chromedp.FullScreenshot(100)(ctx, t)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name), b, 0o644)
		})
	}

	// The job's page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/jobs/"+j.Key),
		chromedp.WaitVisible(chromedp.ID("summary")),
		poll("the event stream to open", `document.getElementById("live").textContent === "live"`),
		poll("the bar at two phases", `document.querySelector("#summary progress").value === 2`),
	); err != nil {
		t.Fatalf("load the job page: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if want := j.ModelID + " · adbot"; title != want {
		t.Errorf("title %q, want %q (the model id as text)", title, want)
	}

	r.publish(t, j.Key, runners.LogChunk{Cycle: 1, Step: "pytest-1", Seq: 0, Stream: "stdout", Data: "collected 3 items <b>bold?</b>\n"})
	r.publish(t, j.Key, runners.LogChunk{Cycle: 1, Step: "agent-model-1", Seq: 0, Stream: "stdout",
		Data: `{"type":"assistant","message":{"content":[{"type":"text","text":"I will read config.json <img src=x onerror=window.pwned=1>"}]}}` + "\n"})
	j.Posted[runners.PhaseKey(1, "model")] = time.Now().Unix()
	j.Phase, j.Updated = "model", time.Now()
	r.putJob(t, j)
	if err := chromedp.Do(ctx,
		poll("the pytest line", `document.getElementById("pane-pytest").textContent.includes("collected 3 items <b>bold?</b>")`),
		poll("the agent's turn", `document.getElementById("pane-agent").textContent.includes("I will read config.json <img")`),
		poll("the bar at three phases", `document.querySelector("#summary progress").value === 3`),
		shot("job.png"),
	); err != nil {
		t.Fatalf("live updates on the job page: %v", err)
	}
	markup, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#pane-pytest b, #pane-agent img").length`))
	if err != nil {
		t.Fatal(err)
	}
	pwned, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned === 1`))
	if err != nil {
		t.Fatal(err)
	}
	if markup != 0 || pwned {
		t.Errorf("output became markup on the page: %d elements, script ran: %v", markup, pwned)
	}

	// The list.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/jobs"),
		chromedp.WaitVisible(chromedp.ID("jobs-body")),
		poll("the event stream to open", `document.getElementById("live").textContent === "live"`),
		poll("the row's bar at three phases", `document.querySelector("#job-acme\\.trt\\.42 progress").value === 3`),
	); err != nil {
		t.Fatalf("load the list: %v", err)
	}
	j.Posted[runners.PhaseKey(1, "canonical-ops")] = time.Now().Unix()
	j.Phase, j.Updated = "canonical-ops", time.Now()
	r.putJob(t, j)
	if err := chromedp.Do(ctx,
		poll("the row's bar at four phases", `document.querySelector("#job-acme\\.trt\\.42 progress").value === 4`),
		poll("the row's last phase", `document.querySelector("#job-acme\\.trt\\.42").textContent.includes("canonical-ops")`),
		shot("list.png"),
	); err != nil {
		t.Fatalf("live updates on the list: %v", err)
	}
}
