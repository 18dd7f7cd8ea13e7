package witness_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigilnet/vigil/roster"
	"github.com/vigilnet/vigil/store"
	"github.com/vigilnet/vigil/testnet/scriptlog"
	"github.com/vigilnet/vigil/tlog"
	"github.com/vigilnet/vigil/witness"
)

// Example cosigns a log's checkpoints with the transport-free core: the
// first checkpoint, a stale request answered with the witness's size, and a
// consistent extension.
func Example() {
	ctx := context.Background()

	// A log of 5 entries, and a roster (C2SP tlog-policy) that lists it.
	lg, err := scriptlog.New("example.com/log")
	if err != nil {
		log.Fatal(err)
	}
	lg.AppendN(5, "entry")
	logs, err := roster.ParsePolicy([]byte("log " + lg.VerifierKey() + "\n"))
	if err != nil {
		log.Fatal(err)
	}

	// The witness: a cosignature/v1 key and a store (in memory here; a node
	// uses store.Open(dir, ...), which is durable).
	skey, vkey, err := tlog.GenerateCosignerKey(nil, "witness.example/w1")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := tlog.NewCosignatureSigner(skey, nil)
	if err != nil {
		log.Fatal(err)
	}
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	w, err := witness.New(witness.Config{Signer: signer, Logs: logs, Store: db})
	if err != nil {
		log.Fatal(err)
	}

	// First checkpoint: old size 0, no proof.
	cp5, _ := lg.Checkpoint()
	cosig, err := w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: 0, Checkpoint: cp5})
	if err != nil {
		log.Fatal(err)
	}
	// A client appends the cosignature line to the checkpoint and verifies
	// both signatures.
	logV, _ := note.NewVerifier(lg.VerifierKey())
	witV, _ := tlog.NewCosignatureVerifier(vkey)
	n, err := note.Open(append(cp5, cosig...), note.VerifierList(logV, witV))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("cosigned size 5 with %d verified signatures\n", len(n.Sigs))

	// The log grows; a client that forgot the witness's state learns it
	// from the conflict (HTTP 409).
	lg.AppendN(3, "entry")
	cp8, _ := lg.Checkpoint()
	_, err = w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: 0, Checkpoint: cp8})
	var conflict *witness.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: the witness is at size", conflict.Size)
	}

	// With the right old size and a consistency proof it is cosigned.
	proof, _ := lg.ConsistencyProof(conflict.Size, 8)
	if _, err := w.AddCheckpoint(ctx, &witness.AddCheckpointRequest{OldSize: conflict.Size, Proof: proof, Checkpoint: cp8}); err != nil {
		log.Fatal(err)
	}
	latest, _ := w.Latest(ctx, "example.com/log")
	c, _, err := tlog.VerifyCheckpoint(latest, "example.com/log", []note.Verifier{logV}, witV)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("latest cosigned size", c.Size)
	// Output:
	// cosigned size 5 with 2 verified signatures
	// conflict: the witness is at size 5
	// latest cosigned size 8
}

// ExampleParseAddCheckpointRequest parses a C2SP tlog-witness request body.
func ExampleParseAddCheckpointRequest() {
	checkpoint := "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n" +
		"— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
	body := "old 20852014\n" +
		"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" +
		"jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n" +
		"\n" + checkpoint
	req, err := witness.ParseAddCheckpointRequest([]byte(body))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(req.OldSize, len(req.Proof), string(req.Marshal()) == body)

	// SPEC: sizes have no leading zeroes.
	_, err = witness.ParseAddCheckpointRequest([]byte("old 007\n\n" + checkpoint))
	fmt.Println(errors.Is(err, witness.ErrMalformed))
	// Output:
	// 20852014 2 true
	// true
}
