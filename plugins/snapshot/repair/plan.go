package repair

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Decision is what a plan does with one row.
type Decision string

const (
	// Repair: the live row still holds what the incident wrote; the restored values go back.
	Repair Decision = "repair"
	// Skip: the row changed again after the incident (a legitimate change wins), or it cannot
	// be repaired; listed with the reason for a human.
	Skip Decision = "skip"
	// Missing: the row is gone from the live database; it is re-inserted from the restored one.
	Missing Decision = "missing"
	// Same: the live row already holds the restored values; nothing to do.
	Same Decision = "same"
)

// Change is one column of a row in the plan.
type Change struct {
	Column   string `json:"column"`
	Restored Value  `json:"restored"`
	Live     Value  `json:"live"`
}

// Item is one row of the plan.
type Item struct {
	Table    string   `json:"table"`
	Key      string   `json:"key"`
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	// Changes are the columns whose values differ (repair, skip), or every value to insert
	// (missing, with an empty Live).
	Changes []Change `json:"changes,omitempty"`

	keyColumn string
	// keyValue is the key as the driver read it from the restored row: updates match on it,
	// so the key column's index serves them.
	keyValue any
	// write and values are the columns a repair or insert writes and the restored values,
	// as the driver read them.
	write  []string
	values []any
	// guard and seen are the live columns and values the plan saw: an update applies only
	// while the row still holds them.
	guard []string
	seen  []any
}

// Plan is what a repair will do, row by row. Items are in the order they are applied:
// repairs, then missing rows with every parent before its children.
type Plan struct {
	Scope  Scope     `json:"scope"`
	Source string    `json:"source"`
	Live   string    `json:"live"`
	Made   time.Time `json:"made"`
	// KeyColumn is the column naming rows of Scope.Table; UpdatedAt the column the decisions
	// read ("" when there is none).
	KeyColumn string   `json:"key_column"`
	UpdatedAt string   `json:"updated_at,omitempty"`
	Columns   []string `json:"columns"`
	Items     []Item   `json:"items"`
	// Counts per decision, for the summary line.
	Counts map[Decision]int `json:"counts"`
}

// Pending reports how many rows Apply would write.
func (p *Plan) Pending() int { return p.Counts[Repair] + p.Counts[Missing] }

// table is what a plan knows of one table: its columns on both sides and its key.
type table struct {
	name    string
	key     string
	columns []string // in the live table's order, present on both sides
}

// planner holds what one Plan call reads; it is not shared.
type planner struct {
	src, live *DB
	scope     Scope
	fks       []ForeignKey
	tables    map[string]*table
	seen      map[string]bool // table/key of every item, so a row is planned once
	items     []Item
}

