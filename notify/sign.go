package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Headers of a webhook request.
const (
	// SignatureHeader carries "sha256=" and the lower-case hex
	// HMAC-SHA256 of the raw request body, keyed with the webhook's
	// secret. A receiver recomputes it over the bytes it received (before
	// any JSON parsing) and compares in constant time (Verify).
	SignatureHeader = "X-Vigil-Signature"
	// EventHeader is the notification kind.
	EventHeader = "X-Vigil-Event"
	// DeliveryHeader is the notification ID, the same on every retry and
	// for every receiver: receivers de-duplicate on it.
	DeliveryHeader = "X-Vigil-Delivery"
)

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body under secret.
func Verify(secret string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}
