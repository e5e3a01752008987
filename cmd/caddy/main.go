// Command caddy is the Caddy binary with Gatehouse built in: the same main
// that xcaddy generates for `xcaddy build --with github.com/gatehouse-auth/gatehouse`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy modules here
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/gatehouse-auth/gatehouse"
)

func main() {
	caddycmd.Main()
}
