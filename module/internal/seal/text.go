package seal

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// SealText seals v like Seal, but returns the sealed value instead of setting
// cookies: for a value that travels in a form field or a URL query (URL-safe
// base64 with '=' padding; escape it for a query). It is bound to the
// Sealer's purpose and name like a cookie, and ErrTooLarge when it is longer
// than MaxTextSize.
func (s *Sealer) SealText(v any, expires time.Time) (string, error) {
	enc, _, err := s.encode(v, expires)
	if err != nil {
		return "", err
	}
	if len(enc) > MaxTextSize {
		return "", ErrTooLarge
	}
	return enc, nil
}

// MaxTextSize is the longest value SealText makes and OpenText accepts.
const MaxTextSize = 12 << 10

// OpenText opens a value made by SealText into dst (a pointer, as for
// json.Unmarshal). It returns ErrExpired when the sealed expiry has passed
// and an error wrapping ErrInvalid for anything else that is wrong with it
// (empty, oversized, tampered, sealed for another purpose or name, or with a
// key no longer known).
func (s *Sealer) OpenText(sealed string, dst any) error {
	if sealed == "" || len(sealed) > MaxTextSize {
		return fmt.Errorf("%w: empty or oversized value", ErrInvalid)
	}
	// One value has one spelling: the decoder below would also take line
	// breaks and non-zero padding bits.
	if _, err := base64.URLEncoding.Strict().DecodeString(sealed); err != nil || strings.ContainsAny(sealed, "\r\n") {
		return fmt.Errorf("%w: not canonical base64", ErrInvalid)
	}
	_, err := s.decode(sealed, dst)
	return err
}
