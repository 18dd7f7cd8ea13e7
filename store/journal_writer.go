package store

import (
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The journal is written by its own goroutine, one stage behind the
// committer: the committer commits and syncs a batch in Badger, publishes
// it, and hands the batch's witness states and replies to the journal
// writer; the writer writes their records, syncs the journal and only then
// answers the batch's callers. So the journal never holds a state Badger has
// not synced (a crash between the two syncs leaves Badger ahead, which is
// not a rollback), every reply follows both syncs, and the journal's sync
// of one batch overlaps Badger's sync of the next instead of adding to it.
// Batches that queue while the writer syncs share its next sync.
//
// In series with the committer the journal's sync added to every batch's
// latency: BenchmarkWitnessUpdate (128 writers) fell from ≈ 44,000 to
// ≈ 16,000-21,000 updates/s on a 2-core VM; pipelined it runs at
// ≈ 20,000-25,000, the device's cache flushes now being the limit (two per
// batch where Badger alone needs one).

// journalQueue bounds batches waiting for the journal writer; the
// committer blocks beyond it.
const journalQueue = 64

// journalJob is a committed batch waiting for its journal records.
type journalJob struct {
	// states is the batch's witness states by origin, in commit order
	// merged (a later commit of the same batch overwrites).
	states map[string]WitnessState
	// journaled are the indexes in batch whose replies wait for the
	// journal; the others are answered with the job as they are.
	journaled []int
	batch     []*commitReq
	results   []error
	start     time.Time
}

// add records the witness states of a commit within the batch, and the
// updates (indexes) they answer.
func (j *journalJob) add(states map[string]WitnessState, pending []int) {
	if j.states == nil {
		j.states = maps.Clone(states)
	} else {
		maps.Copy(j.states, states)
	}
	j.journaled = append(j.journaled, pending...)
}

// journalWriter writes and syncs journal records for committed batches,
// then answers them. It ends when journalCh is closed and drained.
func (d *DB) journalWriter() {
	defer close(d.journalDone)
	jobs := make([]journalJob, 0, journalQueue)
	// The latency histogram of each operation, looked up once: a label
	// lookup per reply hashes the label every time.
	latency := map[string]prometheus.Observer{}
	for job := range d.journalCh {
		jobs = append(jobs[:0], job)
	drain:
		for len(jobs) < cap(jobs) {
			select {
			case j, ok := <-d.journalCh:
				if !ok {
					break drain
				}
				jobs = append(jobs, j)
			default:
				break drain
			}
		}
		var err error
		for _, j := range jobs {
			if err = d.journal.put(j.states); err != nil {
				break
			}
		}
		if err == nil {
			err = d.journal.sync()
		}
		if err != nil {
			if d.disk != nil {
				d.disk.fault(err)
			}
			err = fmt.Errorf("%w: %w", ErrDiskFault, err)
		}
		for _, j := range jobs {
			if err != nil {
				for _, i := range j.journaled {
					if j.results[i] == nil {
						j.results[i] = err
					}
				}
			}
			elapsed := time.Since(j.start).Seconds()
			for i, r := range j.batch {
				o := latency[r.op]
				if o == nil {
					o = d.metrics.latency.WithLabelValues(r.op)
					latency[r.op] = o
				}
				o.Observe(elapsed)
				r.done <- j.results[i]
			}
		}
	}
}
