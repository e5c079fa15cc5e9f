package pam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// EchoRequest and EchoResponse are Vault's connectivity check on the verify
// endpoint (what -verify-only sends).
const (
	EchoRequest  = "verify-echo-request"
	EchoResponse = "verify-echo-response"
)

// ErrRefused marks Vault's answer that the OTP is not valid (unknown, used
// or expired): a definite "no", not a failure to ask.
var ErrRefused = errors.New("vault refused the OTP")

// ErrVault marks an answer from Vault that is neither a yes nor a "no such
// OTP" (wrong mount, wrong namespace, permission denied, no data).
var ErrVault = errors.New("unexpected vault answer")

// notActive is Vault's error (500) from a standby that knows no active node;
// see Write for why the request then never reached the SSH engine. It is
// vaultclient.NotActive, not imported: that package brings vault/api, which
// the helper's start-up does without.
const notActive = "local node not active but active cluster node not found"

// ErrUnreachable marks a run where no Vault address gave an answer.
var ErrUnreachable = errors.New("no vault address answered")

// Reply is one answer from Vault, with where it came from.
type Reply struct {
	Data      map[string]any
	Addr      string
	RequestID string
}

// Caller sends one request to Vault's addresses in order, within ctx's
// deadline, and stops at the first address that answers.
type Caller struct {
	Config *Config
	Logger *Logger
	// Token, when set, is sent with the request (TOTP mode).
	Token string
}

// Write sends data to path on the first address that answers and returns its
// reply. The rules that keep an OTP from being sent twice to a cluster:
//   - once an address answered (any HTTP status but 503), no other address
//     is tried: Vault deletes an OTP on its first verify. A status line
//     whose body is then cut off is such an answer too;
//   - 503 means sealed or no active node: the request never reached the
//     SSH engine, so the next address is tried;
//   - so does a 500 whose only error is notActive: a standby that knows no
//     active node (during an election, or just restarted) writes it in
//     Vault's request-forwarding handler before the request is handed to
//     any backend or forwarded (vault/http/handler.go,
//     handleRequestForwarding), so the OTP was neither seen nor deleted.
//     Any other 500 may come from the SSH engine after it deleted the OTP:
//     it is final;
//   - an address that gives no answer (refused, TLS failure, timeout) is
//     skipped; each gets an equal share of the time left, so that a hung
//     first address leaves time for the others.
//
// A standby node's redirect (301, 302, 307) is followed once, and only to a
// configured address with the same path; the reply names the address that
// answered. Only a 200 whose body is one JSON object with a "data" object
// and no "errors" is a success; the body is read up to 64 KiB.
//
// It returns (reply, nil) on success; (reply, err wrapping ErrRefused) when
// Vault answered 400 (the verify endpoint's "OTP not found"); (nil, err
// wrapping ErrUnreachable) when nobody answered; (reply-less, err) for any
// other answer. Errors never contain data's values.
func (c *Caller) Write(ctx context.Context, path string, data map[string]any) (*Reply, error) {
	addrs := c.Config.VaultAddrs
	var errs []error
	for i, addr := range addrs {
		reply, answered, err := c.try(ctx, addr, len(addrs)-i, path, data)
		if answered {
			return reply, err
		}
		c.Logger.Warn("vault address gave no answer", String("vault_addr", addr), Err(err))
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// try asks one address, with 1/left of the remaining time. answered is
// true when the address gave a final answer (success or not).
func (c *Caller) try(ctx context.Context, addr string, left int, path string, data map[string]any) (reply *Reply, answered bool, err error) {
	if dl, ok := ctx.Deadline(); ok && left > 1 {
		share := time.Until(dl) / time.Duration(left)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	hc, err := newHTTPClient(c.Config)
	if err != nil {
		return nil, false, err
	}
	body, err := json.Marshal(data)
	if err != nil {
		return nil, false, err
	}
	start := time.Now()
	status, answer, from, answered, err := c.post(ctx, hc, addr, path, body)
	c.Logger.Debug("vault request", String("vault_addr", from), String("path", path),
		Duration("took", time.Since(start)), Int("status", status), Bool("answered", answered))
	if err != nil {
		if answered {
			return &Reply{Addr: from}, true, err
		}
		return nil, false, err
	}
	r := &Reply{Addr: from}
	switch {
	case status == statusOK:
		d, id, err := decodeData(answer)
		r.RequestID = id
		if err != nil {
			return r, true, fmt.Errorf("%w: %s: %s", ErrVault, path, err)
		}
		r.Data = d
		return r, true, nil
	case status == statusServiceUnavailable:
		return nil, false, fmt.Errorf("vault is sealed or has no active node (503)")
	case status == statusInternalServerError && vaultErrors(answer) == quoteValue(notActive):
		return nil, false, fmt.Errorf("standby knows no active node (500 %s)", notActive)
	case status == statusBadRequest && isVaultError(answer):
		return r, true, fmt.Errorf("%w: %s", ErrRefused, vaultErrors(answer))
	case status == statusBadRequest:
		// Not Vault's "no such OTP": a server that is not Vault's API, such
		// as Vault's own TLS listener asked in plain http:// ("Client sent
		// an HTTP request to an HTTPS server"), or a proxy. Its body is
		// never quoted: it could echo the request, OTP included.
		return r, true, fmt.Errorf("%w: 400 on %s without Vault's JSON errors: not Vault's API at %s (an http:// address of an https:// listener answers so)", ErrVault, path, r.Addr)
	case status == statusNoContent:
		return r, true, fmt.Errorf("%w: %s with no data", ErrVault, path)
	default:
		return r, true, fmt.Errorf("%w: %d on %s: %s", ErrVault, status, path, vaultErrors(answer))
	}
}
