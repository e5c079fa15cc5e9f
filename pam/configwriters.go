package pam

import (
	"fmt"
	"os"

	"github.com/latchkey/latchkey/internal/writers"
)

// CheckWriters refuses a config file that someone other than root (or the
// user the helper runs as, for tests and image builds) could have written:
// whoever can rewrite it chooses the Vault that approves every login, root's
// included. It checks the file itself, through the descriptor LoadConfig read
// it with, then each directory above the file it resolves to (as sshd's
// StrictModes does): a directory such a user may write lets them put another
// file in its place. Writable means owned by that user, or writable by
// others, or by a group other than root's (or the helper's); a sticky
// directory (/tmp) lets nobody replace a file they do not own. The error
// names the file or directory and the fix, never the content.
//
// With an https:// address (and tls_skip_verify off), the CA that checks
// Vault's certificate, ca_cert or else ca_path, is checked the same way.
//
// vault-ssh-helper 0.2.4 reads any file; the helper refuses such a one
// (exit 3), as doctor fails it.
func (c *Config) CheckWriters() error {
	if c.fileInfo != nil {
		if why := writers.Foreign(c.fileInfo); why != "" {
			return fmt.Errorf("config %s %s, who could then choose the Vault that approves logins; refused (%s)", c.Path, why, writers.Fix(c.fileInfo, c.Path))
		}
	}
	if err := checkDirs("config "+c.Path, c.Path, "put another config in its place"); err != nil {
		return err
	}
	// The CA that checks Vault's certificate is as much the login's
	// authority: whoever rewrites it can have a Vault of their own trusted.
	// Only with an https:// address, the only one that reads it.
	var ca, key string
	switch {
	case !c.hasHTTPS() || c.TLSSkipVerify:
	case c.CACert != "":
		ca, key = c.CACert, "ca_cert"
	case c.CAPath != "":
		ca, key = c.CAPath, "ca_path"
	}
	if ca == "" {
		return nil
	}
	label := fmt.Sprintf("config %s: %s %s", c.Path, key, ca)
	fi, err := os.Stat(ca)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if why := writers.Foreign(fi); why != "" {
		return fmt.Errorf("%s %s, who could then have a Vault of their own trusted; refused (%s)", label, why, writers.Fix(fi, ca))
	}
	if err := checkDirs(label, ca, "put another CA in its place"); err != nil {
		return err
	}
	if key == "ca_path" {
		// Each of its files is as much the authority as ca_cert: read and
		// checked once, and the checked bytes are what rootCAs trusts.
		p, err := readCAPath(label, ca)
		if err != nil {
			return err
		}
		c.caPath = p
	}
	return nil
}

// CheckTokenWriters refuses a token_file (TOTP mode) that someone other
// than root (or the helper's user) could have written, by the rule of
// CheckWriters: whoever can replace the token chooses the token that asks
// Vault's TOTP engine whether a code is valid, as whoever rewrites the
// config chooses the Vault. fi describes the file as it was read (from the
// descriptor the token was read through); each directory above the file
// path resolves to is checked too. The error names the file or directory
// and the fix, never the token. The helper refuses the login as for any
// other unusable token_file (exit 5); doctor fails it.
func CheckTokenWriters(path string, fi os.FileInfo) error {
	if why := writers.Foreign(fi); why != "" {
		return fmt.Errorf("token_file %s %s, who could then choose the token that asks Vault whether a TOTP code is valid; refused (%s)", path, why, writers.Fix(fi, path))
	}
	return checkDirs("token_file "+path, path, "put another token in its place")
}

// checkDirs refuses path when a directory above the file it resolves to
// may be written by someone other than root or the helper's user
// (writers.Dirs); label begins the error, what says what they could do.
func checkDirs(label, path, what string) error {
	dir, why, fix, err := writers.Dirs(path)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", label, err)
	case dir != "":
		return fmt.Errorf("%s: its directory %s %s, who could then %s; refused (%s)", label, dir, why, what, fix)
	}
	return nil
}
