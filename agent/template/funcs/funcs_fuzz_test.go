package funcs

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Every helper of ours that takes only strings, called with arbitrary strings (the
// input split at NUL): an error is fine, a panic is not.
func FuzzStringHelpers(f *testing.F) {
	fm := Helpers(func() time.Time { return time.Unix(0, 0) })
	var names []string
	for name, fn := range fm {
		tp := reflect.TypeOf(fn)
		if tp.Kind() != reflect.Func || tp.IsVariadic() || tp.NumIn() == 0 {
			continue
		}
		ok := true
		for i := 0; i < tp.NumIn(); i++ {
			ok = ok && tp.In(i).Kind() == reflect.String
		}
		// sprig_* panic on bad input by design; text/template turns a
		// function's panic into an error. Ours must not panic at all.
		if ok && name != "env" && !strings.HasPrefix(name, "sprig_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, s := range []string{"a\x00b\x00c", "{\"k\": [1, 2]}", "k: v\n- x", "aGVsbG8=", "", "\xff\x00\xfe", ",\x00a,b,,c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		parts := strings.Split(in, "\x00")
		for _, name := range names {
			fn := reflect.ValueOf(fm[name])
			args := make([]reflect.Value, fn.Type().NumIn())
			for i := range args {
				args[i] = reflect.ValueOf(parts[i%len(parts)])
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%s(%s) panicked: %v", name, fmt.Sprintf("%q", parts), r)
					}
				}()
				fn.Call(args)
			}()
		}
	})
}
