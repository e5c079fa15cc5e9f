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
	"github.com/latchkey/latchkey/agent/auth/methods"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/runner"
	"github.com/latchkey/latchkey/agent/sink"
	"github.com/latchkey/latchkey/internal/logging"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/internal/version"
)

// Exit codes, documented in README.md (## latchkey-agent).
const (
	// ExitOK: stopped cleanly (SIGTERM/SIGINT), or exit_after_auth done,
	// or `validate` found no problem.
	ExitOK = 0
	// ExitError: an unexpected runtime failure (say, the pid file cannot
	// be written).
	ExitError = 1
	// ExitUsage: bad command line.
	ExitUsage = 2
	// ExitConfig: the configuration cannot be read or is invalid.
	ExitConfig = 3
	// ExitAuth: a login failed and the method has exit_on_err = true.
	ExitAuth = 4
	// ExitTemplate: templates failed with exit_on_retry_failure = true.
	ExitTemplate = 5
)

// newRenderer renders templates; agent/template plugs in here.
var newRenderer runner.RendererFactory

type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// signals replaces signal.Notify in tests (nil: the real one).
	signals func(chan<- os.Signal)
}

func newCLI(stdout, stderr io.Writer, getenv func(string) string) *cli {
	return &cli{stdout: stdout, stderr: stderr, getenv: getenv}
}

// flags are the command line options shared by run and validate.
type flags struct {
	configs       stringList
	logLevel      string
	logFormat     string
	exitAfterAuth bool
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

const usage = `usage:
  latchkey-agent -config FILE|DIR [-config ...] [-log-level LEVEL] [-log-format FORMAT] [-exit-after-auth]
  latchkey-agent validate -config FILE|DIR [-config ...]
  latchkey-agent version
`

func (c *cli) run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			fmt.Fprintf(c.stdout, "latchkey-agent %s\n", version.Version)
			return ExitOK
		case "validate":
			return c.validate(args[1:])
		case "agent":
			// `vault agent -config ...` muscle memory.
			args = args[1:]
		}
	}
	f, code := c.parse("latchkey-agent", args)
	if code >= 0 {
		return code
	}
	return c.agent(f)
}

// parse reads flags; code is -1 to go on, else the exit code.
func (c *cli) parse(name string, args []string) (*flags, int) {
	f := &flags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, usage) }
	fs.Var(&f.configs, "config", "config file or directory (repeatable)")
	fs.StringVar(&f.logLevel, "log-level", "", "trace, debug, info, warn, error or off (overrides log_level)")
	fs.StringVar(&f.logFormat, "log-format", "", "auto, console or json (overrides log_format)")
	fs.BoolVar(&f.exitAfterAuth, "exit-after-auth", false, "log in, write sinks and templates once, exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ExitOK
		}
		return nil, ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "latchkey-agent: unexpected argument %q\n%s", fs.Arg(0), usage)
		return nil, ExitUsage
	}
	if len(f.configs) == 0 {
		fmt.Fprintf(c.stderr, "latchkey-agent: -config is required\n%s", usage)
		return nil, ExitUsage
	}
	return f, -1
}

// load reads the files and layers environment and flags over them
// (flag > env > file), then checks everything that can be checked without
// contacting Vault.
func (c *cli) load(f *flags) (*config.Config, error) {
	cfg, err := config.Load(f.configs...)
	if err != nil {
		return nil, err
	}
	env, err := vaultclient.FromEnv(c.getenv)
	if err != nil {
		return nil, err
	}
	cfg.Vault = cfg.Vault.Merge(env)
	if f.logLevel != "" {
		cfg.LogLevel = f.logLevel
	}
	if f.logFormat != "" {
		cfg.LogFormat = f.logFormat
	}
	if f.exitAfterAuth {
		t := true
		cfg.ExitAfterAuth = &t
	}
	if err := check(cfg, c.getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// check validates cfg: its own rules, the Vault address, the method's
// config, the sinks' owners, the log settings.
func check(cfg *config.Config, getenv func(string) string) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := cfg.Vault.Validate(); err != nil {
		return fmt.Errorf("%s: vault: %w (set vault.address or VAULT_ADDR)", cfg.Files[0], err)
	}
	env := auth.Env{StateDir: cfg.Latchkey.StateDir, Logger: zap.NewNop(), Getenv: getenv}
	if _, err := methods.New(methods.FromConfig(cfg.AutoAuth.Method), env); err != nil {
		return err
	}
	for _, s := range cfg.AutoAuth.Sinks {
		if _, err := sink.NewFile(s); err != nil {
			return err
		}
	}
	if _, err := logging.ParseLevel(cfg.LogLevel); err != nil {
		return err
	}
	return nil
}

func (c *cli) validate(args []string) int {
	f, code := c.parse("latchkey-agent validate", args)
	if code >= 0 {
		return code
	}
	if _, err := c.load(f); err != nil {
		fmt.Fprintf(c.stderr, "latchkey-agent: %v\n", err)
		return ExitConfig
	}
	fmt.Fprintf(c.stdout, "configuration is valid: %s\n", strings.Join(f.configs, " "))
	return ExitOK
}

func (c *cli) agent(f *flags) int {
	cfg, err := c.load(f)
	if err != nil {
		fmt.Fprintf(c.stderr, "latchkey-agent: %v\n", err)
		return ExitConfig
	}
	logger, done, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat, File: cfg.LogFile,
		Output: c.stderr, Identifier: "latchkey-agent"})
	if err != nil {
		fmt.Fprintf(c.stderr, "latchkey-agent: %v\n", err)
		return ExitConfig
	}
	defer done()
	logger.Info("starting", zap.String("version", version.Version), zap.Strings("config", cfg.Files))

	first := true
	r := runner.New(runner.Options{
		Load: func() (*config.Config, error) {
			if first {
				first = false
				return cfg, nil
			}
			return c.load(f)
		},
		Logger:      logger,
		Getenv:      c.getenv,
		NewRenderer: newRenderer,
	})
	sigs := make(chan os.Signal, 4)
	if c.signals != nil {
		c.signals(sigs)
	} else {
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sigs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go handleSignals(ctx, sigs, r, logger)

	err = r.Run(ctx)
	var le *auth.LoginError
	var re *runner.RenderError
	var ce *runner.ConfigError
	switch {
	case err == nil:
		logger.Info("stopped")
		return ExitOK
	case errors.As(err, &le):
		logger.Error("exiting: login failed and exit_on_err is set", zap.Error(err))
		return ExitAuth
	case errors.As(err, &re):
		logger.Error("exiting: templates failed", zap.Error(err))
		return ExitTemplate
	case errors.As(err, &ce):
		logger.Error("exiting: configuration", zap.Error(err))
		return ExitConfig
	}
	logger.Error("exiting", zap.Error(err))
	return ExitError
}

// handleSignals turns SIGHUP into a reload (one at a time, so repeated
// SIGHUPs queue up instead of racing) and SIGTERM/SIGINT into a stop.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, r *runner.Runner, logger *zap.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				if err := r.Reload(); err != nil {
					logger.Warn("reload", zap.Error(err))
				}
			default:
				logger.Info("signal received, stopping", zap.String("signal", s.String()))
				_ = r.Stop()
			}
		}
	}
}
