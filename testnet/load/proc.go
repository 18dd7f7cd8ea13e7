package load

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ProcSample is what /proc says of another process at one moment: the CPU
// time it has used (user and system) and its resident memory, now and at
// its peak. It is how the load generator measures a witness running as its
// own process, as operators run it.
type ProcSample struct {
	PID  int
	Name string
	At   time.Time
	CPU  time.Duration
	// RSS and PeakRSS are in bytes (VmRSS and VmHWM).
	RSS, PeakRSS int64
	// StartTicks is when the process started, in clock ticks since boot:
	// with the PID it names one process.
	StartTicks uint64
}

// userHZ is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU times:
// 100 on every Linux the project runs on (it is fixed by the kernel ABI,
// not by CONFIG_HZ).
const userHZ = 100

// ErrNoProc means /proc cannot be read for the process (not Linux, or the
// process is gone).
var ErrNoProc = errors.New("process statistics unavailable")

// SampleProc reads /proc/PID/stat and /proc/PID/status.
func SampleProc(pid int) (ProcSample, error) {
	s := ProcSample{PID: pid, At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrNoProc, err)
	}
	if err := s.parseStat(stat); err != nil {
		return s, fmt.Errorf("%w: /proc/%d/stat: %v", ErrNoProc, pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrNoProc, err)
	}
	s.RSS, s.PeakRSS = statusKB(status, "VmRSS:")*1024, statusKB(status, "VmHWM:")*1024
	return s, nil
}

// parseStat takes the command name and fields 14 and 15 (utime, stime) and
// 22 (starttime) of /proc/PID/stat. The name is in parentheses and may hold
// spaces and parentheses itself, so fields are counted from the last ')'.
func (s *ProcSample) parseStat(b []byte) error {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return errors.New("no command name")
	}
	s.Name = string(b[open+1 : end])
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 20 {
		return fmt.Errorf("%d fields", len(f)+2)
	}
	var ticks [3]uint64
	for i, n := range []int{14, 15, 22} {
		v, err := strconv.ParseUint(string(f[n-3]), 10, 64)
		if err != nil {
			return fmt.Errorf("field %d: %v", n, err)
		}
		ticks[i] = v
	}
	// A process's CPU time fits in a Duration by centuries; anything
	// larger is not a /proc this code understands.
	const maxTicks = uint64(1<<62) / uint64(time.Second/userHZ)
	if ticks[0] > maxTicks || ticks[1] > maxTicks {
		return fmt.Errorf("CPU time of %d+%d ticks", ticks[0], ticks[1])
	}
	s.CPU = time.Duration(ticks[0]+ticks[1]) * (time.Second / userHZ)
	s.StartTicks = ticks[2]
	return nil
}

// statusKB returns the value in kB of a /proc/PID/status line such as
// "VmRSS:   12345 kB", or 0.
func statusKB(b []byte, key string) int64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	line := b[i+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return v
}

// Since reports the CPU used between an earlier sample and s; an error if
// the two are not of the same process (it restarted under the same PID).
func (s ProcSample) Since(prev ProcSample) (time.Duration, error) {
	if s.PID != prev.PID || s.StartTicks != prev.StartTicks {
		return 0, fmt.Errorf("process %d restarted during the run", s.PID)
	}
	return s.CPU - prev.CPU, nil
}

// SampleProcs samples every process of pids (SampleProc), in order.
func SampleProcs(pids []int) ([]ProcSample, error) {
	out := make([]ProcSample, 0, len(pids))
	for _, pid := range pids {
		s, err := SampleProc(pid)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// ProcStats is what one process used over a window: the difference of two
// samples' CPU time, and its memory at the end.
type ProcStats struct {
	PID  int
	Name string
	// CPU is the process's user and system CPU time over the window.
	CPU time.Duration
	// RSS and PeakRSS are its resident memory at the end of the window
	// and the highest it reached since it started, in bytes.
	RSS, PeakRSS int64
}

// StatsSince pairs each sample of end with the sample of the same process
// in start (the same order, as SampleProcs returns them) and reports what
// each process used in between; an error if the lists do not match or a
// process restarted.
func StatsSince(end, start []ProcSample) ([]ProcStats, error) {
	if len(end) != len(start) {
		return nil, fmt.Errorf("%d samples at the end of the window, %d at its start", len(end), len(start))
	}
	out := make([]ProcStats, len(end))
	for i, e := range end {
		cpu, err := e.Since(start[i])
		if err != nil {
			return nil, err
		}
		out[i] = ProcStats{PID: e.PID, Name: e.Name, CPU: cpu, RSS: e.RSS, PeakRSS: e.PeakRSS}
	}
	return out, nil
}
