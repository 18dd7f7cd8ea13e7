package store

// The journal is written by its own goroutine, one stage behind the syncer
// (sync.go): the committer commits a batch to Badger, the syncer syncs it
// and hands it to the journal writer, which writes the batch's witness
// states, syncs the journal and only then publishes the batch's values and
// answers its callers. So the journal never holds a state Badger has not
// synced (a crash between the two syncs leaves Badger ahead, which is not a
// rollback), every reply follows both syncs, and the journal's sync of one
// batch overlaps Badger's sync of the next and the commit of the one after.
// Batches that queue while the writer syncs share its next sync; batches
// with no witness states pass through in order, without a journal sync, so
// that replies and cache publications keep commit order.
//
// In series with Badger's sync the journal's sync added to every batch's
// latency: BenchmarkWitnessUpdate (128 writers) fell from ≈ 44,000 to
// ≈ 16,000-21,000 updates/s on a 2-core VM; as a stage of its own it ran
// at ≈ 20,000-25,000, the device's cache flushes being the limit (two per
// batch where Badger alone needs one).

// journalQueue bounds the batches waiting for the syncer and for the
// journal writer; the stage before blocks beyond it.
const journalQueue = 64

// journalJob is a batch synced in Badger, waiting for its journal records.
type journalJob struct{ *committedBatch }

// journalWriter writes and syncs journal records for synced batches, then
// answers them. It ends when journalCh is closed and drained.
func (d *DB) journalWriter() {
	defer close(d.journalDone)
	jobs := make([]journalJob, 0, journalQueue)
	latency := d.metrics.opLatency()
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
		last := d.syncs.failure.Load()
		var err error
		written := false
	put:
		for _, j := range jobs {
			if j.err == nil && j.failure != last {
				j.err = last.err
			}
			if j.err != nil {
				continue
			}
			for _, t := range j.txns {
				if len(t.witness.values) == 0 {
					continue
				}
				if err = d.journal.put(t.witness.values); err != nil {
					break put
				}
				written = true
			}
		}
		if err == nil && written {
			err = d.syncOps().syncJournal(d.journal)
		}
		if err != nil {
			err = d.syncs.fail(d.disk, err)
			for _, j := range jobs {
				if j.err == nil {
					j.err = err
				}
			}
		}
		for _, j := range jobs {
			d.answer(j.committedBatch, latency)
		}
		clear(jobs)
	}
}
