package doctor

import (
	"context"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// unit is the agent's systemd unit, whose sandbox decides where the agent
// can write once systemd runs it.
const unit = "latchkey-agent.service"

// sandbox is what the unit, as the running systemd has loaded it (drop-ins
// included), lets the agent write. Doctor runs by hand, outside the unit:
// there every directory root may write looks writable, while the agent
// under the unit fails with "read-only file system" outside ReadWritePaths=.
type sandbox struct {
	protectSystem string   // "no", "yes", "full" or "strict"
	protectHome   string   // "no", "yes", "read-only" or "tmpfs"
	privateTmp    bool     // /tmp and /var/tmp are the unit's own
	writable      []string // ReadWritePaths=, StateDirectory=, RuntimeDirectory=, ...
	readOnly      []string // ReadOnlyPaths=
	inaccessible  []string // InaccessiblePaths=
	mainPID       int      // the running agent's pid; 0 when it does not run
}

// sandboxProps are the unit's properties sandbox reads, in `systemctl show`'s names.
var sandboxProps = []string{"LoadState", "ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
	"StateDirectory", "RuntimeDirectory", "CacheDirectory", "LogsDirectory", "MainPID"}

// loadSandbox asks systemctl for the unit's sandbox, for at most timeout.
// It returns nil when systemctl is missing, fails (systemd does not run
// here: an image being built in a chroot) or does not answer, or the unit
// is not installed.
func loadSandbox(ctx context.Context, timeout time.Duration) *sandbox {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemctl", "show", "-p", strings.Join(sandboxProps, ","), unit).Output()
	if err != nil {
		return nil
	}
	return parseSandbox(string(out))
}

// parseSandbox reads `systemctl show`'s KEY=VALUE lines; nil when the unit
// is not loaded.
func parseSandbox(show string) *sandbox {
	props := map[string]string{}
	for _, l := range strings.Split(show, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			props[k] = v
		}
	}
	if props["LoadState"] != "loaded" {
		return nil
	}
	s := &sandbox{protectSystem: props["ProtectSystem"], protectHome: props["ProtectHome"], privateTmp: props["PrivateTmp"] == "yes"}
	s.mainPID, _ = strconv.Atoi(props["MainPID"])
	paths := func(k string) []string {
		var out []string
		for _, p := range strings.Fields(props[k]) {
			// "-" ignores a missing path, "+" is relative to RootDirectory=.
			out = append(out, path.Clean("/"+strings.TrimLeft(p, "-+")))
		}
		return out
	}
	s.writable, s.readOnly, s.inaccessible = paths("ReadWritePaths"), paths("ReadOnlyPaths"), paths("InaccessiblePaths")
	for k, base := range map[string]string{"StateDirectory": "/var/lib", "RuntimeDirectory": "/run", "CacheDirectory": "/var/cache", "LogsDirectory": "/var/log"} {
		for _, d := range strings.Fields(props[k]) {
			s.writable = append(s.writable, path.Join(base, d))
		}
	}
	return s
}

// longest returns the longest of dirs that p is under; "" when none.
func longest(p string, dirs []string) string {
	best := ""
	for _, d := range dirs {
		if under(p, d) && len(d) > len(best) {
			best = d
		}
	}
	return best
}

// under reports whether p is dir or inside it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// check says what the unit's sandbox does to a file written in dir: fail
// when the agent cannot write there under the unit, a warning when it can
// but nobody outside the unit sees the file; "" when neither. An existing
// dir is judged where its symlinks lead (/etc/app -> /opt/app is read-only
// under ProtectSystem=strict as /opt/app is).
func (s *sandbox) check(dir string) (problem, fix string, fail bool) {
	dir = path.Clean(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	// Writable whatever ProtectSystem= says, and seen by nobody else.
	if s.privateTmp && (under(dir, "/tmp") || under(dir, "/var/tmp")) {
		return dir + " is the unit's private one (PrivateTmp=yes): other services and logins do not see what " + unit + " writes there", "write it elsewhere, such as under /run", false
	}
	// The most specific of ReadWritePaths=, ReadOnlyPaths= and
	// InaccessiblePaths= decides, as systemd mounts the longer path over
	// the shorter (a hardening drop-in's ReadOnlyPaths=/etc/ssh inside the
	// shipped ReadWritePaths=/etc); for one path in two, the stricter.
	w, ro, in := longest(dir, s.writable), longest(dir, s.readOnly), longest(dir, s.inaccessible)
	switch {
	case in != "" && len(in) >= len(w):
		return dir + " cannot be reached under " + unit + " (InaccessiblePaths=" + in + ")", "remove " + in + " from InaccessiblePaths= (systemctl cat latchkey-agent shows which file sets it), or write elsewhere", true
	case ro != "" && len(ro) >= len(w):
		return dir + " is read-only under " + unit + " (ReadOnlyPaths=" + ro + ")", "remove " + ro + " from ReadOnlyPaths= (systemctl cat latchkey-agent shows which file sets it), or add the more specific ReadWritePaths=" + dir + " in a drop-in", true
	case w != "":
		return "", "", false
	}
	dropIn := "add ReadWritePaths=" + dir + " in a drop-in (systemctl edit latchkey-agent), or write under " + strings.Join(s.writable, ", ")
	var readOnly []string
	switch s.protectSystem {
	case "strict":
		if !under(dir, "/dev") && !under(dir, "/proc") && !under(dir, "/sys") {
			return dir + " is read-only under " + unit + " (ProtectSystem=strict): it may write only under " + strings.Join(s.writable, ", "), dropIn, true
		}
	case "full":
		readOnly = []string{"/usr", "/boot", "/efi", "/etc"}
	case "yes":
		readOnly = []string{"/usr", "/boot", "/efi"}
	}
	for _, ro := range readOnly {
		if under(dir, ro) {
			return dir + " is read-only under " + unit + " (ProtectSystem=" + s.protectSystem + ")", dropIn, true
		}
	}
	for _, h := range []string{"/home", "/root", "/run/user"} {
		if !under(dir, h) {
			continue
		}
		switch s.protectHome {
		case "yes", "read-only":
			return dir + " cannot be written under " + unit + " (ProtectHome=" + s.protectHome + ")", dropIn, true
		case "tmpfs":
			return dir + " is an empty tmpfs of its own under " + unit + " (ProtectHome=tmpfs): nothing written there is seen outside it", "write it elsewhere, such as under /run or /etc", false
		}
	}
	return "", "", false
}
