package evidence

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	vpb "github.com/vigilnet/vigil/proto"
)

// FileHeader is the first line of an evidence file.
const FileHeader = "vigil-evidence/v1"

// MaxFileSize bounds an evidence file.
const MaxFileSize = 2 * vpb.MaxEvidenceSize

// MarshalFile encodes e as a self-contained evidence file:
//
//	vigil-evidence/v1
//	kind <log-equivocation-same-size|log-equivocation-different-sizes|witness-equivocation>
//	witness <cosignature verifier key>          (witness-equivocation only)
//	observer <name>                             (optional)
//	detected <unix milliseconds>                (optional)
//	proof <base64 hash>                         (0..127 lines, in order)
//	checkpoint <byte length>
//	<signed note A, exactly that many bytes>
//	checkpoint <byte length>
//	<signed note B, exactly that many bytes>
//
// Every line ends in "\n". The notes are verbatim C2SP signed notes, so the
// file can be read with a pager; the lengths make parsing unambiguous.
func MarshalFile(e *vpb.Evidence) ([]byte, error) {
	if err := vpb.CheckEvidence(e); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nkind %s\n", FileHeader, vpb.KindName(e.Kind))
	if e.WitnessKey != "" {
		fmt.Fprintf(&b, "witness %s\n", e.WitnessKey)
	}
	if e.Observer != "" {
		fmt.Fprintf(&b, "observer %s\n", e.Observer)
	}
	if e.DetectedUnixMs != 0 {
		fmt.Fprintf(&b, "detected %d\n", e.DetectedUnixMs)
	}
	for _, h := range e.ConsistencyProof {
		fmt.Fprintf(&b, "proof %s\n", base64.StdEncoding.EncodeToString(h))
	}
	for _, n := range [][]byte{e.CheckpointA, e.CheckpointB} {
		fmt.Fprintf(&b, "checkpoint %d\n", len(n))
		b.Write(n)
	}
	return b.Bytes(), nil
}

// ParseFile parses an evidence file strictly (see MarshalFile). It checks
// the shape only; use Verify to check what it proves.
func ParseFile(data []byte) (*vpb.Evidence, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: evidence file is %d bytes, limit %d", vpb.ErrMalformed, len(data), MaxFileSize)
	}
	p := &fileParser{rest: data}
	if l, ok := p.line(); !ok || l != FileHeader {
		return nil, fmt.Errorf("%w: first line is not %q", vpb.ErrMalformed, FileHeader)
	}
	e := new(vpb.Evidence)
	key, val, ok := p.field()
	if !ok || key != "kind" {
		return nil, fmt.Errorf("%w: second line is not \"kind <name>\"", vpb.ErrMalformed)
	}
	if e.Kind, ok = vpb.ParseKindName(val); !ok {
		return nil, fmt.Errorf("%w: unknown kind %q", vpb.ErrMalformed, val)
	}
	stage := 0 // fields must come in the documented order
	notes := 0
	for notes < 2 {
		key, val, ok := p.field()
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want \"<key> <value>\"", vpb.ErrMalformed, p.ln)
		}
		order := map[string]int{"witness": 1, "observer": 2, "detected": 3, "proof": 4, "checkpoint": 5}[key]
		if order == 0 || order < stage || (order == stage && order != 4 && order != 5) {
			return nil, fmt.Errorf("%w: line %d: unexpected %q", vpb.ErrMalformed, p.ln, key)
		}
		stage = order
		switch key {
		case "witness":
			e.WitnessKey = val
		case "observer":
			e.Observer = val
		case "detected":
			ms, err := strconv.ParseInt(val, 10, 64)
			if err != nil || strconv.FormatInt(ms, 10) != val {
				return nil, fmt.Errorf("%w: line %d: bad detection time", vpb.ErrMalformed, p.ln)
			}
			e.DetectedUnixMs = ms
		case "proof":
			h, err := base64.StdEncoding.Strict().DecodeString(val)
			if err != nil || len(h) != 32 {
				return nil, fmt.Errorf("%w: line %d: proof line is not a base64 SHA-256 hash", vpb.ErrMalformed, p.ln)
			}
			if len(e.ConsistencyProof) == vpb.MaxProofHashes {
				return nil, fmt.Errorf("%w: more than %d proof lines", vpb.ErrMalformed, vpb.MaxProofHashes)
			}
			e.ConsistencyProof = append(e.ConsistencyProof, h)
		case "checkpoint":
			n, err := strconv.Atoi(val)
			if err != nil || strconv.Itoa(n) != val || n <= 0 || n > vpb.MaxNoteSize || n > len(p.rest) {
				return nil, fmt.Errorf("%w: line %d: bad checkpoint length %q", vpb.ErrMalformed, p.ln, val)
			}
			note := p.rest[:n:n]
			p.rest = p.rest[n:]
			p.ln += bytes.Count(note, []byte("\n"))
			if notes == 0 {
				e.CheckpointA = note
			} else {
				e.CheckpointB = note
			}
			notes++
		}
	}
	if len(p.rest) != 0 {
		return nil, fmt.Errorf("%w: trailing data after the second checkpoint", vpb.ErrMalformed)
	}
	if err := vpb.CheckEvidence(e); err != nil {
		return nil, err
	}
	return e, nil
}

type fileParser struct {
	rest []byte
	ln   int
}

func (p *fileParser) line() (string, bool) {
	i := bytes.IndexByte(p.rest, '\n')
	if i < 0 {
		return "", false
	}
	l := string(p.rest[:i])
	p.rest = p.rest[i+1:]
	p.ln++
	return l, true
}

func (p *fileParser) field() (key, val string, ok bool) {
	l, ok := p.line()
	if !ok {
		return "", "", false
	}
	key, val, ok = strings.Cut(l, " ")
	if !ok || key == "" || val == "" {
		return "", "", false
	}
	return key, val, true
}
