package plugin

import "bytes"

// The member index's scanner as it was before jsonscan.go (main at
// 15816a8): lenient (it checks nesting and strings, not every token), so
// no JSON library states what it finds in a document that is not valid.
// TestMembersAsBefore and FuzzMembers hold the index to it byte for byte:
// guests read the index, and it must not change under them.

func membersMain(ms []member, v []byte, off int) []member {
	n := len(ms)
	i := skipWSMain(v, 0)
	if i >= len(v) || v[i] != '{' {
		return ms
	}
	i = skipWSMain(v, i+1)
	if i < len(v) && v[i] == '}' {
		return ms
	}
	for {
		if i >= len(v) || v[i] != '"' {
			return ms[:n]
		}
		ks := i + 1
		kend := skipJSONMain(v, i)
		if kend < 0 {
			return ms[:n]
		}
		i = skipWSMain(v, kend)
		if i >= len(v) || v[i] != ':' {
			return ms[:n]
		}
		vs := skipWSMain(v, i+1)
		ve := skipJSONMain(v, vs)
		if ve < 0 {
			return ms[:n]
		}
		ms = append(ms, member{uint32(off + ks), uint32(kend - 1 - ks), uint32(off + vs), uint32(ve - vs)})
		i = skipWSMain(v, ve)
		switch {
		case i < len(v) && v[i] == ',':
			i = skipWSMain(v, i+1)
		case i < len(v) && v[i] == '}':
			return ms
		default:
			return ms[:n]
		}
	}
}
func skipJSONMain(v []byte, i int) int {
	if i >= len(v) {
		return -1
	}
	depth := 0
	for i < len(v) {
		switch c := v[i]; c {
		case '"':
			j := scanStringMain(v, i+1)
			if j < 0 {
				return -1
			}
			i = j + 1
		case '{', '[':
			depth++
			i++
			continue
		case '}', ']':
			depth--
			if depth < 0 {
				return -1
			}
			i++
		default:
			if depth > 0 {
				i++
				continue
			}
			j := i
			for j < len(v) && v[j] != ',' && v[j] != '}' && v[j] != ']' && v[j] > ' ' {
				j++
			}
			if j == i {
				return -1
			}
			return j
		}
		if depth == 0 {
			return i
		}
	}
	return -1
}
func scanStringMain(v []byte, j int) int {
	k := bytes.IndexByte(v[j:], '"')
	if k < 0 {
		return -1
	}
	if bytes.IndexByte(v[j:j+k], '\\') < 0 {
		return j + k
	}
	for j < len(v) {
		switch v[j] {
		case '"':
			return j
		case '\\':
			j += 2
		default:
			j++
		}
	}
	return -1
}

func skipWSMain(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}
