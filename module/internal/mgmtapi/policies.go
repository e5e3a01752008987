package mgmtapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
	"github.com/gatehouse-auth/gatehouse/policy"
)

// maxPolicyBody bounds a policy's body (YAML is wordier than JSON).
const maxPolicyBody = 256 << 10

// Policy is a policy as the API shows it in JSON: the policy language's
// model (id, description, all or any; a rule is flat:
// {"claim": "groups", "in": ["admins"]} or a nested {"all": [...]}).
type Policy struct {
	policy.Policy
	Managed   string     `json:"managed"`
	CreatedAt *time.Time `json:"createdAt,omitempty"`
	UpdatedAt *time.Time `json:"updatedAt,omitempty"`
}

// PolicyItem is a policy in a listing.
type PolicyItem struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Managed     string `json:"managed"`
}

// policyBody is the JSON body of PUT .../policy/{id}: the policy, and the
// members a GET answers with that cannot be written (ignored), so that
// what was read can be sent back.
type policyBody struct {
	ID          string          `json:"id"`
	Description string          `json:"description"`
	All         []policy.Rule   `json:"all"`
	Any         []policy.Rule   `json:"any"`
	Managed     json.RawMessage `json:"managed"`
	CreatedAt   json.RawMessage `json:"createdAt"`
	UpdatedAt   json.RawMessage `json:"updatedAt"`
}

// checkPolicyID reports why id cannot be a policy id (the policy
// language's rule), or "".
func checkPolicyID(id string) string {
	switch {
	case id == "":
		return "a policy needs an id"
	case len(id) > policy.MaxIDLength:
		return fmt.Sprintf("longer than %d bytes", policy.MaxIDLength)
	case !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "contains white space, control characters or invalid UTF-8"
	}
	return ""
}

// policyProblem is the problem of a policy that does not parse or compile:
// the parser's errors, positioned (line:col of the body for YAML, the rule
// path for JSON), in the detail and one per entry of errors.
func policyProblem(err error) *Problem {
	p := problem(TypeInvalidPolicy, err.Error())
	var list policy.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			field := e.Rule
			if e.Line > 0 {
				field = fmt.Sprintf("%d:%d", e.Line, e.Col)
			}
			if field == "" {
				field = "(policy)"
			}
			msg := e.Msg
			if e.Hint != "" {
				msg += " (hint: " + e.Hint + ")"
			}
			p.Errors = append(p.Errors, FieldError{Field: field, Detail: msg})
		}
	}
	return p
}

// readPolicy reads and checks the policy a PUT sends for id.
func (c *call) readPolicy(id string) (policy.Policy, *Problem) {
	mt, p := mediaType(c.r, append([]string{mediaJSON}, yamlTypes...)...)
	if p != nil {
		return policy.Policy{}, p
	}
	body, p := readBody(c.r, maxPolicyBody)
	if p != nil {
		return policy.Policy{}, p
	}
	var pol policy.Policy
	if mt == mediaJSON {
		var in policyBody
		if p := decodeJSON(body, &in); p != nil {
			return pol, p
		}
		pol = policy.Policy{ID: in.ID, Description: in.Description, All: in.All, Any: in.Any}
		if pol.ID == "" {
			pol.ID = id
		}
		if pol.ID != id {
			return pol, invalid(FieldError{"id", fmt.Sprintf("the body names policy %q, the path %q; they must be the same", pol.ID, id)})
		}
		if _, err := policy.Compile([]policy.Policy{pol}); err != nil {
			return pol, policyProblem(err)
		}
		return pol, nil
	}
	ps, err := policy.Parse("body", body)
	if err != nil {
		return pol, policyProblem(err)
	}
	if len(ps) != 1 {
		return pol, problem(TypeInvalidPolicy, fmt.Sprintf("the body holds %d policies; send one (policy: with a list of one)", len(ps)))
	}
	if pol = ps[0]; pol.ID != id {
		return pol, invalid(FieldError{"id", fmt.Sprintf("the body names policy %q, the path %q; they must be the same", pol.ID, id)})
	}
	return pol, nil
}

// wantsYAML reports whether the request asks for YAML rather than JSON.
func wantsYAML(r *http.Request) bool {
	accept := strings.ToLower(r.Header.Get("Accept"))
	if accept == "" || strings.Contains(accept, mediaJSON) {
		return false
	}
	return slices.ContainsFunc(yamlTypes, func(t string) bool { return strings.Contains(accept, t) })
}

// The policy language in YAML, as a document of one policy.
type yamlDoc struct {
	Policy []yamlPolicy `yaml:"policy"`
}

