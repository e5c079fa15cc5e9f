// Package hcloracle loads HCL (and JSON) configuration files with
// github.com/hashicorp/hcl/v2 and turns every problem into an error of the
// form "file:line:col: message" that names the key at fault.
//
// It is what both binaries read their configs with before they got their
// own readers (pam/configparse.go, internal/hclconf); no binary links it
// any more. Tests keep it as the oracle those readers must agree with:
// parsing by file extension, flat key = value bodies with unknown keys
// refused, typed value decoders that accept the HCL 1 spellings Vault's
// tools write (booleans and numbers in strings, octal file modes such as
// 0640, comma-separated lists), and the diagnostic formatting.
package hcloracle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// Parse reads path and parses it as JSON when it ends in ".json" and as HCL
// native syntax otherwise. p keeps the source so that later diagnostics and
// FileMode can look at it.
//
// A file that cannot be read gives "read config <path>: <reason>"; a syntax
// error gives the Diagnostics error with file:line:col.
func Parse(p *hclparse.Parser, path string) (*hcl.File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	return ParseBytes(p, path, src)
}

// ParseBytes is Parse for content already in memory; path names it in
// diagnostics and picks the syntax.
func ParseBytes(p *hclparse.Parser, path string, src []byte) (*hcl.File, error) {
	var f *hcl.File
	var diags hcl.Diagnostics
	if strings.EqualFold(filepath.Ext(path), ".json") {
		f, diags = p.ParseJSON(src, path)
	} else {
		f, diags = p.ParseHCL(src, path)
	}
	if err := Err(diags); err != nil {
		return nil, err
	}
	return f, nil
}

// Diagnostics is an error made of hcl diagnostics; Error prints one
// "file:line:col: summary: detail" line per error.
type Diagnostics hcl.Diagnostics

// Err returns nil when diags has no errors (warnings are dropped), and a
// Diagnostics error otherwise.
func Err(diags hcl.Diagnostics) error {
	var errs Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (ds Diagnostics) Error() string {
	lines := make([]string, 0, len(ds))
	for _, d := range ds {
		lines = append(lines, Format(d))
	}
	return strings.Join(lines, "\n")
}

// Pos is r's start as "file:line:col", the prefix of every config error.
func Pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// Format prints one diagnostic as "file:line:col: summary: detail".
func Format(d *hcl.Diagnostic) string {
	var b strings.Builder
	if d.Subject != nil {
		b.WriteString(Pos(*d.Subject) + ": ")
	}
	b.WriteString(d.Summary)
	if d.Detail != "" && d.Detail != d.Summary {
		b.WriteString(": ")
		b.WriteString(strings.TrimSuffix(d.Detail, "."))
	}
	return b.String()
}

// Errorf builds an error diagnostic at rng.
func Errorf(rng hcl.Range, format string, args ...any) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: fmt.Sprintf(format, args...), Subject: &r}
}

// AsDiagnostics reports whether err is (or wraps) a Diagnostics error.
func AsDiagnostics(err error) (Diagnostics, bool) {
	var ds Diagnostics
	ok := errors.As(err, &ds)
	return ds, ok
}

// Flat reads a body made only of key = value pairs and returns them by name.
// A key not in allowed, a repeated key, or a block gives an error naming it
// and its position.
func Flat(body hcl.Body, allowed ...string) (map[string]*hcl.Attribute, hcl.Diagnostics) {
	attrs, diags := body.JustAttributes()
	ok := make(map[string]bool, len(allowed))
	for _, k := range allowed {
		ok[k] = true
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !ok[name] {
			diags = append(diags, Errorf(attrs[name].NameRange, "unknown key %q", name))
			delete(attrs, name)
		}
	}
	return attrs, diags
}
