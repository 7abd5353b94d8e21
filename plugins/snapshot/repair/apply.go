package repair

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrChanged is returned when a row changed between the plan and the apply: the transaction is
// rolled back and nothing is written.
var ErrChanged = errors.New("a row changed since the plan was made")

// ApplyOptions control an Apply.
type ApplyOptions struct {
	// BeforeWrite runs before anything is written, and an error stops the repair: it takes
	// the pre-repair snapshot of the live database.
	BeforeWrite func(ctx context.Context) error
	// Progress is told after each row written in the transaction (nil: not told).
	Progress func(done, total int)
	// Writer writes through something else than SQL (the app's own endpoint); nil writes
	// with SQL in one transaction.
	Writer RowWriter
}

// RowWriter writes repaired rows through another way than SQL, one at a time.
type RowWriter interface {
	// Name says how rows are written, for the report ("http").
	Name() string
	// Write puts back the restored values of one row.
	Write(ctx context.Context, table, key string, values map[string]any) error
}

// Result is what an Apply did.
type Result struct {
	Repaired int       `json:"repaired"`
	Inserted int       `json:"inserted"`
	Skipped  int       `json:"skipped"`
	Via      string    `json:"via"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Verified counts the rows the verification pass found holding the restored values;
	// Mismatches lists the others ("users 42: password_hash").
	Verified   int      `json:"verified"`
	Mismatches []string `json:"mismatches,omitempty"`
}

// Apply writes the plan's repairs and missing rows into the live database.
//
// With SQL (the default) everything is one transaction: each update applies only while the row
// still holds the live values the plan saw (ErrChanged otherwise), each missing row is
// inserted parents first, and any error — a changed row, a constraint, a cancelled ctx, a lost
// connection — rolls the whole transaction back, so a repair is applied entirely or not at all.
// Then a verification pass reads every written row again.
func Apply(ctx context.Context, live *DB, plan *Plan, opt ApplyOptions) (Result, error) {
	res := Result{Via: "sql", Started: time.Now().UTC(), Skipped: plan.Counts[Skip]}
	if opt.Writer != nil {
		res.Via = opt.Writer.Name()
		if plan.Counts[Missing] > 0 {
			return res, fmt.Errorf("the plan re-inserts %d deleted rows, which only SQL can do: apply it without -via, or narrow the scope to rows that still exist", plan.Counts[Missing])
		}
	}
	if plan.Pending() == 0 {
		res.Finished = time.Now().UTC()
		return res, nil
	}
	if opt.BeforeWrite != nil {
		if err := opt.BeforeWrite(ctx); err != nil {
			return res, fmt.Errorf("nothing was written: %w", err)
		}
	}
	var err error
	if opt.Writer != nil {
		err = applyVia(ctx, plan, opt, &res)
	} else {
		err = applySQL(ctx, live, plan, opt, &res)
	}
	if err != nil {
		return res, err
	}
	if err := verify(ctx, live, plan, &res); err != nil {
		return res, fmt.Errorf("the repair was applied but could not be verified: %w", err)
	}
	res.Finished = time.Now().UTC()
	return res, nil
}

func applySQL(ctx context.Context, live *DB, plan *Plan, opt ApplyOptions, res *Result) error {
	tx, err := live.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin the repair transaction: %w", live.Name, err)
	}
	// Until Commit succeeds, every return rolls back: nothing is half-applied.
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	d := live.Dialect
	total, done := plan.Pending(), 0
	var repaired, inserted int
	for _, it := range plan.Items {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted after %d of %d rows; the transaction was rolled back and nothing was written: %w", done, total, err)
		}
		switch it.Decision {
		case Repair:
			var set, where []string
			var args []any
			for i, c := range it.write {
				set = append(set, d.Quote(c)+" = "+d.Placeholder(len(args)+1))
				args = append(args, it.values[i])
			}
			where = append(where, d.Quote(it.keyColumn)+" = "+d.Placeholder(len(args)+1))
			args = append(args, it.keyValue)
			for i, c := range it.guard {
				where = append(where, d.NullSafeEqual(d.Quote(c), d.Placeholder(len(args)+1)))
				args = append(args, it.seen[i])
			}
			q := "UPDATE " + d.Quote(it.Table) + " SET " + strings.Join(set, ", ") + " WHERE " + strings.Join(where, " AND ")
			r, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("repair %s %s: %w; the transaction was rolled back and nothing was written", it.Table, it.Key, err)
			}
			if n, err := r.RowsAffected(); err == nil && n != 1 {
				return fmt.Errorf("%s %s: %w; the transaction was rolled back and nothing was written: make the plan again", it.Table, it.Key, ErrChanged)
			}
			repaired++
		case Missing:
			ph := make([]string, len(it.write))
			for i := range ph {
				ph[i] = d.Placeholder(i + 1)
			}
			q := "INSERT INTO " + d.Quote(it.Table) + " (" + quoteAll(d, it.write) + ") VALUES (" + strings.Join(ph, ", ") + ")"
			if _, err := tx.ExecContext(ctx, q, it.values...); err != nil {
				return fmt.Errorf("re-insert %s %s: %w; the transaction was rolled back and nothing was written", it.Table, it.Key, err)
			}
			inserted++
		default:
			continue
		}
		done++
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted before commit; the transaction was rolled back and nothing was written: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit the repair: %w; nothing was written", live.Name, err)
	}
	committed = true
	res.Repaired, res.Inserted = repaired, inserted
	return nil
}

// applyVia writes repaired rows one by one through opt.Writer. There is no transaction: rows
// written before a failure stay written, and the error says how many.
func applyVia(ctx context.Context, plan *Plan, opt ApplyOptions, res *Result) error {
	total := plan.Pending()
	for _, it := range plan.Items {
		if it.Decision != Repair {
			continue
		}
		vals := make(map[string]any, len(it.write))
		for i, c := range it.write {
			vals[c] = it.values[i]
		}
		if err := opt.Writer.Write(ctx, it.Table, it.Key, vals); err != nil {
			return fmt.Errorf("%s %s through %s: %w (%d of %d rows were written before it; make the plan again to see what is left)",
				it.Table, it.Key, opt.Writer.Name(), err, res.Repaired, total)
		}
		res.Repaired++
		if opt.Progress != nil {
			opt.Progress(res.Repaired, total)
		}
	}
	return nil
}

// verify reads every written row back and compares it with the restored values.
func verify(ctx context.Context, live *DB, plan *Plan, res *Result) error {
	d := live.Dialect
	for _, it := range plan.Items {
		if it.Decision != Repair && it.Decision != Missing {
			continue
		}
		q := "SELECT " + quoteAll(d, it.write) + " FROM " + d.Quote(it.Table) + " WHERE " +
			d.Quote(it.keyColumn) + " = " + d.Placeholder(1)
		vals := make([]any, len(it.write))
		dest := make([]any, len(it.write))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := live.SQL.QueryRowContext(ctx, q, it.keyValue).Scan(dest...); err != nil {
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("%s %s: %v", it.Table, it.Key, err))
			continue
		}
		var bad []string
		for i, c := range it.write {
			if valueOf(vals[i]) != valueOf(it.values[i]) {
				bad = append(bad, c)
			}
		}
		if len(bad) > 0 {
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("%s %s: %s", it.Table, it.Key, strings.Join(bad, ", ")))
			continue
		}
		res.Verified++
	}
	return nil
}
