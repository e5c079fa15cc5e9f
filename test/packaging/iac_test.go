package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/vault/api"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/latchkey/latchkey/pam"
	"github.com/latchkey/latchkey/test/testbin"
	"github.com/latchkey/latchkey/test/testkit"
	"github.com/latchkey/latchkey/test/vaulttest"
)

// blocks parses every file of dir ending in ext and returns its top-level
// blocks by "type label label".
func blocks(t *testing.T, dir, ext string) (map[string]*hclsyntax.Block, []byte) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*"+ext))
	if len(files) == 0 {
		t.Fatalf("no %s files in %s", ext, dir)
	}
	p := hclparse.NewParser()
	out := map[string]*hclsyntax.Block{}
	var all []byte
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%v", diags)
		}
		b, _ := os.ReadFile(f)
		all = append(all, b...)
		for _, blk := range file.Body.(*hclsyntax.Body).Blocks {
			out[strings.Join(append([]string{blk.Type}, blk.Labels...), " ")] = blk
		}
	}
	return out, all
}

// str evaluates a block's attribute as a constant string ("" otherwise).
func str(b *hclsyntax.Block, name string) string {
	a := b.Body.Attributes[name]
	if a == nil {
		return ""
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// packaging/terraform sets Vault up the way latchkey and the demo expect.
func TestTerraform(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bs, text := blocks(t, filepath.Join(root, "packaging/terraform"), ".tf")
	for _, want := range []string{
		"resource vault_mount ssh_otp", "resource vault_ssh_secret_backend_role otp",
		"resource vault_mount ssh_client_signer", "resource vault_ssh_secret_backend_ca client", "resource vault_ssh_secret_backend_role user_cert",
		"resource vault_mount ssh_host_signer", "resource vault_ssh_secret_backend_role host_cert",
		"resource vault_mount totp", "resource vault_policy web", "resource vault_policy totp_check",
		"resource vault_auth_backend aws", "resource vault_aws_auth_backend_role web_ec2", "resource vault_aws_auth_backend_role web_iam",
		"resource vault_auth_backend alicloud", "resource vault_generic_endpoint alicloud_web",
		"resource vault_auth_backend approle", "resource vault_approle_auth_backend_role web",
	} {
		if bs[want] == nil {
			t.Errorf("no %s", want)
		}
	}
	if r := bs["resource vault_ssh_secret_backend_role otp"]; r != nil && str(r, "key_type") != "otp" {
		t.Errorf("the OTP role's key_type is %q", str(r, "key_type"))
	}
	// In step with the demo: the OTP mount's name and the web policy.
	demo, err := os.ReadFile(filepath.Join(root, "test/demo/main.go"))
	if err != nil {
		t.Fatal(err)
	}
	mount := regexp.MustCompile(`const mount = "([^"]+)"`).FindSubmatch(demo)
	if mount == nil || !strings.Contains(string(text), `default     = "`+string(mount[1])+`"`) {
		t.Errorf("the demo's SSH mount %q is not the default of ssh_otp_mount", mount)
	}
	policy := regexp.MustCompile("PutPolicy\\(\"web\", `([^`]+)`\\)").FindSubmatch(demo)
	if policy == nil || !strings.Contains(string(text), string(policy[1])) {
		t.Errorf("the demo's web policy %q is not vault_policy.web's", policy)
	}
}

// packaging/packer: both cloud sources, credentials from Vault only, the
// steps of a golden image, and Packer's own syntax check.
func TestPacker(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "packaging/packer")
	bs, text := blocks(t, dir, ".pkr.hcl")
	for _, want := range []string{"source amazon-ebs debian", "source alicloud-ecs debian", "build", "variable vault_addr", "variable vault_ca_file"} {
		if bs[want] == nil {
			t.Errorf("no %s block", want)
		}
	}
	for name := range bs {
		if strings.HasPrefix(name, "variable ") && regexp.MustCompile(`(?i)secret|access_key|password|token`).MatchString(name) {
			t.Errorf("%s: credentials come from vault(), not from a variable", name)
		}
	}
	for _, want := range []string{
		`vault("secret/data/packer/alicloud", "access_key")`, `vault("secret/data/packer/alicloud", "secret_key")`,
		"access_key           = local.alicloud_access_key", "vault_aws_engine",
		"latchkey-ssh-helper install-pam", "latchkey-ssh-helper -verify-only", "latchkey-agent validate", "latchkey-ssh-helper doctor",
		"rm -rf /var/lib/latchkey/* /run/latchkey/*", "rm -f /etc/ssh/ssh_host_*", "cloud-init clean",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the template lacks %q", want)
		}
	}
	if _, err := exec.LookPath("packer"); err != nil {
		t.Fatalf("packer missing: run `make deps` as root (Debian's packer): %v", err)
	}
	cmd := exec.Command("packer", "validate", "-syntax-only", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1", "PACKER_CHECKPOINT_DISABLE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("packer validate -syntax-only: %v\n%s", err, out)
	}
}

