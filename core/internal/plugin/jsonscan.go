package plugin

import (
	"encoding/binary"
	"math/bits"
)

// The JSON scanning every plugin call pays for: the host escapes strings
// into the inputs, finds the members of the kwargs and the payload, checks
// the raw values of a callback document and a transform's result. These
// work eight bytes at a time (SWAR): a 1 KiB payload is mostly strings, and
// byte by byte (or through encoding/json's scanner, a function call per
// byte) the host's share of a transform was ~3 µs.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special marks the bytes of x that a JSON string written by encoding/json
// cannot hold as they are, or that need a closer look: controls, '"', '\\',
// the HTML characters '<', '>' and '&', and every byte of a multi-byte
// UTF-8 sequence (invalid UTF-8, U+2028 and U+2029 are escaped). Its lowest
// set bit, if any, is in the first such byte (a borrow may mark bytes after
// it too).
//
// Each test subtracts from bytes below 0x80, so the high bit is set exactly
// when the byte is under the bound; the bytes at or above 0x80 are marked
// by x itself.
func special(x uint64) uint64 {
	return ((x - 0x20*ones) | // < 0x20
		x | // >= 0x80
		((x^0x22*ones)&^(0x04*ones) - ones) | // '"' (0x22) or '&' (0x26)
		((x^0x3c*ones)&^(0x02*ones) - ones) | // '<' (0x3c) or '>' (0x3e)
		((x ^ 0x5c*ones) - ones)) & highs // '\\'
}

