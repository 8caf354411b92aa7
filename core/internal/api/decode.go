package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/whisperer/whisperer/core/internal/webhook"
)

// readObject reads a JSON object body the way DRF's JSONParser and a
// Serializer's first check do: 415 for other media types, 413 past
// MaxBodyBytes, 400 {"detail": "JSON parse error - ..."} for malformed
// JSON or invalid UTF-8 (which PostgreSQL would refuse later), and 400
// {"non_field_errors": [...]} when the body is not an object. An empty body
// is an empty object, as in DRF.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	// The usual type needs no parse (ParseMediaType makes a map for
	// the parameters on every call).
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, &unsupportedMedia{mediaType: ct}
		}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &bodyTooLarge{limit: s.cfg.MaxBodyBytes}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &bodyTooLarge{limit: s.cfg.MaxBodyBytes}
		}
		return nil, &parseError{msg: "could not read the body: " + err.Error()}
	}
	return decodeObject(body)
}

// decodeObject parses body as a JSON object whose values are kept raw.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	if !utf8.Valid(body) {
		return nil, &parseError{msg: "the body is not valid UTF-8"}
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, &parseError{msg: err.Error()}
	}
	if body[0] != '{' {
		return nil, webhook.NewValidationError("non_field_errors",
			fmt.Sprintf("Invalid data. Expected a dictionary, but got %s.", pyType(body)))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, &parseError{msg: err.Error()}
	}
	return obj, nil
}

// pyType names a JSON value's type as Python (and so DRF's messages) does.
func pyType(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "NoneType"
	}
	switch raw[0] {
	case '{':
		return "dict"
	case '[':
		return "list"
	case '"':
		return "str"
	case 't', 'f':
		return "bool"
	case 'n':
		return "NoneType"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "float"
	}
	return "int"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// Messages of DRF's fields.
const (
	msgRequired     = "This field is required."
	msgNull         = "This field may not be null."
	msgBlank        = "This field may not be blank."
	msgString       = "Not a valid string."
	msgBool         = "Must be a valid boolean."
	msgNullChars    = "Null characters are not allowed."
	msgInvalidURL   = "Enter a valid URL."
	msgUnknownField = "Unknown field."
)

func maxLenMsg(n int) string {
	return fmt.Sprintf("Ensure this field has no more than %d characters.", n)
}

func choiceMsg(v string) string { return fmt.Sprintf("%q is not a valid choice.", v) }

// decodeString reads a DRF CharField: strings and numbers (as DRF's str()
// of them) are accepted, surrounding whitespace trimmed; the returned
// message is empty when valid.
func decodeString(raw json.RawMessage, allowBlank, allowNull bool, maxLen int) (string, string) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		if allowNull {
			return "", ""
		}
		return "", msgNull
	}
	var s string
	switch {
	case len(raw) > 0 && raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", msgString
		}
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		s = string(raw)
	default:
		return "", msgString
	}
	s = strings.TrimSpace(s)
	switch {
	case strings.ContainsRune(s, 0):
		return "", msgNullChars
	case s == "" && !allowBlank:
		return "", msgBlank
	case maxLen > 0 && utf8.RuneCountInString(s) > maxLen:
		return "", maxLenMsg(maxLen)
	}
	return s, ""
}

// decodeBool reads a DRF BooleanField, which also takes "true", "1", 1 and
// their kin.
func decodeBool(raw json.RawMessage) (bool, string) {
	raw = bytes.TrimSpace(raw)
	if isNull(raw) {
		return false, msgNull
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, msgBool
	}
	switch t := v.(type) {
	case bool:
		return t, ""
	case string:
		if b, ok := parseBool(t); ok {
			return b, ""
		}
	case float64:
		switch t {
		case 1:
			return true, ""
		case 0:
			return false, ""
		}
	}
	return false, msgBool
}

// parseBool accepts DRF's and django-filter's spellings of a boolean.
func parseBool(s string) (bool, bool) {
	switch strings.TrimSpace(s) {
	case "true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON", "1":
		return true, true
	case "false", "False", "FALSE", "f", "F", "no", "No", "NO", "n", "N", "off", "Off", "OFF", "0":
		return false, true
	}
	return false, false
}

// parseID reads a positive integer id from a path or query value.
func parseID(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// normalizeUUID returns a uuid in the stored form (32 lowercase hex
// digits), accepting the dashed form and braces-free variants.
func normalizeUUID(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		s = strings.ReplaceAll(s, "-", "")
	}
	if len(s) != 32 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return s, true
}

// queryValue returns a query parameter, or an error when it holds what the
// database cannot take (NUL, invalid UTF-8).
func queryValue(r *http.Request, name string) (string, error) {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
		return "", webhook.NewValidationError(name, msgNullChars)
	}
	return v, nil
}
