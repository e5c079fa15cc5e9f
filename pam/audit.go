package pam

import (
	"encoding/json"
	"fmt"
	"io"
	"log/syslog"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/latchkey/latchkey/internal/appendfile"
)

// Record is one login attempt, as the audit trail keeps it. It never holds
// the password.
type Record struct {
	Time      time.Time `json:"time"`
	Service   string    `json:"pam_service"`
	User      string    `json:"pam_user"`
	RHost     string    `json:"pam_rhost"`
	Mode      string    `json:"mode"`
	Role      string    `json:"role,omitempty"`
	IP        string    `json:"ip,omitempty"`
	VaultAddr string    `json:"vault_addr,omitempty"`
	RequestID string    `json:"vault_request_id,omitempty"`
	// Result is "success" or "failure"; Reason says why it failed.
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// Message is the record as one human line. Values that hold control
// characters (a user name with a newline, say) are quoted, so that nobody can
// forge a second line in syslog; so are those with a blank or a double quote
// (oneLine), so that nobody can forge a field of this one.
func (r Record) Message() string {
	from := "unknown host"
	if r.RHost != "" {
		from = oneLine(r.RHost)
	}
	// The PAM service says which program asked (sshd, sudo, ...).
	if r.Service != "" {
		from += " via " + oneLine(r.Service)
	}
	login := "login"
	if r.Mode != "" { // unknown when the config could not be read
		login = r.Mode + " login"
	}
	if r.Result == "success" {
		return fmt.Sprintf("accepted %s for %s from %s (role %q, ip %s, vault %s, request %s)",
			login, oneLine(r.User), from, r.Role, oneLine(r.IP), oneLine(r.VaultAddr), oneLine(r.RequestID))
	}
	// The reason is the rest of the line: blanks are its own.
	return fmt.Sprintf("refused %s for %s from %s: %s", login, oneLine(r.User), from, quoteValue(r.Reason))
}

// oneLine returns s, or s quoted (Go syntax) when it holds anything
// unprintable, a blank or a double quote: the line's fields are then one
// token each, so that a user name such as "x from 192.0.2.1 via sshd:"
// (sshd passes any name a client sends to PAM) cannot make a refusal read
// as coming from another address, to a reader or to a fail2ban filter.
func oneLine(s string) string {
	if strings.ContainsAny(s, " \"") {
		return strconv.Quote(s)
	}
	return quoteValue(s)
}

// FallbackFile is where audit = "auto" leaves a record that neither the
// journal nor syslog accepted (a host with neither journald nor /dev/log).
const FallbackFile = "/var/log/latchkey-ssh-helper.log"

// identifier is the syslog identifier of audit records.
const identifier = "latchkey-ssh-helper"

// Auditor writes records where the config says. pam_exec discards the
// helper's output unless its line has log=, so the record goes to the
// journal or syslog directly.
type Auditor struct {
	// Dest is one of the Audit* constants.
	Dest string
	// File, when set, also gets each record as a JSON line.
	File string
	// Stderr receives the record when no system log is reachable.
	Stderr io.Writer
	// Fallback, when set, gets the record as a JSON line (like File) when
	// Dest is auto and neither the journal nor syslog accepted it: under
	// pam_exec stderr goes to /dev/null, and a record must not be lost.
	// The command sets it to FallbackFile.
	Fallback string

	// Test hooks; nil means the real journal and syslog.
	journalEnabled func() bool
	journalSend    func(string, journal.Priority, map[string]string) error
	syslogWrite    func(priority syslog.Priority, msg string) error
}

// Write records r. A destination that cannot be written is reported in the
// returned error, after the others were tried; the login's outcome does not
// depend on it.
func (a *Auditor) Write(r Record) error {
	var errs []string
	if a.File != "" {
		if err := appendJSON(a.File, r); err != nil {
			errs = append(errs, err.Error())
		}
	}
	sent := false
	switch a.Dest {
	case AuditOff:
		sent = true
	case AuditAuto, AuditJournal, "":
		if a.journalOn() {
			if err := a.sendJournal(r); err != nil {
				errs = append(errs, "journal: "+err.Error())
			} else {
				sent = true
			}
		}
		if sent || a.Dest == AuditJournal {
			break
		}
		fallthrough
	case AuditSyslog:
		if err := a.sendSyslog(r); err != nil {
			errs = append(errs, "syslog: "+err.Error())
		} else {
			sent = true
		}
	}
	if !sent && (a.Dest == AuditAuto || a.Dest == "") && a.Fallback != "" && a.Fallback != a.File {
		if err := appendJSON(a.Fallback, r); err != nil {
			errs = append(errs, "fallback "+err.Error())
		}
	}
	if !sent && a.Stderr != nil {
		fmt.Fprintf(a.Stderr, "%s: audit: %s\n", identifier, r.Message())
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (a *Auditor) journalOn() bool {
	if a.journalEnabled != nil {
		return a.journalEnabled()
	}
	return journal.Enabled()
}

func (a *Auditor) sendJournal(r Record) error {
	fields := map[string]string{
		"SYSLOG_IDENTIFIER": identifier,
		"SYSLOG_FACILITY":   "10", // authpriv
		"LATCHKEY_RESULT":   r.Result,
		"LATCHKEY_MODE":     r.Mode,
		"PAM_SERVICE":       r.Service,
		"PAM_USER":          r.User,
		"PAM_RHOST":         r.RHost,
	}
	for k, v := range map[string]string{
		"LATCHKEY_ROLE": r.Role, "LATCHKEY_IP": r.IP, "LATCHKEY_VAULT_ADDR": r.VaultAddr,
		"LATCHKEY_VAULT_REQUEST_ID": r.RequestID, "LATCHKEY_REASON": r.Reason,
	} {
		if v != "" {
			fields[k] = v
		}
	}
	prio := journal.PriInfo
	if r.Result != "success" {
		prio = journal.PriWarning
	}
	send := a.journalSend
	if send == nil {
		send = journal.Send
	}
	return send(r.Message(), prio, fields)
}

func (a *Auditor) sendSyslog(r Record) error {
	prio := syslog.LOG_AUTHPRIV | syslog.LOG_INFO
	if r.Result != "success" {
		prio = syslog.LOG_AUTHPRIV | syslog.LOG_WARNING
	}
	if a.syslogWrite != nil {
		return a.syslogWrite(prio, r.Message())
	}
	w, err := syslog.New(prio, identifier)
	if err != nil {
		return err
	}
	defer w.Close()
	if r.Result == "success" {
		return w.Info(r.Message())
	}
	return w.Warning(r.Message())
}

// appendJSON appends r to path as one line; O_APPEND keeps concurrent
// logins' lines whole. On a full disk a line written only in part is cut
// off again when nobody appended since (appendfile.WriteLine), so that the
// next login's record does not land on its end; the error says whether it
// was.
func appendJSON(path string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// A new file is 0640 whatever the umask; an existing one keeps its mode;
	// a symlink is refused.
	f, err := appendfile.Open(path, 0o640)
	if err != nil {
		return fmt.Errorf("audit file: %w", err)
	}
	// WriteLine's errors name the file (write PATH: ...), never the line.
	werr := appendfile.WriteLine(f, append(b, '\n'))
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("audit file: %w", werr)
	}
	if cerr != nil {
		return fmt.Errorf("audit file %s: %w", path, cerr)
	}
	return nil
}