type yamlPolicy struct {
	ID          string     `yaml:"id"`
	Description string     `yaml:"description,omitempty"`
	All         []yamlItem `yaml:"all,omitempty"`
	Any         []yamlItem `yaml:"any,omitempty"`
}

type yamlItem struct {
	Rule *yamlRule  `yaml:"rule,omitempty"`
	All  []yamlItem `yaml:"all,omitempty"`
	Any  []yamlItem `yaml:"any,omitempty"`
}

type yamlRule struct {
	Claim    string   `yaml:"claim"`
	In       []string `yaml:"in,omitempty"`
	NotIn    []string `yaml:"not-in,omitempty"`
	MinValue *string  `yaml:"minValue,omitempty"`
	MaxValue *string  `yaml:"maxValue,omitempty"`
	Matches  string   `yaml:"matches,omitempty"`
	Exists   *bool    `yaml:"exists,omitempty"`
}

func yamlItems(rules []policy.Rule) []yamlItem {
	out := make([]yamlItem, 0, len(rules))
	for _, r := range rules {
		if r.IsGroup() {
			out = append(out, yamlItem{All: yamlItems(r.All), Any: yamlItems(r.Any)})
			continue
		}
		out = append(out, yamlItem{Rule: &yamlRule{Claim: r.Claim, In: r.In, NotIn: r.NotIn, MinValue: r.MinValue,
			MaxValue: r.MaxValue, Matches: r.Matches, Exists: r.Exists}})
	}
	return out
}

// PolicyYAML renders a policy as a policy document (policy: and a list of
// one) that policy.Parse reads back as the same policy.
func PolicyYAML(p policy.Policy) ([]byte, error) {
	doc := yamlDoc{Policy: []yamlPolicy{{ID: p.ID, Description: p.Description, All: yamlItems(p.All), Any: yamlItems(p.Any)}}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

func (c *call) writePolicy(status int, p Policy) *Problem {
	if !wantsYAML(c.r) {
		return c.writeJSON(status, p)
	}
	b, err := PolicyYAML(p.Policy)
	if err != nil {
		return unavailable(err)
	}
	h := c.w.Header()
	h.Set("Content-Type", mediaYAML)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b)
	return nil
}

// decodeStoredPolicy reads a stored policy's source.
func decodeStoredPolicy(r store.Policy) (policy.Policy, error) {
	var p policy.Policy
	d := json.NewDecoder(bytes.NewReader(r.Source))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return p, fmt.Errorf("stored policy %q: %w", r.ID, err)
	}
	p.ID = r.ID
	return p, nil
}

func policyOfRow(r store.Policy) (Policy, error) {
	p, err := decodeStoredPolicy(r)
	return Policy{Policy: p, Managed: "api", CreatedAt: timePtr(r.CreatedAt), UpdatedAt: timePtr(r.UpdatedAt)}, err
}

func (a *API) policyRoutes(add func(string, map[string]op)) {
	add("/v1/domain/{domain}/policy", map[string]op{
		"GET": {"policy.list", (*call).listPolicies},
	})
	add("/v1/domain/{domain}/policy/{id}", map[string]op{
		"GET":    {"policy.read", (*call).getPolicy},
		"PUT":    {"policy.put", (*call).putPolicy},
		"DELETE": {"policy.delete", (*call).deletePolicy},
	})
}

func (c *call) listPolicies() *Problem {
	t, p := c.target(false)
	if p != nil {
		return p
	}
	out := []PolicyItem{}
	if t.config != nil {
		for _, pol := range t.config.Policies {
			out = append(out, PolicyItem{ID: pol.ID, Description: pol.Description, Managed: "config"})
		}
	}
	if t.stored {
		rows, err := c.a.st.Policies(c.ctx, t.name)
		if err != nil {
			return unavailable(err)
		}
		for _, r := range rows {
			if t.config != nil && t.config.policies[r.ID] != nil {
				continue
			}
			pol, err := decodeStoredPolicy(r)
			if err != nil {
				c.a.log.Warn("management API: " + err.Error())
			}
			out = append(out, PolicyItem{ID: r.ID, Description: pol.Description, Managed: "api"})
		}
	}
	slices.SortFunc(out, func(a, b PolicyItem) int { return strings.Compare(a.ID, b.ID) })
	return c.writeJSON(http.StatusOK, List[PolicyItem]{Items: out})
}

// policyTarget is the policy a path names; row.Version is 0 when it is not
// stored.
type policyTarget struct {
	*domainTarget
	id     string
	config *policy.Policy
	row    store.Policy
}

func (pt *policyTarget) etag() string {
	switch {
	case pt.config != nil:
		return pt.domainTarget.config.policyTags[pt.id]
	case pt.row.Version > 0:
		return rowETag(pt.row.Version, pt.row.CreatedAt)
	}
	return ""
}

