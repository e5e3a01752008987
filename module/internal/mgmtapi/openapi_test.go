package mgmtapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

var (
	docOnce   sync.Once
	docRouter routers.Router
	docErr    error
)

// openAPIRouter loads and validates the OpenAPI document once.
func openAPIRouter(t testing.TB) routers.Router {
	t.Helper()
	docOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(OpenAPI())
		if err != nil {
			docErr = err
			return
		}
		if docErr = doc.Validate(context.Background()); docErr != nil {
			return
		}
		docRouter, docErr = gorillamux.NewRouter(doc)
	})
	if docErr != nil {
		t.Fatalf("the OpenAPI document: %v", docErr)
	}
	return docRouter
}

// checkResponse validates an answer against the OpenAPI document: its
// status must be documented for the operation (or covered by default), its
// media type and body must match the schema.
func checkResponse(t testing.TB, hr *http.Request, status int, header http.Header, body []byte) error {
	t.Helper()
	router := openAPIRouter(t)
	// The router matches on the full URL of the document's server ("/").
	u := *hr.URL
	u.Scheme, u.Host = "http", "api.test"
	r2 := hr.Clone(context.Background())
	r2.URL = &u
	route, params, err := router.FindRoute(r2)
	if err != nil {
		// A path or method the document does not have is answered with a
		// problem (401 without a key, else 404 or 405); check that.
		if header.Get("Content-Type") != "application/problem+json" || status < 400 {
			return err
		}
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r2, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	openAPIRouter(t)
	doc, _ := openapi3.NewLoader().LoadFromData(OpenAPI())
	if !doc.IsOpenAPI31OrLater() {
		t.Fatal("the document is not OpenAPI 3.1")
	}
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	f := newFixture(t)
	routed := f.api.routeList()
	routed = append(routed, "GET /v1/openapi.json")
	slices.Sort(documented)
	slices.Sort(routed)
	if !slices.Equal(documented, routed) {
		t.Fatalf("documented:\n%s\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
	// Every problem type is documented, with its status.
	types := doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Enum
	for typ, status := range statuses {
		if !slices.Contains(types, any(typ)) {
			t.Errorf("problem type %s is not in the document", typ)
		}
		if !strings.Contains(doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Description, strings.TrimPrefix(typ, ProblemPrefix)+"` ("+strconv.Itoa(status)+")") {
			t.Errorf("problem type %s: its status %d is not documented", typ, status)
		}
	}
	if len(types) != len(statuses) {
		t.Errorf("the document lists %d problem types, the API has %d", len(types), len(statuses))
	}
	// Served as it is, without a key.
	r := f.do(req{method: "GET", path: "/v1/openapi.json", key: "-"})
	if r.status != 200 || !bytes.Equal(r.body, OpenAPI()) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("serving the document: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

// TestOpenAPIValidationCatchesAMismatch: the response check is not
// vacuous: an answer that differs from the document in one member fails.
func TestOpenAPIValidationCatchesAMismatch(t *testing.T) {
	f := newFixture(t)
	hr := httptest.NewRequest("POST", "/v1/domain", nil)
	good := `{"name":"acme","issuer":"https://a.example.com/acme","managed":"api","signingAlgorithm":"RS256","sessionLifetime":43200,"keyRotation":7776000}`
	h := http.Header{"Content-Type": {"application/json"}}
	if err := checkResponse(t, hr, 201, h, []byte(good)); err != nil {
		t.Fatalf("a valid answer fails: %v", err)
	}
	for _, bad := range []struct {
		status int
		body   string
	}{
		{201, strings.Replace(good, `"managed":"api"`, `"managed":"store"`, 1)},
		{201, strings.Replace(good, `"sessionLifetime":43200`, `"sessionLifetime":"12h"`, 1)},
		{201, strings.Replace(good, `,"keyRotation":7776000`, ``, 1)},
		{201, strings.Replace(good, `}`, `,"extra":1}`, 1)},
		{200, good}, // a status the operation does not answer
	} {
		if err := checkResponse(t, hr, bad.status, h, []byte(bad.body)); err == nil {
			t.Errorf("%d %s passed the check", bad.status, bad.body)
		}
	}
	_ = f
}
