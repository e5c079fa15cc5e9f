package pam

import (
	"context"
	"fmt"
	"strings"
)

// safeUser is what a user name may look like to become part of a Vault
// path: no slashes, no "..", nothing a shell or URL would read differently.
// It is `^[A-Za-z0-9_][A-Za-z0-9._@-]*$`, written out: a regexp compiled in
// a package variable costs every login its compilation.
func safeUser(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_':
		case i > 0 && (c == '.' || c == '@' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// totpKey names the TOTP key of user from the configured pattern.
func totpKey(pattern, user string) (string, error) {
	if !safeUser(user) || strings.Contains(user, "..") {
		return "", fmt.Errorf("%w: user name %q cannot name a TOTP key", ErrDenied, user)
	}
	return strings.ReplaceAll(pattern, "{{user}}", user), nil
}

// readToken reads the Vault token TOTP mode uses from path (the agent's
// sink, typically), and refuses it when someone other than root could have
// written the file or a directory above it (CheckTokenWriters). Errors name
// the file, never its content.
func readToken(path string) (string, error) {
	b, fi, err := readRegularInfo(path, maxTokenSize)
	if err != nil {
		return "", fmt.Errorf("read token_file: %w", err)
	}
	if err := CheckTokenWriters(path, fi); err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token_file %s is empty", path)
	}
	return tok, nil
}

// verifyTOTP asks Vault's TOTP engine whether code is the current code of
// user's key. It returns the reply and nil when valid; an error wrapping
// ErrDenied when Vault says it is not (wrong, stale or reused code); another
// error when Vault could not be asked.
func (h *Helper) verifyTOTP(ctx context.Context, code, user string, rec *Record) error {
	key, err := totpKey(h.Config.TOTPKeyPattern, user)
	if err != nil {
		return err
	}
	tok, err := readToken(h.Config.TokenFile)
	if err != nil {
		return err
	}
	caller := &Caller{Config: h.Config, Logger: h.Logger, Token: tok}
	// Vault answers 400 for a code of the wrong length and for a code
	// already used in its period: both are a "no".
	reply, err := ask(ctx, caller, h.Config.TOTPMount+"/code/"+key, map[string]any{"code": code}, rec,
		"vault refused the TOTP code")
	if err != nil {
		return err
	}
	valid, ok := reply.Data["valid"].(bool)
	if !ok {
		return fmt.Errorf("%w: TOTP answer from %s lacks the boolean \"valid\"", ErrVault, reply.Addr)
	}
	if !valid {
		return fmt.Errorf("%w: TOTP code is not valid for key %q", ErrDenied, key)
	}
	return nil
}
