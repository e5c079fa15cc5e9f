package template

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	gotemplate "text/template"
	"text/template/parse"

	"github.com/latchkey/latchkey/agent/config"
	"github.com/latchkey/latchkey/agent/template/funcs"
	"github.com/latchkey/latchkey/internal/atomicfile"
	"github.com/latchkey/latchkey/internal/hclconf"
	lkredact "github.com/latchkey/latchkey/internal/redact"
)

// unit is one template stanza with its parsed text.
type unit struct {
	cfg  config.Template
	text string
	// name is how logs and `render -template` call it: its destination.
	name string

	// bound is text parsed with functions bound to cur, the execution under
	// way (nil until the first execution after a load). A unit belongs to
	// one manager, used by one goroutine: no lock.
	bound *gotemplate.Template
	cur   *execState
	// used names the functions the text calls: only those are bound, as
	// binding every function cost each template ~100 KiB.
	used map[string]bool
	// runs counts executions (tests show that work follows what changed,
	// reading it while the manager runs).
	runs atomic.Int64
	// srcID is the source file as last read (following symlinks), and
	// srcDirs the directories watched for it (watch.go).
	srcID   destID
	srcDirs []string
}

func newUnit(c config.Template) (*unit, error) {
	u := &unit{cfg: c, name: c.Destination}
	return u, u.load()
}

// load reads the source file (or the inline contents) and checks it parses.
func (u *unit) load() error {
	text := u.cfg.Contents
	if u.cfg.Source != "" {
		// Taken before the read, also when it fails: a change after it
		// differs, and is read; a file that does not load is not read
		// again until it changes.
		u.srcID, u.srcDirs = stat(u.cfg.Source), sourceDirs(u.cfg.Source)
		// A source decides what is rendered (any secret the token reads,
		// any file root reads, through file): one that someone other than
		// root could have written is refused, as a config file is.
		b, err := config.ReadTrusted(u.cfg.Source, "template source", "choose what the agent renders (any secret its token may read, any file it may read)", "read template")
		if err != nil {
			return err
		}
		text = string(b)
	}
	used, err := u.check(text)
	if err != nil {
		return err
	}
	u.text, u.bound, u.used = text, nil, used
	return nil
}

// RendersSecrets reports whether template c puts what Vault answers into
// its output: whether it calls secret or pkiCert (secrets lists only
// names). It reads c's source as the agent does, and returns the agent's
// error when that cannot be read or parsed.
func RendersSecrets(c config.Template) (bool, error) {
	u, err := newUnit(c)
	if err != nil {
		return false, err
	}
	return u.used["secret"] || u.used["pkiCert"], nil
}

// builtins are text/template's own functions, which its parser knows
// without a FuncMap (the parser wants a non-nil value for each name).
var builtins = func() map[string]any {
	m := map[string]any{}
	for _, k := range []string{"and", "call", "html", "index", "slice", "js", "len", "not", "or",
		"print", "printf", "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"} {
		m[k] = true
	}
	return m
}()

// check parses text as text/template does (same errors, every function
// name known) and returns the names of the functions it calls. It calls
// the parser directly: a text/template with every function bound, built
// per template only to be thrown away, was most of a start's CPU.
func (u *unit) check(text string) (map[string]bool, error) {
	trees, err := parse.Parse(u.textName(), text, u.cfg.LeftDelim, u.cfg.RightDelim, stubFuncs(), builtins)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", u.textName(), err)
	}
	var ts []*parse.Tree
	for _, t := range trees {
		ts = append(ts, t)
	}
	return funcNames(ts), nil
}

// parse parses text with fm.
func (u *unit) parse(text string, fm gotemplate.FuncMap) (*gotemplate.Template, error) {
	// Named after the file the text comes from, so that a syntax or
	// execution error ("template: NAME:4: unclosed action") points at the
	// source and its line, not at the destination.
	t := gotemplate.New(u.textName()).Delims(u.cfg.LeftDelim, u.cfg.RightDelim).Funcs(fm)
	if u.cfg.ErrorOnMissingKey {
		t.Option("missingkey=error")
	} else {
		t.Option("missingkey=zero")
	}
	t, err := t.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", u.textName(), err)
	}
	return t, nil
}

