package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes of the CLI commands.
const (
	ExitOK    = 0 // check: valid; eval: allowed
	ExitError = 1 // unreadable or invalid input, bad usage
	ExitDeny  = 2 // eval: denied
)

// maxClaimsSize bounds the claims file of the eval command.
const maxClaimsSize = 1 << 20

// RunCheck implements `caddy gatehouse policy check FILE...`: it parses the
// files, compiles them together (ids must be unique across them) and prints
// every error with its position to stderr. It returns ExitOK or ExitError.
func RunCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: policy check FILE...")
		fmt.Fprintln(stderr, "Parses policy files and reports every error as file:line:col: message.")
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return ExitError
	}
	if len(files) == 0 {
		fs.Usage()
		return ExitError
	}
	policies, ok := loadFiles(files, stderr)
	if !ok {
		return ExitError
	}
	if _, err := Compile(policies); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	ids := make([]string, len(policies))
	for i := range policies {
		ids[i] = policies[i].ID
	}
	noun := "policies"
	if len(ids) == 1 {
		noun = "policy"
	}
	fmt.Fprintf(stdout, "ok: %d %s (%s)\n", len(ids), noun, strings.Join(ids, ", "))
	return ExitOK
}

// RunEval implements `caddy gatehouse policy eval FILE --claims CLAIMS.json
// [--policy ID ...]`: it evaluates the claims (a JSON object) against the
// named policies — every policy in FILE, in order, when none is named — and
// prints "allow: policy ID" or "deny" followed by one line per failure. It
// returns ExitOK on allow, ExitDeny on deny and ExitError on any error,
// including an unknown --policy id.
func RunEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	claimsFile := fs.String("claims", "", "JSON file holding the claims object (required)")
	var ids stringList
	fs.Var(&ids, "policy", "policy id to evaluate; repeat for several (OR); default: every policy in FILE")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: policy eval FILE --claims CLAIMS.json [--policy ID ...]")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "Exit status: 0 allow, 2 deny, 1 error.")
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return ExitError
	}
	if len(files) != 1 || *claimsFile == "" {
		fs.Usage()
		return ExitError
	}
	policies, ok := loadFiles(files, stderr)
	if !ok {
		return ExitError
	}
	set, err := Compile(policies)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	claims, err := readClaims(*claimsFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	if len(ids) == 0 {
		for i := range policies {
			ids = append(ids, policies[i].ID)
		}
	} else if err := set.Check(ids); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", files[0], err)
		return ExitError
	}
	return WriteDecision(stdout, set.Evaluate(claims, ids))
}

// WriteDecision prints a decision as the eval command does — "allow: policy
// ID", or "deny" followed by one line per failure — and returns ExitOK on
// allow, ExitDeny on deny.
func WriteDecision(w io.Writer, d Decision) int {
	if d.Allow {
		fmt.Fprintf(w, "allow: policy %q\n", d.Policy)
		return ExitOK
	}
	fmt.Fprintln(w, "deny")
	for _, f := range d.Failures() {
		if f.Rule == "" {
			fmt.Fprintf(w, "  policy %q: %s\n", f.Policy, f.Reason)
		} else {
			fmt.Fprintf(w, "  policy %q %s: %s\n", f.Policy, f.Rule, f.Reason)
		}
	}
	return ExitDeny
}

// parseInterspersed parses flags that may follow positional arguments
// ("eval FILE --claims X"), which the flag package alone does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func loadFiles(files []string, stderr io.Writer) ([]Policy, bool) {
	var all []Policy
	ok := true
	for _, name := range files {
		ps, err := ParseFile(name)
		if err != nil {
			fmt.Fprintln(stderr, err)
			ok = false
			continue
		}
		all = append(all, ps...)
	}
	return all, ok
}

func readClaims(name string) (map[string]any, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxClaimsSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxClaimsSize {
		return nil, fmt.Errorf("%s: claims file is larger than %d bytes", name, maxClaimsSize)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("%s: claims must be a JSON object: %v", name, err)
	}
	if claims == nil {
		return nil, fmt.Errorf("%s: claims must be a JSON object, not null", name)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: unexpected data after the claims object", name)
	}
	return claims, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}
