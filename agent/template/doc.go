// Package template renders the agent's `template` stanzas: consul-template's
// syntax on Go's text/template, fed from Vault with the agent's token.
//
// A render is two-phase, as in consul-template: executing a template records
// the Vault queries it needs (dependency.go); those not yet fetched are
// fetched (each distinct query once, however many templates use it) and the
// template is executed again, until nothing is missing. Only then is the
// destination written (package renderer), and only when its content, mode
// or owner changed; the command runs only after a change (package command),
// or once when an earlier one was cut short (commands.go: a reload hands a
// running command to the new Manager, a stop ends it, and a record in the
// state directory reruns one that did not end).
// The functions that need no Vault are in package funcs.
//
// The Manager keeps every template current. Its render loop is in
// manager.go; fetch.go asks Vault and stores the answers; schedule.go
// decides when each answer needs attention again (renewable leases are
// renewed, non-renewable leases and certificates — pkiCert or a write that
// returns one — fetched again at lease_renewal_threshold of their life,
// static secrets every static_secret_render_interval); watch.go follows
// sources, destinations and files read with `file` through fsnotify.
// A re-login does not touch any of this: the token is read per request.
// A reload that changes some templates starts a new Manager from what the
// old one fetched (inherit.go); render.go is `latchkey-agent render`.
package template
