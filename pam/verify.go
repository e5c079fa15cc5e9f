package pam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/api"
	"go.uber.org/zap"

	"github.com/latchkey/latchkey/internal/vaultclient"
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
	Logger *zap.Logger
	// Token, when set, is sent with the request (TOTP mode).
	Token string
}

// Write sends data to path on the first address that answers and returns its
// reply. The rules that keep an OTP from being sent twice to a cluster:
//   - once an address answered (any HTTP status but 503), no other address
//     is tried: Vault deletes an OTP on its first verify;
//   - 503 means sealed or no active node: the request never reached the
//     SSH engine, so the next address is tried;
//   - an address that gives no answer (refused, TLS failure, timeout) is
//     skipped; each gets an equal share of the time left, so that a hung
//     first address leaves time for the others.
//
// Redirects from standby nodes are followed by the api client.
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
		c.Logger.Warn("vault address gave no answer", zap.String("vault_addr", addr), zap.Error(err))
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
	client, err := vaultclient.New(c.Config.ClientConfig(addr))
	if err != nil {
		return nil, false, err
	}
	if c.Token != "" {
		client.SetToken(c.Token)
	}
	start := time.Now()
	secret, err := client.Logical().WriteWithContext(ctx, path, data)
	c.Logger.Debug("vault request", zap.String("vault_addr", addr), zap.String("path", path),
		zap.Duration("took", time.Since(start)), zap.Bool("ok", err == nil))
	var re *api.ResponseError
	switch {
	case err == nil && secret == nil:
		return &Reply{Addr: addr}, true, fmt.Errorf("%w: %s with no data", ErrVault, path)
	case err == nil:
		r := &Reply{Data: secret.Data, Addr: addr, RequestID: secret.RequestID}
		if secret.Data == nil {
			return r, true, fmt.Errorf("%w: %s with no data", ErrVault, path)
		}
		return r, true, nil
	case errors.As(err, &re) && re.StatusCode == http.StatusServiceUnavailable:
		return nil, false, fmt.Errorf("vault is sealed or has no active node (503)")
	case errors.As(err, &re):
		r := &Reply{Addr: addr}
		if re.StatusCode == http.StatusBadRequest {
			return r, true, fmt.Errorf("%w: %s", ErrRefused, joinErrors(re.Errors))
		}
		return r, true, fmt.Errorf("%w: %d on %s: %s", ErrVault, re.StatusCode, path, joinErrors(re.Errors))
	default:
		return nil, false, err
	}
}

func joinErrors(es []string) string {
	if len(es) == 0 {
		return "no message"
	}
	s := es[0]
	for _, e := range es[1:] {
		s += "; " + e
	}
	return s
}