// The configs the Packer build writes, for each source: the shell
// provisioner's own lines (its environment evaluated as Packer would, for
// that source type) run under `sh -eu` into a temp dir, then the built
// latchkey-agent validates the agent's config and the helper's loads, as
// the build itself does on the instance.
func TestPackerWritesValidConfigs(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := blocks(t, filepath.Join(root, "packaging/packer"), ".pkr.hcl")
	build := bs["build"]
	if build == nil {
		t.Fatal("no build block")
	}
	var shell *hclsyntax.Block
	for _, b := range build.Body.Blocks {
		if b.Type == "provisioner" && len(b.Labels) == 1 && b.Labels[0] == "shell" && b.Body.Attributes["environment_vars"] != nil {
			shell = b
		}
	}
	if shell == nil {
		t.Fatal("no shell provisioner with environment_vars in the build")
	}
	// Every variable at its default; those without one get a test value.
	vars := map[string]cty.Value{"vault_addr": cty.StringVal("https://vault.internal:8200"), "vault_ca_file": cty.StringVal("vault-ca.pem")}
	for name, b := range bs {
		if v, ok := strings.CutPrefix(name, "variable "); ok && vars[v] == cty.NilVal {
			if str(b, "default") == "" {
				t.Fatalf("variable %s has no default and no test value", v)
			}
			vars[v] = cty.StringVal(str(b, "default"))
		}
	}
	bins, err := testbin.Build(t.TempDir(), "./cmd/latchkey-agent")
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range []string{"amazon-ebs", "alicloud-ecs"} {
		t.Run(source, func(t *testing.T) {
			ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
				"var":    cty.ObjectVal(vars),
				"source": cty.ObjectVal(map[string]cty.Value{"type": cty.StringVal(source), "name": cty.StringVal("debian")}),
			}}
			list := func(name string) []string {
				v, diags := shell.Body.Attributes[name].Expr.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: %v", name, diags)
				}
				var out []string
				for _, e := range v.AsValueSlice() {
					out = append(out, e.AsString())
				}
				return out
			}
			dir := t.TempDir()
			files := map[string]string{
				"/etc/latchkey/agent.hcl":               filepath.Join(dir, "agent.hcl"),
				"/etc/latchkey-ssh-helper.d/config.hcl": filepath.Join(dir, "config.hcl"),
				"/etc/latchkey/vault-ca.pem":            filepath.Join(dir, "vault-ca.pem"),
			}
			// The lines that write a config (and its mode), pointed at dir.
			var script []string
			for _, l := range list("inline") {
				if strings.HasPrefix(l, "printf ") || strings.HasPrefix(l, "chmod ") {
					for from, to := range files {
						l = strings.ReplaceAll(l, from, to)
					}
					script = append(script, l)
				}
			}
			if len(script) != 3 {
				t.Fatalf("want two printf lines and a chmod in the shell provisioner, got:\n%s", strings.Join(script, "\n"))
			}
			cmd := exec.Command("sh", "-eu", "-c", strings.Join(script, "\n"))
			cmd.Env = append(os.Environ(), list("environment_vars")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sh -eu: %v\n%s", err, out)
			}
			// The CA the build installs: the test Vault's.
			testkit.Must(t, os.WriteFile(files["/etc/latchkey/vault-ca.pem"], []byte(testkit.ReadFile(srv.CACert)), 0o644))
			agentCfg := files["/etc/latchkey/agent.hcl"]
			t.Logf("%s:\n%s", agentCfg, testkit.ReadFile(agentCfg))
			if out, err := exec.Command(bins[0], "validate", "-config", agentCfg).CombinedOutput(); err != nil {
				t.Errorf("latchkey-agent validate on the config the %s build writes: %v\n%s", source, err, out)
			}
			if _, err := pam.LoadConfig(files["/etc/latchkey-ssh-helper.d/config.hcl"]); err != nil {
				t.Errorf("the helper's config the %s build writes: %v", source, err)
			}
		})
	}
}

