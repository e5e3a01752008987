package module

import (
	"fmt"
	"io"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/module/internal/version"
	"github.com/gatehouse-auth/gatehouse/policy"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "gatehouse",
		Usage: "version | policy check FILE | policy eval FILE --claims CLAIMS.json [--policy ID ...]",
		Short: "Gatehouse tools: the build's version; check and evaluate policies before deploying them",
		Long: `
gatehouse version
	Prints the version of Gatehouse in this binary (the release, or the
	git revision and commit time it was built from, +dirty for uncommitted
	changes), then the versions of Caddy and Go.

gatehouse policy check FILE
	Parses a policy document and reports every error as file:line:col.
	Exit status 0 when the document is valid, 1 otherwise.

gatehouse policy eval FILE --claims CLAIMS.json [--policy ID ...]
	Evaluates the policies (all of them, or those named with --policy) against
	the claims in a JSON file, and prints allow or deny with the explanation.
	Exit status 0 on allow, 2 on deny, 1 on error.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.DisableFlagParsing = true
			cmd.RunE = func(_ *cobra.Command, args []string) error {
				code := runGatehouseCommand(args, os.Stdout, os.Stderr)
				if code != 0 {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}

const gatehouseUsage = "usage: caddy gatehouse version | policy check FILE | policy eval FILE --claims CLAIMS.json [--policy ID ...]"

func runGatehouseCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "version" {
		fmt.Fprintln(stdout, version.Get())
		return 0
	}
	if len(args) < 2 || args[0] != "policy" {
		fmt.Fprintln(stderr, gatehouseUsage)
		return 1
	}
	switch args[1] {
	case "check":
		return policy.RunCheck(args[2:], stdout, stderr)
	case "eval":
		return policy.RunEval(args[2:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "unknown policy command %q; use check or eval\n", args[1])
		return 1
	}
}