// funcNames returns the names of the functions the trees of a template
// (its own and those it defines) call.
func funcNames(trees []*parse.Tree) map[string]bool {
	names := map[string]bool{}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			if n != nil {
				for _, c := range n.Cmds {
					walk(c)
				}
			}
		case *parse.CommandNode:
			for _, a := range n.Args {
				walk(a)
			}
		case *parse.ChainNode:
			walk(n.Node)
		case *parse.IdentifierNode:
			names[n.Ident] = true
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			walk(n.Pipe)
		}
	}
	for _, t := range trees {
		if t != nil && t.Root != nil {
			walk(t.Root)
		}
	}
	return names
}

// stubFuncs is every function name (the parser wants a map of them),
// built once.
var stubFuncs = sync.OnceValue(func() gotemplate.FuncMap {
	fm := gotemplate.FuncMap{}
	stub := func(...any) (any, error) { return nil, nil }
	// Only the names: a stub never runs a helper, so no clock.
	for k := range funcs.Helpers(nil) {
		fm[k] = stub
	}
	for _, k := range []string{"secret", "secrets", "pkiCert", "file", "scratch", "executeTemplate"} {
		fm[k] = stub
	}
	return fm
})

// textName is where the template's text is: its source file, or the
// position of its inline contents in the config.
func (u *unit) textName() string {
	if u.cfg.Source != "" {
		return u.cfg.Source
	}
	if u.cfg.Range.Filename != "" {
		return "contents at " + hclconf.Pos(u.cfg.Range)
	}
	return "contents of " + u.cfg.Destination
}

// execution is one execution's outcome.
type execution struct {
	out     []byte
	used    map[string]*query
	missing map[string]*query
	files   []string
	err     error
}

// execute runs the template against what the brain holds. Queries not in
// the brain are recorded as missing and their functions return nil, as in
// consul-template; the caller fetches them and executes again. With mask,
// every string a secret holds is replaced by "<redacted>".
//
// The text is parsed, and its functions bound, once per load (at the first
// execution after it): the functions read this execution's state from
// u.cur. Parsing and binding some eighty functions at every execution was
// most of a render's CPU.
//
// helpers are the functions that need no Vault (funcs.Helpers), built once
// per manager and shared by its units: they hold no state, and building
// them per unit (a reflect wrapper each) was most of a first render's CPU.
func (u *unit) execute(b *brain, helpers gotemplate.FuncMap, mask bool) execution {
	u.runs.Add(1)
	ex := &execution{used: map[string]*query{}, missing: map[string]*query{}}
	if u.bound == nil {
		t, err := u.parse(u.text, u.funcMap(helpers, u.used))
		if err != nil && u.used != nil {
			t, err = u.parse(u.text, u.funcMap(helpers, nil))
		}
		if err != nil {
			ex.err = err
			return *ex
		}
		u.bound = t
	}
	u.cur = &execState{ex: ex, b: b, mask: mask, sc: funcs.NewScratch()}
	defer func() { u.cur = nil }()
	var buf bytes.Buffer
	if err := u.bound.Execute(&buf, nil); err != nil {
		ex.err = redact(err, ex.used, b)
		return *ex
	}
	ex.out = buf.Bytes()
	return *ex
}

// execState is what the functions of an execution see.
type execState struct {
	ex   *execution
	b    *brain
	mask bool
	sc   *funcs.Scratch
}

// funcMap binds the template functions to u.cur: those named in used, or
// all when used is nil.
func (u *unit) funcMap(helpers gotemplate.FuncMap, used map[string]bool) gotemplate.FuncMap {
	fm := gotemplate.FuncMap{}
	for k, f := range helpers {
		if used == nil || used[k] {
			fm[k] = f
		}
	}
	for k, f := range u.boundFuncs() {
		if used == nil || used[k] {
			fm[k] = f
		}
	}
	return fm
}

