package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// The host's JSON code as it was before the scanning of jsonscan.go: the
// references the fast code is compared with (main_ref_test.go's tests and
// fuzz targets), and the baseline of its micro benchmarks.

func appendStringMain(b []byte, s string) ([]byte, span) {
	b = append(b, '"')
	off := len(b)
	escaped, valid := false, true
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			escaped = true
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			escaped, valid = true, false
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			escaped = true
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	b = append(b, '"')
	if !escaped {
		return b, span{off: uint32(off), n: uint32(len(s))}
	}
	if !valid {
		s = replaceInvalid(s)
	}
	return b, span{tail: s, inTail: true}
}

func parseTransformMain(doc []byte) (webhook.TransformResult, error) {
	var res webhook.TransformResult
	if i := skipWS(doc, 0); i >= len(doc) || doc[i] != '{' || !json.Valid(doc) {
		return res, fmt.Errorf("result document is not a valid JSON object: %w", ErrFailed)
	}
	var arr [8]member
	for _, m := range membersMain(arr[:0], doc, 0) {
		val := doc[m.valOff : m.valOff+m.valLen : m.valOff+m.valLen]
		switch jsonName(doc[m.keyOff : m.keyOff+m.keyLen]) {
		case "body":
			switch {
			case string(val) == "null":
				res.Body = nil
			case val[0] == '"':
				res.Body = []byte(jsonString(val))
			default:
				res.Body = val
			}
		case "cancel":
			switch string(val) {
			case "true":
				res.Cancel = true
			case "false", "null":
				res.Cancel = false
			default:
				return webhook.TransformResult{}, fmt.Errorf("result cancel is not a boolean: %w", ErrFailed)
			}
		case "headers":
			if err := parseHeadersMain(&res, val); err != nil {
				return webhook.TransformResult{}, err
			}
		}
	}
	return res, nil
}
func parseHeadersMain(res *webhook.TransformResult, val []byte) error {
	if string(val) == "null" {
		return nil
	}
	if val[0] != '{' {
		return fmt.Errorf("result headers is not an object: %w", ErrFailed)
	}
	var arr [8]member
	hs := membersMain(arr[:0], val, 0)
	if len(hs) > 0 && res.Headers == nil {
		res.Headers = make(map[string]string, len(hs))
	}
	for _, h := range hs {
		name := jsonName(val[h.keyOff : h.keyOff+h.keyLen])
		hv := val[h.valOff : h.valOff+h.valLen]
		if hv[0] != '"' {
			return fmt.Errorf("result header %q is not a string: %w", name, ErrFailed)
		}
		if !webhook.ValidHeaderName(name) {
			return fmt.Errorf("result header name %q is not an HTTP token: %w", name, ErrFailed)
		}
		value := jsonString(hv)
		if !validHeaderValue(value) {
			return fmt.Errorf("result header %q has a control character in its value: %w", name, ErrFailed)
		}
		res.Headers[name] = value
	}
	return nil
}
func membersMain(ms []member, v []byte, off int) []member {
	n := len(ms)
	i := skipWS(v, 0)
	if i >= len(v) || v[i] != '{' {
		return ms
	}
	i = skipWS(v, i+1)
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
		i = skipWS(v, kend)
		if i >= len(v) || v[i] != ':' {
			return ms[:n]
		}
		vs := skipWS(v, i+1)
		ve := skipJSONMain(v, vs)
		if ve < 0 {
			return ms[:n]
		}
		ms = append(ms, member{uint32(off + ks), uint32(kend - 1 - ks), uint32(off + vs), uint32(ve - vs)})
		i = skipWS(v, ve)
		switch {
		case i < len(v) && v[i] == ',':
			i = skipWS(v, i+1)
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
