package mgmtapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemPrefix starts the type of every problem the API answers with.
const ProblemPrefix = "urn:gatehouse:problem:"

// Problem types: one per cause, stable (clients may switch on them). The
// README and the OpenAPI document list them with their status.
const (
	// TypeInvalidBody (400): the body is not the JSON (or YAML) the
	// operation takes: a syntax error, an unknown or repeated member, a
	// value of the wrong JSON type, data after the value.
	TypeInvalidBody = ProblemPrefix + "invalid-body"
	// TypeInvalidField (400): the body or a parameter decoded, but values
	// are not valid; the errors member names each field.
	TypeInvalidField = ProblemPrefix + "invalid-field"
	// TypeInvalidPolicy (400): the policy does not parse or compile; the
	// detail holds the parser's errors (line:col for YAML).
	TypeInvalidPolicy = ProblemPrefix + "invalid-policy"
	// TypeUnauthorized (401): no API key, or one that is not a key of this
	// store.
	TypeUnauthorized = ProblemPrefix + "unauthorized"
	// TypeKeyExpired (401): the API key has expired.
	TypeKeyExpired = ProblemPrefix + "key-expired"
	// TypeKeyRevoked (401): the API key was revoked.
	TypeKeyRevoked = ProblemPrefix + "key-revoked"
	// TypeForbidden (403): the key may not do this: it is read-only, bound
	// to another domain, or asks for more rights than it has.
	TypeForbidden = ProblemPrefix + "forbidden"
	// TypeManagedByConfig (403): the object is defined by the
	// configuration (the Caddyfile) and is read-only through the API.
	TypeManagedByConfig = ProblemPrefix + "managed-by-config"
	// TypeNotFound (404): no such object (or path).
	TypeNotFound = ProblemPrefix + "not-found"
	// TypeMethodNotAllowed (405): the path exists, the method does not
	// (the Allow header lists those that do).
	TypeMethodNotAllowed = ProblemPrefix + "method-not-allowed"
	// TypeConflict (409): a name, username, e-mail, issuer or id is taken,
	// or the object is in use (a policy a client names).
	TypeConflict = ProblemPrefix + "conflict"
	// TypeStaleETag (412): If-Match names a version that is not the
	// current one (or If-None-Match: * found the object); nothing changed.
	TypeStaleETag = ProblemPrefix + "stale-etag"
	// TypePayloadTooLarge (413): the body is larger than the API takes.
	TypePayloadTooLarge = ProblemPrefix + "payload-too-large"
	// TypeUnsupportedMediaType (415): the Content-Type is not one the
	// operation takes.
	TypeUnsupportedMediaType = ProblemPrefix + "unsupported-media-type"
	// TypeUnavailable (503): the store could not be read or written; try
	// again.
	TypeUnavailable = ProblemPrefix + "unavailable"
)

// titles are the short, fixed summaries of each type (RFC 9457 title).
var titles = map[string]string{
	TypeInvalidBody:          "The request body is not valid",
	TypeInvalidField:         "Some values are not valid",
	TypeInvalidPolicy:        "The policy is not valid",
	TypeUnauthorized:         "A valid API key is required",
	TypeKeyExpired:           "The API key has expired",
	TypeKeyRevoked:           "The API key was revoked",
	TypeForbidden:            "The API key may not do this",
	TypeManagedByConfig:      "The object is defined by the configuration",
	TypeNotFound:             "Not found",
	TypeMethodNotAllowed:     "Method not allowed",
	TypeConflict:             "Conflict",
	TypeStaleETag:            "The object has changed",
	TypePayloadTooLarge:      "The request body is too large",
	TypeUnsupportedMediaType: "Unsupported media type",
	TypeUnavailable:          "The store is unavailable",
}

// statuses are the HTTP status of each type.
var statuses = map[string]int{
	TypeInvalidBody:          http.StatusBadRequest,
	TypeInvalidField:         http.StatusBadRequest,
	TypeInvalidPolicy:        http.StatusBadRequest,
	TypeUnauthorized:         http.StatusUnauthorized,
	TypeKeyExpired:           http.StatusUnauthorized,
	TypeKeyRevoked:           http.StatusUnauthorized,
	TypeForbidden:            http.StatusForbidden,
	TypeManagedByConfig:      http.StatusForbidden,
	TypeNotFound:             http.StatusNotFound,
	TypeMethodNotAllowed:     http.StatusMethodNotAllowed,
	TypeConflict:             http.StatusConflict,
	TypeStaleETag:            http.StatusPreconditionFailed,
	TypePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	TypeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	TypeUnavailable:          http.StatusServiceUnavailable,
}

// FieldError names one invalid value.
type FieldError struct {
	// Field is the JSON member (dotted and indexed for nested values, as in
	// "redirectUris[1]"), or the query parameter or path segment.
	Field string `json:"field"`
	// Detail says what is wrong and how to fix it.
	Detail string `json:"detail"`
}

// Problem is an RFC 9457 problem details object. It is also the error the
// API's internal functions return: whatever reaches the top is written as
// it is.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Errors names each invalid (or, for a conflict, taken) value.
	Errors []FieldError `json:"errors,omitempty"`

	// header holds headers to send with the problem (WWW-Authenticate,
	// Allow).
	header http.Header
	// err is the cause (a store failure), logged, never sent.
	err error
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Type + ": " + p.Detail
	}
	return p.Type
}

func (p *Problem) Unwrap() error { return p.err }

// problem returns a problem of type typ with detail.
func problem(typ, detail string) *Problem {
	return &Problem{Type: typ, Title: titles[typ], Status: statuses[typ], Detail: detail}
}

// invalid is a TypeInvalidField problem listing errs.
func invalid(errs ...FieldError) *Problem {
	p := problem(TypeInvalidField, "")
	p.Errors = errs
	if len(errs) == 1 {
		p.Detail = errs[0].Field + ": " + errs[0].Detail
	} else {
		p.Detail = strconv.Itoa(len(errs)) + " values are not valid; see errors"
	}
	return p
}

// conflict is a TypeConflict problem about field.
func conflict(field, detail string) *Problem {
	p := problem(TypeConflict, detail)
	if field != "" {
		p.Errors = []FieldError{{Field: field, Detail: detail}}
	}
	return p
}

// unavailable is the problem of a store failure err.
func unavailable(err error) *Problem {
	p := problem(TypeUnavailable, "the store could not answer; try again")
	p.err = err
	return p
}

// with adds a header to the problem's answer.
func (p *Problem) with(name, value string) *Problem {
	if p.header == nil {
		p.header = http.Header{}
	}
	p.header.Add(name, value)
	return p
}

// writeProblem answers with p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	h := w.Header()
	for k, vs := range p.header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
