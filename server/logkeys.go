package server

// Log keys the server adds to go-githubapp's (githubapp.LogKey*). Runners
// use the same names for the same things.
const (
	// LogKeyComponent names the part of the server a line comes from.
	LogKeyComponent = "component"
	// LogKeyRunner is a runner's name.
	LogKeyRunner = "runner"
	// LogKeyMethod and LogKeyURL describe an HTTP call.
	LogKeyMethod = "method"
	LogKeyURL    = "url"
	// LogKeyAddr is a listening address.
	LogKeyAddr = "addr"
)
