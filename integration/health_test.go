package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

// TestHealth_IssuerAnswersHealthAndOwnsItsPath: GET <issuer>/healthz says
// whether the store answers and which key signs. An issuer with a path owns
// everything under it (404 for what is not an endpoint, not an empty 200
// from whatever follows); an issuer at the root of a site it shares leaves
// every other path to the site.
func TestHealth_IssuerAnswersHealthAndOwnsItsPath(t *testing.T) {
	dir := t.TempDir()
	rootPort, pathPort := freePort(t), freePort(t)
	root := fmt.Sprintf("http://127.0.0.1:%d", rootPort)
	withPath := fmt.Sprintf("http://localhost:%d/auth", pathPort)
	startCaddy(t, fmt.Sprintf(`{
	gatehouse {
		store sqlite %s
		domain {
			issuer %s
		}
		domain acme {
			issuer %s
		}
	}
}

%s {
	gatehouse_issuer
	respond "the site" 200
}

http://localhost:%d {
	gatehouse_issuer acme
	respond "the other site" 200
}
`, filepath.Join(dir, "gh.db"), root, withPath, root, pathPort))

	for _, iss := range []string{root, withPath} {
		resp, body := do(t, nil, "GET", iss+"/healthz", nil)
		var h map[string]string
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("%s/healthz: %d %q", iss, resp.StatusCode, body)
		}
		if resp.StatusCode != 200 || h["status"] != "ok" || h["store"] != "ok" || h["signing_key"] == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s/healthz: %d %q", iss, resp.StatusCode, body)
		}
	}
	for _, c := range []struct {
		url, body string
		status    int
	}{
		{root + "/nope", "the site", 200},             // the root issuer shares its site
		{root + "/", "the site", 200},                 //
		{withPath + "/nope", "", 404},                 // under the issuer's path: the issuer's 404
		{withPath, "", 404},                           //
		{withPath + "x/token", "the other site", 200}, // beside it: the site
		{fmt.Sprintf("http://localhost:%d/other", pathPort), "the other site", 200},
	} {
		resp, body := do(t, nil, "GET", c.url, nil)
		if resp.StatusCode != c.status || (c.body != "" && body != c.body) {
			t.Errorf("GET %s: %d %q, want %d %q", c.url, resp.StatusCode, body, c.status, c.body)
		}
	}
}
