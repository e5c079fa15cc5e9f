package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/runner"
	"github.com/latchkey/latchkey/agent/state"
	"github.com/latchkey/latchkey/internal/logging"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/internal/version"
)

// Exit codes, distinct so that systemd's journal and scripts tell them apart.
const (
	exitOK      = 0  // stopped by a signal, or exit_after_auth completed
	exitError   = 1  // a runtime failure not covered below
	exitUsage   = 64 // bad command line (EX_USAGE: 2 is what a Go panic, and systemd's watchdog SIGABRT, exit with)
	exitConfig  = 3  // the config cannot be loaded or used
	exitAuth    = 4  // login failed with exit_on_err
	exitRuntime = 5  // templates failed: exit_on_retry_failure, or exit_after_auth once retries are exhausted
	exitLocked  = 6  // another agent holds the state directory (systemd retries: it may be gone by then)
)

const usage = `Usage:
  latchkey-agent -config FILE|DIR [-config ...] [options]   run the agent
  latchkey-agent validate -config FILE|DIR [...]            check a config without contacting Vault
  latchkey-agent render -config ... -template NAME [-dry-run [-issue]] [-show-secrets]
                                                            log in, render one template, print it (secrets masked)
  latchkey-agent ssh status -config FILE|DIR [...]          print SSH trust and host certificates (no Vault)
  latchkey-agent doctor -config FILE|DIR [...]              check this host's set-up: one line per check, OK/WARN/FAIL
  latchkey-agent version                                    print the version

Options:
  -config FILE|DIR    Vault Agent HCL or JSON config; repeatable, read in order (a later value wins,
                      templates add up); a directory adds its *.hcl and *.json in name order,
                      except dotfiles
  -log-level LEVEL    trace, debug, info, warn, error or off (overrides log_level)
  -log-format FORMAT  standard or json (overrides log_format)
  -address URL        Vault address (overrides VAULT_ADDR and vault { address })
  -ca-cert FILE       CA certificate (overrides VAULT_CACERT and vault { ca_cert })
  -namespace NS       Vault namespace (overrides VAULT_NAMESPACE and vault { namespace })

Exit codes: 0 stopped or exit_after_auth done, 1 runtime error, 64 usage,
3 config error, 4 login failed with exit_on_err, 5 templates failed
(exit_on_retry_failure, or exit_after_auth), 6 another agent holds the
state directory (systemd restarts the unit).
`

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type options struct {
	configs             multi
	logLevel, logFormat string
	address, caCert, ns string
}