// tfContext evaluates packaging/terraform's expressions: var.* at their
// defaults, each resource's constant attributes (or those made of var.*) as
// <type>.<name>.<attr>, and join.
func tfContext(t *testing.T, bs map[string]*hclsyntax.Block) *hcl.EvalContext {
	t.Helper()
	vars := map[string]cty.Value{}
	for name, b := range bs {
		if v, ok := strings.CutPrefix(name, "variable "); ok && b.Body.Attributes["default"] != nil {
			val, diags := b.Body.Attributes["default"].Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s: %v", v, diags)
			}
			vars[v] = val
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)},
		Functions: map[string]function.Function{"join": stdlib.JoinFunc},
	}
	// Two rounds: a policy names a mount's path and a role's name.
	for round := 0; round < 2; round++ {
		types := map[string]map[string]cty.Value{}
		for name, b := range bs {
			f := strings.Fields(name)
			if len(f) != 3 || f[0] != "resource" {
				continue
			}
			attrs := map[string]cty.Value{}
			for an, a := range b.Body.Attributes {
				if v, diags := a.Expr.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
					attrs[an] = v
				}
			}
			if types[f[1]] == nil {
				types[f[1]] = map[string]cty.Value{}
			}
			types[f[1]][f[2]] = cty.ObjectVal(attrs)
		}
		for typ, m := range types {
			ctx.Variables[typ] = cty.ObjectVal(m)
		}
	}
	return ctx
}

