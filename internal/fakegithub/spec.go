package fakegithub

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/nvidia/adbot/internal/fixtures"
)

// SpecPath is the OpenAPI subset under the shared fixtures folder.
var SpecPath = []string{"github", "openapi", "api.github.com.bot-subset.json"}

// spec is GitHub's OpenAPI description, loaded once per process.
type spec struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	specOnce sync.Once
	specVal  *spec
	specErr  error
)

// loadSpec loads and validates the OpenAPI subset. It returns (nil, nil) when
// the shared fixtures are absent: the fake then serves without validating.
func loadSpec() (*spec, error) {
	specOnce.Do(func() {
		root := fixtures.Root()
		if root == "" {
			return
		}
		p := filepath.Join(append([]string{root}, SpecPath...)...)
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(p)
		if err != nil {
			specErr = fmt.Errorf("load GitHub OpenAPI description %s: %w", p, err)
			return
		}
		// The description's server is https://api.github.com; requests reach the
		// fake on loopback under its own base path, which serve() strips before
		// routing. Without servers the router matches on the path alone, so one
		// loaded document serves every fake in the process.
		doc.Servers = nil
		ctx := context.Background()
		if err := doc.Validate(ctx, openapi3.DisableExamplesValidation()); err != nil {
			specErr = fmt.Errorf("validate GitHub OpenAPI description: %w", err)
			return
		}
		r, err := legacy.NewRouter(doc, openapi3.DisableExamplesValidation())
		if err != nil {
			specErr = fmt.Errorf("route GitHub OpenAPI description: %w", err)
			return
		}
		specVal = &spec{doc: doc, router: r}
	})
	return specVal, specErr
}

// validate checks one request (already stripped of the base path, body
// buffered) against the description. It returns whether a route matched and
// the validation error, if any.
func (sp *spec) validate(r *http.Request) (found bool, err error) {
	vr := r.Clone(r.Context())
	u := *r.URL
	// A git ref ("heads/main") spans path segments; GitHub's description models
	// it as one parameter. Route it as one segment.
	if i := strings.Index(u.Path, "/git/ref/"); i >= 0 && strings.HasPrefix(u.Path, "/repos/") {
		head, ref := u.Path[:i+len("/git/ref/")], u.Path[i+len("/git/ref/"):]
		u.Path = head + strings.ReplaceAll(ref, "/", "%2F")
		u.RawPath = ""
	}
	vr.URL = &u
	route, params, err := sp.router.FindRoute(vr)
	if err != nil {
		return false, err
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		MultiError:         true,
	}
	// Name the failing field instead of dumping the (large) schema.
	opts.WithCustomSchemaErrorFunc(func(e *openapi3.SchemaError) string {
		if p := e.JSONPointer(); len(p) > 0 {
			return "/" + strings.Join(p, "/") + ": " + e.Reason
		}
		return e.Reason
	})
	in := &openapi3filter.RequestValidationInput{
		Request:    vr,
		PathParams: params,
		Route:      route,
		Options:    opts,
	}
	return true, openapi3filter.ValidateRequest(r.Context(), in)
}
