package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	kid        = "bench-1"
	unknownKID = "bench-unknown"
)

type minter struct {
	key      *rsa.PrivateKey
	kid      string
	issuer   string
	audience string
	scope    string
}

type claims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Nbf      int64  `json:"nbf"`
	Iat      int64  `json:"iat"`
	JTI      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

var b64 = base64.RawURLEncoding

// mint signs one token issued at iat and expiring at exp.
func (m *minter) mint(sub string, iat, exp time.Time) (string, error) {
	hb, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": m.kid})
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	pb, err := json.Marshal(claims{Iss: m.issuer, Sub: sub, Aud: m.audience, Exp: exp.Unix(), Nbf: iat.Unix(), Iat: iat.Unix(),
		JTI: hex.EncodeToString(jti[:]), ClientID: "bench-client", Scope: m.scope})
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(pb)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, m.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// mintMany signs n tokens on every core. sub(i) names the subject of token i.
// With a non-zero deadline it stops early and returns the tokens signed so far
// (a prefix of the n).
func (m *minter) mintMany(n int, sub func(int) string, iat, exp, deadline time.Time) ([]string, error) {
	out := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.NumCPU())
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t, err := m.mint(sub(i), iat, exp)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = t
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out[:min(int(next.Load()), n)], nil
}

func writeLines(path string, lines []string) error {
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

func loadKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return x509.ParsePKCS1PrivateKey(block.Bytes)
}

// jwks renders the public key as a JWK Set with one RS256 signing key.
func jwks(pub *rsa.PublicKey, kid string) ([]byte, error) {
	e := big2b64(int64(pub.E))
	return json.MarshalIndent(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": b64.EncodeToString(pub.N.Bytes()), "e": e,
	}}}, "", "  ")
}

func big2b64(v int64) string {
	var b []byte
	for ; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	return b64.EncodeToString(b)
}

// badSignature changes one character in the middle of the signature, keeping
// the token well-formed base64url.
func badSignature(tok string) string {
	i := strings.LastIndexByte(tok, '.') + (len(tok)-strings.LastIndexByte(tok, '.'))/2
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// garbage returns a bearer value that is not a JWT: random base64url parts, a
// plain word, or two dots around junk.
func garbage(r *mrand.Rand, i int) string {
	rnd := func(n int) string {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b64.EncodeToString(b)
	}
	switch i % 3 {
	case 0:
		return rnd(30) + "." + rnd(200) + "." + rnd(256)
	case 1:
		return fmt.Sprintf("garbage-%d-%s", i, rnd(12))
	default:
		return "eyJhbGciOiJSUzI1NiJ9." + rnd(60) + "!." + rnd(20)
	}
}

func main() {
	dir := flag.String("dir", "", "directory for keys and token files (required)")
	doInit := flag.Bool("init", false, "create the key pair, jwks.json, repeated.txt and mixed.txt")
	unique := flag.Int("unique", 0, "mint this many distinct valid tokens into unique.txt")
	issuer := flag.String("issuer", "https://issuer.bench.gatehouse.test", "iss of the tokens")
	audience := flag.String("audience", "https://api.bench.gatehouse.test", "aud of the tokens")
	scope := flag.String("scope", "orders:read orders:write", "scope of the tokens")
	lifetime := flag.Duration("lifetime", 2*time.Hour, "lifetime of the valid tokens")
	mixedBlocks := flag.Int("mixed-blocks", 50, "blocks of 100 requests in mixed.txt")
	validPool := flag.Int("valid-pool", 1000, "distinct valid tokens cycled through by mixed.txt")
	budget := flag.Duration("budget", 0, "with -unique: stop signing after this long (0: no limit)")
	flag.Parse()
	if *dir == "" || (!*doInit && *unique <= 0) {
		flag.Usage()
		os.Exit(2)
	}
	now := time.Now()
	keyPath := filepath.Join(*dir, "key.pem")
	if *doInit {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			log.Fatal(err)
		}
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
			log.Fatal(err)
		}
		doc, err := jwks(&key.PublicKey, kid)
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*dir, "jwks.json"), doc, 0o644); err != nil {
			log.Fatal(err)
		}
		m := &minter{key: key, kid: kid, issuer: *issuer, audience: *audience, scope: *scope}
		rep, err := m.mint("user-repeated", now, now.Add(*lifetime))
		if err != nil {
			log.Fatal(err)
		}
		if err := writeLines(filepath.Join(*dir, "repeated.txt"), []string{rep}); err != nil {
			log.Fatal(err)
		}

		blocks := *mixedBlocks
		valid, err := m.mintMany(*validPool, func(i int) string { return fmt.Sprintf("user-%d", i) }, now, now.Add(*lifetime), time.Time{})
		if err != nil {
			log.Fatal(err)
		}
		expired, err := m.mintMany(10*blocks, func(i int) string { return fmt.Sprintf("expired-%d", i) }, now.Add(-3*time.Hour), now.Add(-2*time.Hour), time.Time{})
		if err != nil {
			log.Fatal(err)
		}
		um := &minter{key: other, kid: unknownKID, issuer: *issuer, audience: *audience, scope: *scope}
		unknown, err := um.mintMany(3*blocks, func(i int) string { return fmt.Sprintf("unknown-%d", i) }, now, now.Add(*lifetime), time.Time{})
		if err != nil {
			log.Fatal(err)
		}
		r := mrand.New(mrand.NewPCG(1, 2))
		var mixed []string
		var vi, ei, bi, ui, gi int
		for range blocks {
			var block []string
			for range 80 {
				block = append(block, valid[vi%len(valid)])
				vi++
			}
			for range 10 {
				block = append(block, expired[ei])
				ei++
			}
			for range 5 {
				block = append(block, badSignature(valid[(bi*7919)%len(valid)]))
				bi++
			}
			for range 3 {
				block = append(block, unknown[ui])
				ui++
			}
			for range 2 {
				block = append(block, garbage(r, gi))
				gi++
			}
			r.Shuffle(len(block), func(i, j int) { block[i], block[j] = block[j], block[i] })
			mixed = append(mixed, block...)
		}
		if err := writeLines(filepath.Join(*dir, "mixed.txt"), mixed); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("tokens: key, jwks.json, repeated.txt, mixed.txt (%d lines) in %s (%.1fs)\n", len(mixed), *dir, time.Since(now).Seconds())
	}
	if *unique > 0 {
		key, err := loadKey(keyPath)
		if err != nil {
			log.Fatalf("tokens: %v (run with -init first)", err)
		}
		key.Precompute()
		m := &minter{key: key, kid: kid, issuer: *issuer, audience: *audience, scope: *scope}
		start := time.Now()
		var deadline time.Time
		if *budget > 0 {
			deadline = start.Add(*budget)
		}
		toks, err := m.mintMany(*unique, func(i int) string { return fmt.Sprintf("user-%d", i) }, now, now.Add(*lifetime), deadline)
		if err != nil {
			log.Fatal(err)
		}
		if err := writeLines(filepath.Join(*dir, "unique.txt"), toks); err != nil {
			log.Fatal(err)
		}
		el := time.Since(start)
		fmt.Printf("tokens: %d unique tokens in %.1fs (%.0f signatures/s)\n", len(toks), el.Seconds(), float64(len(toks))/el.Seconds())
		if len(toks) < *unique {
			fmt.Printf("tokens: the %s budget ran out before %d tokens; runs cycle through the %d minted\n", *budget, *unique, len(toks))
		}
	}
}
