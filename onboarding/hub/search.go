package hub

import (
	"context"
	"encoding/json"
	"fmt"
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
	q := url.Values{"author": {author}, "search": {search}, "limit": {strconv.Itoa(limit)}}
	a, err := c.get(ctx, "/api/models?"+q.Encode(), true, maxBody, "a search for "+author+"/"+search)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		return nil, &Error{ModelID: author + "/" + search, Status: a.status, Reason: a.code, Message: "model search"}
	}
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(a.body, &list); err != nil {
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
