package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Checkpoint records are stored in a compact binary layout (version 1):
//
//	0x01
//	uvarint len(origin) || origin
//	uvarint size
//	root (32 bytes)
//	uvarint len(note) || note
//	varint cosigners
//	0x00 (no first sighting time) | 0x01 || varint unix seconds || uvarint nanoseconds
//	uvarint len(first observer) || first observer
//	uvarint len(first source) || first source
//	uvarint sightings
//
// Older stores hold JSON objects (which start with '{'): records
// in either form are read, and every write uses the binary one, so a store
// migrates as its records are merged again.
const checkpointRecordV1 = 0x01

// maxRecordField bounds one variable-length field of a stored record: a
// length beyond it is corruption, not an allocation to attempt.
const maxRecordField = 1 << 20

// errRecord describes a malformed record; callers wrap it with ErrCorrupt.
var errRecord = errors.New("malformed checkpoint record")

// encodeCheckpointRecord returns rec in the binary layout.
func encodeCheckpointRecord(rec CheckpointRecord) []byte {
	n := 1 + 3*binary.MaxVarintLen64 + len(rec.Origin) + 32 + len(rec.Note) + len(rec.FirstObserver) + len(rec.FirstSource) + 6*binary.MaxVarintLen64
	b := make([]byte, 0, n)
	b = append(b, checkpointRecordV1)
	b = appendString(b, rec.Origin)
	b = binary.AppendUvarint(b, rec.Size)
	b = append(b, rec.Root[:]...)
	b = binary.AppendUvarint(b, uint64(len(rec.Note)))
	b = append(b, rec.Note...)
	b = binary.AppendVarint(b, int64(rec.Cosigners))
	if rec.FirstSeen.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, rec.FirstSeen.Unix())
		b = binary.AppendUvarint(b, uint64(rec.FirstSeen.Nanosecond()))
	}
	b = appendString(b, rec.FirstObserver)
	b = appendString(b, rec.FirstSource)
	return binary.AppendUvarint(b, rec.Sightings)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeCheckpointRecord reads a stored record in either layout. The
// record shares no memory with v.
func decodeCheckpointRecord(v []byte) (CheckpointRecord, error) {
	var rec CheckpointRecord
	if len(v) > 0 && v[0] == '{' {
		if err := json.Unmarshal(v, &rec); err != nil {
			return CheckpointRecord{}, fmt.Errorf("%w: %v", errRecord, err)
		}
		return rec, nil
	}
	d := recordDecoder{b: v}
	if d.byte() != checkpointRecordV1 {
		return CheckpointRecord{}, fmt.Errorf("%w: unknown layout", errRecord)
	}
	rec.Origin = string(d.field())
	rec.Size = d.uvarint()
	copy(rec.Root[:], d.take(32))
	if note := d.field(); note != nil {
		rec.Note = append(make([]byte, 0, len(note)), note...)
	}
	rec.Cosigners = int(d.varint())
	switch d.byte() {
	case 0:
	case 1:
		sec := d.varint()
		nsec := d.uvarint()
		if nsec >= 1e9 {
			d.fail("nanoseconds")
		}
		rec.FirstSeen = time.Unix(sec, int64(nsec)).UTC()
	default:
		d.fail("time flag")
	}
	rec.FirstObserver = string(d.field())
	rec.FirstSource = string(d.field())
	rec.Sightings = d.uvarint()
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return CheckpointRecord{}, d.err
	}
	return rec, nil
}

// recordDecoder reads fields in order; after the first error every read
// returns zero values and err keeps that first error.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", errRecord, what)
	}
	d.b = nil
}

func (d *recordDecoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("length")
		return 0xff
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *recordDecoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *recordDecoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *recordDecoder) take(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail("length")
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// field reads a length-prefixed field (nil if empty).
func (d *recordDecoder) field() []byte {
	n := d.uvarint()
	if n > maxRecordField {
		d.fail("field length")
		return nil
	}
	if n == 0 {
		return nil
	}
	return d.take(int(n))
}
