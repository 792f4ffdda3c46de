package hub

import (
	"context"
	"fmt"
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
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	path := "/" + id + "/resolve/" + url.PathEscape(revision) + "/" + strings.Join(parts, "/")
	a, err := c.get(ctx, path, false, maxFile, name+" of "+id)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, &Error{ModelID: id, Status: a.status, Reason: a.code, Message: "file " + name}
	}
	return a.body, nil
}
