package bearer

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWycheproofKeysAreRejectedForTheRightReason(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(wycheproofDir, "json_web_key_test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"jws_rsa_roca_key":  "ROCA",
		"keysize_too_small": "RSA key size 1024",
		"exponentOne":       "bad e value", // go-jose refuses e=1 before checkPublicKey (which also would)
		"wrong_algorithm":   `"ES521"`,
		"invalid_algorithm": `"ES224"`,
		"invalid_use":       `use "enc"`,
		"invalid_point":     "not on",
		"wrong_curve":       "wrong length",
		"HS256":             "symmetric",
		"jws_duplicate_kid": "symmetric",
	}
	seen := 0
	for _, g := range f.TestGroups {
		w, ok := want[g.Comment]
		if !ok {
			continue
		}
		doc := g.Public
		if len(doc) == 0 {
			doc = g.Private
		}
		_, err := ParseStaticKeys(doc)
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("group %s: want error containing %q, got %v", g.Comment, w, err)
		}
		seen++
	}
	if seen < len(want) {
		t.Fatalf("only %d of %d groups found", seen, len(want))
	}
}

func TestParseJWKS(t *testing.T) {
	k := keysForTest(t)
	t.Run("duplicate kids are dropped as ambiguous", func(t *testing.T) {
		doc := jwksJSON(t, jwk(k.ec256, "same", ""), jwk(k.ec384, "same", ""), jwk(k.ed, "ed", ""))
		keys, skipped, err := ParseJWKS(doc)
		if err != nil || len(keys) != 1 || keys[0].KeyID != "ed" || len(skipped) != 2 {
			t.Fatalf("keys=%d skipped=%v err=%v", len(keys), skipped, err)
		}
	})
	t.Run("private key material is skipped", func(t *testing.T) {
		priv, _ := json.Marshal(map[string]any{"keys": []any{jwkPrivateJSON(t, k)}})
		keys, skipped, err := ParseJWKS(priv)
		if err != nil || len(keys) != 0 || len(skipped) != 1 || !strings.Contains(skipped[0], "private") {
			t.Fatalf("keys=%d skipped=%v err=%v", len(keys), skipped, err)
		}
	})
	t.Run("encryption keys are skipped without failing the set", func(t *testing.T) {
		enc := jwk(k.rsa, "enc", "")
		enc.Use = "enc"
		keys, skipped, err := ParseJWKS(jwksJSON(t, enc, jwk(k.ec256, "sig", "")))
		if err != nil || len(keys) != 1 || keys[0].KeyID != "sig" || len(skipped) != 1 {
			t.Fatalf("keys=%d skipped=%v err=%v", len(keys), skipped, err)
		}
	})
	t.Run("a document without keys is an error", func(t *testing.T) {
		if _, _, err := ParseJWKS([]byte(`{"kty":"EC"}`)); err == nil {
			t.Fatal("want error")
		}
		if _, _, err := ParseJWKS([]byte(`nope`)); err == nil {
			t.Fatal("want error")
		}
	})
}

func jwkPrivateJSON(t *testing.T, k *testKeyring) json.RawMessage {
	b, err := json.Marshal(jwk(k.ec256, "p", ""))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	m["d"] = "AAAA"
	b, _ = json.Marshal(m)
	return b
}

func TestLoadPublicKeyFile(t *testing.T) {
	k := keysForTest(t)
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	pemFile := filepath.Join(dir, "rsa.pem")
	os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	ks, err := LoadPublicKeyFile(pemFile)
	if err != nil {
		t.Fatal(err)
	}
	// A PEM key has no kid, so it is a candidate for any kid.
	if got, _ := ks.Keys(context.Background(), "whatever"); len(got) != 1 {
		t.Fatalf("PEM key not selected for an arbitrary kid: %d", len(got))
	}
	v, err := NewValidator(Config{Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"RS256"}}, ks)
	if err != nil {
		t.Fatal(err)
	}
	c := claimsAt(newClock().Now())
	v.now = newClock().Now
	if _, err := v.Validate(context.Background(), signRaw(t, hdr("RS256", "k1"), c, k.rsa)); err != nil {
		t.Fatalf("PEM-configured key does not verify: %v", err)
	}

	jwkFile := filepath.Join(dir, "single.jwk")
	b, _ := json.Marshal(jwk(k.ed, "ed", "EdDSA"))
	os.WriteFile(jwkFile, b, 0o600)
	if ks, err := LoadPublicKeyFile(jwkFile); err != nil || len(ks.All()) != 1 {
		t.Fatalf("single JWK: %v", err)
	}

	for name, content := range map[string]string{
		"private.pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"empty.pem":   "",
		"garbage":     "hello",
		"hmac.jwks":   `{"keys":[{"kty":"oct","k":"AAAA"}]}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := LoadPublicKeyFile(p); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if _, err := LoadPublicKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: want error")
	}
}

func TestCheckPublicKey(t *testing.T) {
	k := keysForTest(t)
	weak := k.rsa.PublicKey
	weak.E = 1
	if err := checkPublicKey(&weak, ""); err == nil || !strings.Contains(err.Error(), "exponent") {
		t.Fatalf("e=1 accepted: %v", err)
	}
	even := k.rsa.PublicKey
	even.E = 65536
	if err := checkPublicKey(&even, ""); err == nil {
		t.Fatal("even exponent accepted")
	}
	if err := checkPublicKey(&k.rsa.PublicKey, "ES256"); err == nil {
		t.Fatal("RSA key labelled ES256 accepted")
	}
	if err := checkPublicKey(&k.ec256.PublicKey, "RS256"); err == nil || !strings.Contains(err.Error(), "RS256") {
		t.Fatalf("EC key labelled RS256 accepted: %v", err)
	}
	if err := checkPublicKey([]byte("secret"), ""); err == nil {
		t.Fatal("symmetric key accepted")
	}
	if err := checkPublicKey(&k.rsa.PublicKey, "PS384"); err != nil {
		t.Fatalf("RSA key labelled PS384 refused: %v", err)
	}
	if rocaVulnerable(k.rsa.N) || rocaVulnerable(k.rsa2.N) {
		t.Fatal("ROCA false positive on a freshly generated key")
	}
}
