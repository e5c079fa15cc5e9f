package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/runner"
	"github.com/latchkey/latchkey/agent/template"
	"github.com/latchkey/latchkey/internal/logging"
)

// newRenderer plugs agent/template into the runner.
func newRenderer(cfg *config.Config, tokens *runner.Tokens, log *zap.Logger) (runner.Renderer, error) {
	return newRendererWith(cfg, tokens, log, false)
}

// newRendererWith is newRenderer; allowIssue lets a dry run issue and
// write (render -dry-run -issue).
func newRendererWith(cfg *config.Config, tokens *runner.Tokens, log *zap.Logger, allowIssue bool) (runner.Renderer, error) {
	o := template.Options{
		Templates: cfg.Templates, Config: cfg.TemplateConfig, Clients: tokens, Logger: log,
		OneShot: cfg.ExitAfterAuth, AllowIssue: allowIssue, StateDir: cfg.StateDir,
	}
	return template.New(o)
}

// checkTemplates reads and parses cfg's templates as newRenderer would.
func checkTemplates(cfg *config.Config) error {
	_, err := template.New(template.Options{Templates: cfg.Templates, Config: cfg.TemplateConfig, Logger: zap.NewNop()})
	return err
}

// render is `latchkey-agent render -config ... -template NAME [-dry-run
// [-issue]] [-show-secrets]`: it logs in with the config's method, renders
// one template and prints it, secrets masked unless -show-secrets. Without
// -dry-run the destination is written (and its command run) as the agent
// would. The template name is checked before Vault is contacted. A dry run
// writes nothing, never consumes a one-shot credential (the approle secret
// id file stays), and refuses a template that issues a certificate, writes
// to Vault or reads a mount not known to be static (anything but kv and
// cubbyhole: a database/creds read creates a credential and a lease)
// unless -issue, in which case it says what it issued and revokes the
// leases it obtained. At the end, render revokes the token it logged in
// with (see endToken).
func render(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var configs multi
	fs := flag.NewFlagSet("latchkey-agent render", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&configs, "config", "")
	name := fs.String("template", "", "")
	dry := fs.Bool("dry-run", false, "")
	issue := fs.Bool("issue", false, "")
	show := fs.Bool("show-secrets", false, "")
	level := fs.String("log-level", "warn", "")
	const usage = "Usage: latchkey-agent render -config FILE|DIR [...] -template DESTINATION|SOURCE|N [-dry-run [-issue]] [-show-secrets]\n" +
		"  -dry-run  write nothing; refuse what would issue or write in Vault: pkiCert, secret with arguments,\n" +
		"            and reads of any mount but kv and cubbyhole (database/creds/... issues a lease)\n" +
		"  -issue    with -dry-run: send those anyway, say what was issued, revoke the leases obtained\n" +
		"render revokes the token it logged in with when it ends (a token_file token is not its own and is kept;\n" +
		"without -dry-run, a token whose leases the written destination uses is left to expire with them)\n"
	if err := fs.Parse(args); err != nil || len(configs) == 0 || *name == "" || fs.NArg() > 0 {
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "latchkey-agent render: %v\n", err)
		}
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if *issue && !*dry {
		fmt.Fprintf(stderr, "latchkey-agent render: -issue goes with -dry-run (without it, render issues what the template needs)\n%s", usage)
		return exitUsage
	}
	log, flush, err := logging.New(logging.Options{Level: *level, Output: stderr, Identifier: "latchkey-agent"})
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: %v\n", err)
		return exitUsage
	}
	defer flush()
	cfg, err := config.Load(configs...)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: %v\n", err)
		return exitConfig
	}
	// A render that writes and runs the command, and may keep an AWS
	// nonce, is an agent as much as a start is: not beside another on the
	// same state directory (the running one renders on SIGHUP). A dry run
	// changes nothing there.
	if !*dry {
		release, code, err := lockState(cfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "latchkey-agent render: %v (a dry run, -dry-run, takes no lock; the running agent renders again on systemctl reload latchkey-agent)\n", err)
			return code
		}
		defer release()
	}
	// The agent's own build (the one a start, a reload and validate make):
	// render refuses what a start would, and logs in and renders with what
	// it built. A dry run's method consumes no one-shot credential.
	allowIssue := *issue
	r := &runner.Runner{Getenv: getenv, Logger: log, DryRun: *dry,
		NewRenderer: func(cfg *config.Config, tokens *runner.Tokens, log *zap.Logger) (runner.Renderer, error) {
			return newRendererWith(cfg, tokens, log, allowIssue)
		}}
	built, err := r.Build(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: %v\n", err)
		return exitConfig
	}
	m, _ := built.Renderer.(*template.Manager)
	if m == nil {
		fmt.Fprintf(stderr, "latchkey-agent render: -template: the config has no templates\n")
		return exitUsage
	}
	if err := m.Find(*name); err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: -template: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One attempt, as each of the agent's: no replay of a signed request.
	s, err := auth.LoginOnce(ctx, built.Method, built.Client, cfg.AutoAuth.Method.Namespace)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: login: %v\n", err)
		return exitAuth
	}
	// One login, never renewed or replaced: a 403 has no auth loop to go to.
	built.Tokens.SetClient(built.Client, func() {})
	built.Tokens.Holder().Set(s.Auth.ClientToken)
	out, err := m.Render(ctx, *name, *dry, *show)
	for _, q := range m.Issued() {
		fmt.Fprintf(stderr, "latchkey-agent render: -dry-run -issue: issued %s (a real certificate, credential or write; the destination was not written)\n", q)
	}
	// The token is given up whatever the render's outcome.
	owned := cfg.AutoAuth.Method.Type != "token_file"
	left := endToken(ctx, built.Tokens, m.Leases(), *dry, owned, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: %v\n", err)
		if errors.Is(err, template.ErrWouldIssue) {
			return exitUsage
		}
		return exitRuntime
	}
	stdout.Write(out)
	if left > 0 {
		return exitRuntime
	}
	return exitOK
}

