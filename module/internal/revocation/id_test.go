package revocation

import "testing"

func TestIDKinds(t *testing.T) {
	for _, tc := range []struct {
		id          ID
		jti, gate   bool
		family      ID
		description string
	}{
		{JTI("fam", "r4nd0m"), true, false, "fam", "a jti"},
		{"fam", false, false, "", "a family"},
		{GateSession("S1"), false, true, "", "a gate session"},
		// A gate session id with a dot is not a jti of a family
		// "gate-session:a".
		{GateSession("a.b"), false, true, "", "a gate session with a dot"},
	} {
		if got := tc.id.IsJTI(); got != tc.jti {
			t.Errorf("%s: IsJTI = %v", tc.description, got)
		}
		if got := tc.id.IsGateSession(); got != tc.gate {
			t.Errorf("%s: IsGateSession = %v", tc.description, got)
		}
		if got := tc.id.Family(); got != tc.family {
			t.Errorf("%s: Family = %q, want %q", tc.description, got, tc.family)
		}
	}
	if JTI("f", "r") != "f.r" || GateSession("s") != "gate-session:s" {
		t.Fatal("the spelling recorded in the store changed: stored revocations would no longer match")
	}
}
