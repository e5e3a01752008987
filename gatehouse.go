// Package gatehouse is what `xcaddy build --with github.com/gatehouse-auth/gatehouse`
// imports: it plugs Gatehouse's Caddy modules (the gatehouse app, the
// gatehouse_issuer and gatehouse handlers, the gatehouse_policy matcher, the
// store modules and the `caddy gatehouse` command) into the Caddy binary.
// The code lives in ./module.
package gatehouse

import (
	// Registers the Gatehouse Caddy modules.
	_ "github.com/gatehouse-auth/gatehouse/module"
)
