package identity

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argonHash builds a hash exactly the way `caddy hash-password --algorithm
// argon2id` prints it (caddyauth.Argon2idHash.Hash), with small parameters.
func argonHash(password string, salt []byte, m, t uint32, p uint8) string {
	key := argon2.IDKey([]byte(password), salt, t, m, p, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestVerifyPassword(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	ar := argonHash("s3cret", []byte("0123456789abcdef"), 64, 1, 1)
	cases := []struct {
		name, hash, password string
		ok, err              bool
	}{
		{"bcrypt 2a matches", string(bc), "s3cret", true, false},
		{"bcrypt wrong password", string(bc), "S3cret", false, false},
		{"bcrypt 2b prefix", strings.Replace(string(bc), "$2a$", "$2b$", 1), "s3cret", true, false},
		{"bcrypt 2y prefix", strings.Replace(string(bc), "$2a$", "$2y$", 1), "s3cret", true, false},
		{"argon2id matches", ar, "s3cret", true, false},
		{"argon2id wrong password", ar, "s3cre", false, false},
		{"argon2id caddy anti-timing hash", "$argon2id$v=19$m=47104,t=1,p=1$P2nzckEdTZ3bxCiBCkRTyA$xQL3Z32eo5jKl7u5tcIsnEKObYiyNZQQf5/4sAau6Pg", "antitiming", true, false},
		{"argon2i is refused", strings.Replace(ar, "argon2id", "argon2i", 1), "s3cret", false, true},
		{"wrong version", strings.Replace(ar, "v=19", "v=16", 1), "s3cret", false, true},
		{"padded base64", ar + "=", "s3cret", false, true},
		{"huge memory", strings.Replace(ar, "m=64", "m=99999999", 1), "s3cret", false, true},
		{"plain text is not a hash", "s3cret", "s3cret", false, true},
		{"empty hash", "", "", false, true},
		{"overlong password", string(bc), strings.Repeat("x", MaxPasswordLength+1), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "argon2id caddy anti-timing hash" && testing.Short() {
				return
			}
			ok, err := VerifyPassword(c.hash, c.password)
			if ok != c.ok || (err != nil) != c.err {
				t.Fatalf("VerifyPassword = %v, %v; want %v, err=%v", ok, err, c.ok, c.err)
			}
		})
	}
}

func TestValidatePasswordHashNamesTheFix(t *testing.T) {
	for _, h := range []string{"plain", "$argon2id$v=19$m=64,t=1$x$y", "$2a$99$short"} {
		err := ValidatePasswordHash(h)
		if err == nil || !strings.Contains(err.Error(), "hash-password") {
			t.Errorf("%q: %v", h, err)
		}
	}
}

const testClientSecret = "0123456789abcdef0123"

func validClient() *Client {
	return &Client{ID: "web", Type: Confidential, SecretHash: HashSecret(testClientSecret), GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
		RedirectURIs:    []string{"https://app.example.com/cb", "http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb"},
		AllowLocalLogin: true, RequirePKCE: true}
}

func TestClientValidate(t *testing.T) {
	if err := validClient().Validate(); err != nil {
		t.Fatalf("valid client: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*Client)
		want   string
	}{
		{"redirect with query", func(c *Client) { c.RedirectURIs = []string{"https://a.example/cb?x=1"} }, "query string"},
		{"redirect with empty query", func(c *Client) { c.RedirectURIs = []string{"https://a.example/cb?"} }, "query string"},
		{"redirect with fragment", func(c *Client) { c.RedirectURIs = []string{"https://a.example/cb#f"} }, "fragment"},
		{"redirect over http", func(c *Client) { c.RedirectURIs = []string{"http://a.example/cb"} }, "use https"},
		{"redirect relative", func(c *Client) { c.RedirectURIs = []string{"/cb"} }, "absolute"},
		{"redirect custom scheme", func(c *Client) { c.RedirectURIs = []string{"myapp://cb"} }, "scheme"},
		{"redirect wildcard", func(c *Client) { c.RedirectURIs = []string{"https://*.example.com/cb"} }, "wildcard"},
		{"redirect userinfo", func(c *Client) { c.RedirectURIs = []string{"https://u@a.example/cb"} }, "user info"},
		{"no redirect for code flow", func(c *Client) { c.RedirectURIs = nil }, "redirect_uri"},
		{"public client with secret", func(c *Client) { c.Type = Public }, "public client has no secret"},
		{"confidential without secret", func(c *Client) { c.SecretHash = "" }, "needs a client_secret"},
		{"plaintext where the hash belongs", func(c *Client) { c.SecretHash = testClientSecret }, "secret hash is malformed"},
		{"unknown type", func(c *Client) { c.Type = "spa" }, "public"},
		{"implicit grant", func(c *Client) { c.GrantTypes = []string{"implicit"} }, "not offered"},
		{"password grant", func(c *Client) { c.GrantTypes = []string{"password"} }, "not offered"},
		{"unknown grant", func(c *Client) { c.GrantTypes = []string{"device_code"} }, "not known"},
		{"no grants", func(c *Client) { c.GrantTypes = nil }, "no grant types"},
		{"client_credentials for public", func(c *Client) {
			c.Type, c.SecretHash, c.GrantTypes = Public, "", []string{GrantClientCredentials}
		}, "confidential"},
		{"refresh without code", func(c *Client) { c.GrantTypes = []string{GrantClientCredentials, GrantRefreshToken} }, "refresh_token needs authorization_code"},
		{"no way to sign in", func(c *Client) { c.AllowLocalLogin = false }, "allow_local_login"},
		{"negative lifetime", func(c *Client) { c.AccessTokenLifetime = -time.Second }, "access_token_lifetime is negative"},
		{"too long ID token", func(c *Client) { c.IDTokenLifetime = 48 * time.Hour }, "id_token_lifetime 48h0m0s is too long"},
		{"too short refresh", func(c *Client) { c.RefreshTokenLifetime = time.Second }, "too short"},
		{"bad origin", func(c *Client) { c.AllowedOrigins = []string{"https://a.example/path"} }, "not an origin"},
		{"bad scope", func(c *Client) { c.Scopes = []string{"a b"} }, "scope"},
		{"bad post logout", func(c *Client) { c.PostLogoutRedirectURIs = []string{"http://evil.example/"} }, "post_logout_redirect_uri"},
		{"duplicate grant", func(c *Client) { c.GrantTypes = append(c.GrantTypes, GrantRefreshToken) }, "twice"},
		{"back-channel logout over http", func(c *Client) { c.BackchannelLogoutURI = "http://app.example.com/logout" }, "must use https"},
		{"back-channel logout with fragment", func(c *Client) { c.BackchannelLogoutURI = "https://app.example.com/logout#x" }, "fragment"},
		{"back-channel logout relative", func(c *Client) { c.BackchannelLogoutURI = "/logout" }, "absolute"},
		{"back-channel logout for a machine client", func(c *Client) {
			c.GrantTypes, c.RedirectURIs, c.BackchannelLogoutURI = []string{GrantClientCredentials}, nil, "https://app.example.com/logout"
		}, "only applies to clients that sign users in"},
		{"session required without a back-channel URI", func(c *Client) { c.BackchannelLogoutSessionRequired = true }, "needs a backchannel_logout_uri"},
	}
	ok := validClient()
	ok.BackchannelLogoutURI, ok.BackchannelLogoutSessionRequired = "https://app.example.com/backchannel?tenant=1", true
	if err := ok.Validate(); err != nil {
		t.Fatalf("a back-channel logout URI with a query: %v", err)
	}
	ok.BackchannelLogoutURI = "http://127.0.0.1:8080/backchannel"
	if err := ok.Validate(); err != nil {
		t.Fatalf("a loopback http back-channel logout URI: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := validClient()
			c.mutate(cl)
			err := cl.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `client "web"`) {
				t.Fatalf("error %v, want it to name the client and contain %q", err, c.want)
			}
		})
	}
}

