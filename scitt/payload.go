package scitt

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/vigilnet/vigil/gossip/evidence"
)

// Inventory is the payload of an inventory statement: the resources a
// provider runs for a customer at a point in time.
type Inventory struct {
	Provider  string     `json:"provider"`
	Customer  string     `json:"customer"`
	AsOf      time.Time  `json:"as_of"`
	Resources []Resource `json:"resources"`
}

// Resource is one entry of an inventory.
type Resource struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Region     string            `json:"region,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Configuration is the payload of a configuration statement: a resource's
// configuration, or only its digest.
type Configuration struct {
	Resource string          `json:"resource"`
	AsOf     time.Time       `json:"as_of"`
	Config   json.RawMessage `json:"config,omitempty"`
	Digest   *Digest         `json:"digest,omitempty"`
}

// Digest names a hash of content kept elsewhere.
type Digest struct {
	Alg   string `json:"alg"`   // "sha-256"
	Value string `json:"value"` // lowercase hex
}

// Endorsement is the payload of an endorsement statement: a customer's or
// auditor's counter-signature over a statement registered in another log,
// or over one of its receipts.
type Endorsement struct {
	Target    EndorsementTarget `json:"target"`
	Assertion string            `json:"assertion"`
	AsOf      time.Time         `json:"as_of"`
}

// EndorsementTarget identifies what is endorsed.
type EndorsementTarget struct {
	Log             string `json:"log"`                      // origin of the log holding the statement
	EntryID         string `json:"entry_id,omitempty"`       // that log's entry id
	StatementSHA256 string `json:"statement_sha256"`         // hex SHA-256 of the statement's log entry
	ReceiptSHA256   string `json:"receipt_sha256,omitempty"` // hex SHA-256 of an endorsed receipt
}

// ValidatePayload checks payload against kind's schema: for the JSON kinds
// strict decoding (no unknown fields, no trailing data) and required fields;
// for evidence, the evidence file format.
func ValidatePayload(kind Kind, payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var err error
	switch kind {
	case KindInventory:
		var v Inventory
		if err = dec.Decode(&v); err == nil {
			err = v.validate()
		}
	case KindConfiguration:
		var v Configuration
		if err = dec.Decode(&v); err == nil {
			err = v.validate()
		}
	case KindEndorsement:
		var v Endorsement
		if err = dec.Decode(&v); err == nil {
			err = v.validate()
		}
	case KindEvidence:
		// The file's shape; what it proves is checked offline against a
		// roster (vigil verify).
		if _, err := evidence.ParseFile(payload); err != nil {
			return fmt.Errorf("%w: %s payload: %v", ErrInvalidPayload, kind, err)
		}
		return nil
	default:
		return fmt.Errorf("unknown statement kind %q", kind)
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data")
	}
	if err != nil {
		return fmt.Errorf("%w: %s payload: %v", ErrInvalidPayload, kind, err)
	}
	return nil
}

// ErrInvalidPayload reports a payload that does not match its kind's schema.
var ErrInvalidPayload = errors.New("invalid payload")

func (v *Inventory) validate() error {
	switch {
	case v.Provider == "" || v.Customer == "":
		return errors.New("provider and customer are required")
	case v.AsOf.IsZero():
		return errors.New("as_of is required")
	}
	for i, r := range v.Resources {
		if r.ID == "" || r.Type == "" {
			return fmt.Errorf("resources[%d]: id and type are required", i)
		}
	}
	return nil
}

func (v *Configuration) validate() error {
	switch {
	case v.Resource == "":
		return errors.New("resource is required")
	case v.AsOf.IsZero():
		return errors.New("as_of is required")
	case (len(v.Config) == 0) == (v.Digest == nil):
		return errors.New("exactly one of config and digest is required")
	case v.Digest != nil:
		return v.Digest.validate()
	}
	return nil
}

func (d *Digest) validate() error {
	if d.Alg != "sha-256" || !isHex(d.Value, sha256.Size) {
		return errors.New("digest must be {alg: sha-256, value: 64 lowercase hex}")
	}
	return nil
}

func (v *Endorsement) validate() error {
	switch {
	case v.Target.Log == "":
		return errors.New("target.log is required")
	case !isHex(v.Target.StatementSHA256, sha256.Size):
		return errors.New("target.statement_sha256 must be 64 lowercase hex")
	case v.Target.ReceiptSHA256 != "" && !isHex(v.Target.ReceiptSHA256, sha256.Size):
		return errors.New("target.receipt_sha256 must be 64 lowercase hex")
	case v.Assertion == "":
		return errors.New("assertion is required")
	case v.AsOf.IsZero():
		return errors.New("as_of is required")
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Schema is an optional payload schema for a content type in the policy.
// It checks JSON payloads: with Format "json" the payload must be exactly one
// well-formed JSON value; Required names members a top-level object must
// have, Const members whose value must be that JSON string (e.g. CycloneDX's
// bomFormat or in-toto's _type). Required or Const imply an object.
type Schema struct {
	Format   string            `yaml:"format"`
	Required []string          `yaml:"required"`
	Const    map[string]string `yaml:"const"`
}

func (sc *Schema) check() error {
	if sc.Format != "json" {
		return fmt.Errorf("schema format %q unsupported (json)", sc.Format)
	}
	return nil
}

// Validate checks payload against sc.
func (sc *Schema) Validate(payload []byte) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%w: not JSON: %v", ErrInvalidPayload, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrInvalidPayload)
	}
	if len(sc.Required) == 0 && len(sc.Const) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidPayload)
	}
	for _, k := range sc.Required {
		if _, ok := obj[k]; !ok {
			return fmt.Errorf("%w: member %q is required", ErrInvalidPayload, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sc.Const)) {
		var s string
		if raw, ok := obj[k]; !ok || json.Unmarshal(raw, &s) != nil || s != sc.Const[k] {
			return fmt.Errorf("%w: member %q must be the string %q", ErrInvalidPayload, k, sc.Const[k])
		}
	}
	return nil
}
