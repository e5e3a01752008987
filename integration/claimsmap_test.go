package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"
)

// TestClaimsMap_TransformsLocalUsersBeforeTokensAndPolicies: a domain's
// claim map rewrites the users' claims; the tokens carry the result and the
// client's policy is evaluated against it.
func TestClaimsMap_TransformsLocalUsersBeforeTokensAndPolicies(t *testing.T) {
	dir := t.TempDir()
	mapFile := writeFile(t, dir, "claims.yaml", `mode: merge
transformations:
  - source: groups
    target: roles
    map:
      admins: administrator
      dev: developer
    unmapped: drop
  - source: groups
    remove: true
  - target: idp
    value: local
`)
	issuerPort, rpPort := freePort(t), freePort(t)
	issuer := fmt.Sprintf("http://127.0.0.1:%d", issuerPort)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/cb", rpPort)
	startCaddy(t, fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer %s
			claims_map %s
			user alice {
				email alice@example.com
				password_hash %s
				claims {
					groups admins dev
				}
			}
			user bob {
				password_hash %s
				claims {
					groups dev
				}
			}
			client app {
				secret app-secret-0123456789abcdef
				redirect_uris %s
				policies administrators
			}
			policy administrators {
				all {
					rule {
						claim roles
						in administrator
					}
				}
			}
		}
	}
}

%s {
	gatehouse_issuer
}`, filepath.Join(dir, "gh.db"), issuer, mapFile, bcryptHash(t, testPassword), bcryptHash(t, testPassword), redirect, issuer))

	conf := oauth2.Config{ClientID: "app", ClientSecret: "app-secret-0123456789abcdef", RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/token"}, Scopes: []string{"openid", "email"}}
	v := oauth2.GenerateVerifier()
	back := signIn(t, browser(t), conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "alice", testPassword)
	tok, err := conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	id := jwtClaims(t, tok.Extra("id_token").(string))
	roles, _ := id["roles"].([]any)
	if len(roles) != 2 || roles[0] != "administrator" || roles[1] != "developer" || id["idp"] != "local" || id["groups"] != nil {
		t.Fatalf("ID token claims after the claim map: %v", id)
	}
	// bob's transformed claims (roles [developer]) do not satisfy the policy.
	denied := signIn(t, browser(t), conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(v)), "bob", testPassword)
	if denied.Query().Get("error") != "access_denied" {
		t.Fatalf("bob should be denied by the policy on transformed claims: %s", denied)
	}
}
