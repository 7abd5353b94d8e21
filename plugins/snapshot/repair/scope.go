package repair

import (
	"fmt"
	"time"
)

// DefaultTolerance is how far apart a row's updated_at and the log line of the write that set
// it may be: the app stamps the row before it logs, and the two clocks may differ a little.
const DefaultTolerance = 2 * time.Second

// DefaultMaxRows bounds how many rows a plan reads from each side of one table.
const DefaultMaxRows = 200000

// Scope says which rows a repair looks at.
type Scope struct {
	// Table holds the rows the incident touched (e.g. users).
	Table string `json:"table"`
	// Key is the column that names a row; "" means the table's primary key, which must then
	// be a single column.
	Key string `json:"key,omitempty"`
	// Keys are the rows in scope. Empty means every row of Table, which needs a Window.
	Keys []Key `json:"keys,omitempty"`
	// Columns are the columns to compare and put back; empty means every column both sides
	// have, except Key.
	Columns []string `json:"columns,omitempty"`
	// Window is the incident: from its first to its last event.
	Window Window `json:"window"`
	// UpdatedAt is the column holding when a row last changed; "" means "updated_at" when the
	// table has it, "-" means none.
	UpdatedAt string `json:"updated_at,omitempty"`
	// Tolerance widens the window and each key's time (0 means DefaultTolerance).
	Tolerance time.Duration `json:"tolerance,omitempty"`
	// MaxRows bounds the rows read per table and side (0 means DefaultMaxRows).
	MaxRows int `json:"max_rows,omitempty"`
}

// Key is one row in scope.
type Key struct {
	// Value is the key column's value as text (e.g. "42").
	Value string `json:"value"`
	// At is when the incident last wrote this row (its last event naming it); zero means
	// unknown, and the window's end stands for it.
	At time.Time `json:"at,omitzero"`
}

// Window is a closed time interval; a zero end is open.
type Window struct {
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

func (s *Scope) tolerance() time.Duration {
	if s.Tolerance > 0 {
		return s.Tolerance
	}
	return DefaultTolerance
}

func (s *Scope) maxRows() int {
	if s.MaxRows > 0 {
		return s.MaxRows
	}
	return DefaultMaxRows
}

// check reports a scope a plan cannot be made of.
func (s *Scope) check() error {
	if s.Table == "" {
		return fmt.Errorf("no table: name the table the incident touched (-table)")
	}
	if len(s.Keys) == 0 && s.Window.From.IsZero() {
		return fmt.Errorf("no rows in scope: give the keys of the rows the incident touched (-keys, -events) or the incident (-incident) whose time range selects them")
	}
	if !s.Window.Until.IsZero() && s.Window.Until.Before(s.Window.From) {
		return fmt.Errorf("the window ends (%s) before it starts (%s)", s.Window.Until.Format(time.RFC3339), s.Window.From.Format(time.RFC3339))
	}
	return nil
}
