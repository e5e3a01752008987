package policy

import (
	"fmt"
	"strings"
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
	var b strings.Builder
	switch {
	case e.Line > 0 && e.Col > 0:
		fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Col)
	case e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	}
	if e.Line == 0 && (e.Policy != "" || e.Rule != "") {
		if e.Policy != "" {
			fmt.Fprintf(&b, "policy %q", e.Policy)
			if e.Rule != "" {
				b.WriteString(" ")
			}
		}
		b.WriteString(e.Rule)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: " + e.Hint + ")")
	}
	return b.String()
}

// ErrorList is every problem found in a document or AST, in source order.
// Parse and Compile return it as their error.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// maxErrors bounds how many problems one document reports.
const maxErrors = 50
