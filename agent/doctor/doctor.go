// Package doctor checks a host's set-up of latchkey-agent before it runs
// (`latchkey-agent doctor`): the config, the state directory, where sinks,
// templates and the ssh stanza write (under systemd, as the unit's sandbox
// lets it), Vault, and the auth method's metadata service.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/agent/template"
	"github.com/latchkey/latchkey/internal/cloud/alimeta"
	"github.com/latchkey/latchkey/internal/cloud/awsmeta"
	"github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/internal/vaultclient"
)

// Options say what to check.
type Options struct {
	// Configs are the -config paths, read as the agent reads them.
	Configs []string
	// Flags are the command line's Vault settings (-address, ...).
	Flags  vaultclient.Config
	Getenv func(string) string
	// Timeout bounds each network check (default 3s).
	Timeout time.Duration
}

// Run runs every check into rp; without a valid config only that is said.
func Run(ctx context.Context, o Options, rp *doctor.Report) {
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Second
	}
	cfg, err := config.Load(o.Configs...)
	if err == nil {
		_, err = methods.New(cfg.AutoAuth.Method, auth.Env{StateDir: cfg.StateDir, Logger: zap.NewNop(), Getenv: o.Getenv})
	}
	if err != nil {
		rp.Fail("config", err.Error(), "fix the config (latchkey-agent validate says the same)")
		return
	}
	rp.OK("config", fmt.Sprintf("%v valid (%s auth, %d sink(s), %d template(s))", cfg.Files, cfg.AutoAuth.Method.Type, len(cfg.AutoAuth.Sinks), len(cfg.Templates)))
	sb := loadSandbox(ctx, o.Timeout)
	if sb != nil {
		rp.OK("unit", fmt.Sprintf("%s (as systemd loaded it) may write under %s", unit, strings.Join(sb.writable, ", ")))
	}
	checkStateDir(cfg.StateDir, sb, rp)
	for _, s := range cfg.AutoAuth.Sinks {
		checkDest("sink", s.Path, s.Mode, false, sb, rp)
	}
	for _, t := range cfg.Templates {
		if t.Destination != "" {
			checkDest("template", t.Destination, 0, t.CreateDestDirs, sb, rp)
			checkSecretMode(t, rp)
		}
	}
	if cfg.SSH != nil {
		// The files the ssh stanza writes: the trust file sshd's
		// TrustedUserCAKeys names, and a certificate beside each host key
		// (a pattern's directory is the one checked).
		tc := cfg.SSH.Trust()
		if tc.TrustedUserCAKeys != "" {
			checkDest("ssh trust file", tc.TrustedUserCAKeys, 0, false, sb, rp)
		}
		if tc.Host != nil {
			for _, k := range tc.Host.Keys {
				checkDest("ssh host certificate", strings.TrimSuffix(k, ".pub")+"-cert.pub", 0, false, sb, rp)
			}
		}
	}
	checkVault(ctx, o, cfg, rp)
	checkMetadata(ctx, o, cfg, rp)
}

// checkStateDir checks the state directory as the agent will take it at
// start (a symlink, or a directory or agent.lock of another user, is
// refused: exit 3, which the unit does not restart), its mode, that the
// unit's sandbox (sb, nil outside systemd) lets the agent write there, and
// which process holds its lock.
func checkStateDir(dir string, sb *sandbox, rp *doctor.Report) {
	const name = "state dir"
	if dir == "" {
		dir = config.DefaultStateDir
	}
	// The agent refuses a symlink whatever it leads to, sandbox or not.
	fi, err := os.Lstat(dir)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, _ := filepath.EvalSymlinks(dir)
		rp.Fail(name, dir+" is a symlink (to "+target+"): the agent refuses it and exits 3, which systemd does not restart",
			"set latchkey { state_dir } to the directory it leads to (under systemd outside /var: with a ReadWritePaths= drop-in for it), or bind-mount that directory on "+dir+" in the symlink's place")
		return
	}
	if sb != nil {
		if problem, fix, fail := sb.check(dir); fail {
			rp.Fail(name, problem, fix)
			return
		}
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		rp.Warn(name, dir+" does not exist yet", "systemd's StateDirectory= creates it; by hand: install -d -m 0700 "+dir)
	case err != nil:
		rp.Fail(name, err.Error(), "")
	case !fi.IsDir():
		rp.Fail(name, dir+" is not a directory", "remove it; the agent keeps its nonce there")
	case notOurs(fi) != "":
		rp.Fail(name, dir+" is "+notOurs(fi)+": the agent refuses it and exits 3, which systemd does not restart", fmt.Sprintf("chown %d %s", os.Geteuid(), dir))
	case fi.Mode().Perm()&0o077 != 0:
		rp.Fail(name, fmt.Sprintf("%s has mode %04o: others can read the AWS nonce", dir, fi.Mode().Perm()), "chmod 0700 "+dir)
	default:
		rp.OK(name, fmt.Sprintf("%s mode %04o", dir, fi.Mode().Perm()))
		checkStateLock(filepath.Join(dir, state.LockName), sb, rp)
	}
}

