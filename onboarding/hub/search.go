package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// MaxSearch bounds how many models one search asks for.
const MaxSearch = 200

// Search lists model ids by author whose names contain search
// (GET {Endpoint}/api/models?author=..&search=..&limit=..), as the workflow's
// family survey asks ("also check HuggingFace for the full set of model
// sizes"). A refusal is an *Error.
func (c *Client) Search(ctx context.Context, author, search string, limit int) ([]string, error) {
	if author == "" || strings.ContainsAny(author, "/?&#") {
		return nil, fmt.Errorf("search HuggingFace Hub: author %q is not an organization name", author)
	}
	if limit <= 0 || limit > MaxSearch {
		limit = MaxSearch
	}
	base := strings.TrimRight(c.Endpoint, "/")
	if base == "" {
		base = DefaultEndpoint
	}
	q := url.Values{"author": {author}, "search": {search}, "limit": {strconv.Itoa(limit)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/models?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("search HuggingFace Hub for %s/%s: %w", author, search, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("search HuggingFace Hub for %s/%s: %w", author, search, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read HuggingFace Hub search for %s/%s: %w", author, search, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{ModelID: author + "/" + search, Status: resp.StatusCode, Reason: Reason(resp.Header.Get("X-Error-Code")), Message: "model search"}
	}
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode HuggingFace Hub search for %s/%s: %w", author, search, err)
	}
	out := make([]string, 0, len(list))
	for _, m := range list {
		if ValidateModelID(m.ID) == nil {
			out = append(out, m.ID)
		}
	}
	return out, nil
}
