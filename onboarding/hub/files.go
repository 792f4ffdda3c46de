package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ReasonEntryNotFound is the Hub's answer for a file a repository lacks.
const ReasonEntryNotFound Reason = "EntryNotFound"

// maxFile bounds a small repository file fetched whole (config.json and the like).
const maxFile = 16 << 20

// File fetches one small file of a model repository,
// {Endpoint}/{id}/resolve/{revision}/{name} ("main" when revision is empty).
// A refusal is an *Error, as for Model.
func (c *Client) File(ctx context.Context, id, revision, name string) ([]byte, error) {
	if err := ValidateModelID(id); err != nil {
		return nil, err
	}
	if name == "" || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("hub file %q of %s: not a plain repository path", name, id)
	}
	if revision == "" {
		revision = "main"
	}
	base := strings.TrimRight(c.Endpoint, "/")
	if base == "" {
		base = DefaultEndpoint
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	u := base + "/" + id + "/resolve/" + url.PathEscape(revision) + "/" + strings.Join(parts, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("hub request for %s/%s: %w", id, name, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s of %s from HuggingFace Hub: %w", name, id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s of %s from HuggingFace Hub: %w", name, id, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{ModelID: id, Status: resp.StatusCode, Reason: Reason(resp.Header.Get("X-Error-Code"))}
		e.Message = fmt.Sprintf("file %s", name)
		return nil, e
	}
	if len(body) > maxFile {
		return nil, fmt.Errorf("%s of %s is larger than %d bytes", name, id, maxFile)
	}
	return body, nil
}
