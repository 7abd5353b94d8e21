package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

type repairCommand struct{ env *Env }

func (c *repairCommand) Synopsis() string {
	return "Put back the rows an incident damaged, from a restored database into the live one"
}

func (c *repairCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda repair -config FILE [-target NAME] -restore NAME|-source ADDR
                  [-incident FINGERPRINT] [-events LOGFILE] [-keys 1,2,3] [-table T]
                  [-apply [-yes]]

  Compares the rows the incident touched between a database restored by tda
  restore and the live database, and decides for each: repair (the live row
  still holds what the incident wrote), skip (it changed again after the
  incident: a legitimate change wins, listed with why), missing (deleted: it is
  re-inserted with the rows foreign keys require, parents first). Without
  -apply nothing is written (a dry run). With -apply, a pre-repair snapshot of
  the live database is taken first, then the whole plan is written in one
  transaction (each update only while the row still holds what the plan saw),
  then every written row is read back. Password hashes are copied byte for
  byte, never hashed again. See docs/recovery.md.

  Which rows: -incident takes the time range (and the table and event types of
  the rule) from an alert; -events reads the app's log lines and keeps the
  events of that range (and of -actor) with the rows they name; -keys and
  -keys-file name rows by hand. With an incident and no keys, every row of the
  table that changed inside its time range is in scope.

  How a changed row is judged: with an updated_at column, a row is repaired
  when updated_at falls inside the incident (up to the last event naming that
  row, -tolerance either side), skipped when later or earlier. Without one,
  rows named by the events or -keys are repaired.

Flags:
` + snapshotFlagsHelp + `
  -restore NAME       The database tda restore created (reached with the block's
                      connection settings).
  -source ADDR        Or the restored database's address: postgres://..., host=...
                      dbname=..., or mysql://user:pass@host:3306/db.
  -live ADDR          The live database (default: the block's database).
  -incident FP        The alert (fingerprint, or a unique prefix) whose incident
                      to repair (-alert is the same).
  -from, -until TIME  The incident's time range, RFC 3339 (default: from the
                      alert's first event; until its last once resolved, else now).
  -table NAME         The table the incident touched (default: users).
  -key COLUMN         Its key column (default: its primary key).
  -columns A,B        Columns to compare and put back (default: all but the key).
  -keys 1,2,3         Rows in scope, by key.
  -keys-file FILE     Rows in scope, one key a line.
  -events LOGFILE     The app's log: the rows named by the incident's events.
  -event TYPE         Event types to look for (default: the rule's, e.g.
                      password_changed for mass_password_reset).
  -actor NAME         Only the events of this actor (the one the excerpt shows).
  -include-admins     Keep events with actor_role=admin, which are left out for
                      rules that leave them out (mass_password_reset).
  -field NAME         The event field naming the row (default: user_id).
  -updated-at COLUMN  The column telling when a row changed (default: updated_at
                      when present; - for none).
  -tolerance DUR      Clock slack between log lines and updated_at (default 2s).
  -max-rows N         Bound on the rows read per table (default 200000).
  -apply              Write the plan (after a pre-repair snapshot).
  -yes                Do not ask for confirmation.
  -via http           Write repaired rows through the app's endpoint instead of SQL:
  -url-template URL   e.g. http://127.0.0.1:8000/admin/users/{key}/restore,
  -http-field C=K     with column C sent as key K (password_hash=hashed_password;
                      K "-" leaves C out); repeatable,
  -http-header H      and header "Name: value" (repeatable). No transaction:
                      rows written before a failure stay written.
  -json               Print the plan (and the result) as JSON.
  -by WHO             Who repairs, for the audit log (or $TDA_ACTOR, else $USER).
  -reason TEXT        Why, for the audit log.
  -addr URL, -token T An agent's HTTP API for the alert and the system state.
`)
}

// repairFlags are the parsed flags of tda repair.
type repairFlags struct {
	config, target, restoreName, source, live *string
	incident, alert, from, until              *string
	table, key, columns, keys, keysFile       *string
	events, event, actor, field, updatedAt    *string
	includeAdmins, apply, yes, asJSON         *bool
	tolerance                                 *time.Duration
	maxRows                                   *int
	via, urlTemplate                          *string
	httpFields, httpHeaders                   dirList
	by, reason, addr, token                   *string
}

func (c *repairCommand) Run(args []string) int {
	fs := c.env.FlagSet("repair")
	f := repairFlags{
		config: fs.String("config", "", ""), target: fs.String("target", "", ""),
		restoreName: fs.String("restore", "", ""), source: fs.String("source", "", ""), live: fs.String("live", "", ""),
		incident: fs.String("incident", "", ""), alert: fs.String("alert", "", ""),
		from: fs.String("from", "", ""), until: fs.String("until", "", ""),
		table: fs.String("table", "", ""), key: fs.String("key", "", ""), columns: fs.String("columns", "", ""),
		keys: fs.String("keys", "", ""), keysFile: fs.String("keys-file", "", ""),
		events: fs.String("events", "", ""), event: fs.String("event", "", ""), actor: fs.String("actor", "", ""),
		field: fs.String("field", "", ""), updatedAt: fs.String("updated-at", "", ""),
		includeAdmins: fs.Bool("include-admins", false, ""), apply: fs.Bool("apply", false, ""),
		yes: fs.Bool("yes", false, ""), asJSON: fs.Bool("json", false, ""),
		tolerance: fs.Duration("tolerance", 2*time.Second, ""), maxRows: fs.Int("max-rows", 0, ""),
		via: fs.String("via", "sql", ""), urlTemplate: fs.String("url-template", "", ""),
		by: actorFlag(fs), reason: fs.String("reason", "", ""),
		addr: fs.String("addr", os.Getenv("TDA_ADDR"), ""), token: fs.String("token", os.Getenv("TDA_TOKEN"), ""),
	}
	fs.Var(&f.httpFields, "http-field", "")
	fs.Var(&f.httpHeaders, "http-header", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if *f.incident == "" {
		f.incident = f.alert
	}
	var httpArgs *snapshotapi.HTTPArgs
	switch *f.via {
	case "sql", "":
	case "http":
		var err error
		if httpArgs, err = httpWriterArgs(f); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
	default:
		c.env.Errorf("-via %q: use sql (the default) or http", *f.via)
		return 1
	}
	if (*f.restoreName == "") == (*f.source == "") {
		c.env.Errorf("give the restored database: -restore NAME (created by tda restore) or -source ADDR")
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	t := c.env.openSnapshotTarget(ctx, *f.config, *f.target, "")
	if t == nil {
		return 1
	}
	defer t.close()
	conn, _ := c.env.connect(controlFlags{config: f.config, addr: f.addr, token: f.token})
	if conn == nil {
		return 1
	}
	defer release(conn)

	rargs, err := c.scope(ctx, conn, f)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	rargs.Restore, rargs.Source, rargs.Live, rargs.Via, rargs.HTTP = *f.restoreName, *f.source, *f.live, *f.via, httpArgs
	var plan snapshotapi.RepairOutcome
	if err := t.call(ctx, snapshotapi.ActionRepairPlan, rargs, &plan, nil, *f.by); err != nil {
		t.fail(err)
		return 1
	}
	if !*f.asJSON {
		t.printText(plan.PlanText)
	}
	if !*f.apply {
		if *f.asJSON {
			return c.env.JSON(map[string]any{"plan": plan.Plan, "applied": false})
		}
		c.env.Printf("\nDry run: nothing was written. To write this plan, run the same command with -apply.\n")
		return 0
	}
	if plan.Pending == 0 {
		if *f.asJSON {
			return c.env.JSON(map[string]any{"plan": plan.Plan, "applied": false})
		}
		c.env.Printf("\nNothing to repair: every row in scope holds the restored values or is skipped.\n")
		return 0
	}
	st, err := conn.State(ctx)
	if err != nil {
		c.env.Errorf("cannot read the system state, so the repair is not started: %v", err)
		return 1
	}
	if st.Status == ops.StatusBlocked {
		c.env.Errorf("the system is blocked: %s. Acknowledge the alert (tda alerts ack) or declare an override with a reason (tda override on), then repair", strings.Join(st.Reasons, "; "))
		return 1
	}
	if !*f.yes {
		answer, err := c.env.UI.Ask(fmt.Sprintf("Type yes to write %d rows into %s (a pre-repair snapshot is taken first):", plan.Pending, "live "+plan.Live))
		if err != nil {
			c.env.Errorf("no confirmation could be read; pass -yes to repair without asking")
			return 1
		}
		if strings.TrimSpace(answer) != "yes" {
			c.env.Printf("Not repaired: nothing was changed.\n")
			return 1
		}
	}
	// The provider plans again and writes only the plan that was shown.
	rargs.ConfirmedSummary = plan.Summary
	progress := func(line string) { c.env.Printf("%s\n", safe(line)) }
	if *f.asJSON {
		progress = func(string) {}
	}
	var out snapshotapi.RepairOutcome
	applyErr := t.call(ctx, snapshotapi.ActionRepairApply, rargs, &out, progress, *f.by)
	if applyErr == nil && out.Error != "" {
		applyErr = errors.New(out.Error)
	}
	detail := out.Audit
	if detail == nil {
		detail = map[string]string{"source": plan.Source, "live": "live " + plan.Live, "table": plan.Table, "summary": plan.Summary}
	}
	if *f.incident != "" {
		detail["incident"] = *f.incident
	}
	if rargs.Rule != "" {
		detail["rule"] = rargs.Rule
	}
	rec := ops.ActionRecord{Action: ops.ActionRepairRun, Target: plan.Table + " in live " + plan.Live,
		Reason: *f.reason, Detail: detail}
	if applyErr != nil {
		rec.Error = applyErr.Error()
	}
	c.env.audit(ctx, *f.config, *f.by, rec)
	if applyErr != nil {
		t.fail(applyErr)
		if out.PreRepairSnapshot != "" {
			c.env.Errorf("the live database's state before the repair is in snapshot %s", out.PreRepairSnapshot)
		}
		return 1
	}
	if *f.asJSON {
		code := c.env.JSON(map[string]any{"plan": out.Plan, "applied": out.Applied, "result": out.Result,
			"pre_repair_snapshot": out.PreRepairSnapshot})
		if out.Mismatches > 0 {
			return 1
		}
		return code
	}
	t.printText(out.ResultText)
	if out.Mismatches > 0 {
		return 1
	}
	return 0
}

// scope gathers what the plan looks at from the flags and the incident: the keys file and
// the app's log are read here, on the operator's side, and their lines sent to the provider.
func (c *repairCommand) scope(ctx context.Context, conn *control.Conn, f repairFlags) (snapshotapi.RepairArgs, error) {
	args := snapshotapi.RepairArgs{Table: *f.table, Key: *f.key, UpdatedAt: *f.updatedAt, Columns: splitList(*f.columns),
		Keys: splitList(*f.keys), EventTypes: splitList(*f.event), Actor: *f.actor, IncludeAdmins: *f.includeAdmins,
		Field: *f.field, ToleranceSeconds: f.tolerance.Seconds(), MaxRows: *f.maxRows}
	if *f.keysFile != "" {
		keys, err := readFileLines(*f.keysFile, true)
		if err != nil {
			return args, fmt.Errorf("-keys file: %w", err)
		}
		args.Keys = append(args.Keys, keys...)
	}
	if *f.events != "" {
		if len(args.EventTypes) == 0 && *f.incident == "" {
			// Without an incident there is no rule to name the events that wrote the rows.
			return args, errors.New("events: which events wrote the rows? name the event types (-event password_changed, user_deleted)")
		}
		lines, err := readFileLines(*f.events, false)
		if err != nil {
			return args, fmt.Errorf("-events: %w", err)
		}
		if len(lines) == 0 {
			return args, fmt.Errorf("-events %s is empty: give the app's log with the incident's events", *f.events)
		}
		args.Events = lines
	}
	if *f.incident != "" {
		in, err := findIncident(ctx, conn, *f.incident)
		if err != nil {
			return args, err
		}
		args.Rule, args.From = in.Rule, in.FirstSeen
		// An incident still open may go on after its last record: its range stays open (until
		// now) unless -until closes it. A resolved one ends at its last event.
		if !in.Open() {
			args.Until = in.LastSeen
		}
	}
	for _, tf := range []struct {
		flag string
		dst  *time.Time
	}{{*f.from, &args.From}, {*f.until, &args.Until}} {
		if tf.flag == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339, tf.flag)
		if err != nil {
			return args, fmt.Errorf("-from/-until %q is not an RFC 3339 time such as 2026-11-29T22:55:00Z", tf.flag)
		}
		*tf.dst = tm.UTC()
	}
	return args, nil
}

// readFileLines reads a file's lines; keys leaves out blank lines and # comments.
func readFileLines(path string, keys bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if keys {
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// findIncident returns the incident whose fingerprint is fp or starts with it.
func findIncident(ctx context.Context, conn *control.Conn, fp string) (ops.Incident, error) {
	list, err := conn.Alerts(ctx, ops.AlertFilter{Limit: 1000})
	if err != nil {
		return ops.Incident{}, fmt.Errorf("cannot read the alerts: %w", err)
	}
	var found []ops.Incident
	for _, in := range list {
		if in.Fingerprint == fp {
			return in, nil
		}
		if strings.HasPrefix(in.Fingerprint, fp) {
			found = append(found, in)
		}
	}
	switch len(found) {
	case 0:
		return ops.Incident{}, fmt.Errorf("no alert with fingerprint %q: see tda alerts", fp)
	case 1:
		return found[0], nil
	}
	return ops.Incident{}, fmt.Errorf("%d alerts have fingerprints starting with %q: give more of it", len(found), fp)
}

func httpWriterArgs(f repairFlags) (*snapshotapi.HTTPArgs, error) {
	w := &snapshotapi.HTTPArgs{URLTemplate: *f.urlTemplate, Fields: map[string]string{}, Header: map[string][]string{}}
	if w.URLTemplate == "" {
		return nil, errors.New("-via http needs -url-template, e.g. http://127.0.0.1:8000/admin/users/{key}/restore")
	}
	for _, m := range f.httpFields {
		for _, pair := range splitList(m) {
			col, key, ok := strings.Cut(pair, "=")
			if !ok || col == "" || key == "" {
				return nil, fmt.Errorf("-http-field %q: use COLUMN=KEY, e.g. password_hash=hashed_password", pair)
			}
			w.Fields[col] = key
		}
	}
	for _, h := range f.httpHeaders {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("-http-header %q: use \"Name: value\"", h)
		}
		name = http.CanonicalHeaderKey(strings.TrimSpace(name))
		w.Header[name] = append(w.Header[name], strings.TrimSpace(value))
	}
	return w, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