func TestClientSecretStrength(t *testing.T) {
	if err := CheckSecretStrength("short"); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short secret: %v", err)
	}
	if err := CheckSecretStrength(testClientSecret); err != nil {
		t.Fatalf("a 20-character secret: %v", err)
	}
}

func TestClientSecretMatchesIsExact(t *testing.T) {
	c := validClient()
	if !c.SecretMatches(testClientSecret) || c.SecretMatches(testClientSecret+"x") || c.SecretMatches("") || c.SecretMatches(testClientSecret[:10]) {
		t.Fatal("SecretMatches is not exact")
	}
	// The hash itself is not the secret.
	if c.SecretMatches(c.SecretHash) {
		t.Fatal("the secret hash was accepted as the secret")
	}
	if h := HashSecret(testClientSecret); !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+43 || strings.Contains(h, testClientSecret) {
		t.Fatalf("HashSecret = %q", h)
	}
	pub := &Client{ID: "p", Type: Public}
	if pub.SecretMatches("") {
		t.Fatal("a client without a secret matched the empty secret")
	}
}

func TestClientDefaults(t *testing.T) {
	c := validClient()
	if c.AccessLifetime() != DefaultAccessTokenLifetime || c.IDLifetime() != DefaultIDTokenLifetime || c.RefreshLifetime() != DefaultRefreshTokenLifetime {
		t.Fatal("defaults")
	}
	if !c.PKCERequired() || !(&Client{Type: Public}).PKCERequired() || (&Client{Type: Confidential}).PKCERequired() {
		t.Fatal("PKCERequired")
	}
	if !c.MayRequestScope("openid") || c.MayRequestScope("admin") {
		t.Fatal("MayRequestScope")
	}
}

