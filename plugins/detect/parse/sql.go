package parse

import (
	"bytes"
	"strings"
)

func unquoteIdent(b []byte) []byte {
	b = bytes.TrimSpace(b)
	return bytes.Trim(b, "`\"'")
}

// detectSQLDelete: "delete from users where id=?" / "DELETE FROM users WHERE users.id = ...".
func detectSQLDelete(msg []byte, r *result) {
	if len(msg) < 12 || !bytes.EqualFold(msg[:12], []byte("delete from ")) {
		return
	}
	rest := bytes.TrimLeft(msg[12:], " ")
	end := bytes.IndexAny(rest, " ;\t")
	if end < 0 {
		end = len(rest)
	}
	r.event, r.via = RowsDeleted, ViaSQL
	r.set(FieldTable, clip(strings.ToLower(string(unquoteIdent(rest[:end])))))
	if !bytes.Contains(bytes.ToLower(rest[end:]), []byte("where")) {
		r.set("unbounded", "true")
	}
}