// boundFuncs are the functions that read the execution under way (u.cur).
func (u *unit) boundFuncs() gotemplate.FuncMap {
	recall := func(q *query) (any, bool) {
		c := u.cur
		c.ex.used[q.key] = q
		r, ok := c.b.get(q.key)
		if !ok || r.err != nil {
			c.ex.missing[q.key] = q
			return nil, false
		}
		v := r.value
		if c.mask {
			v = masked(v)
		}
		return v, true
	}
	fm := gotemplate.FuncMap{}
	fm["secret"] = func(s ...string) (any, error) {
		if len(s) == 0 {
			return nil, nil
		}
		q, err := newQuery(kindRead, s[0], s[1:], "")
		if err != nil {
			return nil, err
		}
		if v, ok := recall(q); ok {
			return v, nil
		}
		return nil, nil
	}
	fm["secrets"] = func(s string) ([]string, error) {
		if s == "" {
			return nil, nil
		}
		q, err := newQuery(kindList, s, nil, "")
		if err != nil {
			return nil, err
		}
		if v, ok := recall(q); ok {
			return v.([]string), nil
		}
		return nil, nil
	}
	fm["pkiCert"] = func(s ...string) (any, error) {
		if len(s) == 0 {
			return nil, nil
		}
		q, err := newQuery(kindPKI, s[0], s[1:], u.cfg.Destination)
		if err != nil {
			return nil, err
		}
		if v, ok := recall(q); ok {
			return v, nil
		}
		return nil, nil
	}
	fm["file"] = func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		u.cur.ex.files = append(u.cur.ex.files, p)
		c, err := atomicfile.ReadRegular(p)
		if err != nil {
			return "", fmt.Errorf("file %s: %w", p, err)
		}
		return string(c), nil
	}
	fm["scratch"] = func() *funcs.Scratch { return u.cur.sc }
	fm["executeTemplate"] = funcs.ExecuteTemplate(&u.bound)
	return fm
}

// redact removes every secret value from an execution error, so that logs
// never carry one.
func redact(err error, used map[string]*query, b *brain) error {
	var values []string
	for k := range used {
		if r, ok := b.get(k); ok {
			values = append(values, secretStrings(r.value)...)
		}
	}
	return fmt.Errorf("execute template: %s", lkredact.String(err.Error(), "[redacted]", values...))
}

// secretStrings lists the string forms of a value's secret leaves.
func secretStrings(v any) []string {
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case *Secret:
			// A KV v2 secret's metadata (version numbers, times) is not
			// secret; replacing a version "1" everywhere made errors unreadable.
			if d, ok := t.Data["data"]; ok {
				if md, ok := t.Data["metadata"].(map[string]any); ok {
					walk(d)
					walk(md["custom_metadata"]) // user-supplied: treated as secret
					return
				}
			}
			walk(t.Data)
		case *PemEncoded:
			out = append(out, t.Key, t.Cert)
		case map[string]any:
			for _, e := range t {
				walk(e)
			}
		case []any:
			for _, e := range t {
				walk(e)
			}
		case string:
			out = append(out, t)
		case nil:
		default:
			out = append(out, fmt.Sprint(t))
		}
	}
	walk(v)
	return out
}

// masked returns a copy of v with secret strings replaced, for
// `render -dry-run` without -show-secrets.
func masked(v any) any {
	const m = "<redacted>"
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case *Secret:
			c := *t
			c.Data, _ = walk(t.Data).(map[string]any)
			return &c
		case *PemEncoded:
			return &PemEncoded{Cert: t.Cert, CA: t.CA, CAChain: t.CAChain, Key: m}
		case map[string]any:
			out := make(map[string]any, len(t))
			for k, e := range t {
				out[k] = walk(e)
			}
			return out
		case []any:
			out := make([]any, len(t))
			for i, e := range t {
				out[i] = walk(e)
			}
			return out
		case nil:
			return nil
		case []string:
			return t // key names of a list
		}
		return m
	}
	return walk(v)
}
