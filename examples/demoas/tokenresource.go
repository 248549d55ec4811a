package demoas

import (
	"context"
	"net/http"
	"slices"

	"github.com/ory/fosite"
)

// errInvalidTarget is RFC 8707's invalid_target error, which fosite lacks.
func errInvalidTarget(hint string) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{
		ErrorField:       "invalid_target",
		DescriptionField: "The requested resource is invalid, missing, unknown, or malformed.",
		HintField:        hint,
		CodeField:        http.StatusBadRequest,
	}
}

// resourceBinding is a fosite token endpoint handler for the authorization
// code and refresh token grants: a "resource" on the token request (the MCP
// TypeScript SDK sends one) must be the resource the user authorized, which
// fosite has restored as the requested audience by then (RFC 8707 §2.2).
type resourceBinding struct{}

func resourceBindingFactory(fosite.Configurator, any, any) any { return resourceBinding{} }

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (resourceBinding) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(grantAuthorizationCode) || ar.GetGrantTypes().ExactOne(grantRefreshToken)
}

// CanSkipClientAuth implements fosite.TokenEndpointHandler.
func (resourceBinding) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

// HandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (b resourceBinding) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !b.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	for _, r := range ar.GetRequestForm()["resource"] {
		if !slices.Contains(ar.GetRequestedAudience(), r) {
			return errInvalidTarget("The resource differs from the one authorized.")
		}
	}
	return nil
}

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler.
func (resourceBinding) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	return nil
}
