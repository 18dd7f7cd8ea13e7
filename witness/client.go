package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client submits checkpoints to a C2SP tlog-witness. It is what a log (or
// the demo and load generator) uses to ask a Vigil node, or any other
// witness, to cosign.
type Client struct {
	// URL is the witness's submission prefix, e.g. http://127.0.0.1:7380.
	URL  string
	HTTP *http.Client
}

// StatusError is a non-200, non-409 answer from a witness.
type StatusError struct {
	Code       int
	Message    string
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness answered %d: %s", e.Code, e.Message)
}

// Is maps a status to the witness's sentinel errors, so clients can use the
// same errors.Is checks as the server.
func (e *StatusError) Is(target error) bool {
	switch e.Code {
	case http.StatusBadRequest:
		return target == ErrMalformed
	case http.StatusForbidden:
		return target == ErrUnauthenticated
	case http.StatusNotFound:
		return target == ErrUnknownLog
	case http.StatusUnprocessableEntity:
		return target == ErrInconsistent
	case http.StatusTooManyRequests:
		return target == ErrRateLimited
	}
	return false
}

// AddCheckpoint posts req and returns the witness's cosignature lines.
// A 409 with a size is returned as *ConflictError so the caller can resend
// with the right old size and proof.
func (c *Client) AddCheckpoint(ctx context.Context, req *AddCheckpointRequest) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/add-checkpoint", bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("add-checkpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxRequestBytes))
	if err != nil {
		return nil, fmt.Errorf("add-checkpoint: reading response: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusConflict:
		// SPEC: 409 with text/x.tlog.size carries the witness's size. A 409
		// without it is a v1.0.0 witness reporting a root mismatch.
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/x.tlog.size") {
			size, err := strconv.ParseUint(strings.TrimSpace(string(body)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("add-checkpoint: bad 409 body %q", body)
			}
			return nil, &ConflictError{Size: size}
		}
		return nil, &StatusError{Code: http.StatusUnprocessableEntity, Message: strings.TrimSpace(string(body))}
	default:
		e := &StatusError{Code: resp.StatusCode, Message: strings.TrimSpace(string(body))}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return nil, e
	}
}

// ProofSource supplies consistency proofs for a log, e.g. the log itself.
type ProofSource interface {
	ConsistencyProof(from, to uint64) ([][]byte, error)
}

// Submit sends a checkpoint of size `size`, learning the witness's current
// size from a 409 if the caller's guess (*old) is wrong, and updates *old on
// success. It retries at most once after a conflict.
func (c *Client) Submit(ctx context.Context, old *uint64, size uint64, checkpoint []byte, proofs ProofSource) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		p, err := proofs.ConsistencyProof(*old, size)
		if err != nil {
			return nil, fmt.Errorf("building proof %d→%d: %w", *old, size, err)
		}
		cosig, err := c.AddCheckpoint(ctx, &AddCheckpointRequest{OldSize: *old, Proof: p, Checkpoint: checkpoint})
		var conflict *ConflictError
		if errors.As(err, &conflict) && attempt == 0 && conflict.Size <= size {
			*old = conflict.Size
			continue
		}
		if err != nil {
			return nil, err
		}
		*old = size
		return cosig, nil
	}
}
