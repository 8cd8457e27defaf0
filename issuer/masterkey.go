package issuer

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/keymint/keymint/storage"
)

// MasterKeySize is the length of the master key in bytes.
const MasterKeySize = 32

// ErrWrongMasterKey means the master key given at start is not the one the
// database was created with. Starting anyway would make every signing key
// undecryptable and every API key secret unverifiable.
var ErrWrongMasterKey = errors.New("issuer: master key does not match this database")

// MasterKey seals signing keys at rest (AES-256-GCM) and derives the pepper
// that API key secrets are hashed under.
type MasterKey struct {
	aead cipher.AEAD
	raw  []byte
}

// NewMasterKey returns a MasterKey for 32 raw bytes.
func NewMasterKey(raw []byte) (*MasterKey, error) {
	if len(raw) != MasterKeySize {
		return nil, fmt.Errorf("issuer: master key must be %d bytes, got %d", MasterKeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &MasterKey{aead: aead, raw: append([]byte(nil), raw...)}, nil
}

// derive returns HMAC-SHA256(master, label): independent subkeys.
func (m *MasterKey) derive(label string) []byte {
	h := hmac.New(sha256.New, m.raw)
	h.Write([]byte(label))
	return h.Sum(nil)
}

// Pepper returns the key API key secrets are MACed under.
func (m *MasterKey) Pepper() []byte { return m.derive("keymint secret pepper v1") }

// Seal encrypts plaintext bound to aad; the result is nonce || ciphertext.
func (m *MasterKey) Seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, m.aead.NonceSize(), m.aead.NonceSize()+len(plaintext)+m.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, err
	}
	return m.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned for the same aad.
func (m *MasterKey) Open(sealed, aad []byte) ([]byte, error) {
	n := m.aead.NonceSize()
	if len(sealed) < n+m.aead.Overhead() {
		return nil, errors.New("issuer: sealed key too short")
	}
	pt, err := m.aead.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("issuer: open sealed key: %w", ErrWrongMasterKey)
	}
	return pt, nil
}

const masterCheckSetting = "master_key_check"

// CheckMasterKey binds the store to m on first use and fails with
// ErrWrongMasterKey on any later start with another master key.
func CheckMasterKey(ctx context.Context, s storage.Store, m *MasterKey) error {
	want := m.derive("keymint master key check v1")
	got, err := s.InitSetting(ctx, masterCheckSetting, want)
	if err != nil {
		return fmt.Errorf("issuer: check master key: %w", err)
	}
	if !hmac.Equal(got, want) {
		return ErrWrongMasterKey
	}
	return nil
}
