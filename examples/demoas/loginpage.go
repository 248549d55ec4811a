package demoas

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"

	"github.com/ory/fosite"
)

// loginPage is the login and consent page of the authorization endpoint.
// Browser automation finds its parts by id: #client (#client-name,
// #client-id), #resource (#resource-name, #resource-url), #scopes (one li
// per scope), #error, input#username, input#password, button#allow,
// button#deny.
type loginPage struct {
	ClientName, ClientID      string
	ResourceName, ResourceURL string
	Scopes                    []string
	// Action is the form's target: this endpoint with the authorization
	// request's query.
	Action   string
	Username string
	Error    string
}

func newLoginPage(c fosite.Client, g grant, query url.Values) *loginPage {
	name := c.GetID()
	if dc, ok := c.(*client); ok {
		name = dc.name()
	}
	return &loginPage{
		ClientName:   name,
		ClientID:     c.GetID(),
		ResourceName: g.resource.label(),
		ResourceURL:  g.resource.URL,
		Scopes:       g.scopes,
		Action:       AuthorizationPath + "?" + query.Encode(),
	}
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · demo authorization server</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}
code{background:#f2f2f2;padding:0 .25em;border-radius:3px;word-break:break-all}
label{display:block;margin-top:.75rem}
input{width:100%;box-sizing:border-box;padding:.4rem;font:inherit}
button{margin:1rem .5rem 0 0;padding:.4rem 1.2rem;font:inherit}
#error{color:#b00020}
.note{color:#666;font-size:.85em;margin-top:2rem}
</style>
</head>
<body>
<main>
<h1>Sign in to authorize</h1>
<p><span id="client"><strong id="client-name">{{.ClientName}}</strong> (<code id="client-id">{{.ClientID}}</code>)</span> asks for access to</p>
<p id="resource"><strong id="resource-name">{{.ResourceName}}</strong> (<code id="resource-url">{{.ResourceURL}}</code>)</p>
<p>with the scopes</p>
<ul id="scopes">{{range .Scopes}}
<li><code>{{.}}</code></li>{{end}}
</ul>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>
{{end}}<form method="post" action="{{.Action}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
<button id="deny" type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>
<p class="note">Demo authorization server: do not use real credentials.</p>
</main>
</body>
</html>
`))

var errorTemplate = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Authorization error · demo authorization server</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem}</style>
</head>
<body>
<main>
<h1>The authorization request cannot be served</h1>
<p id="error" role="alert"><code id="error-code">{{.Code}}</code>: <span id="error-description">{{.Description}}</span></p>
{{if .Detail}}<p id="error-detail">{{.Detail}}</p>
{{end}}</main>
</body>
</html>
`))

func (p *loginPage) write(w http.ResponseWriter, status int) {
	writePage(w, status, loginTemplate, p)
}

// writeErrorPage shows the user an error that cannot be redirected to the
// client.
func writeErrorPage(w http.ResponseWriter, status int, code, description, detail string) {
	writePage(w, status, errorTemplate, struct{ Code, Description, Detail string }{code, description, detail})
}

// writePage renders t with the headers every page of the authorization
// endpoint gets: never framed (clickjacking of the Allow button), never
// cached (the page is per request).
func writePage(w http.ResponseWriter, status int, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
