package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nvidia/adbot/onboarding/hub"
)

// NewEntry is a registry entry to add or update.
type NewEntry struct {
	// Name is the HuggingFace model id.
	Name string
	// WorldSize is the GPU count (world_size_N.yaml or world_size:).
	WorldSize int
	// ModelConfig is the model-specific config file name under configs/, if any.
	ModelConfig string
	// ADConfig is an Internal-layout AD defaults file beside ad_base.yaml, if any.
	ADConfig string
	// ConfigID overrides the derived config_id (default_ws_N, or the model
	// config's stem in snake case).
	ConfigID string
	// Family titles a new family section ("# --- Family (Mon YYYY) ---")
	// when the registry has no member of the family yet; FamilyStem(Name)
	// when empty.
	Family string
	// Date stamps a new family section.
	Date time.Time

	// keep are an existing entry's own configs (beyond dashboard_default and
	// world_size_N), carried over when the entry is updated or reactivated
	// without a ModelConfig of its own.
	keep, keepAD []string
}

func (n NewEntry) configID() string {
	if n.ConfigID != "" {
		return n.ConfigID
	}
	if n.ModelConfig != "" {
		s := strings.TrimSuffix(n.ModelConfig, ".yaml")
		return strings.NewReplacer("-", "_", ".", "_").Replace(s)
	}
	return fmt.Sprintf("default_ws_%d", n.WorldSize)
}

// lists are the config lists the entry wants, in the workflow's order:
// dashboard_default.yaml first, then world_size_N.yaml, then the model's.
func (n NewEntry) lists(l Layout) (extra, adDefaults, userConfigs []string) {
	if l == Internal {
		adDefaults = []string{"ad_base.yaml"}
		if n.ADConfig != "" {
			adDefaults = append(adDefaults, n.ADConfig)
		}
		adDefaults = append(adDefaults, n.keepAD...)
		userConfigs = []string{"dashboard_default.yaml"}
		if n.ModelConfig != "" {
			userConfigs = append(userConfigs, n.ModelConfig)
		}
		userConfigs = append(userConfigs, n.keep...)
		return nil, adDefaults, userConfigs
	}
	extra = []string{"dashboard_default.yaml", fmt.Sprintf("world_size_%d.yaml", n.WorldSize)}
	if n.ModelConfig != "" {
		extra = append(extra, n.ModelConfig)
	}
	extra = append(extra, n.keep...)
	return extra, nil, nil
}

// style is how the file writes entries.
type style struct {
	dash   string // indent before "- name:"
	key    string // indent before keys
	quote  string // "'" , "\"" or ""
	blank  bool   // a blank line between entries
	eol    string
	spaced bool // "[a, b]" (true) or "[a,b]"
	// configID: the file's entries carry config_id (true when any does, or
	// when there are no entries to go by).
	configID bool
}

func (r *Registry) style() style {
	st := style{dash: "", key: "  ", quote: "'", eol: "\n", spaced: true}
	blanks, pairs, active, withID := 0, 0, 0, 0
	found := false
	for _, e := range r.Entries {
		if !e.Active {
			continue
		}
		active++
		if e.ConfigID != "" {
			withID++
		}
		if !found {
			found = true
			first := r.lines[e.start]
			st.dash = indentOf(first)
			if strings.HasSuffix(first, "\r\n") {
				st.eol = "\r\n"
			}
			if e.end > e.start+1 {
				st.key = indentOf(r.lines[e.start+1])
			}
			for _, l := range r.lines[e.start:e.end] {
				if i := strings.Index(l, "["); i >= 0 && i+1 < len(l) {
					switch l[i+1] {
					case '\'':
						st.quote = "'"
					case '"':
						st.quote = "\""
					default:
						st.quote = ""
					}
					st.spaced = strings.Contains(l[i:], ", ") || !strings.Contains(l[i:], ",")
					break
				}
			}
		}
		if e.end < len(r.lines) {
			pairs++
			if strings.TrimSpace(r.lines[e.end]) == "" {
				blanks++
			}
		}
	}
	st.blank = pairs > 0 && blanks*2 > pairs
	st.configID = active == 0 || withID > 0
	return st
}

