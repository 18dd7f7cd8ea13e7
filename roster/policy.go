package roster

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/vigilnet/vigil/tlog"
)

// MaxFileSize bounds a roster or log-list file.
const MaxFileSize = 4 << 20

// ParsePolicy parses a C2SP tlog-policy file:
//
//	log <vkey> [<url>]
//	witness <name> <vkey> [<url>]
//	group <name> all|any|<k> <member>...
//	quorum <name>|none
func ParsePolicy(data []byte) (*Roster, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrSyntax, MaxFileSize)
	}
	r := Empty()
	names := map[string]bool{"none": true} // SPEC: one namespace; "none" is reserved.
	used := map[string]bool{}
	pubkeys := map[string]string{}
	sawQuorum := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxFileSize)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if err := checkBytes(line); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, ln, err)
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrSyntax, ln, fmt.Sprintf(format, args...))
		}
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return nil, fail("want: log <vkey> [<url>]")
			}
			l, err := newLog(f[1], "", optional(f, 2))
			if err != nil {
				return nil, fail("%v", err)
			}
			if err := addKey(pubkeys, f[1], "log "+l.Origin); err != nil {
				return nil, fail("%v", err)
			}
			if _, dup := r.logs[l.Origin]; dup {
				return nil, fail("log %q listed twice", l.Origin)
			}
			r.logs[l.Origin] = l
		case "witness":
			if len(f) < 3 || len(f) > 4 {
				return nil, fail("want: witness <name> <vkey> [<url>]")
			}
			if names[f[1]] {
				return nil, fail("name %q already defined", f[1])
			}
			v, err := tlog.NewWitnessVerifier(f[2])
			if err != nil {
				return nil, fail("witness %s: %v", f[1], err)
			}
			if err := addKey(pubkeys, f[2], "witness "+f[1]); err != nil {
				return nil, fail("%v", err)
			}
			u, err := checkURL(optional(f, 3))
			if err != nil {
				return nil, fail("witness %s: %v", f[1], err)
			}
			names[f[1]] = true
			r.witnesses[f[1]] = &Witness{Name: f[1], VKey: f[2], Verifier: v, URL: u}
			r.byKey[keyRef{v.Name(), v.KeyHash()}] = f[1]
		case "group":
			if len(f) < 4 {
				return nil, fail("want: group <name> all|any|<k> <member>...")
			}
			if names[f[1]] {
				return nil, fail("name %q already defined", f[1])
			}
			members := f[3:]
			k := 0
			switch f[2] {
			case "all":
				k = len(members)
			case "any":
				k = 1
			default:
				n, err := strconv.Atoi(f[2])
				if err != nil || n < 1 || n > len(members) || strconv.Itoa(n) != f[2] {
					return nil, fail("threshold %q must be all, any or 1..%d", f[2], len(members))
				}
				k = n
			}
			for _, m := range members {
				_, isW := r.witnesses[m]
				_, isG := r.groups[m]
				if !isW && !isG {
					return nil, fail("group %s: member %q is not defined earlier", f[1], m)
				}
				// SPEC: a defined name is a group member at most once.
				if used[m] {
					return nil, fail("group %s: %q is already a member of a group", f[1], m)
				}
				used[m] = true
			}
			names[f[1]] = true
			r.groups[f[1]] = &Group{Name: f[1], K: k, Members: members}
		case "quorum":
			if len(f) != 2 {
				return nil, fail("want: quorum <name>|none")
			}
			if sawQuorum {
				return nil, fail("quorum given twice")
			}
			sawQuorum = true
			if f[1] != "none" {
				_, isW := r.witnesses[f[1]]
				_, isG := r.groups[f[1]]
				if !isW && !isG {
					return nil, fail("quorum %q is not defined", f[1])
				}
				r.quorum = f[1]
			}
		default:
			return nil, fail("unknown keyword %q", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return r, nil
}

func optional(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// newLog builds a Log from a type 0x01 vkey. origin defaults to the key name;
// SPEC (tlog-policy): the key name must equal the origin.
func newLog(vkey, origin, rawURL string) (*Log, error) {
	v, err := tlog.NewNoteVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log key %q: %v", vkey, err)
	}
	if origin == "" {
		origin = v.Name()
	}
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("log %s: %v", origin, err)
	}
	return &Log{Origin: origin, VKey: vkey, Verifier: v, URL: u}, nil
}

func checkURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("bad URL %q: want http(s)://host/prefix", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// addKey rejects a public key listed twice (SPEC: no duplicate keys).
func addKey(seen map[string]string, vkey, who string) error {
	_, rest, _ := strings.Cut(vkey, "+")
	_, pk, _ := strings.Cut(rest, "+")
	if prev, ok := seen[pk]; ok {
		return fmt.Errorf("%s reuses the key of %s", who, prev)
	}
	seen[pk] = who
	return nil
}

// checkBytes enforces tlog-policy's allowed bytes: tab, 0x20-0x7E, 0x80-0xFF.
func checkBytes(line string) error {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c != '\t' && (c < 0x20 || c == 0x7f) {
			return fmt.Errorf("control byte 0x%02x", c)
		}
	}
	return nil
}

// Load reads a policy file and merges any logs/v0 lists into it.
func Load(policyPath string, logLists ...string) (*Roster, error) {
	r := Empty()
	if policyPath != "" {
		data, err := readFile(policyPath)
		if err != nil {
			return nil, err
		}
		if r, err = ParsePolicy(data); err != nil {
			return nil, fmt.Errorf("%s: %w", policyPath, err)
		}
	}
	for _, p := range logLists {
		data, err := readFile(p)
		if err != nil {
			return nil, err
		}
		logs, err := ParseLogList(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if r, err = r.WithLogs(logs); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return r, nil
}

func readFile(p string) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading roster: %w", err)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("reading roster %s: larger than %d bytes", p, MaxFileSize)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading roster: %w", err)
	}
	return data, nil
}

// WithLogs returns a copy of r with logs added. A log already present with
// the same key is kept (the policy's URL wins); the same origin with another
// key is an error.
func (r *Roster) WithLogs(logs []*Log) (*Roster, error) {
	out := *r
	out.logs = make(map[string]*Log, len(r.logs)+len(logs))
	for k, v := range r.logs {
		out.logs[k] = v
	}
	for _, l := range logs {
		if prev, ok := out.logs[l.Origin]; ok {
			if prev.VKey != l.VKey {
				return nil, fmt.Errorf("log %q listed with two different keys", l.Origin)
			}
			continue
		}
		out.logs[l.Origin] = l
	}
	return &out, nil
}
