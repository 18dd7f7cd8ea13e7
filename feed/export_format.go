package feed

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Export formats of GET /v1/export.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// Record types of an export (the "type" field / column).
const (
	ExportTypePeriod       = "period"
	ExportTypeCheckpoint   = "checkpoint"
	ExportTypeAvailability = "witness_availability"
	ExportTypeEvidence     = "evidence"
	ExportTypeEnd          = "end"
	ExportTypeError        = "error"
)

// ExportPeriod opens an export: the period it covers.
type ExportPeriod struct {
	Type string `json:"type"`
	// Since is absent for an export from the first record on.
	Since     *time.Time `json:"since,omitempty"`
	Until     time.Time  `json:"until"`
	Generated time.Time  `json:"generated"`
	// Quorum is the roster's quorum group.
	Quorum string `json:"quorum"`
}

// ExportCheckpoint is one checkpoint first seen in the period.
type ExportCheckpoint struct {
	Type   string `json:"type"`
	LogID  string `json:"log_id"`
	Origin string `json:"origin"`
	CheckpointSummary
	FirstSeen time.Time `json:"first_seen"`
	// Note is the signed note with the cosignatures the node holds
	// (JSON Lines only).
	Note string `json:"note"`
}

// ExportAvailability is one roster witness's record over the period: of
// the Total checkpoints first seen in it, how many it cosigned, and the
// first sightings of the first and last of those.
type ExportAvailability struct {
	Type          string     `json:"type"`
	Witness       string     `json:"witness"`
	Cosigned      int        `json:"cosigned"`
	Total         int        `json:"total"`
	Share         float64    `json:"share"`
	FirstCosigned *time.Time `json:"first_cosigned,omitempty"`
	LastCosigned  *time.Time `json:"last_cosigned,omitempty"`
}

// ExportEvidence is one piece of evidence detected in the period.
type ExportEvidence struct {
	Type string `json:"type"`
	Evidence
}

// ExportEnd closes a complete export; an export without it was cut short.
type ExportEnd struct {
	Type        string `json:"type"`
	Checkpoints int    `json:"checkpoints"`
	Evidence    int    `json:"evidence"`
	// Error, on an ExportTypeError record, says why the export stopped.
	Error string `json:"error,omitempty"`
}

// ExportWriter writes export records in one format, buffered; Flush
// sends what is buffered.
type ExportWriter struct {
	format string
	bw     *bufio.Writer
	cw     *csv.Writer
	enc    *json.Encoder
}

// CSVHeader is the header row of a CSV export. Each record type fills
// the columns that apply to it; cosigners, witnesses and sizes are
// space-separated lists; the note is in JSON Lines exports only.
var CSVHeader = []string{
	"type", "since", "until", "generated", "quorum",
	"log_id", "origin", "size", "root", "first_seen", "cosigned_at", "cosigners", "quorum_met",
	"witness", "cosigned", "total", "share", "first_cosigned", "last_cosigned",
	"evidence_id", "kind", "witnesses", "sizes", "detected", "stored", "summary",
	"checkpoints", "evidence", "error",
}

var csvColumn = func() map[string]int {
	m := map[string]int{}
	for i, c := range CSVHeader {
		m[c] = i
	}
	return m
}()

// NewExportWriter returns a writer of format (FormatJSONL or FormatCSV).
func NewExportWriter(w io.Writer, format string) (*ExportWriter, error) {
	ew := &ExportWriter{format: format, bw: bufio.NewWriterSize(w, 64<<10)}
	switch format {
	case FormatJSONL:
		ew.enc = json.NewEncoder(ew.bw)
		ew.enc.SetEscapeHTML(false)
	case FormatCSV:
		ew.cw = csv.NewWriter(ew.bw)
		if err := ew.cw.Write(CSVHeader); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("bad format: %q is not %s or %s", format, FormatJSONL, FormatCSV)
	}
	return ew, nil
}

// ContentType is the media type of the writer's format.
func (ew *ExportWriter) ContentType() string {
	if ew.format == FormatCSV {
		return "text/csv; charset=utf-8"
	}
	return "application/jsonl"
}

func (ew *ExportWriter) row(cells map[string]string) error {
	r := make([]string, len(CSVHeader))
	for k, v := range cells {
		r[csvColumn[k]] = v
	}
	return ew.cw.Write(r)
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func rfc3339p(t *time.Time) string {
	if t == nil {
		return ""
	}
	return rfc3339(*t)
}

// Period writes the opening record.
func (ew *ExportWriter) Period(p ExportPeriod) error {
	p.Type = ExportTypePeriod
	if ew.enc != nil {
		return ew.enc.Encode(p)
	}
	return ew.row(map[string]string{"type": p.Type, "since": rfc3339p(p.Since), "until": rfc3339(p.Until), "generated": rfc3339(p.Generated), "quorum": p.Quorum})
}

// Checkpoint writes one checkpoint.
func (ew *ExportWriter) Checkpoint(c ExportCheckpoint) error {
	c.Type = ExportTypeCheckpoint
	if ew.enc != nil {
		return ew.enc.Encode(c)
	}
	return ew.row(map[string]string{"type": c.Type, "log_id": c.LogID, "origin": c.Origin, "size": strconv.FormatUint(c.Size, 10), "root": c.Root,
		"first_seen": rfc3339(c.FirstSeen), "cosigned_at": rfc3339p(c.CosignedAt), "cosigners": strings.Join(c.Cosigners, " "), "quorum_met": strconv.FormatBool(c.QuorumMet)})
}

// Availability writes one witness's availability.
func (ew *ExportWriter) Availability(a ExportAvailability) error {
	a.Type = ExportTypeAvailability
	if ew.enc != nil {
		return ew.enc.Encode(a)
	}
	return ew.row(map[string]string{"type": a.Type, "witness": a.Witness, "cosigned": strconv.Itoa(a.Cosigned), "total": strconv.Itoa(a.Total),
		"share": strconv.FormatFloat(a.Share, 'f', 4, 64), "first_cosigned": rfc3339p(a.FirstCosigned), "last_cosigned": rfc3339p(a.LastCosigned)})
}

// Evidence writes one piece of evidence.
func (ew *ExportWriter) Evidence(e Evidence) error {
	if ew.enc != nil {
		return ew.enc.Encode(ExportEvidence{Type: ExportTypeEvidence, Evidence: e})
	}
	sizes := make([]string, len(e.Sizes))
	for i, s := range e.Sizes {
		sizes[i] = strconv.FormatUint(s, 10)
	}
	return ew.row(map[string]string{"type": ExportTypeEvidence, "evidence_id": e.ID, "kind": e.Kind, "log_id": e.LogID, "origin": e.Origin,
		"witnesses": strings.Join(e.Witnesses, " "), "sizes": strings.Join(sizes, " "), "detected": rfc3339(e.Detected), "stored": rfc3339(e.Stored), "summary": e.Summary})
}

// End writes the closing record (or, with Error set and Type
// ExportTypeError, the record of an export cut short).
func (ew *ExportWriter) End(e ExportEnd) error {
	if e.Type == "" {
		e.Type = ExportTypeEnd
	}
	if ew.enc != nil {
		return ew.enc.Encode(e)
	}
	return ew.row(map[string]string{"type": e.Type, "checkpoints": strconv.Itoa(e.Checkpoints), "evidence": strconv.Itoa(e.Evidence), "error": e.Error})
}

// Flush writes out what is buffered.
func (ew *ExportWriter) Flush() error {
	if ew.cw != nil {
		ew.cw.Flush()
		if err := ew.cw.Error(); err != nil {
			return err
		}
	}
	return ew.bw.Flush()
}
