package install

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DropInName is the file install-pam writes under sshd_config.d. sshd reads
// drop-ins in name order and keeps the first value of each keyword, so the
// name sorts before the distributions' own (RHEL's 50-redhat.conf sets
// ChallengeResponseAuthentication no, Ubuntu's cloud images
// 60-cloudimg-settings.conf sets PasswordAuthentication).
const DropInName = "50-latchkey.conf"

// dropInHeader is the drop-in's first line: a file of that name starting
// with it is install-pam's own, replaced without a backup.
const dropInHeader = "# Written by latchkey-ssh-helper install-pam; removed by uninstall-pam.\n"

// DropIn returns the sshd drop-in's content. trustedCA, when not empty, adds
// a TrustedUserCAKeys line (users' SSH certificates signed by Vault).
func DropIn(trustedCA string) []byte {
	var b strings.Builder
	b.WriteString(dropInHeader)
	b.WriteString(`# sshd keeps the first value it reads of each keyword and reads this
# directory where sshd_config includes it (its first line on Debian,
# Ubuntu, RHEL and Amazon Linux): these settings win over the main file's.
# PAM asks for the OTP at the keyboard-interactive prompt; sshd's own
# password method is off, so that passwords go only through PAM.
UsePAM yes
KbdInteractiveAuthentication yes
PasswordAuthentication no
`)
	if trustedCA != "" {
		b.WriteString("# Users' SSH certificates signed by Vault's SSH CA.\nTrustedUserCAKeys " + trustedCA + "\n")
	}
	return []byte(b.String())
}

// wanted are the keywords the drop-in sets, lower case, with their values.
// ChallengeResponseAuthentication is KbdInteractiveAuthentication's old name.
var wanted = map[string]string{
	"usepam":                          "yes",
	"kbdinteractiveauthentication":    "yes",
	"challengeresponseauthentication": "yes",
	"passwordauthentication":          "no",
}

// checkSSHDConfig returns nil when root's sshd_config includes the drop-in
// directory before anything sets the drop-in's keywords, and no drop-in
// read before ours sets them otherwise. Its errors give file:line and the
// exact line to add or change.
func checkSSHDConfig(root string) error {
	main := filepath.Join(root, "etc/ssh/sshd_config")
	b, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("read sshd's config: %w", err)
	}
	dropIn := "/etc/ssh/sshd_config.d/" + DropInName
	rooted := filepath.Join(root, dropIn)
	included := false
	var conflict error
scan:
	for i, raw := range strings.Split(string(b), "\n") {
		kw, args := keyword(raw)
		switch {
		case kw == "match":
			// Beyond the first Match everything is conditional.
			break scan
		case kw == "include":
			for _, pat := range args {
				if !filepath.IsAbs(pat) {
					pat = "/etc/ssh/" + pat
				}
				for _, p := range []string{dropIn, rooted} {
					if ok, _ := filepath.Match(pat, p); ok {
						included = true
					}
				}
			}
		case !included && conflict == nil && wanted[kw] != "" && len(args) > 0 && !strings.EqualFold(args[0], wanted[kw]):
			conflict = fmt.Errorf("%s:%d: %q comes before the Include of sshd_config.d and sshd keeps the first value: remove the line, or move it below the Include", main, i+1, strings.TrimSpace(raw))
		}
	}
	if !included {
		return fmt.Errorf("%s includes no sshd_config.d/*.conf, so the drop-in would be ignored: add this line at the top of it:\nInclude /etc/ssh/sshd_config.d/*.conf", main)
	}
	if conflict != nil {
		return conflict
	}
	// Drop-ins read before ours.
	dir := filepath.Dir(rooted)
	names, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	sort.Strings(names)
	for _, n := range names {
		if filepath.Base(n) >= DropInName {
			break
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return fmt.Errorf("read sshd drop-in: %w", err)
		}
		for i, raw := range strings.Split(string(b), "\n") {
			kw, args := keyword(raw)
			if kw == "match" {
				break
			}
			if wanted[kw] != "" && len(args) > 0 && !strings.EqualFold(args[0], wanted[kw]) {
				return fmt.Errorf("%s:%d: %q is read before %s and sshd keeps the first value: remove the line", n, i+1, strings.TrimSpace(raw), DropInName)
			}
		}
	}
	return nil
}

// keyword returns an sshd_config line's keyword in lower case and its
// arguments; "" for blank lines and comments.
func keyword(line string) (string, []string) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", nil
	}
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
	if len(f) == 0 {
		return "", nil
	}
	return strings.ToLower(f[0]), f[1:]
}
