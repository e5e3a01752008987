package issuer

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Audit events.
const (
	evSignIn      = "sign_in"
	evAuthorize   = "authorize"
	evPolicy      = "policy"
	evToken       = "token"
	evRevoke      = "revoke"
	evLogout      = "logout"
	evIntrospect  = "introspect"
	evBackchannel = "backchannel_logout"
	outcomeOK     = "success"
	outcomeDenied = "denied"
	outcomeFailed = "failure"
)

// auditEntry writes one audit record: what happened, to whom, why. Never
// pass secrets, codes, tokens or passwords here.
func (i *Issuer) auditEntry(event, outcome, reason, clientID, sub string, extra ...zap.Field) {
	level := zapcore.InfoLevel
	if outcome != outcomeOK {
		level = zapcore.WarnLevel
	}
	ce := i.audit.Check(level, "gatehouse "+event+" "+outcome)
	if ce == nil {
		return
	}
	fields := append([]zap.Field{
		zap.String("event", event),
		zap.String("outcome", outcome),
		zap.String("reason", reason),
		zap.String("domain", i.name),
		zap.String("client_id", clientID),
		zap.String("sub", sub),
	}, extra...)
	ce.Write(fields...)
}

// storeError logs an operational failure of the store.
func (i *Issuer) storeError(op string, err error) {
	if ce := i.log.Check(zapcore.ErrorLevel, "store operation failed"); ce != nil {
		ce.Write(zap.String("op", op), zap.String("domain", i.name), zap.Error(err))
	}
}

// directoryError logs a failure of the directory to answer (its store).
func (i *Issuer) directoryError(op string, err error) {
	if ce := i.log.Check(zapcore.ErrorLevel, "directory lookup failed"); ce != nil {
		ce.Write(zap.String("op", op), zap.String("domain", i.name), zap.Error(err))
	}
}
