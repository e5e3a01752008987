package mgmtapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// Request bodies.
const (
	// DefaultMaxBody bounds a JSON body (Options.MaxBody).
	DefaultMaxBody = 64 << 10
	// maxDepth bounds how deeply a JSON body may nest.
	maxDepth = 32
)

// Media types the API reads.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
	mediaYAML       = "application/yaml"
)

// yamlTypes are the spellings of YAML's media type a policy body may use.
var yamlTypes = []string{mediaYAML, "application/x-yaml", "text/yaml", "text/x-yaml"}

// mediaType returns the request's media type, lower-cased, and a problem
// when it is not one of accepted (415) or names a charset other than
// UTF-8.
func mediaType(r *http.Request, accepted ...string) (string, *Problem) {
	refuse := func(detail string) *Problem {
		p := problem(TypeUnsupportedMediaType, detail)
		switch r.Method {
		case http.MethodPatch:
			p.with("Accept-Patch", strings.Join(accepted, ", "))
		case http.MethodPost:
			p.with("Accept-Post", strings.Join(accepted, ", "))
		}
		return p
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", refuse(fmt.Sprintf("the request has no Content-Type; send %s", strings.Join(accepted, " or ")))
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(accepted, mt) {
		return "", refuse(fmt.Sprintf("Content-Type %q is not accepted here; send %s", ct, strings.Join(accepted, " or ")))
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return "", problem(TypeUnsupportedMediaType, fmt.Sprintf("charset %q is not accepted; send UTF-8", cs))
	}
	return mt, nil
}

// readBody reads the request body, at most limit bytes (413 beyond).
func readBody(r *http.Request, limit int64) ([]byte, *Problem) {
	tooLarge := problem(TypePayloadTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, problem(TypeInvalidBody, "the body could not be read")
	}
	if int64(len(b)) > limit {
		return nil, tooLarge
	}
	return b, nil
}

// decodeJSON decodes body, a JSON object, into v strictly: a syntax error,
// a repeated member, nesting deeper than maxDepth, a member v does not
// have, a value of the wrong type and data after the object are each a
// TypeInvalidBody problem naming what and where.
func decodeJSON(body []byte, v any) *Problem {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem(TypeInvalidBody, "the body is empty; send a JSON object")
	}
	if p := checkJSON(body); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err)
	}
	return nil
}

// decodeProblem turns an error of encoding/json into a problem.
func decodeProblem(err error) *Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		msg := fmt.Sprintf("a JSON %s is not a valid value here; send %s", te.Value, jsonKind(te.Type.String()))
		p := problem(TypeInvalidBody, field+": "+msg)
		p.Errors = []FieldError{{Field: field, Detail: msg}}
		return p
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		msg := "unknown field; the OpenAPI document (/v1/openapi.json) lists the fields"
		p := problem(TypeInvalidBody, fmt.Sprintf("unknown field %q", name))
		p.Errors = []FieldError{{Field: name, Detail: msg}}
		return p
	}
	return problem(TypeInvalidBody, "the body is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind describes the JSON a Go type takes.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "map"), strings.Contains(goType, "."):
		return "an object"
	}
	return "another type"
}

// checkJSON checks that body is one JSON object and nothing after it, with
// no member given twice at any level and no nesting deeper than maxDepth.
// encoding/json would take the last of repeated members silently; a body
// that says two things is refused instead.
func checkJSON(body []byte) *Problem {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return syntaxProblem(dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return problem(TypeInvalidBody, "the body must be a JSON object")
	}
	if p := checkObject(dec, "", 1); p != nil {
		return p
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem(TypeInvalidBody, fmt.Sprintf("data after the JSON object (at byte %d); send one object", dec.InputOffset()))
	}
	return nil
}

func syntaxProblem(dec *json.Decoder, err error) *Problem {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return problem(TypeInvalidBody, "the body ends before the JSON value does")
	}
	return problem(TypeInvalidBody, fmt.Sprintf("the body is not valid JSON (near byte %d): %s", dec.InputOffset(), strings.TrimPrefix(err.Error(), "json: ")))
}

// checkObject reads the members of an object whose '{' was read.
func checkObject(dec *json.Decoder, path string, depth int) *Problem {
	if depth > maxDepth {
		return problem(TypeInvalidBody, fmt.Sprintf("the body nests deeper than %d levels", maxDepth))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxProblem(dec, err)
		}
		name, _ := tok.(string)
		field := name
		if path != "" {
			field = path + "." + name
		}
		if seen[name] {
			p := problem(TypeInvalidBody, fmt.Sprintf("member %q is given twice", field))
			p.Errors = []FieldError{{Field: field, Detail: "given twice; give each member once"}}
			return p
		}
		seen[name] = true
		if p := checkValue(dec, field, depth); p != nil {
			return p
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return syntaxProblem(dec, err)
	}
	return nil
}

// checkValue reads one value.
func checkValue(dec *json.Decoder, path string, depth int) *Problem {
	tok, err := dec.Token()
	if err != nil {
		return syntaxProblem(dec, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return checkObject(dec, path, depth+1)
	case '[':
		if depth+1 > maxDepth {
			return problem(TypeInvalidBody, fmt.Sprintf("the body nests deeper than %d levels", maxDepth))
		}
		for i := 0; dec.More(); i++ {
			if p := checkValue(dec, fmt.Sprintf("%s[%d]", path, i), depth+1); p != nil {
				return p
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return syntaxProblem(dec, err)
		}
	}
	return nil
}

// opt is a member of a PATCH body: whether it was given, and its value.
// null is refused (a PATCH sets values; to empty a text, send "").
type opt[T any] struct {
	set bool
	v   T
}

func (o *opt[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		// The decoder adds the field's name to an UnmarshalTypeError.
		return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeFor[T]()}
	}
	if err := json.Unmarshal(b, &o.v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &json.UnmarshalTypeError{Value: te.Value, Type: te.Type, Offset: te.Offset}
		}
		return err
	}
	o.set = true
	return nil
}
