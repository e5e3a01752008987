package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/gatehouse-auth/gatehouse/module/internal/identity"
	"github.com/gatehouse-auth/gatehouse/module/internal/issuer"
	"github.com/gatehouse-auth/gatehouse/module/internal/version"
	"github.com/gatehouse-auth/gatehouse/policy"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "gatehouse",
		Usage: "version | policy check | policy eval | apikey create | apikey list | apikey revoke",
		Short: "Gatehouse tools: the build's version; check and evaluate policies before deploying them; the management API's keys",
		Long: `
Gatehouse tools. Each command's --help says more.

gatehouse version
	Prints the version of Gatehouse in this binary (the release, or the
	git revision and commit time it was built from, +dirty for uncommitted
	changes), then the versions of Caddy and Go.

gatehouse policy check FILE...
gatehouse policy check --config Caddyfile [--adapter caddyfile]
	Checks policy documents, or the policies (inline and policy_file) and
	claim maps of every domain of a configuration, and reports every error.
	Exit status 0 when everything is valid, 1 otherwise.

gatehouse policy eval FILE --claims CLAIMS.json [--policy ID ...]
gatehouse policy eval --config Caddyfile --user NAME [--domain D] [--client C] [--scopes S ...] [--policy ID ...]
	Evaluates policies against the claims in a JSON file, or against the
	claims the issuer builds for a configured user signing in (to a client),
	and prints allow or deny with the explanation.
	Exit status 0 on allow, 2 on deny, 1 on error.

gatehouse apikey create --config Caddyfile [--domain D] [--read-only] [--name N] [--expires 4320h]
gatehouse apikey list --config Caddyfile
gatehouse apikey revoke ID --config Caddyfile
	Creates (printing the key once, alone on the first line), lists and
	revokes the keys of the management API (gatehouse_api), in the store the
	configuration names.
`,
		CobraFunc: func(cmd *cobra.Command) { addGatehouseCommands(cmd) },
	})
}

// addGatehouseCommands adds the subcommands of `caddy gatehouse` to cmd.
// Without a subcommand, `caddy gatehouse` prints its help.
func addGatehouseCommands(cmd *cobra.Command) {
	cmd.RunE = helpOrUnknown
	cmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Prints the version of Gatehouse, Caddy and Go in this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), version.Get())
			return nil
		},
	})
	pol := &cobra.Command{
		Use:   "policy",
		Short: "Checks and evaluates policies",
		Long:  "Checks and evaluates policies in policy documents or in a Caddy configuration (see each command's --help).",
		RunE:  helpOrUnknown,
	}
	cmd.AddCommand(pol)

	var check configFlags
	checkCmd := &cobra.Command{
		Use:   "check FILE... | --config Caddyfile [--adapter caddyfile]",
		Short: "Checks policy documents, or the policies and claim maps of a configuration",
		Long: `Checks policy documents (every error as file:line:col), or — with --config —
the policies (inline and policy_file) and claim maps of every domain of a
configuration, adapted first (a Caddyfile by default). Every error is reported
on its own line, naming its domain. Exit status 0 when everything is valid,
1 otherwise.`,
		Example: "  caddy gatehouse policy check policies.yaml\n  caddy gatehouse policy check --config Caddyfile",
	}
	check.add(checkCmd)
	checkCmd.RunE = statusCommand(func(cmd *cobra.Command, args []string) (int, error) {
		if check.config == "" {
			if len(args) == 0 {
				return 1, errors.New("policy check needs policy files or --config; see --help")
			}
			return fromPolicyCLI(policy.RunCheck(args, cmd.OutOrStdout(), cmd.ErrOrStderr()), "policy check: the policy documents have errors")
		}
		if len(args) > 0 {
			return 1, fmt.Errorf("policy check takes policy files or --config, not both (%s)", strings.Join(args, " "))
		}
		return checkConfigPolicies(check, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	pol.AddCommand(checkCmd)

	var eval evalOptions
	evalCmd := &cobra.Command{
		Use:   "eval FILE --claims CLAIMS.json | --config Caddyfile --user NAME",
		Short: "Evaluates policies against claims, or against a configured user's claims",
		Long: `Evaluates policies and prints allow or deny with the explanation.

With a policy document and --claims, the claims are a JSON object.

With --config, the configuration is adapted (a Caddyfile by default) and the
claims are those the issuer of the domain (--domain, default: the default
domain) builds when the user (--user) signs in to the client (--client): the
profile claims its scopes release (--scopes, default: the client's), the
user's custom claims after the claim map, iss, sub, aud, azp, client_id,
scope, auth_time and amr. Without --client, the claims of no client (scopes
openid profile email by default). The policies are those named with
--policy, else the client's, else every policy of the domain. The claims
are printed after the decision.

Exit status 0 on allow, 2 on deny, 1 on error.`,
		Example: "  caddy gatehouse policy eval policies.yaml --claims claims.json --policy admins-only\n" +
			"  caddy gatehouse policy eval --config Caddyfile --user alice --client webapp",
	}
	eval.add(evalCmd)
	evalCmd.RunE = statusCommand(func(cmd *cobra.Command, args []string) (int, error) {
		if eval.config == "" {
			if eval.user != "" || eval.domain != "" || eval.client != "" || len(eval.scopes) > 0 {
				return 1, errors.New("--user, --domain, --client and --scopes need --config")
			}
			pargs := append([]string(nil), args...)
			if eval.claims != "" {
				pargs = append(pargs, "--claims", eval.claims)
			}
			for _, id := range eval.policies {
				pargs = append(pargs, "--policy", id)
			}
			return fromPolicyCLI(policy.RunEval(pargs, cmd.OutOrStdout(), cmd.ErrOrStderr()), "policy eval failed")
		}
		if len(args) > 0 || eval.claims != "" {
			return 1, errors.New("policy eval takes a policy file with --claims, or --config with --user, not both")
		}
		return evalConfigPolicies(eval, cmd.OutOrStdout())
	})
	pol.AddCommand(evalCmd)

	addAPIKeyCommands(cmd)
}

// helpOrUnknown runs a command that only groups others: without arguments
// it prints the help (exit status 0); an argument is an unknown command
// (cobra accepts any argument below the root command).
func helpOrUnknown(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q; run %q", args[0], cmd.CommandPath(), cmd.CommandPath()+" --help")
	}
	return cmd.Help()
}

// statusCommand runs a command that ends with an exit status through
// Caddy's wrapper, which makes the process exit with it (and logs the
// error of a failure). The command prints its own errors, so cobra does not.
func statusCommand(run func(cmd *cobra.Command, args []string) (int, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceErrors = true
		return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
			return run(cmd, args)
		})(cmd, args)
	}
}

