package jobpage

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nvidia/adbot/bus"
)

// fragment is what one server-sent event carries: HTML rendered here, and
// where the page puts it. "upsert" replaces the element with ID, or appends
// to Parent when there is none; "append" adds to Parent and keeps its last
// Max children; "remove" removes ID.
type fragment struct {
	ID     string `json:"id,omitempty"`
	Parent string `json:"parent,omitempty"`
	HTML   string `json:"html,omitempty"`
	Max    int    `json:"max,omitempty"`
}

// sse writes server-sent events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	p  *Page
}

// openSSE starts an event stream on w: no read or write deadline (the
// stream outlives the server's ReadTimeout and WriteTimeout), no caching, no
// proxy buffering.
func (p *Page) openSSE(w http.ResponseWriter) *sse {
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports these; the stream then ends at the
	// server's timeout and the browser reconnects and catches up.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sse{w: w, rc: rc, p: p}
}

// send writes one event; id, when not empty, is what the browser sends back
// as Last-Event-ID when it reconnects.
func (s *sse) send(name, id string, f fragment) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", name, err)
	}
	var sb strings.Builder
	sb.WriteString("event: " + name + "\n")
	if id != "" {
		sb.WriteString("id: " + id + "\n")
	}
	sb.WriteString("data: ")
	sb.Write(b) // JSON holds no raw newline
	sb.WriteString("\n\n")
	if _, err := s.w.Write([]byte(sb.String())); err != nil {
		return fmt.Errorf("write event %s: %w", name, err)
	}
	return nil
}

func (s *sse) flush() error { return s.rc.Flush() }

func (s *sse) ping() error {
	if _, err := s.w.Write([]byte(": ping\n\n")); err != nil {
		return err
	}
	return s.flush()
}

func (p *Page) fragmentHTML(name string, v any) (string, error) {
	var b strings.Builder
	if err := p.tmpl.ExecuteTemplate(&b, name, v); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}

// eventID is "<gen>.<n>": the tail generation and the last item sent.
func eventID(gen string, n uint64) string { return gen + "." + strconv.FormatUint(n, 10) }

// parseEventID undoes eventID; a malformed id means "from the start".
func parseEventID(id string) (gen string, n uint64) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return "", 0
	}
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0
	}
	return id[:i], n
}

// listEvents streams job changes to the list: an upsert of the job's row,
// or its removal.
func (p *Page) listEvents(w http.ResponseWriter, r *http.Request) {
	st, snap, ok := p.hub.subscribe("", "", 0)
	if !ok {
		http.Error(w, "too many open pages; close some and reload", http.StatusServiceUnavailable)
		return
	}
	defer p.hub.unsubscribe(st)
	s := p.openSSE(w)
	// The page may have been rendered before a change: bring every row up to date.
	for _, j := range snap.jobs {
		if err := p.sendRow(s, j); err != nil {
			return
		}
	}
	p.pump(r, s, st, func(ev event) error {
		if ev.gone {
			return s.send("remove", "", fragment{ID: rowID(ev.key)})
		}
		return p.sendRow(s, ev.job)
	})
}

func (p *Page) sendRow(s *sse, j *bus.Job) error {
	html, err := p.fragmentHTML("row", p.rowOf(j))
	if err != nil {
		return err
	}
	return s.send("upsert", "", fragment{ID: rowID(j.Key), Parent: "jobs-body", HTML: html})
}

// jobEvents streams one job's changes and output to its page. The page says
// which output it has (gen and after, or Last-Event-ID on a reconnect) and
// gets what came since.
func (p *Page) jobEvents(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	gen, after := r.URL.Query().Get("gen"), uint64(0)
	if n, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64); err == nil {
		after = n
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		gen, after = parseEventID(id)
	}
	st, snap, ok := p.hub.subscribe(key, gen, after)
	if !ok {
		http.Error(w, "too many open pages; close some and reload", http.StatusServiceUnavailable)
		return
	}
	defer p.hub.unsubscribe(st)
	s := p.openSSE(w)
	if snap.job != nil {
		if err := p.sendSummary(s, snap.job, false); err != nil {
			return
		}
	}
	if snap.gen != "" && snap.gen != gen {
		if err := p.sendReset(s, snap.gen); err != nil {
			return
		}
	}
	if err := p.sendItems(s, snap.gen, snap.items); err != nil {
		return
	}
	cur := snap.gen
	p.pump(r, s, st, func(ev event) error {
		switch {
		case ev.gone:
			return p.sendSummary(s, &bus.Job{Key: key}, true)
		case ev.job != nil:
			return p.sendSummary(s, ev.job, false)
		case ev.reset != "":
			cur = ev.reset
			return p.sendReset(s, ev.reset)
		}
		return p.sendItems(s, cur, ev.items)
	})
}

func (p *Page) sendSummary(s *sse, j *bus.Job, gone bool) error {
	v := p.jobViewOf(j)
	v.Gone = gone
	html, err := p.fragmentHTML("summary", v)
	if err != nil {
		return err
	}
	return s.send("upsert", "", fragment{ID: "summary", HTML: html})
}

// sendReset empties every pane: a new cycle's output begins.
func (p *Page) sendReset(s *sse, gen string) error {
	for _, pv := range panesOf(nil) {
		html, err := p.fragmentHTML("pane", pv)
		if err != nil {
			return err
		}
		if err := s.send("upsert", eventID(gen, 0), fragment{ID: pv.ID, HTML: html}); err != nil {
			return err
		}
	}
	return nil
}

func (p *Page) sendItems(s *sse, gen string, items []Item) error {
	for _, it := range items {
		html, err := p.fragmentHTML("item", it)
		if err != nil {
			return err
		}
		if err := s.send("append", eventID(gen, it.N), fragment{Parent: paneID(it.Pane), HTML: html, Max: DefaultTailItems}); err != nil {
			return err
		}
	}
	return nil
}

// pump sends the stream's events until the browser goes, the hub closes the
// stream (the server stops, or the browser fell too far behind), or a write
// fails; it pings while idle.
func (p *Page) pump(r *http.Request, s *sse, st *stream, handle func(event) error) {
	if s.flush() != nil {
		return
	}
	t := time.NewTicker(DefaultKeepAlive)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
			if s.ping() != nil {
				return
			}
		case ev, ok := <-st.ch:
			if !ok {
				return
			}
			if err := handle(ev); err != nil {
				return
			}
			// Send what else is waiting before flushing.
			for more := true; more; {
				select {
				case ev, ok := <-st.ch:
					if !ok {
						_ = s.flush()
						return
					}
					if err := handle(ev); err != nil {
						return
					}
				default:
					more = false
				}
			}
			if s.flush() != nil {
				return
			}
		}
	}
}