// notOurs says whose fi is when this process's user does not own it ("" when
// it does): the agent, run as doctor is, refuses it.
func notOurs(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("owned by uid %d, not by uid %d", st.Uid, os.Geteuid())
	}
	return ""
}

// checkStateLock checks <state_dir>/agent.lock, the agent's flock (once one
// has run: nothing is said while there is none). A symlink, a FIFO or
// another user's file makes the agent exit 3. A lock held by a process
// other than the unit's main one (an agent started by hand) makes the
// service exit 6 at every start, which systemd restarts until that one
// stops. Who holds it is read from /proc/locks: doctor takes no lock, which
// would turn away an agent starting at that moment.
func checkStateLock(p string, sb *sandbox, rp *doctor.Report) {
	name := "state lock " + p
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return
	case err != nil:
		rp.Fail(name, err.Error(), "")
		return
	case !fi.Mode().IsRegular():
		rp.Fail(name, fmt.Sprintf("is not a regular file (%s): the agent refuses it and exits 3, which systemd does not restart", fi.Mode().Type()), "rm "+p+" (the agent makes it anew)")
		return
	case notOurs(fi) != "":
		rp.Fail(name, "is "+notOurs(fi)+": the agent refuses it and exits 3, which systemd does not restart", "rm "+p+" (the agent makes it anew)")
		return
	}
	pid := lockHolder(fi)
	switch {
	case pid == 0:
		rp.OK(name, "not held: no agent runs on this state directory")
	case sb != nil && sb.mainPID == pid:
		rp.OK(name, fmt.Sprintf("held by %s (pid %d)", unit, pid))
	default:
		who := fmt.Sprintf("pid %d (%s)", pid, comm(pid))
		if sb == nil {
			rp.Warn(name, "held by "+who+": another agent on this state directory exits 6 at its start",
				fmt.Sprintf("stop pid %d before starting another, or give each agent a latchkey { state_dir } of its own", pid))
			return
		}
		rp.Fail(name, "held by "+who+", not by "+unit+": the service exits 6 at every start, and systemd restarts it (Restart=on-failure) until that process stops",
			fmt.Sprintf("stop pid %d, or give it a latchkey { state_dir } of its own", pid))
	}
}

// lockHolder returns the pid holding an flock on the file fi describes, as
// /proc/locks lists it (0 when none, or /proc/locks cannot be read).
func lockHolder(fi os.FileInfo) int {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	// "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; a waiter's line has
	// "->" after the number and holds nothing.
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[1] != "FLOCK" || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// comm is a process's name (not its command line, which may carry
// anything), or "gone".
func comm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "gone"
	}
	return strings.TrimSpace(string(b))
}

// runtimeDir is the shipped unit's RuntimeDirectory=: systemd creates it
// when the agent starts, so before the first start it is missing (a test
// hook).
var runtimeDir = "/run/latchkey"

