package funcs

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	gotemplate "text/template"

	"dario.cat/mergo"
	"github.com/BurntSushi/toml"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"gopkg.in/yaml.v2"
)

// moreHelpers are the rest of consul-template's pure helpers (its
// template/funcs.go), reimplemented with the same results so that templates
// written for Vault Agent render the same here. Functions that need the
// parsed template (executeTemplate) or per-execution state (scratch) are
// added by execute.
func moreHelpers() gotemplate.FuncMap {
	return gotemplate.FuncMap{
		"mustEnv": func(s string) (string, error) {
			if v := os.Getenv(s); v != "" {
				return v, nil
			}
			return "", &SafeError{fmt.Sprintf("required environment variable %s is empty", s)}
		},
		"envOrDefault": func(s, def string) (string, error) {
			if v, ok := os.LookupEnv(s); ok {
				return v, nil
			}
			return def, nil
		},
		"trim": func(cutset, s string) (string, error) { return strings.Trim(s, cutset), nil },
		"regexReplaceAll": func(re, pl, s string) (string, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return "", err
			}
			return c.ReplaceAllString(s, pl), nil
		},
		"regexMatch": func(re, s string) (bool, error) {
			c, err := regexp.Compile(re)
			if err != nil {
				return false, err
			}
			return c.MatchString(s), nil
		},
		"sha256Hex": func(s string) (string, error) { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]), nil },
		"md5sum":    func(s string) (string, error) { return fmt.Sprintf("%x", md5.Sum([]byte(s))), nil },
		"hmacSHA256Hex": func(message, key string) (string, error) {
			h := hmac.New(sha256.New, []byte(key))
			h.Write([]byte(message))
			return hex.EncodeToString(h.Sum(nil)), nil
		},
		"toTitle": func(s string) (string, error) { return cases.Title(language.Und, cases.NoLower).String(s), nil },
		"toUnescapedJSON": func(v any) (string, error) {
			return unescapedJSON(v, "")
		},
		"toUnescapedJSONPretty": func(v any) (string, error) {
			return unescapedJSON(v, "  ")
		},
		"toTOML": func(v any) (string, error) {
			var buf bytes.Buffer
			if err := toml.NewEncoder(&buf).Encode(v); err != nil {
				return "", fmt.Errorf("toTOML: %w", err)
			}
			return string(bytes.TrimSpace(buf.Bytes())), nil
		},
		"parseUint": func(s string) (uint64, error) {
			if s == "" {
				return 0, nil
			}
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parseUint: %w", err)
			}
			return v, nil
		},
		"parseYAML": func(s string) (any, error) {
			if s == "" {
				return map[string]any{}, nil
			}
			var v any
			if err := yaml.Unmarshal([]byte(s), &v); err != nil {
				return nil, err
			}
			return v, nil
		},
		"splitToMap": func(sep1, sep2, s string) (map[string]string, error) {
			s = strings.TrimSpace(s)
			m := map[string]string{}
			if s == "" {
				return m, nil
			}
			for _, item := range strings.Split(s, sep1) {
				if k, v, ok := strings.Cut(item, sep2); ok {
					m[k] = v
				}
			}
			return m, nil
		},
		"containsAll":    containsSome(true, true),
		"containsAny":    containsSome(false, false),
		"containsNone":   containsSome(true, false),
		"containsNotAll": containsSome(false, true),
		"mergeMap": func(dst, src map[string]any) (map[string]any, error) {
			if err := mergo.Map(&dst, src); err != nil {
				return nil, err
			}
			return dst, nil
		},
		"mergeMapWithOverride": func(dst, src map[string]any) (map[string]any, error) {
			if err := mergo.Map(&dst, src, mergo.WithOverride); err != nil {
				return nil, err
			}
			return dst, nil
		},
		"explodeMap": explodeMap,
		"loop":       loop,
		"add": arith("add", false,
			func(a, b int64) any { return a + b }, func(a, b uint64) any { return a + b }, func(a, b float64) any { return a + b }),
		"subtract": arith("subtract", false,
			func(a, b int64) any { return a - b }, func(a, b uint64) any { return a - b }, func(a, b float64) any { return a - b }),
		"multiply": arith("multiply", false,
			func(a, b int64) any { return a * b }, func(a, b uint64) any { return a * b }, func(a, b float64) any { return a * b }),
		"divide": arith("divide", false,
			func(a, b int64) any { return a / b }, func(a, b uint64) any { return a / b }, func(a, b float64) any { return a / b }),
		"modulo": arith("modulo", true,
			func(a, b int64) any { return a % b }, func(a, b uint64) any { return a % b }, nil),
		"minimum": pick("minimum", func(c int) bool { return c < 0 }),
		"maximum": pick("maximum", func(c int) bool { return c > 0 }),
	}
}

