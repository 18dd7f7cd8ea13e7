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
	Logs     map[string]*LogServer
	Scenario *Scenario
}

// StartScripted serves nLogs scripted logs (log-0, log-1, ...; each both
// pushed to witnesses and pulled by every node from its tiles) and starts a
// network watching them.
func StartScripted(ctx context.Context, opts Options, nLogs int, out io.Writer) (*ScriptedNetwork, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sn := &ScriptedNetwork{Logs: map[string]*LogServer{}}
	fail := func(err error) (*ScriptedNetwork, error) {
		sn.Stop()
		return nil, err
	}
	for i := 0; i < nLogs; i++ {
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
	sn.Scenario = NewScenario(nw, sn.Logs, out)
	return sn, nil
}

// Stop stops the scenario's hostile peers, the network and the logs.
func (sn *ScriptedNetwork) Stop() {
	if sn.Scenario != nil {
		sn.Scenario.Close()
	}
	if sn.Network != nil {
		sn.Network.Stop()
	}
	for _, l := range sn.Logs {
		l.Close()
	}
}
