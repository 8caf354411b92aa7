// Package secret encrypts values at rest: AES-256-GCM from the standard
// library under a keyring of operator-held keys. The first key seals, every
// key opens, so keys can be rotated without downtime.
//
// A sealed value is self-describing text:
//
//	enc:v1:<key id>:<base64 (no padding) of nonce || ciphertext || tag>
//
// The key id is a short hash of the key (never the key), so a value names
// the key that opens it. The caller's additional data (for the store: the
// table, column and row id) is authenticated with it: a value copied to
// another row or column does not open.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// Prefix starts every sealed value.
const Prefix = "enc:v1:"

// Key is one AES-256 key and its id.
type Key struct {
	id   string
	aead cipher.AEAD
}

// ID is the key's id: 12 hex digits of a SHA-256 of the key.
func (k Key) ID() string { return k.id }

// NewKey returns the key of raw, which must be KeySize bytes.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("a key is %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, err
	}
	sum := sha256.Sum256(append([]byte("whisperer key id\x00"), raw...))
	return Key{id: hex.EncodeToString(sum[:6]), aead: aead}, nil
}

// ParseKey reads a key in the text form Generate writes: standard base64
// of KeySize bytes. Its errors never quote the text.
func ParseKey(text string) (Key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return Key{}, errors.New("a key is standard base64 (make one with `whisperer keys generate`)")
	}
	return NewKey(raw)
}

// Generate returns a new random key in text form.
func Generate() string {
	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails
	return base64.StdEncoding.EncodeToString(raw)
}

// Keyring seals with its first key and opens with any of them. It is safe
// for concurrent use.
type Keyring struct {
	keys []Key
}

// NewKeyring returns a keyring of keys, the first sealing. Two keys with
// the same id are an error.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a keyring needs at least one key")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.id] {
			return nil, fmt.Errorf("key %s is listed twice", k.id)
		}
		seen[k.id] = true
	}
	return &Keyring{keys: keys}, nil
}

// ParseKeyring is NewKeyring of keys in text form.
func ParseKeyring(texts ...string) (*Keyring, error) {
	keys := make([]Key, len(texts))
	for i, t := range texts {
		k, err := ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		keys[i] = k
	}
	return NewKeyring(keys...)
}

// KeyID is the id of the key that seals.
func (r *Keyring) KeyID() string { return r.keys[0].id }

// Has reports whether the keyring holds the key with id.
func (r *Keyring) Has(id string) bool {
	_, ok := r.key(id)
	return ok
}

// IDs lists the key ids, the sealing one first.
func (r *Keyring) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

func (r *Keyring) key(id string) (Key, bool) {
	for _, k := range r.keys {
		if k.id == id {
			return k, true
		}
	}
	return Key{}, false
}

// Seal encrypts plaintext under the first key, bound to ad.
func (r *Keyring) Seal(plaintext, ad string) string {
	k := r.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, []byte(plaintext), additional(k.id, ad))
	return Prefix + k.id + ":" + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts a value Seal made with ad. It fails when the value is not
// sealed, its key is not in the keyring, or it was altered or sealed with
// other additional data. Errors never quote the value.
func (r *Keyring) Open(sealed, ad string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, Prefix)
	if !ok {
		return "", errors.New("secret: value is not sealed")
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return "", errors.New("secret: malformed sealed value")
	}
	k, ok := r.key(id)
	if !ok {
		return "", fmt.Errorf("secret: sealed under key %s, which is not configured", id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", errors.New("secret: malformed sealed value")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], additional(id, ad))
	if err != nil {
		return "", fmt.Errorf("secret: value does not authenticate under key %s (altered, or moved from another row)", id)
	}
	return string(plain), nil
}

// additional binds a value to the format, its key id and the caller's ad.
func additional(id, ad string) []byte {
	return []byte(Prefix + id + ":" + ad)
}

// ErrNoKeyFile is LoadKeyFile's error when the file does not exist.
var ErrNoKeyFile = errors.New("secret: no key file")

// LoadKeyFile reads the key in path, which only its owner may read.
func LoadKeyFile(path string) (Key, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Key{}, ErrNoKeyFile
	}
	if err != nil {
		return Key{}, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("key file %s is readable by others (mode %04o): run chmod 600 on it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile reads the key in path, or creates the file with a
// new key, readable by its owner only (0600). created reports that it was
// made now. A key file readable by others is refused.
func LoadOrCreateKeyFile(path string) (k Key, created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		text := Generate()
		_, werr := f.WriteString(text + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			_ = os.Remove(path)
			return Key{}, false, fmt.Errorf("write key file %s: %w", path, err)
		}
		k, err := ParseKey(text)
		return k, true, err
	case !errors.Is(err, fs.ErrExist):
		return Key{}, false, fmt.Errorf("create key file %s: %w", path, err)
	}
	k, err = LoadKeyFile(path)
	return k, false, err
}
