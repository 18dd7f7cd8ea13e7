package scitt

import (
	"errors"
	"fmt"
	"mime"
	"strings"
)

// MediaPattern matches media types in a registration policy:
//
//	type/subtype       exactly that type (case-insensitive)
//	type/*             any subtype of type
//	type/*+suffix      any subtype of type with that structured-syntax suffix
//	*/*                anything
//
// Parameters are not part of a pattern and are ignored when matching.
type MediaPattern struct {
	typ, sub string // lower case; "*" for any; sub may be "*+suffix"
}

// ErrBadMediaType reports a media type or pattern that does not parse.
var ErrBadMediaType = errors.New("bad media type")

// ParseMediaPattern parses a policy media-type pattern.
func ParseMediaPattern(s string) (MediaPattern, error) {
	typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
	if !ok || typ == "" || sub == "" {
		return MediaPattern{}, fmt.Errorf("%w: pattern %q is not type/subtype", ErrBadMediaType, s)
	}
	if typ != "*" && !isToken(typ) {
		return MediaPattern{}, fmt.Errorf("%w: pattern %q: bad type", ErrBadMediaType, s)
	}
	switch {
	case sub == "*":
	case strings.HasPrefix(sub, "*+"):
		if !isToken(sub[2:]) || strings.Contains(sub[2:], "*") {
			return MediaPattern{}, fmt.Errorf("%w: pattern %q: bad suffix", ErrBadMediaType, s)
		}
	case !isToken(sub):
		return MediaPattern{}, fmt.Errorf("%w: pattern %q: bad subtype", ErrBadMediaType, s)
	}
	if typ == "*" && sub != "*" {
		return MediaPattern{}, fmt.Errorf("%w: pattern %q: a wildcard type needs a wildcard subtype", ErrBadMediaType, s)
	}
	return MediaPattern{typ: typ, sub: sub}, nil
}

// String returns the pattern's canonical form.
func (p MediaPattern) String() string { return p.typ + "/" + p.sub }

// Match reports whether media type mt (a bare type/subtype, as
// NormalizeMediaType returns it) matches p.
func (p MediaPattern) Match(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok {
		return false
	}
	if p.typ != "*" && p.typ != typ {
		return false
	}
	switch {
	case p.sub == "*":
		return true
	case strings.HasPrefix(p.sub, "*+"):
		return strings.HasSuffix(sub, p.sub[1:]) && len(sub) > len(p.sub)-1
	default:
		return p.sub == sub
	}
}

// NormalizeMediaType returns the bare, lower-case type/subtype of a media
// type (RFC 6838), dropping parameters.
func NormalizeMediaType(s string) (string, error) {
	mt, _, err := mime.ParseMediaType(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadMediaType, s, err)
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || !isToken(typ) || !isToken(sub) || strings.Contains(mt, "*") {
		return "", fmt.Errorf("%w: %q is not type/subtype", ErrBadMediaType, s)
	}
	return mt, nil
}

// isToken reports whether s is a non-empty RFC 6838 restricted name.
func isToken(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.ContainsRune("!#$&-^_.+", c):
		default:
			return false
		}
	}
	return true
}
