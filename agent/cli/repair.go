package cli

import (
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
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/repair"
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
		tolerance: fs.Duration("tolerance", repair.DefaultTolerance, ""), maxRows: fs.Int("max-rows", 0, ""),
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
	var writer *repair.HTTPWriter
	switch *f.via {
	case "sql", "":
	case "http":
		var err error
		if writer, err = httpWriter(f); err != nil {
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

	scope, rule, err := c.scope(ctx, conn, f)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	settings := t.mgr.Settings()
	srcAddr, liveAddr := *f.source, *f.live
	srcName, liveName := "restored "+describeAddr(*f.source), "live "+describeAddr(*f.live)
	if *f.restoreName != "" {
		if srcAddr, err = settings.DSN(*f.restoreName); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		srcName = "restored " + *f.restoreName
	}
	if liveAddr == "" {
		if liveAddr, err = settings.DSN(""); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		liveName = "live " + t.mgr.Provider().Target()
	}
	src, err := repair.Open(ctx, srcAddr, srcName)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	defer src.Close()
	live, err := repair.Open(ctx, liveAddr, liveName)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	defer live.Close()

	plan, err := repair.MakePlan(ctx, src, live, scope)
	if err != nil {
		c.env.Errorf("cannot make the repair plan: %v", err)
		return 1
	}
	if !*f.asJSON {
		repair.WritePlan(c.env.Stdout, plan)
	}
	if !*f.apply {
		if *f.asJSON {
			return c.env.JSON(map[string]any{"plan": plan, "applied": false})
		}
		c.env.Printf("\nDry run: nothing was written. To write this plan, run the same command with -apply.\n")
		return 0
	}
	if plan.Pending() == 0 {
		if *f.asJSON {
			return c.env.JSON(map[string]any{"plan": plan, "applied": false})
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
		answer, err := c.env.UI.Ask(fmt.Sprintf("Type yes to write %d rows into %s (a pre-repair snapshot is taken first):", plan.Pending(), live.Name))
		if err != nil {
			c.env.Errorf("no confirmation could be read; pass -yes to repair without asking")
			return 1
		}
		if strings.TrimSpace(answer) != "yes" {
			c.env.Printf("Not repaired: nothing was changed.\n")
			return 1
		}
	}
	var snapID string
	opt := repair.ApplyOptions{BeforeWrite: func(ctx context.Context) error {
		s, err := t.mgr.Create(ctx, snapshot.CreateOptions{Trigger: provider.TriggerPreRepair, Wait: true})
		if err != nil {
			return fmt.Errorf("the pre-repair snapshot failed: %w", err)
		}
		snapID = s.ID
		if !*f.asJSON {
			c.env.Printf("Pre-repair snapshot %s taken (recovery point %s).\n", s.ID, s.Time.UTC().Format(time.RFC3339))
		}
		return nil
	}}
	if writer != nil {
		opt.Writer = writer
	}
	res, applyErr := repair.Apply(ctx, live, plan, opt)
	rec := ops.ActionRecord{Action: ops.ActionRepairRun, Target: plan.Scope.Table + " in " + live.Name,
		Reason: *f.reason, Detail: repairAuditDetail(plan, res, rule, *f.incident, snapID)}
	if applyErr != nil {
		rec.Error = applyErr.Error()
	}
	c.env.audit(ctx, *f.config, *f.by, rec)
	if applyErr != nil {
		c.env.Errorf("%v", applyErr)
		if snapID != "" {
			c.env.Errorf("the live database's state before the repair is in snapshot %s", snapID)
		}
		return 1
	}
	if *f.asJSON {
		code := c.env.JSON(map[string]any{"plan": plan, "applied": true, "result": res, "pre_repair_snapshot": snapID})
		if len(res.Mismatches) > 0 {
			return 1
		}
		return code
	}
	repair.WriteResult(c.env.Stdout, res)
	if len(res.Mismatches) > 0 {
		return 1
	}
	return 0
}

// scope builds what the plan looks at from the flags and the incident.
func (c *repairCommand) scope(ctx context.Context, conn *control.Conn, f repairFlags) (repair.Scope, string, error) {
	req := repair.Request{Table: *f.table, Key: *f.key, UpdatedAt: *f.updatedAt, Columns: splitList(*f.columns),
		Keys: splitList(*f.keys), KeysFile: *f.keysFile, Events: *f.events, EventTypes: splitList(*f.event),
		Actor: *f.actor, IncludeAdmins: *f.includeAdmins, Field: *f.field, Tolerance: *f.tolerance, MaxRows: *f.maxRows}
	if *f.incident != "" {
		in, err := findIncident(ctx, conn, *f.incident)
		if err != nil {
			return repair.Scope{}, "", err
		}
		req.Rule, req.From = in.Rule, in.FirstSeen
		// An incident still open may go on after its last record: its range stays open (until
		// now) unless -until closes it. A resolved one ends at its last event.
		if !in.Open() {
			req.Until = in.LastSeen
		}
	}
	for _, tf := range []struct {
		flag string
		dst  *time.Time
	}{{*f.from, &req.From}, {*f.until, &req.Until}} {
		if tf.flag == "" {
			continue
		}
		tm, err := time.Parse(time.RFC3339, tf.flag)
		if err != nil {
			return repair.Scope{}, "", fmt.Errorf("-from/-until %q is not an RFC 3339 time such as 2026-11-29T22:55:00Z", tf.flag)
		}
		*tf.dst = tm.UTC()
	}
	s, err := repair.BuildScope(req)
	if err != nil {
		return s, "", fmt.Errorf("-%w", err)
	}
	return s, req.Rule, nil
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

func httpWriter(f repairFlags) (*repair.HTTPWriter, error) {
	w := &repair.HTTPWriter{URLTemplate: *f.urlTemplate, Fields: map[string]string{}, Header: http.Header{}}
	if w.URLTemplate == "" {
		return nil, errors.New("-via http needs -url-template, e.g. http://127.0.0.1:8000/admin/users/{key}/restore")
	}
	if err := w.Check(); err != nil {
		return nil, err
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
		w.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return w, nil
}

// repairAuditDetail is what the audit log keeps of a repair: the incident, the counts, the
// snapshot to go back to, and the plan's rows by decision (bounded).
func repairAuditDetail(p *repair.Plan, r repair.Result, rule, incident, snapID string) map[string]string {
	d := map[string]string{
		"source": p.Source, "live": p.Live, "table": p.Scope.Table, "columns": strings.Join(p.Columns, ","),
		"via": r.Via, "summary": repair.Summary(p), "pre_repair_snapshot": snapID,
		"repaired": fmt.Sprint(r.Repaired), "inserted": fmt.Sprint(r.Inserted), "verified": fmt.Sprint(r.Verified),
		"mismatches": fmt.Sprint(len(r.Mismatches)),
	}
	if incident != "" {
		d["incident"] = incident
	}
	if rule != "" {
		d["rule"] = rule
	}
	rows := map[repair.Decision][]string{}
	for _, it := range p.Items {
		if it.Decision != repair.Same {
			rows[it.Decision] = append(rows[it.Decision], it.Table+" "+it.Key)
		}
	}
	for dec, list := range rows {
		s := strings.Join(list, ", ")
		if len(s) > 2000 {
			s = s[:2000] + fmt.Sprintf(" ... (%d rows)", len(list))
		}
		d["plan_"+string(dec)] = s
	}
	return d
}

// describeAddr names a database address without its password.
func describeAddr(addr string) string {
	if addr == "" {
		return ""
	}
	for _, kv := range strings.Fields(addr) {
		if v, ok := strings.CutPrefix(kv, "dbname="); ok {
			return v
		}
	}
	if i := strings.LastIndexByte(addr, '/'); i >= 0 && i < len(addr)-1 {
		return strings.SplitN(addr[i+1:], "?", 2)[0]
	}
	return "database"
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
