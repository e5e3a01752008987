package module

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("gatehouse_api", parseAPIDirective)
	httpcaddyfile.RegisterDirectiveOrder("gatehouse_api", httpcaddyfile.Before, "basic_auth")
}

// parseAPIDirective parses `gatehouse_api`, which takes no arguments: the
// API serves every domain of the gatehouse global option, and the store it
// names.
func parseAPIDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	h.Next() // directive name
	if h.NextArg() {
		return nil, h.Errf("unexpected %q; write `gatehouse_api` alone (the API serves every domain; keys choose which one they reach)", h.Val())
	}
	if h.NextBlock(0) {
		return nil, h.Err("gatehouse_api takes no block; configure domains and the store in the gatehouse global option")
	}
	return new(APIHandler), nil
}
