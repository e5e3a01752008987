package policy

import (
	"fmt"
	"strings"

	"github.com/gatehouse-auth/gatehouse/internal/strictyaml"
)

// Error is one problem in a policy document or AST. Parse sets File, Line
// and Col (1-based; Col 0 when the YAML library reports only a line);
// Compile, which has no positions, sets Policy and Rule instead.
type Error struct {
	File   string // file name given to Parse
	Line   int    // 1-based line, 0 when unknown
	Col    int    // 1-based column, 0 when unknown
	Policy string // policy id, for errors without a position
	Rule   string // rule path such as "all[1].any[0]", for errors without a position
	Msg    string // what is wrong
	Hint   string // how to fix it; may be empty
}

// Error formats the problem as "file:line:col: message (hint: ...)", or
// `policy "id" all[0]: message (hint: ...)` when there is no position.
func (e *Error) Error() string {
	var where []string
	if e.File != "" {
		where = append(where, e.File)
	}
	if e.Line == 0 && (e.Policy != "" || e.Rule != "") {
		pr := e.Rule
		if e.Policy != "" {
			pr = fmt.Sprintf("policy %q", e.Policy)
			if e.Rule != "" {
				pr += " " + e.Rule
			}
		}
		where = append(where, pr)
	}
	return strictyaml.Format(e.File, e.Line, e.Col, strings.Join(where, ": "), e.Msg, e.Hint)
}

// ErrorList is every problem found in a document or AST, in source order.
// Parse and Compile return it as their error.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string { return strictyaml.Join(l) }

// maxErrors bounds how many problems one document reports.
const maxErrors = strictyaml.MaxErrors
