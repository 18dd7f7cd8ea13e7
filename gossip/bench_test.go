package gossip_test

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	vpb "github.com/vigilnet/vigil/proto"
)

// BenchmarkDetectionLatency: 10 nodes; per iteration the log equivocates
// (same size, a fresh fork), view A is published by node 0 and view B by
// node 5; latency is from B's publication to the moment the last of the 10
// nodes has stored the evidence. Run with -benchtime=200x for stable
// percentiles.
func BenchmarkDetectionLatency(b *testing.B) {
	lat := detectionLatencies(b, 10, 0)
	report(b, lat)
}

// BenchmarkDetectionLatencyFlood is BenchmarkDetectionLatency while 3
// hostile peers, each connected to a different honest node, flood the
// network with forged sightings (1000/s each).
func BenchmarkDetectionLatencyFlood(b *testing.B) {
	lat := detectionLatencies(b, 10, 3)
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

func detectionLatencies(b *testing.B, nodes, hostiles int) []time.Duration {
	n := newNet(b, netOptions{nodes: nodes, observers: true, peerRate: 1e6})
	n.connectRing()
	n.log.AppendN(5, "common")
	for _, nd := range n.nodes {
		n.pull(nd)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for h := 0; h < hostiles; h++ {
		x := newHostile(b, "test")
		if err := x.host.Connect(ctx, n.nodes[(h*3)%nodes].addrInfo(false)); err != nil {
			b.Fatal(err)
		}
		msgs := n.invalidMessages(b)
		go func() {
			// Flood: 1000 new forged sightings per second per hostile peer.
			// (Faster floods mostly measure the hostile peers' own signing
			// CPU, which shares this process's 2 cores.)
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				x.cp.Publish(ctx, vary(b, "checkpoints", msgs["forged log sig"], i))
				select {
				case <-tick.C:
				case <-ctx.Done():
				}
			}
		}()
	}
	src, dst := n.nodes[0], n.nodes[nodes/2]
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		size := n.log.Size()
		fork, err := n.log.Fork(size)
		if err != nil {
			b.Fatal(err)
		}
		n.log.AppendN(1, fmt.Sprintf("a%d", i))
		fork.AppendN(1, fmt.Sprintf("b%d", i))
		cpA, _ := n.log.Checkpoint()
		cpB, _ := fork.Checkpoint()
		if err := src.svc.PublishSighting(ctx, cpA, vpb.Source_SOURCE_PUSH); err != nil {
			b.Fatal(err)
		}
		// Let A reach everyone, so the timer measures detection of B.
		root, _ := n.log.Root(n.log.Size())
		for _, nd := range n.nodes {
			waitFor(b, 20*time.Second, "view A to spread", func() bool {
				_, err := nd.db.Checkpoint(ctx, n.log.Origin(), n.log.Size(), root)
				return err == nil
			})
		}
		start := time.Now()
		if err := dst.svc.PublishSighting(ctx, cpB, vpb.Source_SOURCE_PUSH); err != nil {
			b.Fatal(err)
		}
		// Wait for this split view's same-size evidence. (Each fork B is
		// also inconsistent with the next iteration's larger A, which the
		// nodes prove from the tiles: that different-size evidence comes
		// while A spreads and must not count as detecting this B.)
		deadline := time.After(20 * time.Second)
		for _, nd := range n.nodes {
		wait:
			for {
				select {
				case r := <-nd.evidence:
					if r.Kind == vpb.KindName(vpb.Kind_KIND_LOG_EQUIVOCATION_SAME_SIZE) {
						break wait
					}
				case <-deadline:
					b.Fatalf("%s holds no evidence after 20s", nd.name)
				}
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	return lat
}

// BenchmarkGossipCPUPerSighting: 10 observer nodes; each iteration one node
// publishes the log's next checkpoint and all 10 validate, store and check
// it. Reports process CPU (user+system) per sighting per node.
func BenchmarkGossipCPUPerSighting(b *testing.B) {
	const nodes = 10
	n := newNet(b, netOptions{nodes: nodes, observers: true, peerRate: 1e6})
	n.connectRing()
	ctx := context.Background()
	n.log.AppendN(5, "x")
	for _, nd := range n.nodes {
		n.pull(nd)
	}
	before := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.log.AppendN(3, "x")
		cp, _ := n.log.Checkpoint()
		if err := n.nodes[i%nodes].svc.PublishSighting(ctx, cp, vpb.Source_SOURCE_PULL); err != nil {
			b.Fatal(err)
		}
	}
	size := n.log.Size()
	root, _ := n.log.Root(size)
	for _, nd := range n.nodes {
		waitFor(b, 60*time.Second, "the last sighting everywhere", func() bool {
			_, err := nd.db.Checkpoint(ctx, n.log.Origin(), size, root)
			return err == nil
		})
	}
	b.StopTimer()
	cpu := cpuTime() - before
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*nodes), "cpu-µs/sighting/node")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGossipCPUPerCosignature: 10 witness nodes; each iteration the
// log's next checkpoint is pushed to every witness, each cosigns it and
// gossips its cosignature, so every node receives the same checkpoint 10
// times with one more cosignature each time (what one split view causes on
// each side). Reports process CPU (witnesses' cosigning included) per
// (sighting × node), until every node holds all 10 cosignatures.
func BenchmarkGossipCPUPerCosignature(b *testing.B) {
	const nodes = 10
	n := newNet(b, netOptions{nodes: nodes, peerRate: 1e6})
	n.connectRing()
	ctx := context.Background()
	n.log.AppendN(5, "x")
	for _, nd := range n.nodes {
		n.push(nd, n.log)
	}
	before := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n.log.AppendN(3, "x")
		for _, nd := range n.nodes {
			n.push(nd, n.log)
		}
		size := n.log.Size()
		root, _ := n.log.Root(size)
		for _, nd := range n.nodes {
			waitFor(b, 60*time.Second, "every cosignature everywhere", func() bool {
				rec, err := nd.db.Checkpoint(ctx, n.log.Origin(), size, root)
				return err == nil && rec.Cosigners == nodes
			})
		}
	}
	b.StopTimer()
	cpu := cpuTime() - before
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*nodes*nodes), "cpu-µs/sighting/node")
}
