package auth

// RegionName reports whether s looks like a cloud region name (eu-west-1,
// cn-hangzhou, us-gov-west-1): two lower-case letters, then one or more
// groups of "-" and lower-case letters or digits. The name becomes part of
// a URL or a host name, so nothing else gets through. A loop, not a
// regexp: every start of the agent would compile it.
func RegionName(s string) bool {
	if len(s) < 4 || !lower(s[0]) || !lower(s[1]) || s[2] != '-' {
		return false
	}
	run := 0 // length of the group after the last "-"
	for i := 3; i < len(s); i++ {
		switch c := s[i]; {
		case c == '-':
			if run == 0 {
				return false
			}
			run = 0
		case lower(c) || '0' <= c && c <= '9':
			run++
		default:
			return false
		}
	}
	return run > 0
}

func lower(c byte) bool { return 'a' <= c && c <= 'z' }