// endToken ends what render obtained in Vault and returns how many leases
// a dry run leaves alive. A dry run revokes each lease it obtained (with
// -issue; sys/leases/revoke, synchronous) and says so, then revokes its
// token (auth/token/revoke-self) when it is render's own — every method's
// but token_file's, whose token belongs to whoever wrote the file.
// Revoking a token revokes its leases too, so a lease the token may not
// revoke by itself is still revoked with the token.
//
// Without -dry-run the written destination uses what the render obtained:
// the token is revoked (it is a one-off command's, and would otherwise
// stay alive for its whole TTL) only when it obtained no lease, since
// revoking it would revoke them; otherwise it is left to expire with them,
// and stderr says so.
func endToken(ctx context.Context, tokens *runner.Tokens, leases []string, dry, owned bool, stderr io.Writer) int {
	c, err := tokens.Client()
	if err != nil {
		return 0 // no token: nothing was obtained
	}
	if !dry {
		if !owned {
			return 0
		}
		if len(leases) > 0 {
			fmt.Fprintf(stderr, "latchkey-agent render: the login token is left to expire: revoking it would revoke the %d lease(s) the destination uses (%s)\n", len(leases), strings.Join(leases, ", "))
			return 0
		}
		if _, err := c.Write(ctx, "auth/token/revoke-self", nil); err != nil {
			fmt.Fprintf(stderr, "latchkey-agent render: the login token could not be revoked (it expires with its TTL): %v\n", err)
		}
		return 0
	}
	var pending []string
	for _, id := range leases {
		if _, err := c.Write(ctx, "sys/leases/revoke", map[string]any{"lease_id": id}); err != nil {
			pending = append(pending, id)
			fmt.Fprintf(stderr, "latchkey-agent render: -dry-run -issue: lease %s could not be revoked on its own: %v\n", id, err)
			continue
		}
		fmt.Fprintf(stderr, "latchkey-agent render: -dry-run -issue: obtained lease %s; revoked\n", id)
	}
	if !owned {
		for _, id := range pending {
			fmt.Fprintf(stderr, "latchkey-agent render: -dry-run -issue: lease %s is still alive (the token is token_file's, not render's to revoke): revoke it with `vault lease revoke %s`\n", id, id)
		}
		return len(pending)
	}
	if _, err := c.Write(ctx, "auth/token/revoke-self", nil); err != nil {
		fmt.Fprintf(stderr, "latchkey-agent render: -dry-run: its login token could not be revoked (it expires with its TTL): %v\n", err)
		for _, id := range pending {
			fmt.Fprintf(stderr, "latchkey-agent render: -dry-run -issue: lease %s is still alive: revoke it with `vault lease revoke %s`\n", id, id)
		}
		return len(pending)
	}
	for _, id := range pending {
		fmt.Fprintf(stderr, "latchkey-agent render: -dry-run -issue: lease %s revoked with the dry run's token\n", id)
	}
	return 0
}
