package keys

import "time"

// Audit actions.
const (
	AuditOrgBootstrap     = "org.bootstrap"
	AuditOrgUpdate        = "org.update"
	AuditKeyCreate        = "key.create"
	AuditKeyUpdate        = "key.update"
	AuditKeyDisable       = "key.disable"
	AuditKeyEnable        = "key.enable"
	AuditKeyRevoke        = "key.revoke"
	AuditKeyRoll          = "key.roll"
	AuditKeyDelete        = "key.delete"
	AuditSigningKeyRotate = "signing_key.rotate"
	AuditExchangeFailure  = "exchange.failure"
)

// AuditEvent records who did what, when, from where. It never holds a
// secret or a token.
type AuditEvent struct {
	ID       string            `json:"id"` // UUIDv7: orders events in time
	Org      string            `json:"org"`
	Time     time.Time         `json:"time"`
	Actor    string            `json:"actor"` // an API key id, or "root"
	Action   string            `json:"action"`
	KeyID    string            `json:"key_id,omitempty"` // the key acted on
	ClientIP string            `json:"client_ip,omitempty"`
	Reason   string            `json:"reason,omitempty"` // why an exchange failed
	Details  map[string]string `json:"details,omitempty"`
}
