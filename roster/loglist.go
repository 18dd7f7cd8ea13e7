package roster

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseLogList parses a witness-network logs/v0 list:
//
//	logs/v0
//	vkey <log vkey>
//	origin <origin>        (optional; defaults to the key name)
//	qpd <requests per day>
//	contact <free text>
//
// Comments (#) and blank lines are ignored and lines are trimmed.
func ParseLogList(data []byte) ([]*Log, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrSyntax, MaxFileSize)
	}
	var (
		logs   []*Log
		cur    *Log
		curKey string
		state  int // 0 header, 1 want vkey, 2 after vkey, 3 after origin, 4 after qpd
		seen   = map[string]bool{}
	)
	finish := func(ln int) error {
		if cur == nil {
			return nil
		}
		if state != 1 {
			return fmt.Errorf("%w: line %d: log %q is missing qpd or contact", ErrSyntax, ln, curKey)
		}
		if seen[cur.Origin] {
			return fmt.Errorf("%w: line %d: origin %q listed twice", ErrSyntax, ln, cur.Origin)
		}
		seen[cur.Origin] = true
		logs = append(logs, cur)
		cur = nil
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), MaxFileSize)
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrSyntax, ln, fmt.Sprintf(format, args...))
		}
		if state == 0 {
			if line != "logs/v0" {
				return nil, fail("first line must be logs/v0")
			}
			state = 1
			continue
		}
		kw, val, _ := strings.Cut(line, " ")
		val = strings.TrimSpace(val)
		switch {
		case kw == "vkey" && (state == 1 || state == 0):
			l, err := newLog(val, "", "")
			if err != nil {
				return nil, fail("%v", err)
			}
			cur, curKey, state = l, val, 2
		case kw == "origin" && state == 2:
			if val == "" {
				return nil, fail("empty origin")
			}
			cur.Origin, state = val, 3
		case kw == "qpd" && (state == 2 || state == 3):
			q, err := strconv.ParseFloat(val, 64)
			if err != nil || q < 1 || q > 1<<31-1 {
				return nil, fail("qpd %q must be 1..2^31-1", val)
			}
			cur.QPD, state = q, 4
		case kw == "contact" && state == 4:
			if val == "" {
				return nil, fail("empty contact")
			}
			cur.Contact, state = val, 1
			if err := finish(ln); err != nil {
				return nil, err
			}
		case kw == "logs/v0":
			return nil, fail("logs/v0 header repeated")
		default:
			return nil, fail("unexpected %q (entries are: vkey, [origin], qpd, contact)", kw)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if state == 0 {
		return nil, fmt.Errorf("%w: missing logs/v0 header", ErrSyntax)
	}
	if cur != nil {
		return nil, fmt.Errorf("%w: line %d: log %q is missing qpd or contact", ErrSyntax, ln, curKey)
	}
	return logs, nil
}

// FormatLogList writes logs as a logs/v0 list that ParseLogList reads back,
// after the given comment lines. Every log needs a qpd of at least 1 and a
// contact.
func FormatLogList(comments []string, logs []*Log) ([]byte, error) {
	var b bytes.Buffer
	for _, c := range comments {
		if strings.ContainsAny(c, "\r\n") {
			return nil, fmt.Errorf("comment %q spans lines", c)
		}
		fmt.Fprintf(&b, "# %s\n", c)
	}
	b.WriteString("logs/v0\n")
	for _, l := range logs {
		if l.QPD < 1 || l.Contact == "" || strings.ContainsAny(l.Origin+l.Contact+l.VKey, "\r\n") {
			return nil, fmt.Errorf("log %q cannot be written as a logs/v0 entry (qpd %v, contact %q)", l.Origin, l.QPD, l.Contact)
		}
		fmt.Fprintf(&b, "vkey %s\n", l.VKey)
		if l.Verifier == nil || l.Verifier.Name() != l.Origin {
			fmt.Fprintf(&b, "origin %s\n", l.Origin)
		}
		fmt.Fprintf(&b, "qpd %s\ncontact %s\n", strconv.FormatFloat(l.QPD, 'f', -1, 64), l.Contact)
	}
	return b.Bytes(), nil
}
