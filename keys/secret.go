package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// Secret layout: prefix "km_sk_" or "km_pk_", then the unpadded base64url
// encoding of id (16 bytes) || random (32 bytes) || crc32 (4 bytes, big
// endian). The CRC covers the prefix, the id and the random bytes.
const (
	prefixLen  = len("km_sk_")
	idLen      = 16
	randomLen  = 32 // 256 bits
	crcLen     = 4
	rawLen     = idLen + randomLen + crcLen
	encodedLen = (rawLen*8 + 5) / 6
	SecretLen  = prefixLen + encodedLen // length of every secret keymint issues
	maskedTail = 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Secret errors. ErrMalformedSecret covers every way a string can fail to be
// a keymint secret; callers must not tell a client which one it was.
var (
	ErrMalformedSecret = errors.New("keys: malformed secret")
	ErrBadChecksum     = errors.New("keys: secret checksum mismatch")
)

// Secret is a parsed API key secret. Its zero value is invalid.
type Secret struct {
	Type  KeyType
	KeyID string // canonical UUID string
	value string // the whole secret as issued
}

// String returns the secret itself. Never log it.
func (s Secret) String() string { return s.value }

// Masked returns the prefix and the last four characters, safe to display.
func (s Secret) Masked() string { return MaskSecret(s.value) }

// MaskSecret returns "km_sk_…abcd" for a secret string.
func MaskSecret(v string) string {
	if len(v) < prefixLen+maskedTail {
		return "…"
	}
	return v[:prefixLen] + "…" + v[len(v)-maskedTail:]
}

// NewSecret returns a fresh secret of type t for the key id. rand nil means
// crypto/rand.
func NewSecret(t KeyType, id uuid.UUID, r io.Reader) (Secret, error) {
	if !t.Valid() {
		return Secret{}, ErrInvalidType
	}
	if r == nil {
		r = rand.Reader
	}
	var raw [rawLen]byte
	copy(raw[:idLen], id[:])
	if _, err := io.ReadFull(r, raw[idLen:idLen+randomLen]); err != nil {
		return Secret{}, err
	}
	prefix := t.SecretPrefix()
	binary.BigEndian.PutUint32(raw[idLen+randomLen:], checksum(prefix, raw[:idLen+randomLen]))
	var b strings.Builder
	b.Grow(SecretLen)
	b.WriteString(prefix)
	b.WriteString(base64.RawURLEncoding.EncodeToString(raw[:]))
	return Secret{Type: t, KeyID: id.String(), value: b.String()}, nil
}

func checksum(prefix string, body []byte) uint32 {
	c := crc32.Update(0, crcTable, []byte(prefix))
	return crc32.Update(c, crcTable, body)
}

// ParseSecret checks a secret's shape and checksum without any lookup. It
// returns ErrMalformedSecret or ErrBadChecksum (which wraps
// ErrMalformedSecret, so one errors.Is covers both).
func ParseSecret(v string) (Secret, error) {
	if len(v) != SecretLen {
		return Secret{}, ErrMalformedSecret
	}
	var t KeyType
	switch v[:prefixLen] {
	case "km_sk_":
		t = TypeSecret
	case "km_pk_":
		t = TypePublishable
	default:
		return Secret{}, ErrMalformedSecret
	}
	var raw [rawLen + 2]byte // DecodedLen may round up
	n, err := base64.RawURLEncoding.Decode(raw[:], []byte(v[prefixLen:]))
	if err != nil || n != rawLen {
		return Secret{}, ErrMalformedSecret
	}
	// Reject non-canonical encodings (trailing bits set), so one key has
	// exactly one spelling.
	var canon [encodedLen]byte
	base64.RawURLEncoding.Encode(canon[:], raw[:rawLen])
	if string(canon[:]) != v[prefixLen:] {
		return Secret{}, ErrMalformedSecret
	}
	want := binary.BigEndian.Uint32(raw[idLen+randomLen : rawLen])
	if checksum(v[:prefixLen], raw[:idLen+randomLen]) != want {
		return Secret{}, errors.Join(ErrMalformedSecret, ErrBadChecksum)
	}
	id, err := uuid.FromBytes(raw[:idLen])
	if err != nil {
		return Secret{}, ErrMalformedSecret
	}
	return Secret{Type: t, KeyID: id.String(), value: v}, nil
}

// LooksLikeSecret reports whether v has a keymint secret prefix. Useful to
// tell a secret from a JWT in an Authorization header.
func LooksLikeSecret(v string) bool {
	return strings.HasPrefix(v, "km_sk_") || strings.HasPrefix(v, "km_pk_")
}

// Hasher computes secret hashes: HMAC-SHA256 under a server pepper. A slow
// password hash buys nothing for 256-bit random secrets. It is safe for
// concurrent use; keyed MACs are pooled, since every exchange hashes.
type Hasher struct{ macs sync.Pool }

// NewHasher returns a Hasher for pepper, which must be at least 32 bytes.
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < 32 {
		return nil, errors.New("keys: pepper shorter than 32 bytes")
	}
	key := append([]byte(nil), pepper...)
	h := &Hasher{}
	h.macs.New = func() any { return hmac.New(sha256.New, key) }
	return h, nil
}

// Hash returns the MAC stored for a secret.
func (h *Hasher) Hash(s Secret) []byte {
	m := h.macs.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, s.value)
	sum := m.Sum(make([]byte, 0, sha256.Size))
	h.macs.Put(m)
	return sum
}

// Equal reports, in constant time, whether s hashes to stored.
func (h *Hasher) Equal(s Secret, stored []byte) bool {
	return hmacEqual(h.Hash(s), stored)
}

func hmacEqual(a, b []byte) bool { return len(b) > 0 && hmac.Equal(a, b) }
