package pam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/latchkey/latchkey/internal/redact"
)

// ErrDenied marks a definite "no" about the login (wrong user, IP, role,
// code; malformed password): the helper worked, the person may not enter.
var ErrDenied = errors.New("login denied")

// ErrInternal marks a failure of the helper itself (a panic): the login is
// refused and the audit record says "internal error: ...".
var ErrInternal = errors.New("internal error")

// Helper verifies one login.
type Helper struct {
	Config  *Config
	Logger  *Logger
	Auditor *Auditor
	// Getenv reads pam_exec's environment (PAM_USER, PAM_SERVICE, ...).
	Getenv func(string) string
	// HostAddrs lists this host's addresses (HostAddrs in production).
	HostAddrs func() ([]netip.Addr, error)
	// Now is the clock of audit records (time.Now when nil).
	Now func() time.Time
}

// Run reads the password from stdin, verifies it and writes the audit
// record. It returns nil only when the login may proceed; an error wrapping
// ErrDenied or ErrRefused for a definite "no"; wrapping ErrUnreachable when
// no Vault answered; any other error for a failure to decide. ctx's deadline
// bounds everything.
func (h *Helper) Run(ctx context.Context, stdin io.Reader) error {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	rec := Record{
		Time:    now().UTC(),
		Service: h.Getenv("PAM_SERVICE"),
		User:    h.Getenv("PAM_USER"),
		RHost:   h.Getenv("PAM_RHOST"),
		Mode:    h.Config.Mode,
	}
	err := h.safeLogin(ctx, stdin, &rec)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("deadline of %s reached: %w", h.Config.Timeout, err)
	}
	rec.Result = "success"
	if err != nil {
		rec.Result, rec.Reason = "failure", err.Error()
	}
	if aerr := h.Auditor.Write(rec); aerr != nil {
		h.Logger.Warn("audit record not fully written", Err(aerr))
	}
	if err != nil {
		h.Logger.Warn("login refused", String("user", quoteValue(rec.User)), String("rhost", quoteValue(rec.RHost)), Err(err))
		return err
	}
	// vault-ssh-helper's line, which log= files and scripts know; a TOTP
	// answer carries no IP, so the line names the mode instead.
	// Both come from outside (PAM, Vault): quoted when unprintable, so
	// that a user name with a newline cannot forge a second line.
	who := quoteValue(rec.User) + "@" + quoteValue(rec.IP)
	if rec.IP == "" {
		who = quoteValue(rec.User) + " (" + rec.Mode + ")"
	}
	h.Logger.Info(who+" authenticated!",
		String("role", rec.Role), String("vault_request_id", rec.RequestID))
	return nil
}

// safeLogin is login that fails closed: a panic becomes an error wrapping
// ErrInternal, logged with its stack. Neither the log nor the error holds the
// password: it is cut out of the panic's text should it be there.
func (h *Helper) safeLogin(ctx context.Context, stdin io.Reader, rec *Record) (err error) {
	var secret string
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		msg := redact.String(fmt.Sprint(p), "[password]", secret)
		h.Logger.Error("internal error (panic); refusing the login",
			String("panic", msg), String("stack", redact.String(string(debug.Stack()), "[password]", secret)))
		err = fmt.Errorf("%w: panic: %s", ErrInternal, msg)
	}()
	return h.login(ctx, stdin, rec, &secret)
}

// login decides; it stores the password in *secretOut as soon as it is read,
// for safeLogin to keep it out of a panic's report.
func (h *Helper) login(ctx context.Context, stdin io.Reader, rec *Record, secretOut *string) error {
	if rec.User == "" {
		return fmt.Errorf("%w: PAM_USER is not set (is the helper run by pam_exec?)", ErrDenied)
	}
	// No user name or host sshd passes has a control character or
	// invalid UTF-8: such a value is an attack on the logs, refused before
	// anything is asked (the audit record quotes it).
	for _, v := range []struct{ name, value string }{{"PAM_USER", rec.User}, {"PAM_RHOST", rec.RHost}, {"PAM_SERVICE", rec.Service}} {
		if !printable(v.value) {
			return fmt.Errorf("%w: %s holds a control character or invalid UTF-8", ErrDenied, v.name)
		}
	}
	secret, err := ReadSecret(ctx, stdin)
	*secretOut = secret
	if err != nil {
		if errors.Is(err, ErrNoSecret) || errors.Is(err, ErrTooLong) || errors.Is(err, ErrNUL) {
			return fmt.Errorf("%w: %w", ErrDenied, err)
		}
		return err
	}
	if h.Config.Mode == ModeTOTP {
		if !IsTOTPCode(secret) {
			return fmt.Errorf("%w: password is not a 6 to 8 digit code", ErrDenied)
		}
		return h.verifyTOTP(ctx, secret, rec.User, rec)
	}
	if !IsUUID(secret) {
		// Not an OTP: never send it to Vault (it may be a real password).
		return fmt.Errorf("%w: password is not a Vault OTP (UUID)", ErrDenied)
	}
	caller := &Caller{Config: h.Config, Logger: h.Logger}
	reply, err := ask(ctx, caller, h.Config.SSHMountPoint+"/verify", map[string]any{"otp": secret}, rec,
		"vault does not know this OTP (wrong, used or expired)")
	if err != nil {
		return err
	}
	a, err := otpAnswer(reply)
	if err != nil {
		return err
	}
	rec.Role, rec.IP = a.Role, a.IP
	host, err := h.HostAddrs()
	if err != nil {
		return err
	}
	if err := Check(h.Config, a, rec.User, rec.RHost, host); err != nil {
		return fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return nil
}

// VerifyOnly sends Vault's echo request (-verify-only) to the first address
// that answers. It reads no stdin.
func (h *Helper) VerifyOnly(ctx context.Context) error {
	caller := &Caller{Config: h.Config, Logger: h.Logger}
	reply, err := caller.Write(ctx, h.Config.SSHMountPoint+"/verify", map[string]any{"otp": EchoRequest})
	if err != nil {
		return err
	}
	if msg, ok := reply.Data["message"].(string); !ok || msg != EchoResponse {
		return fmt.Errorf("%w: vault at %s answered the echo request with %q, want %q", ErrVault, reply.Addr, str(reply.Data["message"]), EchoResponse)
	}
	h.Logger.Info("vault verified the echo request", String("vault_addr", reply.Addr))
	return nil
}

// ask sends one request through caller, records in rec which address
// answered and Vault's request id, and turns Vault's 400 ("no such OTP",
// "code already used") into a denial with reason refused.
func ask(ctx context.Context, caller *Caller, path string, data map[string]any, rec *Record, refused string) (*Reply, error) {
	reply, err := caller.Write(ctx, path, data)
	if reply != nil {
		rec.VaultAddr, rec.RequestID = reply.Addr, reply.RequestID
	}
	if err != nil && errors.Is(err, ErrRefused) {
		return reply, fmt.Errorf("%w: %s", ErrDenied, refused)
	}
	return reply, err
}

// otpAnswer reads the verify endpoint's data: username, ip and role_name
// must all be strings, else the answer is not Vault's (ErrVault).
func otpAnswer(reply *Reply) (Answer, error) {
	var a Answer
	for key, dst := range map[string]*string{"username": &a.Username, "ip": &a.IP, "role_name": &a.Role} {
		v, ok := reply.Data[key].(string)
		if !ok {
			return Answer{}, fmt.Errorf("%w: verify answer from %s lacks the string %q", ErrVault, reply.Addr, key)
		}
		*dst = v
	}
	return a, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
