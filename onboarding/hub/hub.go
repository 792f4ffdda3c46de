package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultEndpoint is the public HuggingFace Hub.
const DefaultEndpoint = "https://huggingface.co"

// DefaultTimeout bounds one Hub request.
const DefaultTimeout = 15 * time.Second

// maxBody bounds what is read of one Hub answer.
const maxBody = 32 << 20

// Model is what adbot uses of the Hub's /api/models/{id} answer.
type Model struct {
	ID      string `json:"id"`
	SHA     string `json:"sha"`
	Private bool   `json:"private"`
	// Gated is false, "auto" or "manual" on the Hub; any non-false value means gated.
	Gated    Gated    `json:"gated"`
	Disabled bool     `json:"disabled"`
	Config   Config   `json:"config"`
	Siblings []File   `json:"siblings"`
	Tensors  *Tensors `json:"safetensors"`
	// Raw is the answer as received.
	Raw json.RawMessage `json:"-"`
}

// Config is the summary of config.json that the Hub includes.
type Config struct {
	Architectures []string       `json:"architectures"`
	ModelType     string         `json:"model_type"`
	AutoMap       map[string]any `json:"auto_map"`
	Quantization  map[string]any `json:"quantization_config"`
}

// File is one file of the repository.
type File struct {
	Name string `json:"rfilename"`
	Size int64  `json:"size,omitempty"`
}

// Tensors is the Hub's safetensors summary: parameters per dtype and their total.
type Tensors struct {
	Parameters map[string]int64 `json:"parameters"`
	Total      int64            `json:"total"`
}

// Gated decodes the Hub's gated field (false, "auto", "manual").
type Gated string

// UnmarshalJSON accepts a bool or a string.
func (g *Gated) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		if v {
			*g = "true"
		} else {
			*g = ""
		}
	case string:
		*g = Gated(v)
	case nil:
		*g = ""
	default:
		return fmt.Errorf("gated: unexpected %T", v)
	}
	return nil
}

// IsGated reports whether access must be requested.
func (g Gated) IsGated() bool { return g != "" && g != "false" }

// Architecture is the first listed architecture, or "".
func (m *Model) Architecture() string {
	if len(m.Config.Architectures) == 0 {
		return ""
	}
	return m.Config.Architectures[0]
}

// RemoteCode reports whether loading the model runs code from its repository.
func (m *Model) RemoteCode() bool { return len(m.Config.AutoMap) > 0 }

// Reason classifies why the Hub refused a model.
type Reason string

// The reasons the Hub gives (its X-Error-Code header) or that adbot infers.
const (
	ReasonNotFound     Reason = "RepoNotFound"
	ReasonGated        Reason = "GatedRepo"
	ReasonRevision     Reason = "RevisionNotFound"
	ReasonUnauthorized Reason = "Unauthorized"
	ReasonDisabled     Reason = "DisabledRepo"
)

// Error is a refusal from the Hub that a maintainer should hear about.
type Error struct {
	ModelID string
	Status  int
	Reason  Reason
	Message string
}

func (e *Error) Error() string {
	switch e.Reason {
	case ReasonNotFound:
		return fmt.Sprintf("model %s was not found on the HuggingFace Hub (or it is private and the configured token cannot see it)", e.ModelID)
	case ReasonGated:
		return fmt.Sprintf("model %s is gated: the HuggingFace token adbot uses must be granted access first", e.ModelID)
	case ReasonRevision:
		return fmt.Sprintf("model %s has no such revision on the HuggingFace Hub", e.ModelID)
	case ReasonDisabled:
		return fmt.Sprintf("model %s is disabled on the HuggingFace Hub", e.ModelID)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("HuggingFace Hub answered %d for %s: %s", e.Status, e.ModelID, msg)
}

// Temporary reports whether asking again later may succeed.
func (e *Error) Temporary() bool { return e.Status == 429 || e.Status >= 500 }

// Client asks a Hub (HF_ENDPOINT) for model metadata.
type Client struct {
	// Endpoint is the Hub's base URL (DefaultEndpoint if empty).
	Endpoint string
	// Token is sent as a bearer token when set (HF_TOKEN).
	Token string
	// HTTP is the client used (one with DefaultTimeout if nil).
	HTTP *http.Client
}

// Model fetches /api/models/{id}[/revision/{rev}]. A refusal is an *Error.
func (c *Client) Model(ctx context.Context, id, revision string) (*Model, error) {
	if err := ValidateModelID(id); err != nil {
		return nil, err
	}
	path := "/api/models/" + id // validated: only [A-Za-z0-9._-/]
	if revision != "" {
		path += "/revision/" + url.PathEscape(revision)
	}
	a, err := c.get(ctx, path, true, maxBody, id)
	if err != nil {
		return nil, err
	}
	if a.status != http.StatusOK {
		e := &Error{ModelID: id, Status: a.status, Reason: a.code}
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(a.body, &m) == nil {
			e.Message = m.Error
		}
		if e.Reason == "" && a.status == http.StatusNotFound {
			e.Reason = ReasonNotFound
		}
		return nil, e
	}
	return ParseModel(a.body)
}

// answer is what the Hub answered to one request.
type answer struct {
	status int
	code   Reason // the X-Error-Code header
	body   []byte // at most the limit asked for
}

// get asks the Hub for path below the endpoint (escaped by the caller),
// sending the token when there is one and asking for JSON when wantJSON is set,
// and reads at most limit bytes of the answer, whatever its status. A
// successful answer longer than limit is an error saying so (cut short, it
// would only fail to decode); a refusal's body is cut at limit. what names
// the request in errors.
func (c *Client) get(ctx context.Context, path string, wantJSON bool, limit int64, what string) (answer, error) {
	base := strings.TrimRight(c.Endpoint, "/")
	if base == "" {
		base = DefaultEndpoint
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return answer{}, fmt.Errorf("hub request for %s: %w", what, err)
	}
	if wantJSON {
		req.Header.Set("Accept", "application/json")
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
		return answer{}, fmt.Errorf("ask HuggingFace Hub for %s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return answer{}, fmt.Errorf("read HuggingFace Hub answer for %s: %w", what, err)
	}
	if int64(len(body)) > limit {
		if resp.StatusCode == http.StatusOK {
			return answer{}, fmt.Errorf("HuggingFace Hub answer for %s is larger than %d bytes", what, limit)
		}
		body = body[:limit]
	}
	return answer{status: resp.StatusCode, code: Reason(resp.Header.Get("X-Error-Code")), body: body}, nil
}

// ParseModel decodes an /api/models answer.
func ParseModel(body []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode HuggingFace Hub model answer: %w", err)
	}
	if m.ID == "" {
		return nil, errors.New("decode HuggingFace Hub model answer: no \"id\" field")
	}
	m.Raw = json.RawMessage(body)
	return &m, nil
}
