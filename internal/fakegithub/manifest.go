package fakegithub

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Manifest is an App the fake's manifest flow makes: what the conversion of
// its code answers.
type Manifest struct {
	ID            int64
	Slug          string
	Name          string
	Owner         string
	ClientID      string
	ClientSecret  string
	WebhookSecret string
	// PEM is a private key made for this App when the code was issued.
	PEM string
}

// IssueManifestCode stands in for a person creating an App from a manifest
// on GitHub's web page: it returns the temporary code GitHub hands to the
// manifest's redirect_url, and the App that converting it gives. A code
// converts once.
func (s *Server) IssueManifestCode(t interface{ Fatalf(string, ...any) }, name, owner string) (string, Manifest) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("fakegithub: manifest key: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := Manifest{
		ID:            s.id(),
		Slug:          strings.ToLower(name),
		Name:          name,
		Owner:         owner,
		ClientID:      "Iv1." + randomHex(8),
		ClientSecret:  randomHex(20),
		WebhookSecret: randomHex(20),
		PEM:           string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
	}
	code := randomHex(10)
	if s.manifests == nil {
		s.manifests = map[string]*Manifest{}
	}
	s.manifests[code] = &m
	return code, m
}

func isManifestConversion(method, path string) bool {
	return method == http.MethodPost && strings.HasPrefix(path, "/app-manifests/") && strings.HasSuffix(path, "/conversions")
}

// convertManifest answers POST /app-manifests/{code}/conversions as GitHub
// documents it (apps/create-from-manifest): 201 with the App, its client
// secret, webhook secret and PEM key for a code issued and not yet used;
// 404 otherwise. The request is checked by hand (beyondDescription).
func (s *Server) convertManifest(w http.ResponseWriter, r *http.Request, path string, body []byte) {
	if op := handCheckedOp(r.Method, path); op != nil {
		if err := op.check(r, body); err != nil {
			s.t.Errorf("fakegithub: %s %s: request fails the fake's own check of %s (absent from GitHub's OpenAPI description): %v",
				r.Method, path, op.operationID, err)
			writeError(w, http.StatusUnprocessableEntity, "Validation Failed: "+err.Error())
			return
		}
	}
	code := strings.TrimSuffix(strings.TrimPrefix(path, "/app-manifests/"), "/conversions")
	s.mu.Lock()
	m, ok := s.manifests[code]
	delete(s.manifests, code)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found")
		return
	}
	now := time.Now().UTC().Format(time.RFC3339)
	writeJSON(w, http.StatusCreated, map[string]any{
		"id":             m.ID,
		"slug":           m.Slug,
		"node_id":        "A_" + hex.EncodeToString([]byte(m.Slug)),
		"name":           m.Name,
		"owner":          map[string]any{"login": m.Owner, "id": 1, "type": "Organization"},
		"description":    "",
		"external_url":   "https://example.com",
		"html_url":       "https://github.com/apps/" + m.Slug,
		"created_at":     now,
		"updated_at":     now,
		"permissions":    map[string]string{"metadata": "read"},
		"events":         []string{},
		"client_id":      m.ClientID,
		"client_secret":  m.ClientSecret,
		"webhook_secret": m.WebhookSecret,
		"pem":            m.PEM,
	})
}

// checkManifestConversion checks the conversion request as GitHub documents
// it: the code in the path, no request body, and no credentials (none exist
// yet; sending the App's own would be a mistake).
func checkManifestConversion(r *http.Request, body []byte) error {
	code := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, BasePath), "/app-manifests/"), "/conversions")
	if code == "" || strings.Contains(code, "/") {
		return fmt.Errorf("code %q is not one path segment", code)
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		return errors.New("the conversion takes no request body")
	}
	if a := r.Header.Get("Authorization"); a != "" {
		return errors.New("the conversion is called without credentials")
	}
	return nil
}
