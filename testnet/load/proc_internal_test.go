package load

import (
	"errors"
	"os"
	"os/exec"
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

// startChild starts a real child process running the shell script and
// kills it when the test ends.
func startChild(t *testing.T, script string) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Skipf("no shell to start a child process: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// TestSampleProcsChildren measures a set of real processes as the load
// generator measures a witness and its signer: one child busy, one asleep.
// Each process's CPU must be its own, and the total their sum.
func TestSampleProcsChildren(t *testing.T) {
	if _, err := SampleProc(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	busy := startChild(t, "while :; do :; done")
	idle := startChild(t, "exec sleep 600")
	pids := []int{busy, idle}
	start, err := SampleProcs(pids)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the busy child has used 5 clock ticks of CPU.
	var procs []ProcStats
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		end, err := SampleProcs(pids)
		if err != nil {
			t.Fatal(err)
		}
		if procs, err = StatsSince(end, start); err != nil {
			t.Fatal(err)
		}
		if procs[0].CPU >= 5*time.Second/userHZ {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the busy child used %s of CPU in 10 s", procs[0].CPU)
		}
		<-tick.C
	}
	if procs[0].PID != busy || procs[1].PID != idle || procs[0].Name != "sh" || procs[1].Name != "sleep" {
		t.Fatalf("samples out of order or misnamed: %+v", procs)
	}
	// The sleeping child may be charged a tick for its exec, no more.
	if procs[1].CPU > 2*time.Second/userHZ {
		t.Fatalf("the sleeping child is charged %s of CPU", procs[1].CPU)
	}
	if procs[0].RSS <= 0 || procs[1].RSS <= 0 || procs[0].PeakRSS < procs[0].RSS {
		t.Fatalf("memory not read: %+v", procs)
	}
	target := TargetStats{ProcStats: procs[0], Helpers: procs[1:]}
	if got, want := target.TotalCPU(), procs[0].CPU+procs[1].CPU; got != want {
		t.Fatalf("total CPU %s, want %s", got, want)
	}
	if got, want := target.TotalRSS(), procs[0].RSS+procs[1].RSS; got != want {
		t.Fatalf("total RSS %d, want %d", got, want)
	}

	if _, err := StatsSince(start[:1], start); err == nil {
		t.Fatal("samples of different sets of processes were paired")
	}
	restarted := append([]ProcSample(nil), start...)
	restarted[1].StartTicks++
	if _, err := StatsSince(start, restarted); err == nil {
		t.Fatal("a restarted helper was taken for the same process")
	}

	// A helper that exits is an error, not a process that used nothing.
	gone := exec.Command("sh", "-c", "exit 0")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := SampleProcs([]int{busy, gone.Process.Pid}); !errors.Is(err, ErrNoProc) {
		t.Fatalf("sampling an exited process: %v, want ErrNoProc", err)
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