// fromPolicyCLI turns an exit status of the policy package's commands into
// a status and an error (status 1 must come with one: Caddy's wrapper exits
// 0 otherwise).
func fromPolicyCLI(code int, failure string) (int, error) {
	if code == policy.ExitError {
		return code, errors.New(failure)
	}
	return code, nil
}

// configFlags name a configuration to adapt.
type configFlags struct {
	config, adapter string
}

func (f *configFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "configuration file whose gatehouse app to use")
	cmd.Flags().StringVarP(&f.adapter, "adapter", "a", "", "name of the config adapter (default: caddyfile for a Caddyfile, else none: JSON)")
}

// loadGatehouseApp adapts the configuration and returns its gatehouse app,
// not provisioned: nothing is opened or created.
func (f configFlags) loadGatehouseApp() (*App, error) {
	app, _, err := f.loadConfig()
	return app, err
}

// loadConfig adapts the configuration and returns its gatehouse app and
// its logging section (nil when it has none), neither provisioned.
func (f configFlags) loadConfig() (*App, *caddy.Logging, error) {
	raw, _, _, err := caddycmd.LoadConfig(f.config, f.adapter)
	if err != nil {
		return nil, nil, err
	}
	var cfg struct {
		Apps    map[string]json.RawMessage `json:"apps"`
		Logging *caddy.Logging             `json:"logging"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", f.config, err)
	}
	appRaw, ok := cfg.Apps["gatehouse"]
	if !ok {
		return nil, nil, fmt.Errorf("%s has no gatehouse app; add a `gatehouse { domain { ... } }` global option", f.config)
	}
	app := new(App)
	if err := json.Unmarshal(appRaw, app); err != nil {
		return nil, nil, fmt.Errorf("%s: the gatehouse app: %v", f.config, err)
	}
	return app, cfg.Logging, nil
}

// checkConfigPolicies implements `policy check --config`: it compiles every
// domain's policies and claim map, and checks the policies its clients name.
func checkConfigPolicies(f configFlags, stdout, stderr io.Writer) (int, error) {
	app, err := f.loadGatehouseApp()
	if err != nil {
		return 1, err
	}
	if len(app.Domains) == 0 {
		return 1, fmt.Errorf("%s: the gatehouse app has no domain", f.config)
	}
	var probs problems
	for _, dc := range app.Domains {
		where := domainWhere(dc.Name)
		set, perr := dc.policySet()
		probs.add(where, perr)
		for _, c := range dc.Clients {
			if len(c.Policies) > 0 && perr == nil {
				probs.add(where, clientPolicies(set, c))
			}
		}
		cm, cerr := dc.claimsMap()
		probs.add(where, cerr)
		if perr != nil || cerr != nil {
			continue
		}
		var ids []string
		if set != nil {
			ids = set.IDs()
		}
		line := fmt.Sprintf("ok: %s: %d %s", where, len(ids), plural(len(ids), "policy", "policies"))
		if len(ids) > 0 {
			line += " (" + strings.Join(ids, ", ") + ")"
		}
		if cm != nil {
			line += ", a claim map"
		}
		fmt.Fprintln(stdout, line)
	}
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		return 1, fmt.Errorf("policy check: %d %s in %s", len(probs), plural(len(probs), "problem", "problems"), f.config)
	}
	return 0, nil
}

// clientPolicies checks that the policies a client names are defined.
func clientPolicies(set *policy.Set, c *ClientConfig) error {
	where := fmt.Sprintf("client %q", c.ClientID)
	if set == nil {
		return fmt.Errorf("%s: names policies %v but the domain defines none; add them with `policy_file` or a `policy` block", where, c.Policies)
	}
	if err := set.Check(c.Policies); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// evalOptions are the flags of `policy eval`.
type evalOptions struct {
	configFlags
	claims               string
	policies             []string
	user, domain, client string
	scopes               []string
	now                  func() time.Time // tests
}

func (o *evalOptions) add(cmd *cobra.Command) {
	o.configFlags.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.claims, "claims", "", "JSON file holding the claims object (with a policy file)")
	fl.StringArrayVar(&o.policies, "policy", nil, "policy id to evaluate; repeat for several (at least one must hold)")
	fl.StringVar(&o.user, "user", "", "username (or e-mail) of a configured user (with --config)")
	fl.StringVar(&o.domain, "domain", "", "the domain (with --config; default: the default domain)")
	fl.StringVar(&o.client, "client", "", "client the user signs in to (with --config; default: none)")
	fl.StringSliceVar(&o.scopes, "scopes", nil, "scopes of the sign-in (with --config; default: the client's, or openid profile email)")
}

// evalConfigPolicies implements `policy eval --config`: the configured
// user's claims are built by the same code as at provision (claim map) and
// at the issuer (issuer.PolicyClaims), then the policies are evaluated.
func evalConfigPolicies(o evalOptions, stdout io.Writer) (int, error) {
	if o.user == "" {
		return 1, errors.New("policy eval --config needs --user NAME")
	}
	app, err := o.loadGatehouseApp()
	if err != nil {
		return 1, err
	}
	var dc *DomainConfig
	for _, d := range app.Domains {
		if d.Name == o.domain {
			dc = d
		}
	}
	if dc == nil {
		return 1, fmt.Errorf("%s: %s is not configured", o.config, domainLabel(o.domain))
	}
	where := domainWhere(dc.Name)
	user, err := dc.evalUser(o.user)
	if err != nil {
		return 1, fmt.Errorf("%s: %w", where, err)
	}
	var client *identity.Client
	if o.client != "" {
		i := slices.IndexFunc(dc.Clients, func(c *ClientConfig) bool { return c.ClientID == o.client })
		if i < 0 {
			return 1, fmt.Errorf("%s: client %q is not configured", where, o.client)
		}
		client, _ = dc.Clients[i].identity(caddy.NewReplacer())
	}
	set, err := dc.policySet()
	if err != nil {
		var probs problems
		probs.add(where, err)
		return 1, probs
	}
	if set == nil {
		return 1, fmt.Errorf("%s defines no policies", where)
	}
	ids := o.policies
	if len(ids) == 0 && client != nil {
		ids = client.Policies
	}
	if len(ids) == 0 {
		ids = set.IDs()
	}
	if err := set.Check(ids); err != nil {
		return 1, fmt.Errorf("%s: %w", where, err)
	}
	scopes := o.scopes
	switch {
	case len(scopes) > 0:
	case client != nil:
		scopes = client.Scopes
	default:
		scopes = []string{"openid", "profile", "email"}
	}
	now := time.Now
	if o.now != nil {
		now = o.now
	}
	// A password sign-in, now: what the issuer records for a local user.
	claims := issuer.PolicyClaims(strings.TrimRight(dc.Issuer, "/"), user, client, scopes, nil, now(), []string{"pwd"})
	code := policy.WriteDecision(stdout, set.Evaluate(claims, ids))
	b, err := json.MarshalIndent(claims, "", "  ")
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "claims of %s", fmt.Sprintf("user %q", user.PreferredUsername))
	if client != nil {
		fmt.Fprintf(stdout, " signing in to client %q", client.ID)
	}
	fmt.Fprintf(stdout, ":\n%s\n", b)
	return code, nil
}
