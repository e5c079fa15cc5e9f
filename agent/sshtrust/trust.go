package sshtrust

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// trustHeader opens every trust file the agent writes.
const trustHeader = "# Written by latchkey-agent (ssh { trusted_user_ca_keys }); edits are replaced.\n"

// caKey is one trusted CA public key and where it came from
// ("mount:<path>" or "pinned:<file>").
type caKey struct {
	Key    ssh.PublicKey
	Source string
}

// line is the key as it appears in the trust file: the key, then its source
// as the comment.
func (k caKey) line() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.Key))) + " " + k.Source
}

// sourceError is one user CA source that could not be read.
type sourceError struct {
	Source string
	Err    error
}

func (e *sourceError) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *sourceError) Unwrap() error { return e.Err }

// userCAKeys reads every configured source. It returns the keys it could
// read, in config order with duplicates dropped (the first source is
// named), and one error per source that failed: a mount Vault did not
// answer for, a mount answering 404 (no CA configured), an unreadable or
// empty pinned file.
func userCAKeys(ctx context.Context, cfg Config, client *vaultclient.Client) ([]caKey, []error) {
	var keys []caKey
	var errs []error
	seen := map[string]bool{}
	add := func(k caKey) {
		if id := string(k.Key.Marshal()); !seen[id] {
			seen[id] = true
			keys = append(keys, k)
		}
	}
	for _, m := range cfg.UserCAMounts {
		src := "mount:" + strings.Trim(m, "/")
		k, err := mountKey(ctx, client, m)
		if err != nil {
			errs = append(errs, &sourceError{Source: src, Err: err})
			continue
		}
		add(caKey{Key: k, Source: src})
	}
	if p := cfg.PinnedUserCAKeys; p != "" {
		pinned, err := readKeys(p)
		if err == nil && len(pinned) == 0 {
			err = fmt.Errorf("holds no public key")
		}
		if err != nil {
			errs = append(errs, &sourceError{Source: "pinned:" + p, Err: err})
		}
		for _, k := range pinned {
			add(caKey{Key: k, Source: "pinned:" + p})
		}
	}
	return keys, errs
}

// mountKey reads a mount's CA public key, unauthenticated. It returns an
// error when Vault cannot be reached, answers anything but 200 (404: the
// mount has no CA), or the answer is not one OpenSSH public key.
func mountKey(ctx context.Context, client *vaultclient.Client, mount string) (ssh.PublicKey, error) {
	resp, err := client.ReadRaw(ctx, strings.Trim(mount, "/")+"/public_key")
	if resp != nil {
		defer resp.Body.Close()
	}
	if resp != nil && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/%s/public_key: Vault answered %d (a mount without a CA answers 404)", strings.Trim(mount, "/"), resp.StatusCode)
	}
	if err != nil {
		return nil, fmt.Errorf("GET /v1/%s/public_key: %w", strings.Trim(mount, "/"), err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("GET /v1/%s/public_key: %w", strings.Trim(mount, "/"), err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("GET /v1/%s/public_key: not an OpenSSH public key: %w", strings.Trim(mount, "/"), err)
	}
	return k, nil
}

// readKeys parses a file of public keys, one per line (blank lines and #
// comments skipped). Any line that is not a key is an error naming it.
func readKeys(path string) ([]ssh.PublicKey, error) {
	entries, err := readTrustFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]ssh.PublicKey, len(entries))
	for i, e := range entries {
		out[i] = e.Key
	}
	return out, nil
}

// readTrustFile parses a file of public keys with their comments. The
// comment of a file the agent wrote is the key's source.
func readTrustFile(path string) ([]caKey, error) {
	b, err := atomicfile.ReadRegular(path)
	if err != nil {
		return nil, err
	}
	var out []caKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not an OpenSSH public key: %w", path, n, err)
		}
		if _, ok := k.(*ssh.Certificate); ok {
			// sshd compares a certificate's signing key with the plain
			// keys of TrustedUserCAKeys: a certificate there trusts nobody.
			return nil, fmt.Errorf("%s:%d: a certificate, not a CA public key (give the CA's .pub)", path, n)
		}
		out = append(out, caKey{Key: k, Source: comment})
	}
	return out, sc.Err()
}

// trustContent is the trust file for keys.
func trustContent(keys []caKey) []byte {
	var b strings.Builder
	b.WriteString(trustHeader)
	for _, k := range keys {
		b.WriteString(k.line())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// trustChange reads every user CA source and returns the trust file to
// write (nil when it is current). When a source fails, the current file is
// kept and an error returned; without a current file, what could be read
// (the pinned keys, say) is written so that break-glass works, and the
// error still returned.
func (t *Trust) trustChange(ctx context.Context) (*change, error) {
	path := t.cfg.TrustedUserCAKeys
	client, err := t.deps.Vault("")
	if err != nil {
		return nil, err
	}
	// Run retries itself, with its own backoff: a client retrying each
	// request (num_retries) would hold the round for minutes with Vault
	// down, and with it the log line and STATUS= saying so.
	client.SetMaxRetries(0)
	ctx, cancel := context.WithTimeout(ctx, SourceTimeout)
	defer cancel()
	keys, errs := userCAKeys(ctx, t.cfg, client)
	cur, rerr := atomicfile.ReadRegular(path)
	haveCur := rerr == nil && len(bytes.TrimSpace(cur)) > 0
	if len(errs) > 0 {
		err := fmt.Errorf("user CA keys: %w", errors.Join(errs...))
		if haveCur {
			t.log.Warn("ssh: keeping the current trust file: a user CA source could not be read", zap.String("path", path), zap.Error(err))
			return nil, err
		}
		if len(keys) == 0 {
			t.log.Error("ssh: no user CA key could be read and there is no trust file yet; not writing an empty one", zap.String("path", path), zap.Error(err))
			return nil, err
		}
		t.log.Warn("ssh: writing a partial trust file (there was none): a user CA source could not be read", zap.String("path", path), zap.Error(err))
		return &change{Path: path, Data: trustContent(keys)}, err
	}
	data := trustContent(keys)
	if bytes.Equal(cur, data) {
		if why := loose(path); why != "" {
			// Whoever may write the trust file may add a CA of their own
			// and log in as anyone: the same content is written anew,
			// 0644 and the agent's.
			t.log.Warn("ssh: the trust file's mode or owner was changed; writing it anew", zap.String("path", path), zap.String("reason", why))
			return &change{Path: path, Data: data}, nil
		}
		return nil, nil
	}
	return &change{Path: path, Data: data}, nil
}

// loose says how the file at path differs from the mode and owner the
// agent writes it with, or "".
func loose(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if fi.Mode().Perm() != fileMode {
		return fmt.Sprintf("mode %#o, want %#o", fi.Mode().Perm(), fileMode)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Sprintf("owned by uid %d, want %d", st.Uid, os.Geteuid())
	}
	return ""
}