// policy finds the policy the path names; with must, a policy that does
// not exist is 404.
func (c *call) policy(write, must bool) (*policyTarget, *Problem) {
	t, p := c.target(write)
	if p != nil {
		return nil, p
	}
	id := c.r.PathValue("id")
	c.object = "policy " + id
	pt := &policyTarget{domainTarget: t, id: id}
	notFound := problem(TypeNotFound, fmt.Sprintf("policy %q does not exist in domain %q", id, t.api))
	if msg := checkPolicyID(id); msg != "" {
		if must {
			return nil, notFound
		}
		return nil, invalid(FieldError{"id", msg})
	}
	if t.config != nil {
		if pol := t.config.policies[id]; pol != nil {
			if write {
				return nil, problem(TypeManagedByConfig, fmt.Sprintf("policy %q is defined by the configuration; change it there", id))
			}
			pt.config = pol
			return pt, nil
		}
	}
	if t.stored {
		row, err := c.a.st.Policy(c.ctx, t.name, id)
		switch {
		case err == nil:
			pt.row = row
			return pt, nil
		case !errors.Is(err, store.ErrNotFound):
			return nil, unavailable(err)
		}
	}
	if must {
		return nil, notFound
	}
	return pt, nil
}

func (c *call) getPolicy() *Problem {
	pt, p := c.policy(false, true)
	if p != nil {
		return p
	}
	c.setETag(pt.etag())
	if pt.config != nil {
		return c.writePolicy(http.StatusOK, Policy{Policy: *pt.config, Managed: "config"})
	}
	out, err := policyOfRow(pt.row)
	if err != nil {
		return unavailable(err)
	}
	return c.writePolicy(http.StatusOK, out)
}

func (c *call) putPolicy() *Problem {
	pt, p := c.policy(true, false)
	if p != nil {
		return p
	}
	pol, p := c.readPolicy(pt.id)
	if p != nil {
		return p
	}
	if p := c.precondition(pt.etag()); p != nil {
		return p
	}
	if p := c.holdsStored(pt.domainTarget); p != nil {
		return p
	}
	src, err := json.Marshal(pol)
	if err != nil {
		return unavailable(err)
	}
	existed := pt.row.Version > 0
	expected := pt.row.Version // Absent when it did not exist
	if !c.conditional() {
		expected = store.AnyVersion
	}
	row, err := c.a.st.PutPolicy(c.ctx, store.Policy{Domain: pt.name, ID: pt.id, Source: src}, expected)
	if err != nil {
		return storeProblem(err, "policy", "id")
	}
	c.a.changed()
	c.setETag(rowETag(row.Version, row.CreatedAt))
	status := http.StatusOK
	if !existed {
		status = http.StatusCreated
		c.w.Header().Set("Location", "/v1/domain/"+url.PathEscape(pt.api)+"/policy/"+url.PathEscape(pt.id))
	}
	out, err := policyOfRow(row)
	if err != nil {
		return unavailable(err)
	}
	return c.writePolicy(status, out)
}

func (c *call) deletePolicy() *Problem {
	pt, p := c.policy(true, true)
	if p != nil {
		return p
	}
	if p := c.precondition(pt.etag()); p != nil {
		return p
	}
	users, p := c.policyUsers(pt.domainTarget, pt.id)
	if p != nil {
		return p
	}
	if len(users) > 0 {
		return conflict("id", fmt.Sprintf("policy %q is used by clients %s; remove it from them first", pt.id, strings.Join(users, ", ")))
	}
	if err := c.a.st.DeletePolicy(c.ctx, pt.name, pt.id, c.expected(pt.row.Version)); err != nil {
		return storeProblem(err, "policy", "id")
	}
	c.a.changed()
	return c.writeJSON(http.StatusOK, Deleted{Kind: "policy", ID: pt.id, Deleted: true})
}

// policyUsers lists the clients of the domain (configured or stored) that
// name policy id.
func (c *call) policyUsers(t *domainTarget, id string) ([]string, *Problem) {
	var out []string
	if t.config != nil {
		for _, cl := range t.config.Clients {
			if slices.Contains(cl.Policies, id) {
				out = append(out, cl.ID)
			}
		}
	}
	if t.stored {
		rows, err := c.a.st.Clients(c.ctx, t.name)
		if err != nil {
			return nil, unavailable(err)
		}
		for _, r := range rows {
			var d struct {
				Policies []string `json:"policies"`
			}
			_ = json.Unmarshal(r.Data, &d)
			if slices.Contains(d.Policies, id) && !slices.Contains(out, r.ID) {
				out = append(out, r.ID)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
