package mgmtapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-auth/gatehouse/module/internal/store"
)

// Optimistic concurrency. Every object answers with an ETag: a stored
// object's names its version and creation (so an object deleted and made
// again does not match its predecessor's), a configured object's is a hash
// of its configuration. A write may send If-Match with the ETag it read:
// when the object has changed since, the write is 412 (TypeStaleETag) and
// nothing changes. If-Match is optional; without it a write applies to the
// object as it is. If-Match: * requires the object to exist; If-None-Match:
// * (on a PUT) requires it not to.

// rowETag is the ETag of a stored object.
func rowETag(version int64, created time.Time) string {
	return fmt.Sprintf(`"v%d.%s"`, version, strconv.FormatInt(created.UnixMicro(), 36))
}

// etagList splits an If-Match or If-None-Match value into its entity tags.
func etagList(v string) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// precondition checks the request's If-Match and If-None-Match against the
// object's current ETag ("" when it does not exist). Entity tags compare
// strongly: a weak one (W/"...") never matches.
func (c *call) precondition(current string) *Problem {
	if im := c.r.Header.Get("If-Match"); im != "" {
		if current == "" {
			return problem(TypeStaleETag, "If-Match was given but the object does not exist")
		}
		ok := false
		for _, t := range etagList(im) {
			if t == "*" || t == current {
				ok = true
			}
		}
		if !ok {
			return problem(TypeStaleETag, fmt.Sprintf("If-Match %s is not the current ETag %s: the object has changed since it was read; read it again", im, current))
		}
	}
	if inm := c.r.Header.Get("If-None-Match"); inm != "" && current != "" {
		for _, t := range etagList(inm) {
			if t == "*" || t == current {
				return problem(TypeStaleETag, "If-None-Match: the object exists (ETag "+current+")")
			}
		}
	}
	return nil
}

// conditional reports whether the request made its write conditional
// (then a concurrent change is the caller's 412; otherwise the API reads
// again and retries).
func (c *call) conditional() bool {
	return c.r.Header.Get("If-Match") != "" || c.r.Header.Get("If-None-Match") != ""
}

// expected is the version a delete names: the one read when the request
// was conditional, otherwise whatever is stored.
func (c *call) expected(read int64) int64 {
	if c.conditional() {
		return read
	}
	return store.AnyVersion
}

// retries is how often a write without If-Match is tried again after a
// concurrent change.
const retries = 3

// retry runs write until it succeeds, fails otherwise than with
// store.ErrStale (or a conflict of a create that lost a race), or has been
// tried retries times; a conditional request gets one try.
func (c *call) retry(write func() error) error {
	var err error
	for i := 0; i < retries; i++ {
		err = write()
		if err == nil || c.conditional() || !errors.Is(err, store.ErrStale) {
			return err
		}
	}
	return err
}

// setETag sets the answer's ETag.
func (c *call) setETag(etag string) {
	if etag != "" {
		c.w.Header().Set("ETag", etag)
	}
}

// fieldNames maps the store's conflict fields to the API's.
var fieldNames = map[string]string{
	store.FieldName:              "name",
	store.FieldIssuer:            "issuer",
	store.FieldSubject:           "sub",
	store.FieldPreferredUsername: "preferredUsername",
	store.FieldEmail:             "email",
	store.FieldExternalIdentity:  "identities",
	store.FieldHash:              "key",
}

// storeProblem turns a store error into a problem; idField names an ID
// conflict's field (clientId, id), what the object (for not found).
func storeProblem(err error, what, idField string) *Problem {
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ce):
		field := fieldNames[ce.Field]
		if ce.Field == store.FieldID {
			field = idField
		}
		return conflict(field, fmt.Sprintf("%s %q is taken", field, ce.Value))
	case errors.Is(err, store.ErrStale):
		return problem(TypeStaleETag, "the object changed while it was being written; read it again")
	case errors.Is(err, store.ErrNotFound):
		return problem(TypeNotFound, what+" does not exist")
	}
	return unavailable(err)
}
