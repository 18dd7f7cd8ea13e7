package gossip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"

	vpb "github.com/vigilnet/vigil/proto"
)

func testNote(origin string, size int, tag string) []byte {
	return fmt.Appendf(nil, "%s\n%d\nWmH8K1T5z6cXdPJDIUPdQMbLKxGUf69lp9PaXLZRmcg=\n\n— %s AAAA\n", origin, size, tag)
}

func TestOffersCoalesceOwnCosignatures(t *testing.T) {
	drops := 0
	q := newOffers(func() { drops++ })
	q.add(offer{note: testNote("a", 5, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("b", 1, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("a", 9, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("a", 7, "x"), source: vpb.Source_SOURCE_COSIGN}) // older than 9: kept out
	// Pushed and pulled sightings are never merged, even for one size:
	// they may be the two sides of a split view.
	q.add(offer{note: testNote("a", 9, "view A"), source: vpb.Source_SOURCE_PUSH})
	q.add(offer{note: testNote("a", 9, "view B"), source: vpb.Source_SOURCE_PULL})

	if got := len(q.takeQueue()); got != 2 {
		t.Fatalf("plain queue has %d offers, want 2", got)
	}
	var got []string
	for {
		o, ok := q.popLatest()
		if !ok {
			break
		}
		origin, size, _ := originAndSize(o.note)
		got = append(got, fmt.Sprintf("%s@%d", origin, size))
	}
	if fmt.Sprint(got) != "[a@9 b@1]" {
		t.Fatalf("own cosignatures published: %v, want the newest per log, oldest log first", got)
	}
	for i := 0; i < offerQueue+5; i++ {
		q.add(offer{note: testNote("c", i, "x"), source: vpb.Source_SOURCE_PULL})
	}
	if drops != 5 {
		t.Fatalf("%d drops, want 5", drops)
	}
}

func TestOffersRunPublishesEverything(t *testing.T) {
	q := newOffers(func() {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	published := make(chan offer, 16)
	done := make(chan struct{})
	go func() {
		q.run(ctx, rate.NewLimiter(rate.Inf, 1), func(_ context.Context, o offer) { published <- o })
		close(done)
	}()
	q.add(offer{note: testNote("a", 1, "x"), source: vpb.Source_SOURCE_COSIGN})
	q.add(offer{note: testNote("b", 1, "x"), source: vpb.Source_SOURCE_PUSH})
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case o := <-published:
			origin, _, _ := originAndSize(o.note)
			seen[origin] = true
		case <-ctx.Done():
			t.Fatalf("published only %v", seen)
		}
	}
	cancel()
	<-done
}
