package pytest

import "strings"

// JUnitName returns the JUnit classname and name pytest writes for a node
// id: "tests/models/test_x.py::TestBlock::test_mlp[a]" becomes
// ("tests.models.test_x.TestBlock", "test_mlp[a]").
func JUnitName(nodeID string) (classname, name string) {
	// Parameters ("[...]") come last and may hold "::" themselves.
	params := ""
	if i := strings.IndexByte(nodeID, '['); i >= 0 {
		nodeID, params = nodeID[:i], nodeID[i:]
	}
	parts := strings.Split(nodeID, "::")
	parts[len(parts)-1] += params
	file := strings.TrimSuffix(parts[0], ".py")
	file = strings.ReplaceAll(file, "/", ".")
	if len(parts) == 1 {
		return "", file
	}
	cls := append([]string{file}, parts[1:len(parts)-1]...)
	return strings.Join(cls, "."), parts[len(parts)-1]
}

// ApplyConsole refines the report with what only the console log tells:
// cases the short test summary lists as XPASS (JUnit records an unexpected
// pass as a pass). It returns the number of cases changed.
func (r *Report) ApplyConsole(c *Console) int {
	if r == nil || c == nil {
		return 0
	}
	xpass := map[string]bool{}
	for _, s := range c.Short {
		if s.Kind == "XPASS" {
			cls, name := JUnitName(s.NodeID)
			xpass[cls+"::"+name] = true
		}
	}
	n := 0
	for i := range r.Cases {
		cs := &r.Cases[i]
		if cs.Outcome == Passed && xpass[cs.ClassName+"::"+cs.Name] {
			cs.Outcome = XPassed
			n++
		}
	}
	return n
}