// MakePlan compares the rows in scope between the restored database src and the live one and
// decides each row's fate. It writes nothing.
//
// The rule for a row present on both sides whose scoped columns differ:
//   - with an updated_at column (and a value in the live row): the row is repaired when its
//     updated_at lies inside the incident, from Window.From to the key's At (or Window.Until
//     when the key has none), both widened by Tolerance; a later updated_at means someone
//     changed the row again after the incident's write, and an earlier one that it changed
//     before the incident: both are skipped, a legitimate change wins.
//   - without one: the row is repaired when its key is among Scope.Keys (the incident's own
//     events name it); in a scope of every row there is no way to tell, and it is skipped.
func MakePlan(ctx context.Context, src, live *DB, scope Scope) (*Plan, error) {
	if err := scope.check(); err != nil {
		return nil, err
	}
	if src.Dialect.Kind() != live.Dialect.Kind() {
		return nil, fmt.Errorf("the restored database is %s and the live one %s: repair copies between databases of the same kind", src.Dialect.Kind(), live.Dialect.Kind())
	}
	p := &planner{src: src, live: live, scope: scope, tables: map[string]*table{}, seen: map[string]bool{}}
	var err error
	if p.fks, err = live.Dialect.ForeignKeys(ctx, live.SQL); err != nil {
		return nil, fmt.Errorf("%s: read foreign keys: %w", live.Name, err)
	}
	t, err := p.table(ctx, scope.Table, scope.Key)
	if err != nil {
		return nil, err
	}
	cols := scope.Columns
	if len(cols) == 0 {
		for _, c := range t.columns {
			if c != t.key {
				cols = append(cols, c)
			}
		}
	}
	for _, c := range cols {
		if !slices.Contains(t.columns, c) {
			return nil, fmt.Errorf("column %q is not in table %s on both sides (its columns: %s)", c, t.name, strings.Join(t.columns, ", "))
		}
		if c == t.key {
			return nil, fmt.Errorf("column %q is the key of %s: a repair never changes keys", c, t.name)
		}
	}
	updatedAt := scope.UpdatedAt
	switch {
	case updatedAt == "-":
		updatedAt = ""
	case updatedAt == "" && slices.Contains(t.columns, "updated_at"):
		updatedAt = "updated_at"
	case updatedAt != "" && !slices.Contains(t.columns, updatedAt):
		return nil, fmt.Errorf("column %q (updated_at) is not in table %s", updatedAt, t.name)
	}
	plan := &Plan{Scope: scope, Source: src.Name, Live: live.Name, Made: time.Now().UTC(),
		KeyColumn: t.key, UpdatedAt: updatedAt, Columns: cols, Counts: map[Decision]int{}}

	var keys []string
	at := map[string]time.Time{}
	for _, k := range scope.Keys {
		if _, dup := at[k.Value]; !dup {
			keys = append(keys, k.Value)
		}
		if k.At.After(at[k.Value]) || at[k.Value].IsZero() {
			at[k.Value] = k.At
		}
	}
	srcRows, err := p.read(ctx, src, t, keys)
	if err != nil {
		return nil, err
	}
	liveRows, err := p.read(ctx, live, t, keys)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 { // every row of the table: the union of both sides
		for k := range srcRows {
			keys = append(keys, k)
		}
		for k := range liveRows {
			if _, ok := srcRows[k]; !ok {
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })

	var missing []Item
	for _, k := range keys {
		s, inSrc := srcRows[k]
		l, inLive := liveRows[k]
		switch {
		case !inSrc && !inLive:
			p.add(Item{Table: t.name, Key: k, Decision: Skip, keyColumn: t.key,
				Reason: "in neither the restored nor the live database"})
		case !inSrc:
			if len(scope.Keys) > 0 {
				p.add(Item{Table: t.name, Key: k, Decision: Skip, keyColumn: t.key,
					Reason: "created after the snapshot (not in the restored database): kept as it is"})
			}
		case !inLive:
			missing = append(missing, p.missingItem(t, k, s, "deleted since the snapshot"))
		default:
			it := p.compare(t, k, cols, updatedAt, s, l, at[k], len(scope.Keys) > 0)
			if it.Decision == Same && len(scope.Keys) == 0 {
				plan.Counts[Same]++ // not listed: in a whole-table scope that is nearly every row
				continue
			}
			p.add(it)
		}
	}
	// Missing rows bring their parents and their deleted children with them.
	for _, it := range missing {
		if err := p.withRelatives(ctx, it); err != nil {
			return nil, err
		}
	}
	plan.Items = p.ordered()
	for _, it := range plan.Items {
		plan.Counts[it.Decision]++
	}
	return plan, nil
}

// add records an item unless its row is already planned.
func (p *planner) add(it Item) bool {
	id := it.Table + "\x00" + it.Key
	if p.seen[id] {
		return false
	}
	p.seen[id] = true
	p.items = append(p.items, it)
	return true
}

// compare decides a row present on both sides (see MakePlan for the rule).
func (p *planner) compare(t *table, k string, cols []string, updatedAt string, s, l map[string]any, keyAt time.Time, listed bool) Item {
	it := Item{Table: t.name, Key: k, keyColumn: t.key, keyValue: s[t.key]}
	for _, c := range cols {
		rv, lv := valueOf(s[c]), valueOf(l[c])
		if rv != lv {
			it.Changes = append(it.Changes, Change{Column: c, Restored: rv, Live: lv})
		}
	}
	if len(it.Changes) == 0 {
		it.Decision, it.Reason = Same, "the live row holds the restored values"
		return it
	}
	// The update writes every scoped column and applies only while the live row still holds
	// what the plan saw in those columns and in updated_at.
	it.write = cols
	it.guard = cols
	if updatedAt != "" && !slices.Contains(cols, updatedAt) {
		it.guard = append(slices.Clone(cols), updatedAt)
	}
	for _, c := range it.write {
		it.values = append(it.values, s[c])
	}
	for _, c := range it.guard {
		it.seen = append(it.seen, l[c])
	}
	tol := p.scope.tolerance()
	if updatedAt != "" {
		if u, ok := timeOf(l[updatedAt]); ok {
			end := keyAt
			if end.IsZero() {
				end = p.scope.Window.Until
			}
			from := p.scope.Window.From
			switch {
			case !from.IsZero() && u.Before(from.Add(-tol)):
				it.Decision, it.Reason = Skip, fmt.Sprintf("changed at %s, before the incident began (%s): not the incident's write",
					stamp(u), stamp(from))
			case !end.IsZero() && u.After(end.Add(tol)):
				it.Decision, it.Reason = Skip, fmt.Sprintf("changed again at %s, after the incident's write (%s): a legitimate change wins",
					stamp(u), stamp(end))
			default:
				it.Decision, it.Reason = Repair, fmt.Sprintf("changed at %s, within the incident", stamp(u))
			}
			return it
		}
	}
	if listed {
		it.Decision, it.Reason = Repair, "named by the incident's events (no updated_at to tell a later change)"
		return it
	}
	it.Decision, it.Reason = Skip, "no updated_at value and not named by the incident's events: cannot tell the incident's write from a legitimate one; give the keys (-keys, -events)"
	return it
}

// missingItem plans the re-insertion of a row found only in the restored database.
func (p *planner) missingItem(t *table, k string, s map[string]any, reason string) Item {
	it := Item{Table: t.name, Key: k, Decision: Missing, Reason: reason, keyColumn: t.key,
		keyValue: s[t.key], write: t.columns}
	for _, c := range t.columns {
		it.values = append(it.values, s[c])
		it.Changes = append(it.Changes, Change{Column: c, Restored: valueOf(s[c]), Live: Value{Null: true}})
	}
	return it
}

// withRelatives adds a missing row, then the parents its foreign keys need that the live
// database lacks, and the rows of other tables that referenced it and were deleted with it
// (e.g. by ON DELETE CASCADE), recursively.
func (p *planner) withRelatives(ctx context.Context, it Item) error {
	if !p.add(it) {
		return nil
	}
	t := p.tables[it.Table]
	row := map[string]any{}
	for i, c := range it.write {
		row[c] = it.values[i]
	}
	for _, fk := range p.fks {
		switch {
		case fk.Table == t.name && row[fk.Column] != nil: // a parent this row needs
			if err := p.relatives(ctx, fk.RefTable, fk.RefColumn, row[fk.Column],
				fmt.Sprintf("parent of %s %s (%s.%s)", t.name, it.Key, fk.Table, fk.Column)); err != nil {
				return err
			}
		case fk.RefTable == t.name && row[fk.RefColumn] != nil: // children deleted with it
			if err := p.relatives(ctx, fk.Table, fk.Column, row[fk.RefColumn],
				fmt.Sprintf("depends on %s %s (%s.%s)", t.name, it.Key, fk.Table, fk.Column)); err != nil {
				return err
			}
		}
	}
	return nil
}

// relatives plans the rows of tableName whose column equals v in the restored database and
// are missing from the live one.
func (p *planner) relatives(ctx context.Context, tableName, column string, v any, reason string) error {
	t, err := p.table(ctx, tableName, "")
	if err != nil {
		return err
	}
	srcRows, err := p.readWhere(ctx, p.src, t, column, v)
	if err != nil {
		return err
	}
	if len(srcRows) == 0 {
		return nil
	}
	var keys []string
	for k := range srcRows {
		keys = append(keys, k)
	}
	liveRows, err := p.read(ctx, p.live, t, keys)
	if err != nil {
		return err
	}
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
	for _, k := range keys {
		if _, ok := liveRows[k]; ok {
			continue
		}
		if err := p.withRelatives(ctx, p.missingItem(t, k, srcRows[k], reason)); err != nil {
			return err
		}
	}
	return nil
}

// table reads a table's columns on both sides and its key column.
func (p *planner) table(ctx context.Context, name, key string) (*table, error) {
	if t, ok := p.tables[name]; ok {
		return t, nil
	}
	liveCols, err := p.live.Dialect.Columns(ctx, p.live.SQL, name)
	if err != nil {
		return nil, fmt.Errorf("%s: read the columns of %s: %w", p.live.Name, name, err)
	}
	srcCols, err := p.src.Dialect.Columns(ctx, p.src.SQL, name)
	if err != nil {
		return nil, fmt.Errorf("%s: read the columns of %s: %w", p.src.Name, name, err)
	}
	if len(liveCols) == 0 {
		return nil, fmt.Errorf("%s has no table %q", p.live.Name, name)
	}
	if len(srcCols) == 0 {
		return nil, fmt.Errorf("%s has no table %q: is it the right restored database?", p.src.Name, name)
	}
	t := &table{name: name, key: key}
	for _, c := range liveCols {
		if slices.Contains(srcCols, c) {
			t.columns = append(t.columns, c)
		}
	}
	if t.key == "" {
		pk, err := p.live.Dialect.PrimaryKey(ctx, p.live.SQL, name)
		if err != nil {
			return nil, fmt.Errorf("%s: read the primary key of %s: %w", p.live.Name, name, err)
		}
		if len(pk) != 1 {
			return nil, fmt.Errorf("table %s has a primary key of %d columns: name a single key column (-key)", name, len(pk))
		}
		t.key = pk[0]
	}
	if !slices.Contains(t.columns, t.key) {
		return nil, fmt.Errorf("key column %q is not in table %s on both sides", t.key, name)
	}
	p.tables[name] = t
	return t, nil
}

// read returns the rows of t with the given keys (every row when keys is empty), by key text.
func (p *planner) read(ctx context.Context, db *DB, t *table, keys []string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	d := db.Dialect
	sel := "SELECT " + d.AsText(d.Quote(t.key)) + ", " + quoteAll(d, t.columns) + " FROM " + d.Quote(t.name)
	if len(keys) == 0 {
		return out, p.scan(ctx, db, t, sel, nil, out)
	}
	const chunk = 500
	for i := 0; i < len(keys); i += chunk {
		part := keys[i:min(i+chunk, len(keys))]
		ph := make([]string, len(part))
		args := make([]any, len(part))
		for j, k := range part {
			ph[j], args[j] = d.Placeholder(j+1), k
		}
		q := sel + " WHERE " + d.AsText(d.Quote(t.key)) + " IN (" + strings.Join(ph, ", ") + ")"
		if err := p.scan(ctx, db, t, q, args, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readWhere returns the rows of t whose column equals v.
func (p *planner) readWhere(ctx context.Context, db *DB, t *table, column string, v any) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	d := db.Dialect
	q := "SELECT " + d.AsText(d.Quote(t.key)) + ", " + quoteAll(d, t.columns) + " FROM " + d.Quote(t.name) +
		" WHERE " + d.Quote(column) + " = " + d.Placeholder(1)
	return out, p.scan(ctx, db, t, q, []any{v}, out)
}

func (p *planner) scan(ctx context.Context, db *DB, t *table, q string, args []any, out map[string]map[string]any) error {
	rows, err := db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: read %s: %w", db.Name, t.name, err)
	}
	defer rows.Close()
	max := p.scope.maxRows()
	for rows.Next() {
		var key sql.NullString
		vals := make([]any, len(t.columns))
		dest := make([]any, len(t.columns)+1)
		dest[0] = &key
		for i := range vals {
			dest[i+1] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("%s: read %s: %w", db.Name, t.name, err)
		}
		row := make(map[string]any, len(t.columns))
		for i, c := range t.columns {
			row[c] = vals[i]
		}
		out[key.String] = row
		if len(out) > max {
			return fmt.Errorf("%s: more than %d rows of %s in scope: narrow the scope (-keys, -events) or raise the bound (-max-rows)", db.Name, max, t.name)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: read %s: %w", db.Name, t.name, err)
	}
	return nil
}

// ordered returns the items: repairs, skips and same rows in planning order, then the missing
// rows table by table, every table after the tables it references.
func (p *planner) ordered() []Item {
	var out, missing []Item
	for _, it := range p.items {
		if it.Decision == Missing {
			missing = append(missing, it)
		} else {
			out = append(out, it)
		}
	}
	rank := p.fkOrder()
	sort.SliceStable(missing, func(i, j int) bool {
		a, b := missing[i], missing[j]
		if rank[a.Table] != rank[b.Table] {
			return rank[a.Table] < rank[b.Table]
		}
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		return keyLess(a.Key, b.Key)
	})
	return append(out, missing...)
}

// fkOrder ranks tables so that a referenced table comes before the tables referencing it
// (self-references and cycles do not raise a rank).
func (p *planner) fkOrder() map[string]int {
	rank := map[string]int{}
	for range p.fks { // at most len(fks) rounds settle every acyclic chain
		changed := false
		for _, fk := range p.fks {
			if fk.Table != fk.RefTable && rank[fk.Table] <= rank[fk.RefTable] && rank[fk.RefTable] < len(p.fks) {
				rank[fk.Table] = rank[fk.RefTable] + 1
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return rank
}

func quoteAll(d Dialect, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = d.Quote(c)
	}
	return strings.Join(q, ", ")
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