// The host signer of packaging/terraform, loaded into a real Vault as
// terraform would write it: a token with the policies of each auth role
// that is meant for instances has host keys signed for an FQDN under the
// domains, and is refused a short hostname (the agent's other default
// principal, hence its fallback to the FQDN alone) and a name under another
// domain.
func TestTerraformHostSigner(t *testing.T) {
	root, err := vaulttest.RepoRoot()
	testkit.Must(t, err)
	bs, _ := blocks(t, filepath.Join(root, "packaging/terraform"), ".tf")
	ctx := tfContext(t, bs)
	attr := func(block, name string) cty.Value {
		t.Helper()
		b := bs[block]
		if b == nil || b.Body.Attributes[name] == nil {
			t.Fatalf("no %s in %s", name, block)
		}
		v, diags := b.Body.Attributes[name].Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("%s.%s: %v", block, name, diags)
		}
		return v
	}
	role := "resource vault_ssh_secret_backend_role host_cert"
	mount := attr("resource vault_mount ssh_host_signer", "path").AsString()
	roleName := attr(role, "name").AsString()

	// Which policies grant update on <mount>/sign/<role>, as written.
	signPath := mount + "/sign/" + roleName
	granting := map[string]string{} // policy name -> text
	for name := range bs {
		if !strings.HasPrefix(name, "resource vault_policy ") {
			continue
		}
		text := attr(name, "policy").AsString()
		if strings.Contains(text, `path "`+signPath+`"`) && strings.Contains(text, `"update"`) {
			granting[attr(name, "name").AsString()] = text
		}
	}
	if len(granting) == 0 {
		t.Fatalf("no vault_policy grants update on %s (the agent's host certificate renewal)", signPath)
	}

	c := srv.Client
	srv.MountT(t, mount, &api.MountInput{Type: "ssh"})
	_, err = c.Logical().Write(mount+"/config/ca", map[string]any{"generate_signing_key": true})
	testkit.Must(t, err)
	data := map[string]any{}
	for _, k := range []string{"key_type", "allow_host_certificates", "allow_bare_domains", "allow_subdomains", "allowed_domains", "ttl"} {
		v := attr(role, k)
		switch v.Type() {
		case cty.Bool:
			data[k] = v.True()
		default:
			data[k] = v.AsString()
		}
	}
	_, err = c.Logical().Write(mount+"/roles/"+roleName, data)
	testkit.Must(t, err)
	for name := range bs {
		if strings.HasPrefix(name, "resource vault_policy ") {
			n := attr(name, "name").AsString()
			testkit.Must(t, c.Sys().PutPolicy(n, attr(name, "policy").AsString()))
			t.Cleanup(func() { c.Sys().DeletePolicy(n) })
		}
	}
	key := filepath.Join(t.TempDir(), "host")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	hostPub := testkit.ReadFile(key + ".pub")
	domains := attr(role, "allowed_domains").AsString()
	fqdn := "ip-10-0-1-5.eu-west-1.compute." + strings.Split(domains, ",")[0]

	for _, r := range []struct{ block, policies string }{
		{"resource vault_aws_auth_backend_role web_ec2", "token_policies"},
		{"resource vault_aws_auth_backend_role web_iam", "token_policies"},
		{"resource vault_approle_auth_backend_role web", "token_policies"},
	} {
		var policies []string
		for _, v := range attr(r.block, r.policies).AsValueSlice() {
			policies = append(policies, v.AsString())
		}
		t.Run(strings.Fields(r.block)[2], func(t *testing.T) {
			tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, TTL: "10m"})
			testkit.Must(t, err)
			tc, err := c.Clone()
			testkit.Must(t, err)
			tc.SetToken(tok.Auth.ClientToken)
			sign := func(principals string) error {
				_, err := tc.Logical().Write(signPath, map[string]any{"public_key": hostPub, "cert_type": "host", "valid_principals": principals})
				return err
			}
			if err := sign(fqdn); err != nil {
				t.Errorf("token with %v: signing a host key for %s: %v", policies, fqdn, err)
			}
			if err := sign("ip-10-0-1-5," + fqdn); err == nil || !strings.Contains(err.Error(), "is not a valid value for valid_principals") {
				t.Errorf("a short hostname: %v, want Vault's refusal, which the agent's fallback to the FQDN recognises", err)
			}
			if err := sign("bastion.example.com"); err == nil {
				t.Errorf("a name under another domain was signed")
			}
		})
	}
	// The alicloud role (written as JSON) carries the same policies.
	if b := bs["resource vault_generic_endpoint alicloud_web"]; b == nil || !strings.Contains(string(exprText(t, b, "data_json")), "vault_policy.ssh_host_cert.name") {
		t.Errorf("the alicloud role's token_policies lack vault_policy.ssh_host_cert")
	}
}

// exprText is the source text of a block's attribute.
func exprText(t *testing.T, b *hclsyntax.Block, name string) []byte {
	t.Helper()
	a := b.Body.Attributes[name]
	if a == nil {
		return nil
	}
	r := a.Expr.Range()
	src, err := os.ReadFile(r.Filename)
	testkit.Must(t, err)
	return src[r.Start.Byte:r.End.Byte]
}