func (st style) list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = st.quote + s + st.quote
	}
	sep := ","
	if st.spaced {
		sep = ", "
	}
	return "[" + strings.Join(q, sep) + "]"
}

func (st style) render(n NewEntry, l Layout) []string {
	extra, ad, uc := n.lists(l)
	out := []string{st.dash + "- name: " + n.Name + st.eol}
	if st.configID {
		out = append(out, st.dash+st.key+"config_id: "+n.configID()+st.eol)
	}
	if l == Internal {
		out = append(out,
			st.dash+st.key+fmt.Sprintf("world_size: %d", n.WorldSize)+st.eol,
			st.dash+st.key+"ad_defaults: "+st.list(ad)+st.eol,
			st.dash+st.key+"user_configs: "+st.list(uc)+st.eol)
	} else {
		out = append(out, st.dash+st.key+"yaml_extra: "+st.list(extra)+st.eol)
	}
	return out
}

// Outcome says what AddEntry did.
type Outcome string

const (
	Unchanged   Outcome = "unchanged"   // the entry was already there as wanted
	Updated     Outcome = "updated"     // an active entry's lists were replaced
	Reactivated Outcome = "reactivated" // a commented-out entry (and its failure note) became active
	Inserted    Outcome = "inserted"    // added after the family's last entry
	NewSection  Outcome = "new section" // added under a new family header
)

// AddEntry adds or updates n in a models.yaml (either layout), changing
// only the lines of that one entry. It is idempotent.
func AddEntry(name string, old []byte, n NewEntry) ([]byte, Outcome, error) {
	// The name goes into the YAML unquoted: only a Hub id (no line break,
	// alias, anchor, tag or flow character) may.
	if err := hub.ValidateModelID(n.Name); err != nil {
		return nil, "", fmt.Errorf("registry entry: %w", err)
	}
	if n.WorldSize <= 0 {
		return nil, "", fmt.Errorf("registry entry %s: world size %d", n.Name, n.WorldSize)
	}
	r, err := Parse(name, old)
	if err != nil {
		return nil, "", err
	}
	if found := r.Find(n.Name); len(found) > 0 && n.ModelConfig == "" && n.ADConfig == "" {
		// A family member already listed keeps its own configs and config_id.
		e := found[0]
		for _, c := range e.Configs() {
			if c != "dashboard_default.yaml" && !wsFileRE.MatchString(c) {
				n.keep = append(n.keep, c)
			}
		}
		for _, c := range e.ADDefaults {
			if c != "ad_base.yaml" {
				n.keepAD = append(n.keepAD, c)
			}
		}
		if n.ConfigID == "" && e.ConfigID != "" && (len(n.keep) > 0 || len(n.keepAD) > 0) {
			n.ConfigID = e.ConfigID
		}
	}
	st := r.style()
	block := st.render(n, r.Layout)
	extra, ad, uc := n.lists(r.Layout)
	cid := ""
	if st.configID {
		cid = n.configID()
	}
	want := func(e *Entry) bool {
		if r.Layout == Internal {
			return e.ConfigID == cid && e.WorldSizeKey == n.WorldSize && slices.Equal(e.ADDefaults, ad) && slices.Equal(e.UserConfigs, uc)
		}
		return e.ConfigID == cid && slices.Equal(e.YAMLExtra, extra)
	}
	var lines []string
	var outcome Outcome
	found := r.Find(n.Name)
	var active []*Entry
	for _, e := range found {
		if e.Active {
			active = append(active, e)
		}
	}
	switch {
	case len(active) > 0:
		for _, e := range active {
			if want(e) {
				return old, Unchanged, nil
			}
		}
		target := active[0]
		if len(active) > 1 {
			target = nil
			for _, e := range active {
				if e.ConfigID == cid {
					target = e
				}
			}
			if target == nil {
				return nil, "", fmt.Errorf("registry %s: %d active entries for %s and none with config_id %q: update by hand", name, len(active), n.Name, cid)
			}
		}
		lines = splice(r.lines, target.start, target.end, block)
		outcome = Updated
	case len(found) > 0:
		e := found[0]
		lines = splice(r.lines, e.reasonStart, e.end, block)
		outcome = Reactivated
	default:
		fam := r.Family(n.Name)
		if len(fam) > 0 {
			at := closest(n.Name, fam).end
			if st.blank {
				block = append([]string{st.eol}, block...)
			}
			lines = splice(r.lines, at, at, block)
			outcome = Inserted
		} else {
			title := n.Family
			if title == "" {
				title = FamilyStem(n.Name)
			}
			date := n.Date
			if date.IsZero() {
				date = time.Now()
			}
			header := fmt.Sprintf("# --- %s (%s) ---%s", title, date.Format("Jan 2006"), st.eol)
			at := r.newSectionAt()
			ins := append([]string{header}, block...)
			if st.blank {
				ins = append([]string{st.eol}, ins...)
			}
			base := r.lines
			if at == len(base) && at > 0 && !strings.HasSuffix(base[at-1], "\n") {
				base = slices.Clone(base)
				base[at-1] += st.eol
			}
			lines = splice(base, at, at, ins)
			outcome = NewSection
		}
	}
	out := []byte(strings.Join(lines, ""))
	if err := r.check(name, out, n, cid); err != nil {
		return nil, "", err
	}
	return out, outcome, nil
}

