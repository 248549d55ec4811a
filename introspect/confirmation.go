package introspect

import "fmt"

// confirmation reads the "cnf" claim (RFC 7800) for the two bindings the
// gateway checks: "jkt" (DPoP, RFC 9449 §6.1) and "x5t#S256" (mTLS, RFC
// 8705 §3.1). Other confirmation methods are ignored. A "cnf" that is not
// an object, or a binding that is not a non-empty string, is a malformed
// reply: guessing could drop a binding and turn a sender-constrained token
// into a bearer token.
func (c claims) confirmation() (jkt, x5t string, err error) {
	v := c.raw("cnf")
	if v == nil {
		return "", "", nil
	}
	if v[0] != '{' {
		return "", "", fmt.Errorf("claim %q is not an object", "cnf")
	}
	obj, err := parseJSONObject(v)
	if err != nil {
		return "", "", fmt.Errorf("claim %q is not an object", "cnf")
	}
	cnf := claims(obj)
	for _, m := range []struct {
		name string
		into *string
	}{{"jkt", &jkt}, {"x5t#S256", &x5t}} {
		if cnf.raw(m.name) == nil {
			continue
		}
		s, err := cnf.str(m.name)
		if err != nil || s == "" {
			return "", "", fmt.Errorf("claim %q member %q is not a non-empty string", "cnf", m.name)
		}
		*m.into = s
	}
	return jkt, x5t, nil
}