// plain is whether the byte c is special's complement: written as it is.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// plainPrefix is the length of the longest prefix of s that encoding/json
// writes as it is, inside quotes.
func plainPrefix(s string) int {
	if len(s) < 8 {
		i := 0
		for i < len(s) && plain[s[i]] {
			i++
		}
		return i
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if m := special(load64(s[i : i+8])); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	if i == len(s) {
		return i
	}
	// The last eight bytes, overlapping the plain ones already read: those
	// are not marked, and a borrow only marks bytes after a marked one.
	if m := special(load64(s[len(s)-8:])); m != 0 {
		return len(s) - 8 + bits.TrailingZeros64(m)/8
	}
	return len(s)
}

// load64 is the eight bytes of t, little endian; the compiler merges the
// loads into one.
func load64(t string) uint64 {
	_ = t[7]
	return uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
		uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
}

// quoteOrBackslash marks the bytes of x that are '"' or '\\', as special
// does; bytes at or above 0x80 are not marked.
func quoteOrBackslash(x uint64) uint64 {
	return ((x ^ 0x22*ones - ones) | (x ^ 0x5c*ones - ones)) &^ x & highs
}

// zeroBytes marks the zero bytes of x, exactly: no borrow from one byte
// reaches the next.
func zeroBytes(x uint64) uint64 {
	const lows = ^uint64(highs)
	return ^((x&lows + lows) | x | lows)
}

// brackets marks the bytes of x that are brackets, and a few it does not
// want ('Y', '_', 'y', DEL: one test covers the four brackets).
func brackets(x uint64) uint64 {
	return zeroBytes((x ^ 0x5b*ones) &^ (0x26 * ones))
}

// maxDepth is encoding/json's nesting limit: a document nested deeper is
// not valid for it, so not for us.
const maxDepth = 10000

// Flags of validValue: what json.Compact and json.HTMLEscape would change.
const (
	sawSpace = 1 << iota // whitespace between tokens
	sawHTML              // '<', '>', '&' or a byte 0xE2 (U+2028, U+2029) in a string
)

// jsonSpace is JSON's whitespace.
var jsonSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// skipSpace returns the index of the first byte from v[i] that is not
// whitespace, and notes in flags whether it skipped any.
func skipSpace(v []byte, i int, flags *uint8) int {
	if i >= len(v) || v[i] > ' ' {
		return i // compact JSON: no space
	}
	j := i
	for j < len(v) && jsonSpace[v[j]] {
		j++
	}
	if j != i {
		*flags |= sawSpace
	}
	return j
}

// validString returns the index after the JSON string whose content starts
// at v[i] (after its opening quote), or -1 when encoding/json would refuse
// it: a control byte, a bad escape, no closing quote.
func validString(v []byte, i int, flags *uint8) int {
	for {
		for i+8 <= len(v) {
			m := special(binary.LittleEndian.Uint64(v[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
			break
		}
		if i >= len(v) {
			return -1
		}
		switch c := v[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(v) {
				return -1
			}
			switch v[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(v) || !isHex(v[i+2]) || !isHex(v[i+3]) || !isHex(v[i+4]) || !isHex(v[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		case c == '<' || c == '>' || c == '&' || c == 0xE2:
			*flags |= sawHTML
			i++
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validNumber returns the index after the JSON number at v[i], or -1.
func validNumber(v []byte, i int) int {
	digits := func(i int) int {
		for i < len(v) && '0' <= v[i] && v[i] <= '9' {
			i++
		}
		return i
	}
	if v[i] == '-' {
		i++
	}
	switch {
	case i >= len(v):
		return -1
	case v[i] == '0':
		i++
	case '1' <= v[i] && v[i] <= '9':
		i = digits(i + 1)
	default:
		return -1
	}
	if i < len(v) && v[i] == '.' {
		if i+1 >= len(v) || v[i+1] < '0' || v[i+1] > '9' {
			return -1
		}
		i = digits(i + 1)
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if i >= len(v) || v[i] < '0' || v[i] > '9' {
			return -1
		}
		i = digits(i)
	}
	return i
}

// validValue returns the index after the JSON value at v[i] (whitespace
// before it skipped), or -1 when encoding/json would refuse it, nesting
// deeper than maxDepth counted from depth included. It is iterative: a
// hostile document's nesting costs one bit per level, not a stack frame.
func validValue(v []byte, i, depth int, flags *uint8) int {
	// inObject holds a bit per open container: set for an object.
	var small [4]uint64
	inObject := small[:]
	open := 0
	for {
		// A value at i.
		i = skipSpace(v, i, flags)
		if i >= len(v) {
			return -1
		}
		switch c := v[i]; c {
		case '{', '[':
			if depth+open+1 > maxDepth {
				return -1
			}
			if open/64 == len(inObject) {
				inObject = append(inObject, 0)
			}
			word, bit := open/64, uint64(1)<<(open%64)
			open++
			if i = skipSpace(v, i+1, flags); i >= len(v) {
				return -1
			}
			if c == '[' {
				inObject[word] &^= bit
				if v[i] != ']' {
					continue // the first element
				}
			} else {
				inObject[word] |= bit
				if v[i] != '}' {
					if i = validKey(v, i, flags); i < 0 {
						return -1
					}
					continue // the first member's value
				}
			}
			open--
			i++
		case '"':
			i = validString(v, i+1, flags)
		case 't':
			i = literal(v, i, "true")
		case 'f':
			i = literal(v, i, "false")
		case 'n':
			i = literal(v, i, "null")
		default:
			if c != '-' && (c < '0' || c > '9') {
				return -1
			}
			i = validNumber(v, i)
		}
		// After a value: close containers until one continues.
		for {
			if i < 0 {
				return -1
			}
			if open == 0 {
				return i
			}
			if i = skipSpace(v, i, flags); i >= len(v) {
				return -1
			}
			object := inObject[(open-1)/64]&(1<<((open-1)%64)) != 0
			switch c := v[i]; {
			case c == ',' && object:
				i = validKey(v, skipSpace(v, i+1, flags), flags)
			case c == ',':
				i++
			case c == '}' && object, c == ']' && !object:
				open--
				i++
				continue
			default:
				return -1
			}
			break
		}
		if i < 0 {
			return -1
		}
	}
}

// validKey checks a member's name at v[i] and its colon, and returns the
// index after the colon, or -1.
func validKey(v []byte, i int, flags *uint8) int {
	if i >= len(v) || v[i] != '"' {
		return -1
	}
	if i = validString(v, i+1, flags); i < 0 {
		return -1
	}
	if i = skipSpace(v, i, flags); i >= len(v) || v[i] != ':' {
		return -1
	}
	return i + 1
}

// literal returns the index after word at v[i], or -1.
func literal(v []byte, i int, word string) int {
	if len(v)-i < len(word) || string(v[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}

// validDocument reports whether v is one JSON value, whitespace around it
// allowed, as json.Valid does; flags says what json.Compact and
// json.HTMLEscape would change.
func validDocument(v []byte) (ok bool, flags uint8) {
	i := validValue(v, 0, 0, &flags)
	return i >= 0 && skipSpace(v, i, &flags) == len(v), flags
}

// validObject appends the members of the JSON object v to ms, as members
// does, and reports whether v is valid JSON as json.Valid has it (an
// object, whitespace around it allowed): one pass checks and splits it.
func validObject(ms []member, v []byte) ([]member, bool) {
	var flags uint8
	i := skipSpace(v, 0, &flags)
	if i >= len(v) || v[i] != '{' {
		return ms, false
	}
	if i = skipSpace(v, i+1, &flags); i < len(v) && v[i] == '}' {
		return ms, skipSpace(v, i+1, &flags) == len(v)
	}
	for {
		if i >= len(v) || v[i] != '"' {
			return ms, false
		}
		kend := validString(v, i+1, &flags)
		if kend < 0 {
			return ms, false
		}
		j := skipSpace(v, kend, &flags)
		if j >= len(v) || v[j] != ':' {
			return ms, false
		}
		vs := skipSpace(v, j+1, &flags)
		ve := validValue(v, vs, 1, &flags)
		if ve < 0 {
			return ms, false
		}
		ms = append(ms, member{uint32(i + 1), uint32(kend - 2 - i), uint32(vs), uint32(ve - vs)})
		switch i = skipSpace(v, ve, &flags); {
		case i < len(v) && v[i] == ',':
			i = skipSpace(v, i+1, &flags)
		case i < len(v) && v[i] == '}':
			return ms, skipSpace(v, i+1, &flags) == len(v)
		default:
			return ms, false
		}
	}
}
