package jobpage

import (
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nvidia/adbot/bus"
	"github.com/nvidia/adbot/onboarding/statuscomment"
)

// row is one job as the list shows it (and the head of its own page).
type row struct {
	ID       string
	Key      string
	URL      string
	Model    string
	Status   string
	Phase    string
	Runner   string
	PR       int
	PRURL    string
	Issue    string
	IssueURL string
	Age      string
	Done     int
	Total    int
	Note     string
}

type listView struct {
	Jobs   []row
	Synced bool
	Events string
}

type phaseLine struct {
	Title string
	State string
	Mark  string
}

type paneView struct {
	ID    string
	Title string
	Agent bool
	Items []Item
}

type logLink struct {
	Name string
	Size string
	URL  string
}

type cycleLogs struct {
	Cycle int
	Files []logLink
}

type jobView struct {
	row
	Gone       bool
	Revision   string
	Cycle      int
	GPUs       int
	RunnerGPUs string
	Budget     string
	Checklist  []phaseLine
	Gen        string
	Last       uint64
	Events     string
	Panes      []paneView
	Logs       []cycleLogs
	LogsErr    string
}

// rowID is the list row's element id for a job.
func rowID(key string) string { return "job-" + key }

// paneID is a pane's element id on a job's page.
func paneID(p Pane) string { return "pane-" + string(p) }

// rowOf lays out j for the list.
func (p *Page) rowOf(j *bus.Job) row {
	r := row{
		ID: rowID(j.Key), Key: j.Key, URL: Route + "/" + url.PathEscape(j.Key),
		Model: j.ModelID, Status: string(j.Status), Phase: j.Phase, Runner: j.Runner,
		Total: len(statuscomment.DefaultPhases), Note: j.Note,
	}
	if j.Owner != "" && j.Repo != "" {
		repo := p.webURL + "/" + url.PathEscape(j.Owner) + "/" + url.PathEscape(j.Repo)
		if j.Issue > 0 {
			r.Issue = fmt.Sprintf("%s/%s#%d", j.Owner, j.Repo, j.Issue)
			r.IssueURL = repo + "/issues/" + strconv.Itoa(j.Issue)
		}
		if j.PR > 0 {
			r.PR = j.PR
			r.PRURL = repo + "/pull/" + strconv.Itoa(j.PR)
		}
	}
	if !j.Created.IsZero() {
		r.Age = age(p.now().Sub(j.Created))
	}
	for _, ph := range p.checklist(j) {
		if ph.State == "done" {
			r.Done++
		}
	}
	return r
}

// checklist is the job's phases: the workflow's, ticked where its newest
// cycle recorded them done. While the job runs, the first phase not done is
// taken to be the one under way.
func (p *Page) checklist(j *bus.Job) []phaseLine {
	running := j.Status == bus.StatusRunning
	phases := statuscomment.FromJob(j, "", p.now()).Phases
	out := make([]phaseLine, len(phases))
	current := false
	for i, ph := range phases {
		l := phaseLine{Title: ph.Title}
		switch ph.State {
		case statuscomment.Done:
			l.State, l.Mark = "done", "✓"
		case statuscomment.Failed:
			l.State, l.Mark = "failed", "✗"
		case statuscomment.Current:
			l.State, l.Mark = "current", "▶"
		default:
			l.State, l.Mark = "pending", "·"
			if running && !current {
				l.State, l.Mark, current = "current", "▶", true
			}
		}
		if l.State == "current" {
			current = true
		}
		out[i] = l
	}
	return out
}

// jobViewOf lays out j for its page (without output or logs).
func (p *Page) jobViewOf(j *bus.Job) jobView {
	v := jobView{row: p.rowOf(j), Revision: j.Revision, Cycle: j.Cycle, GPUs: j.GPUs, Checklist: p.checklist(j)}
	if len(j.RunnerGPUs) > 0 {
		s := make([]string, len(j.RunnerGPUs))
		for i, g := range j.RunnerGPUs {
			s[i] = strconv.Itoa(g)
		}
		v.RunnerGPUs = strings.Join(s, ", ")
	}
	if j.BudgetUSD > 0 {
		v.Budget = fmt.Sprintf("$%.2f", j.BudgetUSD)
	}
	return v
}

// panesOf sorts tail items into the page's panes.
func panesOf(items []Item) []paneView {
	out := make([]paneView, len(Panes))
	for i, pn := range Panes {
		out[i] = paneView{ID: paneID(pn), Title: pn.Title(), Agent: pn == PaneAgent}
	}
	for _, it := range items {
		i := slices.Index(Panes, it.Pane)
		if i < 0 {
			i = len(Panes) - 1
		}
		out[i].Items = append(out[i].Items, it)
	}
	return out
}

func sortLogs(l []cycleLogs) {
	slices.SortFunc(l, func(a, b cycleLogs) int { return b.Cycle - a.Cycle })
	for _, c := range l {
		slices.SortFunc(c.Files, func(a, b logLink) int { return strings.Compare(a.Name, b.Name) })
	}
}

// age says how long ago something was, to the minute (to the second under one).
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// byteSize is n bytes for a reader: 512 B, 12.3 KiB, 4.0 MiB.
func byteSize(n uint64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatUint(n, 10) + " B"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func parseTemplates() (*template.Template, error) {
	t, err := template.New("").ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("job page templates: %w", err)
	}
	return t, nil
}
