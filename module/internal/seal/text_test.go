package seal

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSealedTextRoundTripsAndExpires(t *testing.T) {
	clk := &clock{t0}
	s := mustSealer(t, mustKeys(t, secret(1)), Config{Now: clk.Now, Purpose: "login-transaction", MaxAge: 15 * time.Minute})
	type tx struct {
		ID    string            `json:"i"`
		State map[string]string `json:"s"`
	}
	in := tx{ID: "r1", State: map[string]string{"stage": "code"}}
	sealed, err := s.SealText(in, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(sealed, "+/ ") || strings.Contains(sealed, "r1") {
		t.Fatalf("sealed text %q is not URL-safe or shows its content", sealed)
	}
	var out tx
	if err := s.OpenText(sealed, &out); err != nil || out.ID != "r1" || out.State["stage"] != "code" {
		t.Fatalf("OpenText = %v, %+v", err, out)
	}
	clk.now = t0.Add(5 * time.Minute)
	if err := s.OpenText(sealed, &out); !errors.Is(err, ErrExpired) {
		t.Fatalf("at its expiry: %v, want ErrExpired", err)
	}
	// The expiry is capped to now+MaxAge: a caller cannot seal for longer.
	clk.now = t0
	long, err := s.SealText(in, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clk.now = t0.Add(15 * time.Minute)
	if err := s.OpenText(long, &out); !errors.Is(err, ErrExpired) {
		t.Fatalf("past MaxAge: %v, want ErrExpired", err)
	}
	clk.now = t0
	if _, err := s.SealText(in, t0.Add(-time.Second)); err == nil {
		t.Fatal("sealed with a past expiry")
	}
}

func TestSealedTextRejects(t *testing.T) {
	clk := &clock{t0}
	k := mustKeys(t, secret(1))
	s := mustSealer(t, k, Config{Now: clk.Now, Purpose: "login-transaction"})
	sealed, err := s.SealText("v", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 1
	for name, tc := range map[string]struct {
		s     *Sealer
		value string
	}{
		"empty":                   {s, ""},
		"oversized":               {s, strings.Repeat("A", MaxTextSize+1)},
		"tampered":                {s, string(flipped)},
		"not base64":              {s, "%%%"},
		"another purpose":         {mustSealer(t, k, Config{Now: clk.Now, Purpose: "logout-hint"}), sealed},
		"another name":            {mustSealer(t, k, Config{Now: clk.Now, Purpose: "login-transaction", Name: "other"}), sealed},
		"an unknown secret":       {mustSealer(t, mustKeys(t, secret(2)), Config{Now: clk.Now, Purpose: "login-transaction"}), sealed},
		"a cookie of the purpose": {s, "1." + sealed},
		"with a line break":       {s, sealed[:8] + "\n" + sealed[8:]},
		"without its padding":     {s, strings.TrimRight(sealed, "=")},
	} {
		var out string
		if err := tc.s.OpenText(tc.value, &out); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: OpenText = %v, want ErrInvalid", name, err)
		}
	}
	// A rotated-in secret still opens what the previous one sealed.
	rotated := mustSealer(t, mustKeys(t, secret(2), secret(1)), Config{Now: clk.Now, Purpose: "login-transaction"})
	var out string
	if err := rotated.OpenText(sealed, &out); err != nil || out != "v" {
		t.Fatalf("after rotation: %v %q", err, out)
	}
	if _, err := s.SealText(strings.Repeat("x", MaxTextSize), time.Time{}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized value sealed: %v", err)
	}
}
