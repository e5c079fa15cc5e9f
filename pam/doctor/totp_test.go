package doctor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/latchkey/latchkey/internal/doctor"
	"github.com/latchkey/latchkey/pam"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) {
	vaulttest.Main(m, vaulttest.Spec{Into: &srv, Options: vaulttest.Options{TLS: true}})
}

// The TOTP token's right to check codes, asked of Vault with the token
// itself (sys/capabilities-self).
func TestTOTPTokenCapability(t *testing.T) {
	srv.MountT(t, "totp", &api.MountInput{Type: "totp"})
	testkit.Must(t, srv.Client.Sys().PutPolicy("totp-check", `path "totp/code/*" { capabilities = ["update"] }`))
	token := func(noDefault bool, policies ...string) string {
		s, err := srv.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, NoDefaultPolicy: noDefault})
		testkit.Must(t, err)
		return s.Auth.ClientToken
	}
	tests := map[string]struct {
		token string // "" : no file
		want  string
	}{
		"may check codes":   {token(false, "totp-check"), "OK   totp token: the token may update totp/code/alice"},
		"may not":           {token(false, "default"), "FAIL totp token: the token's capabilities on totp/code/alice are [deny]"},
		"no default policy": {token(true, "totp-check"), "WARN totp token: Vault refused sys/capabilities-self (403)"},
		"no token file":     {"", "FAIL totp token: stat "},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tokenFile := filepath.Join(dir, "token")
			if tc.token != "" {
				testkit.WriteFile(t, tokenFile, tc.token+"\n")
			}
			cfgPath := filepath.Join(dir, "helper.hcl")
			testkit.Must(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("vault_addr = %q\nca_cert = %q\nmode = \"totp\"\ntoken_file = %q\n", srv.Addr, srv.CACert, tokenFile)), 0o644))
			cfg, err := pam.LoadConfig(cfgPath)
			testkit.Must(t, err)
			var out bytes.Buffer
			checkTOTP(context.Background(), Options{User: "alice"}, cfg, &doctor.Report{Out: &out})
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}