func unescapedJSON(v any, indent string) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("toUnescapedJSON: %w", err)
	}
	return strings.TrimRight(buf.String(), "\r\n"), nil
}

// containsSome implements containsAll/Any/None/NotAll as consul-template
// does: retTrue is the result when the loop finishes, invert flips the test.
func containsSome(retTrue, invert bool) func([]any, any) (bool, error) {
	return func(v []any, l any) (bool, error) {
		for _, x := range v {
			if ok, _ := in(l, x); ok != invert {
				return !retTrue, nil
			}
		}
		return retTrue, nil
	}
}

// explodeMap turns "a/b" keys into nested maps.
func explodeMap(in map[string]any) (map[string]any, error) {
	out := map[string]any{}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := explode(out, k, in[k], k); err != nil {
			return nil, fmt.Errorf("explodeMap: %w", err)
		}
	}
	return out, nil
}

func explode(m map[string]any, k string, v any, p string) error {
	if top, rest, ok := strings.Cut(k, "/"); ok {
		if _, ok := m[top]; !ok {
			m[top] = map[string]any{}
		}
		nest, ok := m[top].(map[string]any)
		if !ok {
			return fmt.Errorf("not a map: %q: %q already has value %q", p, top, m[top])
		}
		return explode(nest, rest, v, k)
	}
	if k != "" {
		m[k] = v
	}
	return nil
}

// loop yields start..stop-1 (one argument: 0..n-1), as consul-template's
// loop does, through a channel text/template can range over.
func loop(args ...any) (<-chan int64, error) {
	to64 := func(i any) (int64, error) {
		v := reflect.ValueOf(i)
		switch numClass(v) {
		case classInt:
			return v.Int(), nil
		case classUint:
			return int64(v.Uint()), nil
		}
		if v.Kind() == reflect.String {
			if v.String() == "" {
				return 0, nil
			}
			return strconv.ParseInt(v.String(), 10, 64)
		}
		return 0, &SafeError{fmt.Sprintf("loop: bad argument type: %T", i)}
	}
	var a, b any
	switch len(args) {
	case 1:
		a, b = 0, args[0]
	case 2:
		a, b = args[0], args[1]
	default:
		return nil, &SafeError{fmt.Sprintf("loop: wrong number of arguments, expected 1 or 2, but got %d", len(args))}
	}
	start, err := to64(a)
	if err != nil {
		return nil, err
	}
	stop, err := to64(b)
	if err != nil {
		return nil, err
	}
	ch := make(chan int64)
	go func() {
		for i := start; i < stop; i++ {
			ch <- i
		}
		close(ch)
	}()
	return ch, nil
}

type class int

const (
	classNone class = iota
	classInt
	classUint
	classFloat
)

func numClass(v reflect.Value) class {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return classInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return classUint
	case reflect.Float32, reflect.Float64:
		return classFloat
	}
	return classNone
}

// natural is v as int64, uint64 or float64 — the types consul-template's
// arithmetic returns.
func natural(v reflect.Value) any {
	switch numClass(v) {
	case classInt:
		return v.Int()
	case classUint:
		return v.Uint()
	}
	return v.Float()
}

func asInt(v reflect.Value) int64 {
	if numClass(v) == classUint {
		return int64(v.Uint())
	}
	return v.Int()
}

func asFloat(v reflect.Value) float64 {
	switch numClass(v) {
	case classInt:
		return float64(v.Int())
	case classUint:
		return float64(v.Uint())
	}
	return v.Float()
}

