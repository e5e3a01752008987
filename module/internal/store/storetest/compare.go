package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// timePrecision is how close a stored time must come back (the Store
// contract promises microseconds).
const timePrecision = time.Microsecond

var (
	timeType = reflect.TypeOf(time.Time{})
	jsonType = reflect.TypeOf(json.RawMessage{})
)

// diff compares two records of the same struct type field by field: times
// must come back in UTC within timePrecision (zero stays zero), slices must
// hold the same elements in order (an empty slice must come back nil), the
// rest must be equal; JSON documents must hold the same value (a database
// may reorder an object's members and change whitespace). It returns one
// line per difference.
func diff(got, want any) []string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	if g.Type() != w.Type() {
		return []string{fmt.Sprintf("type %s, want %s", g.Type(), w.Type())}
	}
	var out []string
	for i := 0; i < g.NumField(); i++ {
		name := g.Type().Field(i).Name
		gf, wf := g.Field(i), w.Field(i)
		switch {
		case gf.Type() == timeType:
			gt, wt := gf.Interface().(time.Time), wf.Interface().(time.Time)
			if msg := timeDiff(gt, wt); msg != "" {
				out = append(out, name+": "+msg)
			}
		case gf.Type() == jsonType:
			if msg := jsonDiff(gf.Interface().(json.RawMessage), wf.Interface().(json.RawMessage)); msg != "" {
				out = append(out, name+": "+msg)
			}
		case gf.Kind() == reflect.Slice:
			if wf.Len() == 0 {
				if !gf.IsNil() {
					out = append(out, fmt.Sprintf("%s: got %#v, want nil (empty slices come back nil)", name, gf.Interface()))
				}
				continue
			}
			if !reflect.DeepEqual(gf.Interface(), wf.Interface()) {
				out = append(out, fmt.Sprintf("%s: got %#v, want %#v", name, gf.Interface(), wf.Interface()))
			}
		default:
			if !reflect.DeepEqual(gf.Interface(), wf.Interface()) {
				out = append(out, fmt.Sprintf("%s: got %#v, want %#v", name, gf.Interface(), wf.Interface()))
			}
		}
	}
	return out
}

// timeDiff explains how got differs from want, or returns "".
func timeDiff(got, want time.Time) string {
	if want.IsZero() {
		if !got.IsZero() {
			return fmt.Sprintf("got %s, want the zero time", got)
		}
		return ""
	}
	if got.Location() != time.UTC {
		return fmt.Sprintf("got %s in location %q, want UTC", got, got.Location())
	}
	d := got.Sub(want)
	if d < 0 {
		d = -d
	}
	if d >= timePrecision {
		return fmt.Sprintf("got %s, want %s (off by %s)", got.Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano), d)
	}
	return ""
}

// jsonDiff explains how two JSON documents differ in value, or returns "".
// An empty document must come back nil.
func jsonDiff(got, want json.RawMessage) string {
	if len(want) == 0 {
		if got != nil {
			return fmt.Sprintf("got %s, want nil", got)
		}
		return ""
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Sprintf("got %q, not JSON: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return fmt.Sprintf("want %q, not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("got %s, want %s", got, want)
	}
	return ""
}
