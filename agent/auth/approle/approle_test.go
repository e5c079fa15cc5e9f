package approle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/agent/auth"
	"github.com/latchkey/latchkey/internal/vaultclient"
	"github.com/latchkey/latchkey/test/testkit"
)

// A dry run never consumes the secret id: the file stays, and a
// response-wrapped one (which only one unwrap may read) is refused before
// anything is sent. A Keeper hands a secret id read once to the next
// method built with the same mount and files.
func TestOneShotSecretID(t *testing.T) {
	dir := t.TempDir()
	roleID, secretID := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	testkit.WriteFile(t, roleID, "r")
	// Nothing listens there: every login fails after reading the files.
	client, err := vaultclient.New(vaultclient.Config{Address: fmt.Sprintf("http://127.0.0.1:%d", testkit.FreePort(t)), MaxRetries: vaultclient.Int(0)})
	testkit.Must(t, err)
	method := func(env auth.Env, extra map[string]any) auth.Method {
		c := map[string]any{"role_id_file_path": roleID, "secret_id_file_path": secretID}
		for k, v := range extra {
			c[k] = v
		}
		m, err := New(auth.MethodConfig{Type: "approle", MountPath: "auth/approle", Config: c}, env)
		testkit.Must(t, err)
		return m
	}
	tests := map[string]struct {
		env        auth.Env
		extra      map[string]any
		fileKept   bool
		errContain string
	}{
		"dry run keeps the file":       {auth.Env{DryRun: true}, nil, true, "127.0.0.1"},
		"dry run refuses a wrapped id": {auth.Env{DryRun: true}, map[string]any{"secret_id_response_wrapping_path": "auth/approle/role/web/secret-id"}, true, "cannot use without consuming it"},
		"a real login removes it":      {auth.Env{}, nil, false, "127.0.0.1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			testkit.WriteFile(t, secretID, "s3cret")
			_, err := method(tc.env, tc.extra).Login(context.Background(), client)
			if err == nil || !strings.Contains(err.Error(), tc.errContain) {
				t.Errorf("Login: %v, want an error containing %q", err, tc.errContain)
			}
			if _, statErr := os.Stat(secretID); (statErr == nil) != tc.fileKept {
				t.Errorf("secret id file kept = %v, want %v", statErr == nil, tc.fileKept)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Error("the error carries the secret id")
			}
		})
	}

	t.Run("kept across methods", func(t *testing.T) {
		kept := &auth.Keeper{}
		testkit.WriteFile(t, secretID, "s3cret")
		method(auth.Env{Kept: kept}, nil).Login(context.Background(), client)
		if _, err := os.Stat(secretID); err == nil {
			t.Fatal("the secret id file was not removed")
		}
		// A method built later (a reload) with the same mount and files.
		_, err := method(auth.Env{Kept: kept}, nil).Login(context.Background(), client)
		if err == nil || strings.Contains(err.Error(), "no earlier secret id") {
			t.Errorf("the next method lost the secret id: %v", err)
		}
		_, err = method(auth.Env{}, nil).Login(context.Background(), client)
		if err == nil || !strings.Contains(err.Error(), "write a new secret id there") {
			t.Errorf("without a Keeper: %v, want the missing secret id named with its remedy", err)
		}
	})
}
