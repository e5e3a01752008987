package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gatehouse-auth/gatehouse/module/internal/mgmtapi"
	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// `caddy gatehouse apikey create|list|revoke`: the management API's keys,
// straight in the store the configuration names (the first key can come
// from nowhere else).

// apikeyOptions are the flags of the apikey commands.
type apikeyOptions struct {
	configFlags
	domain   string
	readOnly bool
	name     string
	expires  time.Duration
	now      func() time.Time // tests
}

func addAPIKeyCommands(cmd *cobra.Command) {
	group := &cobra.Command{
		Use:   "apikey",
		Short: "Creates, lists and revokes the management API's keys",
		Long: `Creates, lists and revokes the keys of the management API (gatehouse_api),
in the store the configuration names: the configuration is adapted (a
Caddyfile by default), its gatehouse app's store and its logs are opened,
and nothing else is started. Each action is audited (gatehouse.audit)
in those logs, as the management API's actions are. Run it where the
server's store is reachable (the same SQLite file, or the same PostgreSQL
database).`,
		RunE: helpOrUnknown,
	}
	cmd.AddCommand(group)

	var create apikeyOptions
	createCmd := &cobra.Command{
		Use:   "create --config Caddyfile [--adapter caddyfile] [--domain NAME] [--read-only] [--name NAME] [--expires DURATION]",
		Short: "Creates an API key and prints it once",
		Long: `Creates an API key and prints it, alone, on the first line of standard output;
what it is (ID, domain, rights, expiry) follows on standard error. The key is
shown only now: the store keeps its hash.

Without --domain the key is global: it reaches every domain and may create
domains and keys. With --domain it reaches that domain only (the
configuration's unnamed domain is "default"). --read-only keys may only
read. --expires sets the lifetime (default 4320h, 180 days; 0: never).`,
		Example: "  caddy gatehouse apikey create --config Caddyfile --name ci\n" +
			"  caddy gatehouse apikey create --config Caddyfile --domain acme --read-only --expires 720h",
		Args: cobra.NoArgs,
	}
	create.configFlags.add(createCmd)
	fl := createCmd.Flags()
	fl.StringVar(&create.domain, "domain", "", "bind the key to this domain (default: a global key)")
	fl.BoolVar(&create.readOnly, "read-only", false, "the key may only read")
	fl.StringVar(&create.name, "name", "", "a name for people (e.g. ci)")
	fl.DurationVar(&create.expires, "expires", mgmtapi.DefaultKeyLifetime, "how long the key works (0: forever)")
	createCmd.RunE = statusCommand(func(cmd *cobra.Command, _ []string) (int, error) {
		return createAPIKey(cmd.Context(), create, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	group.AddCommand(createCmd)

	var list apikeyOptions
	listCmd := &cobra.Command{
		Use:   "list --config Caddyfile [--adapter caddyfile]",
		Short: "Lists the API keys (never the keys themselves)",
		Args:  cobra.NoArgs,
	}
	list.configFlags.add(listCmd)
	listCmd.RunE = statusCommand(func(cmd *cobra.Command, _ []string) (int, error) {
		return listAPIKeys(cmd.Context(), list, cmd.OutOrStdout())
	})
	group.AddCommand(listCmd)

	var revoke apikeyOptions
	revokeCmd := &cobra.Command{
		Use:   "revoke ID --config Caddyfile [--adapter caddyfile]",
		Short: "Revokes an API key: it is refused from now on",
		Args:  cobra.ExactArgs(1),
	}
	revoke.configFlags.add(revokeCmd)
	revokeCmd.RunE = statusCommand(func(cmd *cobra.Command, args []string) (int, error) {
		return revokeAPIKey(cmd.Context(), revoke, args[0], cmd.OutOrStdout())
	})
	group.AddCommand(revokeCmd)
}

// cliStore is what the apikey commands work with: the configuration's
// gatehouse app (not provisioned), its store, opened, and its audit logger.
type cliStore struct {
	app   *App
	st    store.Store
	audit *zap.Logger
	close func()
}

// openStore adapts the configuration, loads its gatehouse app's store
// module and opens the store, and opens the configuration's logs for the
// audit logger; nothing else is provisioned or started (no signing key is
// made, no server listens). close releases the store.
func (f configFlags) openStore(ctx context.Context) (*cliStore, error) {
	if f.config == "" {
		return nil, errors.New("--config is required: the configuration whose store holds the keys")
	}
	app, logging, err := f.loadConfig()
	if err != nil {
		return nil, err
	}
	if app.StoreRaw == nil {
		app.StoreRaw = json.RawMessage(`{"backend":"sqlite"}`)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	audit, err := cliAuditLogger(app, logging)
	if err != nil {
		return nil, err
	}
	cctx, cancel := caddy.NewContext(caddy.Context{Context: ctx})
	mod, err := cctx.LoadModule(app, "StoreRaw")
	if err != nil {
		cancel()
		return nil, fmt.Errorf("loading the store: %w", err)
	}
	opener, ok := mod.(StoreOpener)
	if !ok {
		cancel()
		return nil, fmt.Errorf("module %T is not a Gatehouse store", mod)
	}
	st, err := opener.OpenStore(cctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &cliStore{app: app, st: st, audit: audit, close: func() { _ = audit.Sync(); st.Close(); cancel() }}, nil
}

// cliAuditLogger is the audit logger (gatehouse.audit) of the configuration's
// logs, opened as the server opens them, so that the key actions of the
// command line are recorded where the server records the management API's:
// in the logs that include gatehouse.audit, and in the default log unless it
// excludes it. Only the logs are set up; no app is provisioned. They stay
// open until the process exits (the command's own lifetime).
func cliAuditLogger(app *App, logging *caddy.Logging) (*zap.Logger, error) {
	ctx, err := caddy.ProvisionContext(&caddy.Config{Logging: logging})
	if err != nil {
		return nil, fmt.Errorf("opening the configuration's logs: %w", err)
	}
	return ctx.Logger(app).Named("audit"), nil
}

// auditCLI records a key action of the command line in the audit log, in
// the shape of the management API's entries: object is the key acted on;
// there is no key_id (no key acts: the command line reaches the store
// itself), and via is "cli".
func auditCLI(audit *zap.Logger, action string, err error, fields ...zap.Field) {
	outcome, level := "success", zapcore.InfoLevel
	if err != nil {
		outcome, level = "failure", zapcore.WarnLevel
		fields = append(fields, zap.String("reason", err.Error()))
	}
	ce := audit.Check(level, "gatehouse management "+action+" "+outcome)
	if ce == nil {
		return
	}
	ce.Write(append([]zap.Field{zap.String("event", "management"), zap.String("action", action),
		zap.String("outcome", outcome), zap.String("via", "cli")}, fields...)...)
}

func (o apikeyOptions) clock() time.Time {
	if o.now != nil {
		return o.now()
	}
	return time.Now()
}

func createAPIKey(ctx context.Context, o apikeyOptions, stdout, stderr io.Writer) (int, error) {
	if o.expires < 0 {
		return 1, fmt.Errorf("--expires %s is negative; give a lifetime such as 720h, or 0 for a key that never expires", o.expires)
	}
	if err := mgmtapi.CheckKeyName(o.name); err != nil {
		return 1, fmt.Errorf("--name: %w", err)
	}
	cs, err := o.openStore(ctx)
	if err != nil {
		return 1, err
	}
	defer cs.close()
	if o.domain != "" {
		if err := apikeyDomainExists(ctx, cs.app, cs.st, o.domain); err != nil {
			return 1, err
		}
	}
	now := o.clock()
	spec := mgmtapi.KeySpec{Name: o.name, Domain: o.domain, ReadOnly: o.readOnly, CreatedBy: "cli"}
	if o.expires > 0 {
		spec.ExpiresAt = now.Add(o.expires)
	}
	key, rec, err := mgmtapi.CreateKey(ctx, cs.st, spec, now)
	if err != nil {
		auditCLI(cs.audit, "apikey.create", err, zap.String("domain", o.domain), zap.String("object", o.name))
		return 1, fmt.Errorf("creating the key: %w", err)
	}
	auditCLI(cs.audit, "apikey.create", nil, zap.String("domain", rec.Domain),
		zap.String("object", rec.ID), zap.String("name", rec.Name), zap.Bool("read_only", rec.ReadOnly))
	fmt.Fprintln(stdout, key)
	fmt.Fprintf(stderr, "API key %s created: %s. It is shown only now; keep it secret.\n", rec.ID, describeKey(rec))
	return 0, nil
}

// apikeyDomainExists checks that a key's domain is configured or stored.
func apikeyDomainExists(ctx context.Context, app *App, st store.Store, domain string) error {
	for _, dc := range app.Domains {
		if dc.Name == domain || (dc.Name == "" && domain == mgmtapi.DefaultDomain) {
			return nil
		}
	}
	_, err := st.Domain(ctx, domain)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("domain %q is neither configured nor stored; create it first, or leave --domain out for a global key", domain)
	}
	return fmt.Errorf("reading domain %q: %w", domain, err)
}

// describeKey says what a key may do, in words.
func describeKey(k store.APIKey) string {
	s := "global"
	if k.Domain != "" {
		s = fmt.Sprintf("domain %q", k.Domain)
	}
	if k.ReadOnly {
		s += ", read-only"
	} else {
		s += ", read-write"
	}
	if k.Name != "" {
		s = fmt.Sprintf("%q, %s", k.Name, s)
	}
	if k.ExpiresAt.IsZero() {
		return s + ", never expires"
	}
	return s + ", expires " + k.ExpiresAt.UTC().Format(time.RFC3339)
}

func listAPIKeys(ctx context.Context, o apikeyOptions, stdout io.Writer) (int, error) {
	cs, err := o.openStore(ctx)
	if err != nil {
		return 1, err
	}
	defer cs.close()
	keys, err := cs.st.APIKeys(ctx)
	if err != nil {
		err = fmt.Errorf("listing the keys: %w", err)
	}
	auditCLI(cs.audit, "apikey.list", err)
	if err != nil {
		return 1, err
	}
	now := o.clock()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tDOMAIN\tACCESS\tSTATUS\tEXPIRES\tLAST USED\tCREATED BY")
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, k := range keys {
		v := mgmtapi.KeyOfRecord(k, now)
		domain, access := "(global)", "read-write"
		if v.Domain != nil {
			domain = *v.Domain
		}
		if v.ReadOnly {
			access = "read-only"
		}
		expires := when(v.ExpiresAt)
		if v.ExpiresAt == nil {
			expires = "never"
		}
		name := v.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, name, domain, access, v.Status, expires, when(v.LastUsedAt), v.CreatedBy)
	}
	return 0, tw.Flush()
}

func revokeAPIKey(ctx context.Context, o apikeyOptions, id string, stdout io.Writer) (int, error) {
	if !mgmtapi.ValidKeyID(id) {
		if kid, ok := mgmtapi.ParseKeyID(id); ok {
			return 1, fmt.Errorf("give the key's ID (%s), not the key; `apikey list` shows the IDs", kid)
		}
		return 1, fmt.Errorf("%q is not a key ID (16 characters a-z, 2-7); `apikey list` shows the IDs", id)
	}
	cs, err := o.openStore(ctx)
	if err != nil {
		return 1, err
	}
	defer cs.close()
	k, err := cs.st.RevokeAPIKey(ctx, id, o.clock())
	if errors.Is(err, store.ErrNotFound) {
		err = fmt.Errorf("no API key %s in the store", id)
	} else if err != nil {
		err = fmt.Errorf("revoking the key: %w", err)
	}
	auditCLI(cs.audit, "apikey.revoke", err, zap.String("object", id))
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "API key %s revoked (%s).\n", k.ID, describeKey(k))
	return 0, nil
}
