package funcs

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	gotemplate "text/template"
)

// withheld is what a function's error says when its own text could hold the
// argument's value: a secret read from Vault, maybe transformed (toUpper,
// trimPrefix), which exact-string redaction would not catch.
const withheld = "invalid argument (the error's text is withheld: it could hold the value)"

// valueFree wraps every function of fm so that an error it returns, or a
// panic, never carries an argument's value into a log line: the error
// names the function and keeps only what cannot hold the value (strconv's
// reason, base64's byte offset, JSON's offset). text/template adds the
// template's name, line and column and the expression ("at <parseInt
// .Data.data.key>"), which is the source, not the value.
func valueFree(fm gotemplate.FuncMap) {
	for name, f := range fm {
		fm[name] = wrapFunc(name, f)
	}
}

var errorType = reflect.TypeFor[error]()

func wrapFunc(name string, f any) any {
	v := reflect.ValueOf(f)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return f
	}
	hasErr := t.NumOut() > 0 && t.Out(t.NumOut()-1) == errorType
	return reflect.MakeFunc(t, func(args []reflect.Value) (out []reflect.Value) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if !hasErr {
				panic(fmt.Sprintf("%s: %s", name, withheld))
			}
			out = make([]reflect.Value, t.NumOut())
			for i := range out {
				out[i] = reflect.Zero(t.Out(i))
			}
			out[len(out)-1] = reflect.ValueOf(fmt.Errorf("%s: %s", name, withheld))
		}()
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if hasErr {
			if err, _ := out[len(out)-1].Interface().(error); err != nil {
				out[len(out)-1] = reflect.ValueOf(safeError(name, err))
			}
		}
		return out
	}).Interface()
}

// SafeError marks an error whose text holds no argument value (wrong
// number of arguments, a negative indent): it is kept as it is.
type SafeError struct{ Msg string }

func (e *SafeError) Error() string { return e.Msg }

// safeError is err without anything that could be the argument's value.
func safeError(name string, err error) error {
	var se *SafeError
	var ne *strconv.NumError
	var ce base64.CorruptInputError
	var je *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return err
	case errors.As(err, &ne):
		return fmt.Errorf("%s: %s: %w", name, ne.Func, ne.Err)
	case errors.As(err, &ce):
		return fmt.Errorf("%s: illegal base64 data at input byte %d", name, int64(ce))
	case errors.As(err, &je):
		return fmt.Errorf("%s: invalid JSON at offset %d", name, je.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("%s: JSON value of type %s at offset %d", name, te.Value, te.Offset)
	}
	return fmt.Errorf("%s: %s", name, withheld)
}