func testDomain() *Domain {
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	return &Domain{DomainSettings: DomainSettings{Name: "d", Issuer: "https://auth.example.com"},
		Users: []*User{
			{Subject: "1", PreferredUsername: "Alice", Email: "Alice@Example.com", Active: true, PasswordHash: string(bc)},
			{Subject: "2", PreferredUsername: "bob", Email: "bob@example.com", Active: false, PasswordHash: string(bc)},
			{Subject: "3", PreferredUsername: "nopw", Active: true},
		},
		Clients: []*Client{validClient()},
	}
}

func TestDomainCompileLookups(t *testing.T) {
	d := testDomain()
	if err := d.Compile(); err != nil {
		t.Fatal(err)
	}
	if d.UserBySubject("1") == nil || d.UserByUsername("alice") == nil || d.UserByEmail("ALICE@example.COM") == nil {
		t.Fatal("lookups")
	}
	if d.UserByLogin("alice@example.com") != d.UserBySubject("1") || d.UserByLogin("BOB") != d.UserBySubject("2") {
		t.Fatal("UserByLogin")
	}
	if d.Client("web") == nil || d.Client("nope") != nil {
		t.Fatal("Client")
	}
}

func TestDomainCompileRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Domain)
		want   string
	}{
		{"duplicate subject", func(d *Domain) { d.Users[1].Subject = "1" }, "used twice"},
		{"duplicate username any case", func(d *Domain) { d.Users[1].PreferredUsername = "ALICE" }, "same username"},
		{"duplicate email any case", func(d *Domain) { d.Users[1].Email = "alice@example.com" }, "same email"},
		{"username equals another email", func(d *Domain) { d.Users[2].PreferredUsername = "bob@example.com" }, "ambiguous"},
		{"duplicate client", func(d *Domain) { d.Clients = append(d.Clients, validClient()) }, "used twice"},
		{"bad hash", func(d *Domain) { d.Users[0].PasswordHash = "secret" }, "hash-password"},
		{"reserved claim", func(d *Domain) { d.Users[0].Claims = []CustomClaim{{Name: "sub", Value: "x", In: ClaimAccess}} }, "set by the issuer"},
		{"claim without token", func(d *Domain) { d.Users[0].Claims = []CustomClaim{{Name: "role", Value: "x"}} }, "must be marked"},
		{"missing subject", func(d *Domain) { d.Users[0].Subject = "" }, "no sub"},
		{"issuer trailing slash", func(d *Domain) { d.Issuer += "/" }, "trailing slash"},
		{"issuer http", func(d *Domain) { d.Issuer = "http://auth.example.com" }, "https"},
		{"issuer query", func(d *Domain) { d.Issuer += "?x=1" }, "query"},
		{"invalid client", func(d *Domain) { d.Clients[0].SecretHash = "" }, "client_secret"},
		// A client_credentials token's sub is the client id: a client named
		// like a user's sub would be that user to an upstream.
		{"client id equal to a user's sub", func(d *Domain) { d.Clients[0].ID = "2" }, `client_id "2" is also the sub of user "bob"`},
		{"client claim gty", func(d *Domain) {
			d.Users[0].Claims = []CustomClaim{{Name: "gty", Value: "client_credentials", In: ClaimAccess}}
		}, "set by the issuer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := testDomain()
			c.mutate(d)
			err := d.Compile()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if err := (&Domain{DomainSettings: DomainSettings{Issuer: "http://127.0.0.1:8080/auth"}}).Compile(); err != nil {
		t.Fatalf("loopback http issuer: %v", err)
	}
}

func TestCheckPassword(t *testing.T) {
	d := testDomain()
	if err := d.Compile(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		login, password string
		want            error
	}{
		{"alice", "pw", nil},
		{"ALICE@example.com", "pw", nil},
		{"alice", "nope", ErrWrongPassword},
		{"bob", "pw", ErrInactive},
		{"bob", "nope", ErrWrongPassword}, // disabled is only revealed after a correct password
		{"nopw", "pw", ErrNoPassword},
		{"mallory", "pw", ErrUnknownUser},
	}
	for _, c := range cases {
		u, err := d.CheckPassword(c.login, c.password)
		if err != c.want {
			t.Errorf("%s/%s: %v, want %v", c.login, c.password, err, c.want)
		}
		if c.want == nil && u == nil {
			t.Errorf("%s: no user", c.login)
		}
	}
}

func FuzzParseArgon2id(f *testing.F) {
	f.Add("$argon2id$v=19$m=47104,t=1,p=1$P2nzckEdTZ3bxCiBCkRTyA$xQL3Z32eo5jKl7u5tcIsnEKObYiyNZQQf5/4sAau6Pg")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Add("$argon2id$v=19$m=99999999999,t=1,p=1$AAAA$AAAA")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseArgon2id(h)
		if err != nil {
			return
		}
		if p.memory > maxArgonMemoryKiB || p.time > maxArgonTime || p.threads == 0 || len(p.key) < 16 || len(p.salt) < 8 {
			t.Fatalf("out-of-range parameters accepted: %+v", p)
		}
	})
}

func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{"https://a.example/cb", "http://localhost:3000/cb", "http://a.example/cb", "https://a.example/cb?x", "javascript:alert(1)", "//a.example/cb", "https://a.example/cb#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateRedirectURI(s) != nil {
			return
		}
		if strings.ContainsAny(s, "?#*") || !(strings.HasPrefix(strings.ToLower(s), "https://") || strings.HasPrefix(strings.ToLower(s), "http://")) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Fatalf("hash %q is not argon2id with caddy hash-password's parameters", h)
	}
	if err := ValidatePasswordHash(h); err != nil {
		t.Fatal(err)
	}
	if ok, err := VerifyPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("the password does not verify: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(h, "correct horse batterY"); ok {
		t.Fatal("another password verified")
	}
	if h2, _ := HashPassword("correct horse battery"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "short", "sieben7", strings.Repeat("x", MaxPasswordLength+1), "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"} {
		if _, err := HashPassword(bad); err == nil {
			t.Errorf("HashPassword(%q) succeeded", bad)
		}
	}
	if _, err := HashPassword("äöüßäöüß"); err != nil {
		t.Errorf("eight non-ASCII characters: %v", err)
	}
}
