// Package clitest runs `caddy gatehouse ...` inside a test process, built
// as Caddy's command line builds a registered command, so tests reach the
// commands without a binary.
package clitest

import (
	"bytes"
	"errors"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// Run runs `caddy gatehouse args...` and returns what it wrote to standard
// output and standard error, and the error Caddy's main would exit on (nil
// for status 0). The gatehouse command must be registered: import the
// module package.
func Run(args ...string) (stdout, stderr string, err error) {
	c, ok := caddycmd.Commands()["gatehouse"]
	if !ok {
		return "", "", errors.New("the gatehouse command is not registered")
	}
	// What caddycmd does with a registered command.
	gh := &cobra.Command{Use: c.Name + " " + c.Usage, Short: c.Short, Long: c.Long}
	c.CobraFunc(gh)
	root := &cobra.Command{Use: "caddy", SilenceUsage: true}
	root.AddCommand(gh)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"gatehouse"}, args...))
	err = root.Execute()
	return out.String(), errOut.String(), err
}
