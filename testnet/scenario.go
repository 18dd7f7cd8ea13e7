package testnet

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"

	"github.com/vigilnet/vigil/testnet/scriptlog"
)

// DefaultScript is the fault script `vigil testnet` runs by default.
//
//go:embed scripts/faults.txt
var DefaultScript []byte

// ScriptedNetwork is a network with served scripted logs, ready for scripts.
type ScriptedNetwork struct {
	*Network
	Logs map[string]*LogServer
	// TS is the transparency service, or nil without ScriptedOptions.SCITT.
	TS       *TransparencyService
	Scenario *Scenario
}

// ScriptedOptions says which logs StartScripted serves besides the network.
type ScriptedOptions struct {
	// Logs is how many scripted logs to serve (log-0, log-1, ...).
	Logs int
	// SCITT also runs Vigil's transparency service (script name "ts",
	// origin ts.testnet.vigil.example) as one of the network's logs; every
	// node then registers the evidence it finds with it, unless
	// NoEvidenceRegistration is set.
	SCITT                  bool
	NoEvidenceRegistration bool
}

// TSOrigin is the origin of a scripted network's transparency service.
const TSOrigin = "ts.testnet.vigil.example"

// StartScripted serves so.Logs scripted logs (each both pushed to witnesses
// and pulled by every node from its tiles) and, with so.SCITT, the
// transparency service (pulled by every node, and pushing each checkpoint
// to the witnesses for cosigning before it publishes it), and starts a
// network watching them all.
func StartScripted(ctx context.Context, opts Options, so ScriptedOptions, out io.Writer) (*ScriptedNetwork, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sn := &ScriptedNetwork{Logs: map[string]*LogServer{}}
	fail := func(err error) (*ScriptedNetwork, error) {
		sn.Stop()
		return nil, err
	}
	if so.SCITT {
		ts, err := NewTransparencyService(TSOrigin, "provider.testnet.vigil.example")
		if err != nil {
			return fail(err)
		}
		sn.TS = ts
		opts.Logs = append(opts.Logs, ts.LogEntry())
		// Every node registers the evidence it finds with the service.
		if opts.Evidence == nil && !so.NoEvidenceRegistration {
			if opts.Evidence, err = ts.EvidenceConfig(opts.Dir); err != nil {
				return fail(err)
			}
		}
	}
	for i := 0; i < so.Logs; i++ {
		name := fmt.Sprintf("log-%d", i)
		l, err := scriptlog.New(name + ".testnet.vigil.example")
		if err != nil {
			return fail(err)
		}
		srv, err := ServeLog(l)
		if err != nil {
			return fail(err)
		}
		sn.Logs[name] = srv
		opts.Logs = append(opts.Logs, LogEntry{VKey: l.VerifierKey(), URL: srv.URL})
	}
	nw, err := Start(ctx, opts)
	if err != nil {
		return fail(err)
	}
	sn.Network = nw
	if sn.TS != nil {
		if err := sn.TS.Start(ctx, nw, tsDir(nw), opts.Logger.With("component", "ts")); err != nil {
			return fail(fmt.Errorf("transparency service: %w", err))
		}
	}
	sn.Scenario = NewScenario(nw, sn.Logs, out)
	sn.Scenario.ts = sn.TS
	return sn, nil
}

// Stop stops the scenario's hostile peers, the transparency service, the
// network and the logs.
func (sn *ScriptedNetwork) Stop() {
	if sn.Scenario != nil {
		sn.Scenario.Close()
	}
	// The service goes first: stopped witnesses would only make its last
	// witnessing round wait for its timeout.
	if sn.TS != nil {
		sn.TS.Close()
	}
	if sn.Network != nil {
		sn.Network.Stop()
	}
	for _, l := range sn.Logs {
		l.Close()
	}
}
