package bus

import (
	"fmt"
	"strings"
)

// WaitReason explains to people why a cycle of need GPUs is still queued,
// given the runners online (the Presence entries of RunnerBucket): "waiting
// for 4 free GPUs; 2 runners online, largest has 2: none can run it". The
// server shows it in a queued job's status comment and /onboard status reply.
func WaitReason(need int, fleet []Presence) string {
	if len(fleet) == 0 {
		return fmt.Sprintf("waiting for %d free GPU%s; no runner online", need, plural(need))
	}
	largest, mostFree, draining := 0, 0, 0
	for _, p := range fleet {
		largest = max(largest, p.GPUs)
		if p.Draining {
			draining++
			continue
		}
		mostFree = max(mostFree, p.FreeGPUs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "waiting for %d free GPU%s; %d runner%s online", need, plural(need), len(fleet), plural(len(fleet)))
	switch {
	case largest < need:
		fmt.Fprintf(&b, ", largest has %d: none can run it", largest)
	case mostFree < need:
		fmt.Fprintf(&b, ", most free on one is %d", mostFree)
	default:
		fmt.Fprintf(&b, ", one has %d free and should take it shortly", mostFree)
	}
	if draining > 0 {
		fmt.Fprintf(&b, " (%d draining)", draining)
	}
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
