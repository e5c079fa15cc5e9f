// Package owner resolves file owners as configs name them: a user or group
// name, or a number.
package owner

import (
	"os/user"
	"strconv"
)

// UID returns the uid of s, a user name or a non-negative number. The
// error is os/user's for an unknown name.
func UID(s string) (int, error) {
	return id(s, func(n string) (string, error) {
		u, err := user.Lookup(n)
		if err != nil {
			return "", err
		}
		return u.Uid, nil
	})
}

// GID returns the gid of s, a group name or a non-negative number.
func GID(s string) (int, error) {
	return id(s, func(n string) (string, error) {
		g, err := user.LookupGroup(n)
		if err != nil {
			return "", err
		}
		return g.Gid, nil
	})
}

func id(s string, byName func(string) (string, error)) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	v, err := byName(s)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(v)
}
