package sqlstore

import (
	"fmt"
	"testing"
)

func TestParsePGArray(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{}`, nil},
		{`{a}`, []string{"a"}},
		{`{openid,profile,email}`, []string{"openid", "profile", "email"}},
		{`{"",NULLx,"NULL"}`, []string{"", "NULLx", "NULL"}},
		{`{"a \"quoted\" word","back\\slash","comma,separated","{braces}"," padded "}`,
			[]string{`a "quoted" word`, `back\slash`, "comma,separated", "{braces}", " padded "}},
	} {
		got, err := parsePGArray(tc.in)
		if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("parsePGArray(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{``, `a,b`, `{a,b`, `{a,NULL}`, `{"a}`, `{"a"b}`, `{a,,b}`, `{"a\`, `{{a},{b}}`, `{a,}`} {
		if got, err := parsePGArray(in); err == nil {
			t.Errorf("parsePGArray(%s) = %q, want an error", in, got)
		}
	}
}

func TestQueriesAreRenderedForSQLite(t *testing.T) {
	got := toSQLite(`SELECT a FROM t WHERE x = $1 AND y IN ($2, $10) ORDER BY GREATEST(a, b), k COLLATE "C"`)
	want := `SELECT a FROM t WHERE x = ?1 AND y IN (?2, ?10) ORDER BY MAX(a, b), k COLLATE BINARY`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