// newSectionAt is where a new family section goes: after the last family
// section's entries (before the banner that follows them), else at the end.
func (r *Registry) newSectionAt() int {
	last := -1
	for i, l := range r.lines {
		if sectionRE.MatchString(strings.TrimRight(l, "\r\n")) {
			last = i
		}
	}
	if last < 0 {
		return len(r.lines)
	}
	end := len(r.lines)
	for i := last + 1; i < len(r.lines); i++ {
		if bannerRE.MatchString(strings.TrimRight(r.lines[i], "\r\n")) {
			end = i
			break
		}
	}
	// Keep the section's own trailing entries and comments; stop before
	// blank lines that separate it from the banner.
	for end > last+1 && strings.TrimSpace(r.lines[end-1]) == "" {
		end--
	}
	// A failure comment that belongs to no entry (the banner's block) stays below.
	for end > last+1 {
		l := strings.TrimRight(r.lines[end-1], "\r\n")
		if strings.HasPrefix(l, "#") && !commentRE.MatchString(l) && !commentCont.MatchString(l) && !sectionRE.MatchString(l) {
			end--
			continue
		}
		break
	}
	return end
}

func splice(lines []string, from, to int, ins []string) []string {
	out := make([]string, 0, len(lines)-(to-from)+len(ins))
	out = append(out, lines[:from]...)
	out = append(out, ins...)
	return append(out, lines[to:]...)
}

// check re-parses the result: it must still be a registry with every
// other entry as it was and the new one active as wanted.
func (r *Registry) check(name string, out []byte, n NewEntry, cid string) error {
	nr, err := Parse(name, out)
	if err != nil {
		return fmt.Errorf("registry edit for %s would break the file: %w", n.Name, err)
	}
	var ok bool
	for _, e := range nr.Find(n.Name) {
		if e.Active && e.ConfigID == cid {
			ok = true
		}
	}
	if !ok {
		return errors.New("registry edit: the new entry does not read back")
	}
	others := func(rr *Registry) []string {
		var s []string
		for _, e := range rr.Entries {
			if !strings.EqualFold(e.Name, n.Name) {
				s = append(s, fmt.Sprintf("%s|%v|%s|%v|%v", e.Name, e.Active, e.ConfigID, e.Configs(), e.ADDefaults))
			}
		}
		return s
	}
	if !slices.Equal(others(r), others(nr)) {
		return fmt.Errorf("registry edit for %s would change other entries", n.Name)
	}
	return nil
}