// arith builds consul-template's add/subtract/...: called as `op b a`
// (so `{{ 10 | subtract 3 }}` is 7), it computes a op b in int64 when
// both are integers and either is signed, in uint64 when both are
// unsigned, else in float64. noFloat refuses floats (modulo).
func arith(name string, noFloat bool, fi func(a, b int64) any, fu func(a, b uint64) any, ff func(a, b float64) any) func(b, a any) (any, error) {
	return func(b, a any) (any, error) {
		av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
		ac, bc := numClass(av), numClass(bv)
		if ac == classNone || (noFloat && ac == classFloat) {
			return nil, fmt.Errorf("%s: unknown type for %q (%T)", name, a, a)
		}
		if bc == classNone || (noFloat && bc == classFloat) {
			return nil, fmt.Errorf("%s: unknown type for %q (%T)", name, b, b)
		}
		switch {
		case ac == classFloat || bc == classFloat:
			return ff(asFloat(av), asFloat(bv)), nil
		case ac == classUint && bc == classUint:
			return fu(av.Uint(), bv.Uint()), nil
		}
		return fi(asInt(av), asInt(bv)), nil
	}
}

// pick builds minimum/maximum: a is returned when want(compare(a, b)),
// else b, each in its natural type, compared as arith computes.
func pick(name string, want func(int) bool) func(b, a any) (any, error) {
	return func(b, a any) (any, error) {
		av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
		ac, bc := numClass(av), numClass(bv)
		if ac == classNone {
			return nil, fmt.Errorf("%s: unknown type for %q (%T)", name, a, a)
		}
		if bc == classNone {
			return nil, fmt.Errorf("%s: unknown type for %q (%T)", name, b, b)
		}
		var c int
		switch {
		case ac == classFloat || bc == classFloat:
			c = cmp3(asFloat(av), asFloat(bv))
		case ac == classUint && bc == classUint:
			c = cmp3(av.Uint(), bv.Uint())
		default:
			c = cmp3(asInt(av), asInt(bv))
		}
		if want(c) {
			return natural(av), nil
		}
		return natural(bv), nil
	}
}

func cmp3[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// NewScratch returns an empty store for one execution.
func NewScratch() *Scratch { return &Scratch{values: map[string]any{}} }

// Scratch is consul-template's per-execution key/value store.
type Scratch struct {
	mu     sync.Mutex
	values map[string]any
}

// Key reports whether k is set.
func (s *Scratch) Key(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.values[k]
	return ok
}

// Get returns the value at k, nil when unset.
func (s *Scratch) Get(k string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.values[k]
}

// Set stores v at k and returns "" (so that it prints nothing).
func (s *Scratch) Set(k string, v any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[k] = v
	return ""
}

// SetX is Set that keeps an existing value.
func (s *Scratch) SetX(k string, v any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.values[k]; !ok {
		s.values[k] = v
	}
	return ""
}

// MapSet stores v at key mk of the map named k; an error when k is not a map.
func (s *Scratch) MapSet(k, mk string, v any) (string, error) { return s.mapSet(k, mk, v, true) }

// MapSetX is MapSet that keeps an existing value.
func (s *Scratch) MapSetX(k, mk string, v any) (string, error) { return s.mapSet(k, mk, v, false) }

func (s *Scratch) mapSet(k, mk string, v any, overwrite bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.values[k]; !ok {
		s.values[k] = map[string]any{}
	}
	m, ok := s.values[k].(map[string]any)
	if !ok {
		return "", fmt.Errorf("%q is not a map", k)
	}
	if _, ok := m[mk]; overwrite || !ok {
		m[mk] = v
	}
	return "", nil
}

// MapValues returns the values of the map named k sorted by key; nil when
// k is not a map.
func (s *Scratch) MapValues(k string) ([]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.values[k].(map[string]any)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out, nil
}

// executeTemplateFunc runs a `define`d template of t with the given dot (nil
// without one), as consul-template's executeTemplate.
func ExecuteTemplate(t **gotemplate.Template) func(string, ...any) (string, error) {
	return func(name string, data ...any) (string, error) {
		var dot any
		switch len(data) {
		case 0:
		case 1:
			dot = data[0]
		default:
			return "", &SafeError{fmt.Sprintf("executeTemplate: wrong number of arguments, expected 1 or 2, but got %d", len(data)+1)}
		}
		var b bytes.Buffer
		if err := (*t).ExecuteTemplate(&b, name, dot); err != nil {
			return "", err
		}
		return b.String(), nil
	}
}
