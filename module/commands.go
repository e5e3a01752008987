package module

import (
	"fmt"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/policy"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "gatehouse",
		Usage: "policy check FILE | policy eval FILE --claims CLAIMS.json [--policy ID ...]",
		Short: "Gatehouse tools: check and evaluate policies before deploying them",
		Long: `
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
				code := runGatehouseCommand(args)
				if code != 0 {
					os.Exit(code)
				}
				return nil
			}
		},
	})
}

func runGatehouseCommand(args []string) int {
	if len(args) < 2 || args[0] != "policy" {
		fmt.Fprintln(os.Stderr, "usage: caddy gatehouse policy check FILE | policy eval FILE --claims CLAIMS.json [--policy ID ...]")
		return 1
	}
	switch args[1] {
	case "check":
		return policy.RunCheck(args[2:], os.Stdout, os.Stderr)
	case "eval":
		return policy.RunEval(args[2:], os.Stdout, os.Stderr)
	default:
		fmt.Fprintf(os.Stderr, "unknown policy command %q; use check or eval\n", args[1])
		return 1
	}
}
