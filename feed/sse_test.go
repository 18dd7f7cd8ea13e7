package feed

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadEvents: any stream reads without panicking into events whose
// fields hold no line breaks, and a stream the feed writes reads back as
// written.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte("retry: 2000\n\nid: a-1\nevent: evidence\ndata: {\"id\":\"x\"}\n\n: keep-alive\n\n"), "a-2", "checkpoint", `{"origin":"o"}`)
	f.Add([]byte("event: peers\ndata: {}\n"), "e-9", "peers", "{}")
	f.Add([]byte("id: only\n\n\n\ndata: no type\n\n"), "x", "reset", `{"reason":"r"}`)
	f.Fuzz(func(t *testing.T, raw []byte, id, typ, data string) {
		err := ReadEvents(bufio.NewReader(bytes.NewReader(raw)), func(ev StreamEvent) bool {
			if ev.Type == "" || strings.ContainsAny(ev.ID+ev.Type+ev.Data, "\n") {
				t.Fatalf("bad event %+v", ev)
			}
			return true
		})
		if err == nil {
			t.Fatal("a reader that ran out returned no error")
		}
		if id == "" || typ == "" || strings.ContainsAny(id+typ+data, "\r\n") {
			return
		}
		var got []StreamEvent
		ReadEvents(bufio.NewReader(bytes.NewReader(appendEvent(nil, id, typ, []byte(data)))), func(ev StreamEvent) bool {
			got = append(got, ev)
			return true
		})
		if want := (StreamEvent{ID: id, Type: typ, Data: data}); len(got) != 1 || got[0] != want {
			t.Fatalf("wrote %+v, read %+v", want, got)
		}
	})
}
