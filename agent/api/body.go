package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Limits of request bodies. A body over its limit is answered 413, whatever the endpoint.
const (
	// MaxBodyBytes bounds the JSON body of every mutating endpoint.
	MaxBodyBytes = 1 << 20
	// MaxLoginBodyBytes bounds a sign-in, which carries one token.
	MaxLoginBodyBytes = 4096
)

// errBadBody marks a body that is not what the endpoint takes (400).
var errBadBody = errors.New("bad request body")

// badBody is a 400 with a message that says what is wrong with the body.
func badBody(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadBody, fmt.Sprintf(format, args...))
}

// decode is the one reader of request bodies; every handler that takes a body calls it. It
// reads at most the limit the route set with http.MaxBytesReader (the error then is the
// *http.MaxBytesError, answered 413) and accepts exactly one JSON object:
//   - not empty, not null, not an array or a scalar;
//   - no field the endpoint does not take;
//   - no key twice in one object, comparing keys as encoding/json matches them to fields
//     (case-insensitively), so "by" and "BY" cannot smuggle a second value;
//   - nothing after the object but white space.
func decode(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badBody("could not read the body: %v", err)
	}
	return decodeBytes(data, v)
}

// decodeBytes applies decode's rules to a body already read.
func decodeBytes(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return badBody("the body is empty: send a JSON object")
	case trimmed[0] != '{':
		what := "a JSON value"
		if bytes.HasPrefix(trimmed, []byte("null")) {
			what = "null"
		} else if trimmed[0] == '[' {
			what = "an array"
		}
		return badBody("the body is %s: send a JSON object", what)
	}
	if err := checkKeys(trimmed); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badBody("%s must be %s, not a JSON %s", te.Field, kindOf(te.Type.Kind().String()), te.Value)
		}
		if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return badBody("this endpoint takes no field %s", msg)
		}
		return badBody("%v", err)
	}
	return endOfBody(dec)
}

func kindOf(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "uint64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	}
	return "an object"
}

// checkKeys walks the JSON tokens and refuses a key that appears twice in one object, and
// anything after the first value. Its depth is bounded by encoding/json's own nesting limit.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// Each open container: its keys (nil for arrays) and whether the next token is a key.
	type frame struct {
		keys  map[string]bool
		isKey bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return badBody("the JSON object is not closed")
		}
		if err != nil {
			return badBody("%v", err)
		}
		if len(stack) > 0 && stack[len(stack)-1].keys != nil && stack[len(stack)-1].isKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return endOfBody(dec)
				}
				continue
			}
			key := strings.ToLower(tok.(string))
			top := &stack[len(stack)-1]
			if top.keys[key] {
				return badBody("the key %q appears twice in one object", tok)
			}
			top.keys[key] = true
			top.isKey = false
			continue
		}
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].isKey = true // a value was read: next comes a key or '}'
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, isKey: true})
		case json.Delim('['):
			stack = append(stack, frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].keys != nil {
				stack[len(stack)-1].isKey = true
			}
		}
		if len(stack) == 0 {
			return endOfBody(dec)
		}
	}
}

// endOfBody refuses anything but white space after the first JSON value.
func endOfBody(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return badBody("data after the JSON object: send one object and nothing else")
	}
	return nil
}
