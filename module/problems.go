package module

import (
	"fmt"
	"strings"
)

// problems is every configuration problem found in one pass, each naming
// where it is (domain, user, client, Caddyfile file:line). Checks collect
// problems instead of stopping at the first, so one `caddy validate` or
// `caddy run` tells the whole truth.
type problems []error

// Error prints one problem as it is, several as a count and one indented
// line each, so the list stays readable after Caddy prefixes its
// provisioning path ("loading new config: ... provision gatehouse: ").
func (p problems) Error() string {
	if len(p) == 1 {
		return p[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d configuration problems:", len(p))
	for _, e := range p {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap makes each problem reachable with errors.Is and errors.As.
func (p problems) Unwrap() []error { return p }

// add appends the problems of err (nil adds nothing), each prefixed by where
// when where is not empty.
func (p *problems) add(where string, err error) {
	for _, e := range leaves(err) {
		if where != "" {
			e = fmt.Errorf("%s: %w", where, e)
		}
		*p = append(*p, e)
	}
}

// err is nil without problems, otherwise the list.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// leaves flattens joined errors (errors.Join, problems) into their parts, so
// that each gets its own line and its own prefix.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// reported is how provisioning returns problems: always a heading, then one
// problem per line, so that even a single problem does not end a line of
// Caddy's provisioning path ("loading http app module: provision http:
// server srv0: setting up route handlers: route 0: ...").
type reported problems

func (r reported) Error() string {
	var b strings.Builder
	if len(r) == 1 {
		b.WriteString("configuration problem:")
	} else {
		fmt.Fprintf(&b, "%d configuration problems:", len(r))
	}
	for _, e := range r {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

func (r reported) Unwrap() []error { return r }

// report turns an error of provisioning into a reported list of its
// problems, each prefixed by where when where is not empty.
func report(where string, err error) error {
	if err == nil {
		return nil
	}
	var p problems
	p.add(where, err)
	return reported(p)
}

// domainWhere names a domain at the start of a problem line.
func domainWhere(name string) string {
	if name == "" {
		return "default domain"
	}
	return fmt.Sprintf("domain %q", name)
}
