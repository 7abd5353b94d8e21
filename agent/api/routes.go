package api

import "net/http"

// routeMux is the API's router: a ServeMux that also keeps the list of what it serves, so that
// what must hold for every route (a token, a role) is checked over the router's own list and
// no route can be left out of a check.
type routeMux struct {
	*http.ServeMux
	routes []route
}

// route is one pattern the router serves.
type route struct {
	pattern string
	// name is the route's label in tda_api_requests_total; empty for a route served without
	// authentication (the health check, sign-in and sign-out, the panel's files, not-found).
	name string
	// mutating routes need an operator (and, from a browser, the CSRF header).
	mutating bool
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern and lists it.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.ServeMux.Handle(pattern, h)
	r := route{pattern: pattern}
	if a, ok := h.(authHandler); ok {
		r.name, r.mutating = a.route, a.mutating
	}
	m.routes = append(m.routes, r)
}

// HandleFunc registers f for pattern and lists it.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// authHandler is a route that authenticates every request (see Server.auth).
type authHandler struct {
	route    string
	mutating bool
	http.HandlerFunc
}
