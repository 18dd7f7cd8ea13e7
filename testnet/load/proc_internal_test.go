package load

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Field layout: pid (comm) state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime priority nice
	// threads itrealvalue starttime ...
	const tail = " S 1 1 1 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 7 0 123456 1000 100"
	for _, tc := range []struct {
		name, stat string
		comm       string
		cpu        time.Duration
		start      uint64
		bad        bool
	}{
		{name: "plain", stat: "4242 (vigil)" + tail, comm: "vigil", cpu: 3 * time.Second, start: 123456},
		{name: "spaces and parentheses in the name", stat: "4242 (a (b) c)" + tail, comm: "a (b) c", cpu: 3 * time.Second, start: 123456},
		{name: "no name", stat: "4242 vigil" + tail, bad: true},
		{name: "truncated", stat: "4242 (vigil) S 1 1 1", bad: true},
		{name: "not a number", stat: "4242 (vigil) S 1 1 1 0 -1 4194304 10 0 0 0 x 50 0 0 20 0 7 0 123456 1000", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s ProcSample
			err := s.parseStat([]byte(tc.stat))
			if tc.bad {
				if err == nil {
					t.Fatalf("parsed %q as %+v", tc.stat, s)
				}
				return
			}
			if err != nil || s.Name != tc.comm || s.CPU != tc.cpu || s.StartTicks != tc.start {
				t.Fatalf("got %+v, %v; want name %q cpu %s start %d", s, err, tc.comm, tc.cpu, tc.start)
			}
		})
	}
}

func TestSampleProcSelf(t *testing.T) {
	a, err := SampleProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// Burn CPU until the kernel's tick-granular counter moves.
	deadline := time.Now().Add(5 * time.Second)
	var b ProcSample
	for x := uint64(1); ; x = x*6364136223846793005 + 1 {
		if x%(1<<20) == 0 {
			if b, err = SampleProc(os.Getpid()); err != nil {
				t.Fatal(err)
			}
			if b.CPU > a.CPU || time.Now().After(deadline) {
				break
			}
		}
	}
	d, err := b.Since(a)
	if err != nil || d <= 0 {
		t.Fatalf("CPU over the loop: %s, %v", d, err)
	}
	if b.RSS <= 0 || b.PeakRSS < b.RSS {
		t.Fatalf("RSS %d, peak %d", b.RSS, b.PeakRSS)
	}
	other := b
	other.StartTicks++
	if _, err := other.Since(a); err == nil {
		t.Fatal("a restarted process was taken for the same one")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (vigil) S 1 1 1 0 -1 4194304 10 0 0 0 250 50 0 0 20 0 7 0 123456 1000 100"))
	f.Add([]byte("1 ((() R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s ProcSample
		if err := s.parseStat(b); err == nil && s.CPU < 0 {
			t.Fatalf("negative CPU from %q", b)
		}
	})
}
