package pam

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// A panic while deciding fails closed: Run returns ErrInternal, the audit
// record says failure with reason "internal error: ...", and neither the log
// nor the record holds the password, even when the panic's text does.
func TestRunPanicFailsClosed(t *testing.T) {
	mount := sshMount(t, plain)
	cfg := testConfig(plain, mount)
	otp := issue(t, plain, mount, "web", "alice", "10.9.8.7")
	file := t.TempDir() + "/audit.log"
	cfg.AuditFile = file
	logger, logged := testLogger(t)
	h := &Helper{
		Config: cfg, Logger: logger,
		Auditor: &Auditor{Dest: AuditOff, File: file},
		Getenv: func(k string) string {
			return map[string]string{"PAM_USER": "alice", "PAM_SERVICE": "sshd", "PAM_TYPE": "auth"}[k]
		},
		HostAddrs: func() ([]netip.Addr, error) { panic("boom near " + otp) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	err := h.Run(ctx, strings.NewReader(otp))
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("Run = %v, want ErrInternal", err)
	}
	b := readFile(t, file)
	rec, ok := parseRecord(b)
	if !ok || rec.Result != "failure" || !strings.HasPrefix(rec.Reason, "internal error: panic: boom near") {
		t.Errorf("audit record %q, want a failure with reason \"internal error: panic: boom near ...\"", b)
	}
	if !strings.Contains(logged.String(), "internal error (panic)") || !strings.Contains(logged.String(), "boom near") {
		t.Errorf("the panic is not logged: %s", logged.String())
	}
	for name, text := range map[string]string{"audit record": b, "log": logged.String(), "error": err.Error()} {
		if strings.Contains(text, otp) {
			t.Errorf("%s contains the password: %s", name, text)
		}
	}
}
