// Package funcs holds the template functions that need no Vault:
// consul-template's pure helpers and sprig, with consul-template's semantics
// so that output matches Vault Agent's byte for byte.
package funcs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	gotemplate "text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v2"
)

// Helpers are the pure functions templates use, with consul-template's
// semantics (its template/funcs.go), so that output matches Vault Agent's
// byte for byte.
func Helpers(now func() time.Time) gotemplate.FuncMap {
	fm := gotemplate.FuncMap{
		"base64Decode": func(s string) (string, error) {
			v, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", fmt.Errorf("base64Decode: %w", err)
			}
			return string(v), nil
		},
		"base64Encode": func(s string) (string, error) { return base64.StdEncoding.EncodeToString([]byte(s)), nil },
		"base64URLDecode": func(s string) (string, error) {
			v, err := base64.URLEncoding.DecodeString(s)
			if err != nil {
				return "", fmt.Errorf("base64URLDecode: %w", err)
			}
			return string(v), nil
		},
		"base64URLEncode": func(s string) (string, error) { return base64.URLEncoding.EncodeToString([]byte(s)), nil },
		"contains":        func(v, l any) (bool, error) { return in(l, v) },
		"in":              in,
		"env":             func(s string) (string, error) { return os.Getenv(s), nil },
		"join":            func(sep string, a []string) (string, error) { return strings.Join(a, sep), nil },
		"split": func(sep, s string) ([]string, error) {
			s = strings.TrimSpace(s)
			if s == "" {
				return []string{}, nil
			}
			return strings.Split(s, sep), nil
		},
		"replaceAll": func(f, t, s string) (string, error) { return strings.ReplaceAll(s, f, t), nil },
		"toLower":    func(s string) (string, error) { return strings.ToLower(s), nil },
		"toUpper":    func(s string) (string, error) { return strings.ToUpper(s), nil },
		"trimSpace":  func(s string) (string, error) { return strings.TrimSpace(s), nil },
		"trimPrefix": func(p, s string) (string, error) { return strings.TrimPrefix(s, p), nil },
		"trimSuffix": func(p, s string) (string, error) { return strings.TrimSuffix(s, p), nil },
		"toJSON": func(v any) (string, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return "", fmt.Errorf("toJSON: %w", err)
			}
			return string(bytes.TrimSpace(b)), nil
		},
		"toJSONPretty": func(v any) (string, error) {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return "", fmt.Errorf("toJSONPretty: %w", err)
			}
			return string(bytes.TrimSpace(b)), nil
		},
		"toYAML": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			if err != nil {
				return "", fmt.Errorf("toYAML: %w", err)
			}
			return string(bytes.TrimSpace(b)), nil
		},
		"parseJSON": func(s string) (any, error) {
			if s == "" {
				return map[string]any{}, nil
			}
			var v any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				return nil, err
			}
			return v, nil
		},
		// An empty string parses as the zero value, as in consul-template.
		"parseBool": func(s string) (bool, error) {
			if s == "" {
				return false, nil
			}
			v, err := strconv.ParseBool(s)
			if err != nil {
				return false, fmt.Errorf("parseBool: %w", err)
			}
			return v, nil
		},
		"parseInt": func(s string) (int64, error) {
			if s == "" {
				return 0, nil
			}
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parseInt: %w", err)
			}
			return v, nil
		},
		"parseFloat": func(s string) (float64, error) {
			if s == "" {
				return 0, nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return 0, fmt.Errorf("parseFloat: %w", err)
			}
			return v, nil
		},
		"timestamp": func(s ...string) (string, error) {
			// UTC whatever the host's zone, as consul-template.
			now := func() time.Time { return now().UTC() }
			switch len(s) {
			case 0:
				return now().Format(time.RFC3339), nil
			case 1:
				if s[0] == "unix" {
					return strconv.FormatInt(now().Unix(), 10), nil
				}
				return now().Format(s[0]), nil
			}
			return "", &SafeError{fmt.Sprintf("timestamp: wrong number of arguments, expected 0 or 1, but got %d", len(s))}
		},
		"indent": func(spaces int, s string) (string, error) {
			if spaces < 0 {
				return "", &SafeError{"indent value must be a positive integer"}
			}
			var out []string
			pad := strings.Repeat(" ", spaces)
			for _, l := range strings.Split(s, "\n") {
				if l != "" {
					l = pad + l
				}
				out = append(out, l)
			}
			return strings.Join(out, "\n"), nil
		},
	}
	for k, v := range moreHelpers() {
		fm[k] = v
	}
	// sprig, prefixed as consul-template exposes it.
	for k, v := range sprig.HermeticTxtFuncMap() {
		fm["sprig_"+k] = v
	}
	valueFree(fm)
	return fm
}

// in reports whether l (a slice, array or string) contains v, with
// consul-template's comparison rules.
func in(l, v any) (bool, error) {
	lv := reflect.ValueOf(l)
	vv := reflect.ValueOf(v)
	switch lv.Kind() {
	case reflect.Array, reflect.Slice:
		for i := 0; i < lv.Len(); i++ {
			e := lv.Index(i)
			if e.Kind() == reflect.Interface {
				e = e.Elem()
			}
			switch e.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				switch vv.Kind() {
				case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
					if vv.Int() == e.Int() {
						return true, nil
					}
				}
			case reflect.Float32, reflect.Float64:
				switch vv.Kind() {
				case reflect.Float32, reflect.Float64:
					if vv.Float() == e.Float() {
						return true, nil
					}
				}
			case reflect.String:
				// Same type, not just both strings, as consul-template.
				if vv.IsValid() && vv.Type() == e.Type() && vv.String() == e.String() {
					return true, nil
				}
			}
		}
	case reflect.String:
		if vv.Type() == lv.Type() && strings.Contains(lv.String(), vv.String()) {
			return true, nil
		}
	}
	return false, nil
}