// checkDest checks that the directory of a sink or template exists and is
// writable, and that an existing sink has the mode the config asks. A
// missing directory is a warning, not a failure, when the agent will have
// it by the time it writes: the unit's RuntimeDirectory= (runtimeDir), or a
// template's create_dest_dirs under a writable existing directory. Under
// systemd (sb not nil) a directory the unit's sandbox keeps the agent from
// writing fails, one where nobody outside the unit sees the file (its
// private /tmp) is a warning.
func checkDest(kind, path string, mode os.FileMode, createDirs bool, sb *sandbox, rp *doctor.Report) {
	name := kind + " " + path
	dir := filepath.Dir(path)
	var sbProblem, sbFix string
	if sb != nil {
		var fail bool
		if sbProblem, sbFix, fail = sb.check(dir); fail {
			rp.Fail(name, sbProblem, sbFix)
			return
		}
	}
	if fi, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && (dir == runtimeDir || strings.HasPrefix(dir, runtimeDir+"/")) {
		if dir == runtimeDir || createDirs {
			rp.Warn(name, dir+" does not exist yet", "the unit's RuntimeDirectory= creates "+runtimeDir+" when the agent starts")
		} else {
			rp.Fail(name, dir+" is not a directory: nothing can be written there", "create "+dir+" (the agent creates only "+runtimeDir+", through systemd)")
		}
		return
	} else if errors.Is(err, os.ErrNotExist) && createDirs {
		parent := filepath.Dir(dir)
		for {
			if _, err := os.Stat(parent); !errors.Is(err, os.ErrNotExist) || parent == filepath.Dir(parent) {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := unix.Access(parent, unix.W_OK); err != nil {
			rp.Fail(name, dir+" does not exist and "+parent+" is not writable: "+err.Error(), "create "+dir+", or check the unit's ReadWritePaths=")
		} else {
			rp.Warn(name, dir+" does not exist yet", "the agent creates it (create_dest_dirs) at the first render")
		}
		return
	} else if err != nil || !fi.IsDir() {
		rp.Fail(name, dir+" is not a directory: nothing can be written there", "create "+dir+" (or use a RuntimeDirectory, "+runtimeDir+")")
		return
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		rp.Fail(name, dir+" is not writable: "+err.Error(), "check the unit's ReadWritePaths= and the directory's mode")
		return
	}
	// A read-only mount says so only at write time.
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
		rp.Fail(name, dir+" is on a read-only file system", "choose a writable place")
		return
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && mode != 0 && fi.Mode().Perm() != mode.Perm():
		rp.Warn(name, fmt.Sprintf("exists with mode %04o, the config says %04o", fi.Mode().Perm(), mode.Perm()), "the next write sets the config's mode")
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		rp.Warn(name, "is a symlink: the agent replaces it with a file", "point the config at the real path")
	case sbProblem != "":
		rp.Warn(name, sbProblem, sbFix)
	default:
		rp.OK(name, dir+" writable")
	}
}

// checkSecretMode warns of a template that renders what Vault answers
// (secret, pkiCert) into a file every local user may read: perms unset
// keeps an existing file's mode, else writes 0644, as Vault Agent does. A
// warning, not a failure: a CA certificate read with secret is public.
func checkSecretMode(t config.Template, rp *doctor.Report) {
	mode := os.FileMode(0o644)
	switch fi, err := os.Stat(t.Destination); {
	case t.Perms != nil:
		mode = *t.Perms
	case err == nil:
		mode = fi.Mode().Perm()
	}
	if mode&0o004 == 0 {
		return
	}
	if secrets, err := template.RendersSecrets(t); err != nil || !secrets {
		return // an unreadable template is the config check's
	}
	why := "perms is not set: the agent writes 0644, as Vault Agent does"
	if t.Perms != nil {
		why = fmt.Sprintf("perms = %04o", mode)
	} else if _, err := os.Stat(t.Destination); err == nil {
		why = fmt.Sprintf("perms is not set: the file keeps its mode, %04o", mode)
	}
	rp.Warn("template "+t.Destination, "renders what Vault answers (secret, pkiCert) into a file every local user can read ("+why+")",
		"set perms = 0600, or 0640 with group = the group of the service that reads it")
}

// checkVault asks sys/health, which needs no token.
func checkVault(ctx context.Context, o Options, cfg *config.Config, rp *doctor.Report) {
	const name = "vault"
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env, err := vaultclient.FromEnv(getenv)
	if err != nil {
		rp.Fail(name, err.Error(), "fix VAULT_* in the environment")
		return
	}
	vc := cfg.Vault.Client.Merge(env).Merge(o.Flags)
	// One try: the check reports what is wrong now, not after retries.
	vc.MaxRetries = vaultclient.Int(0)
	client, err := vaultclient.New(vc)
	if err != nil {
		rp.Fail(name, err.Error(), "fix the vault stanza")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	h, err := client.Health(ctx)
	switch {
	case err != nil:
		rp.Fail(name, fmt.Sprintf("%s: %v", client.Address(), err), "check vault { address }, the network path and ca_cert")
	case h.Sealed:
		rp.Fail(name, client.Address()+" is sealed", "unseal Vault")
	default:
		rp.OK(name, fmt.Sprintf("%s answered (version %s)", client.Address(), h.Version))
	}
}

// checkMetadata reaches the cloud metadata service the method logs in with.
func checkMetadata(ctx context.Context, o Options, cfg *config.Config, rp *doctor.Report) {
	const name = "metadata service"
	m := cfg.AutoAuth.Method
	endpoint, _ := m.Config["metadata_endpoint"].(string)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var err error
	switch m.Type {
	case "aws":
		var c *awsmeta.Client
		if c, err = awsmeta.New(awsmeta.Options{Endpoint: endpoint, Getenv: o.Getenv}); err == nil {
			endpoint = c.Endpoint
			_, err = c.Metadata(ctx, "instance-id")
		}
	case "alicloud":
		if endpoint == "" {
			endpoint = alimeta.DefaultEndpoint
		}
		err = get(ctx, endpoint+"/latest/meta-data/instance-id")
	default:
		rp.OK(name, m.Type+" auth uses no metadata service")
		return
	}
	if err != nil {
		rp.Fail(name, fmt.Sprintf("%s: %v", endpoint, err), "run on the cloud instance, or check the hop limit (IMDSv2 in containers needs 2) and the instance's metadata options")
		return
	}
	rp.OK(name, endpoint+" answered")
}

func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// The metadata service is link-local: never through a proxy.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
