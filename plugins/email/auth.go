package email

import (
	"bytes"
	"errors"
	"net/smtp"

	"github.com/emersion/go-sasl"
)

var errInsecureAuth = errors.New("refusing to send the password over a connection without TLS")

// saslAuth adapts a go-sasl client to net/smtp, refusing to authenticate in clear text except
// to a loopback server.
type saslAuth struct {
	client sasl.Client
	host   string
}

func plainAuth(username, password, host string) smtp.Auth {
	return &saslAuth{client: sasl.NewPlainClient("", username, password), host: host}
}

func (a *saslAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(a.host) {
		return "", nil, errInsecureAuth
	}
	return a.client.Start()
}

func (a *saslAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	return a.client.Next(fromServer)
}

// login is the LOGIN mechanism. Servers differ in whether they take the username as an
// initial response; this client sends it first and also answers a "Username:" challenge.
type login struct {
	username, password, host string
}

func loginAuth(username, password, host string) smtp.Auth {
	return &login{username: username, password: password, host: host}
}

func (l *login) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLoopback(l.host) {
		return "", nil, errInsecureAuth
	}
	return "LOGIN", []byte(l.username), nil
}

func (l *login) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch c := bytes.ToLower(bytes.TrimSpace(fromServer)); {
	case bytes.HasPrefix(c, []byte("username")):
		return []byte(l.username), nil
	case bytes.HasPrefix(c, []byte("password")):
		return []byte(l.password), nil
	}
	return nil, errors.New("unexpected LOGIN challenge from the server")
}