func parse(name string, args []string, stderr io.Writer) (*options, int) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&o.configs, "config", "")
	fs.StringVar(&o.logLevel, "log-level", "", "")
	fs.StringVar(&o.logFormat, "log-format", "", "")
	fs.StringVar(&o.address, "address", "", "")
	fs.StringVar(&o.caCert, "ca-cert", "", "")
	fs.StringVar(&o.ns, "namespace", "", "")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "latchkey-agent: %v\n\n", err)
		}
		fmt.Fprint(stderr, usage)
		return nil, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "latchkey-agent: unexpected argument %q\n\n%s", fs.Arg(0), usage)
		return nil, exitUsage
	}
	if len(o.configs) == 0 {
		fmt.Fprintf(stderr, "latchkey-agent: -config is required\n\n%s", usage)
		return nil, exitUsage
	}
	return o, exitOK
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-v", "-version", "--version":
			fmt.Fprintf(stdout, "latchkey-agent %s\n", version.Version)
			return exitOK
		case "validate":
			return validate(args[1:], stdout, stderr, getenv)
		case "render":
			return render(args[1:], stdout, stderr, getenv)
		case "ssh":
			return sshCommand(args[1:], stdout, stderr)
		case "doctor":
			return runDoctor(args[1:], stdout, stderr, getenv)
		}
	}
	o, code := parse("latchkey-agent", args, stderr)
	if o == nil {
		return code
	}
	// Subscribed before the config is read: until then Go's default
	// action for SIGHUP ends the process, and systemd does not restart a
	// unit that SIGHUP ended (a "clean" signal to Restart=on-failure). A
	// signal that comes while the agent starts waits for the runner.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	// A log line written to a stderr nobody reads any more (journald
	// restarted without keeping the stream, a log pipe whose reader died)
	// raised SIGPIPE, and Go's default for fd 2 is to die of it, mid-write
	// or mid-command. Caught (never read), the write fails with EPIPE and
	// the agent runs on; unlike signal.Ignore, commands the agent starts
	// still get the default SIGPIPE (a caught signal is reset at exec).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	cfg, err := config.Load(o.configs...)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent: %v\n", err)
		return exitConfig
	}
	level := firstNonEmpty(o.logLevel, cfg.LogLevel)
	format := firstNonEmpty(o.logFormat, cfg.LogFormat)
	var atomic zap.AtomicLevel
	var reopen func() error
	log, flush, err := logging.New(logging.Options{Level: level, Format: format, Output: stderr, File: cfg.LogFile, Identifier: "latchkey-agent", Atomic: &atomic, Reopen: &reopen})
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent: logging: %v\n", err)
		return exitConfig
	}
	defer flush()
	log.Info("latchkey-agent starting", zap.String("version", version.Version), zap.Strings("config", cfg.Files))
	// One agent per state directory, for the process's life (a reload
	// that changes state_dir keeps the lock it took here).
	release, code, err := lockState(cfg, log)
	if err != nil {
		log.Error("not starting: "+err.Error(), zap.String("state_dir", cfg.StateDir))
		return code
	}
	defer release()
	r := &runner.Runner{
		Paths:          o.configs,
		Flags:          vaultclient.Config{Address: o.address, CACert: o.caCert, Namespace: o.ns},
		Getenv:         getenv,
		Logger:         log,
		Signals:        sigs,
		NewRenderer:    newRenderer,
		CheckTemplates: checkTemplates,
		// SIGHUP (logrotate's postrotate) opens log_file anew.
		ReopenLog: reopen,
		// A reload applies the file's log_level, unless -log-level pins it
		// (as Vault Agent's SIGHUP does).
		OnReload: func(c *config.Config) {
			if c.LogFile != cfg.LogFile {
				log.Warn("reload: a changed log_file takes a restart; logging on to the file opened at start",
					zap.String("log_file", cfg.LogFile), zap.String("configured", c.LogFile))
			}
			if o.logLevel != "" {
				return
			}
			lvl, err := logging.ParseLevel(c.LogLevel)
			if err != nil {
				log.Warn("reload: log_level not applied", zap.Error(err))
				return
			}
			// Say so at whichever of the two levels is more verbose.
			switch {
			case lvl < atomic.Level():
				atomic.SetLevel(lvl)
				log.Info("reload: log level changed", zap.String("log_level", lvl.String()))
			case lvl > atomic.Level():
				log.Info("reload: log level changed", zap.String("log_level", lvl.String()))
				atomic.SetLevel(lvl)
			}
		},
	}
	err = r.Run(context.Background(), cfg)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, runner.ErrConfig):
		log.Error("config error", zap.Error(err))
		return exitConfig
	case errors.Is(err, auth.ErrLogin):
		log.Error("login failed and exit_on_err is set", zap.Error(err))
		return exitAuth
	case errors.Is(err, runner.ErrTemplate):
		log.Error("templates failed", zap.Error(err))
		return exitRuntime
	case errors.Is(err, runner.ErrSink):
		log.Error("exit_after_auth: a sink could not be written", zap.Error(err))
		return exitError
	}
	log.Error("agent failed", zap.Error(err))
	return exitError
}

// validate loads the config and builds the auth method and client, without
// contacting Vault.
func validate(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, code := parse("latchkey-agent validate", args, stderr)
	if o == nil {
		return code
	}
	cfg, err := config.Load(o.configs...)
	if err == nil {
		// The same build as a start or a reload: client, method, sinks
		// (owner and group resolved) and templates (read and parsed).
		r := &runner.Runner{
			Flags:  vaultclient.Config{Address: o.address, CACert: o.caCert, Namespace: o.ns},
			Getenv: getenv, Logger: zap.NewNop(), NewRenderer: newRenderer,
		}
		err = r.Validate(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent: %v\n", err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: OK (%s auth, %d sink(s), %d template(s))\n", strings.Join(cfg.Files, ", "), cfg.AutoAuth.Method.Type, len(cfg.AutoAuth.Sinks), len(cfg.Templates))
	return exitOK
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// lockState takes cfg's state directory for this process (state.Lock):
// release, or the error to print and the exit code to end with
// (exitLocked when another agent holds it, naming the way out).
func lockState(cfg *config.Config, log *zap.Logger) (release func(), code int, err error) {
	release, err = state.Dir{Path: cfg.StateDir, Logger: log}.Lock()
	switch {
	case errors.Is(err, state.ErrLocked):
		return nil, exitLocked, fmt.Errorf("%w: stop it first (systemctl stop latchkey-agent), or give this agent a latchkey { state_dir } of its own", err)
	case err != nil:
		return nil, exitConfig, err
	}
	return release, exitOK, nil
}
