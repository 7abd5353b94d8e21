package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// vault is a sink whose actions report what they were given and whether Start ran.
type vault struct {
	name    string
	started bool
	// cancelled receives once the wait action saw its context end.
	cancelled chan struct{}
}

func (*vault) Write(context.Context, sdk.Batch) error { return nil }

func (v *vault) Start(context.Context) error {
	if v.name == "broken" {
		return errors.New("cannot reach the database")
	}
	v.started = true
	return nil
}

func vaultComponent(cancelled chan struct{}) sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "name", Type: sdk.TypeString, Required: true}}}
	report := func(_ context.Context, comp any, req sdk.ActionRequest) ([]byte, error) {
		v := comp.(*vault)
		req.Progress("working on " + v.name)
		return json.Marshal(map[string]any{"name": v.name, "started": v.started, "args": string(req.Args), "actor": req.Actor})
	}
	return sdk.SinkComponent("vault", spec, func(cfg *sdk.Config, _ sdk.Resources) (sdk.Sink, error) {
		return &vault{name: cfg.String("name"), cancelled: cancelled}, nil
	}).WithActions(
		sdk.Action{Name: "report", Summary: "what the instance holds", Run: report},
		sdk.Action{Name: "report.started", Starts: true, Run: report},
		sdk.Action{Name: "fail.invalid", Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
			return nil, fmt.Errorf("checking: %w", sdk.ActionInvalid("argument %q is missing", "to"))
		}},
		sdk.Action{Name: "fail.not_found", Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
			return nil, sdk.ActionNotFound("no snapshot %q", "s-1")
		}},
		sdk.Action{Name: "fail.conflict", Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
			return nil, sdk.ActionConflict("database %q exists", "x")
		}},
		sdk.Action{Name: "fail.unavailable", Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
			return nil, sdk.ActionUnavailable("the API answers 503")
		}},
		sdk.Action{Name: "fail.plain", Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
			return nil, errors.New("disk full")
		}},
		sdk.Action{Name: "panic", Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
			panic("boom")
		}},
		sdk.Action{Name: "wait", Run: func(ctx context.Context, comp any, req sdk.ActionRequest) ([]byte, error) {
			req.Progress("waiting")
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond) // cleaning up after the cancel takes a while
			comp.(*vault).cancelled <- struct{}{}
			return nil, ctx.Err()
		}},
	)
}

func actionConn(t *testing.T, comp sdk.Component) *host.Conn {
	t.Helper()
	srv := sdk.NewServer(sdk.PluginInfo{Name: "vault", Version: "1"}, nil, comp)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	opts := append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := grpc.NewClient("passthrough:///vault", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
	})
	return host.NewConn(cc)
}

func configureVault(t *testing.T, conn *host.Conn, instance, name string) host.Sink {
	t.Helper()
	s := conn.ForInstance(instance).Sink()
	res, err := s.Configure(context.Background(), host.Configuration{Component: "vault", Instance: instance,
		Config: []byte(fmt.Sprintf(`{"name":%q}`, name)), ActionsOnly: true})
	if err != nil || res.Diagnostics.HasErrors() {
		t.Fatalf("configure: %v %v", err, res.Diagnostics.Err())
	}
	return s
}

// Each action's result, progress and failure cross the wire as the action made them: the
// kind of an error survives, a plain error stays plain, a panic is a panic, and Start runs
// only for an action that asks for it.
func TestActionsOverTheWire(t *testing.T) {
	conn := actionConn(t, vaultComponent(make(chan struct{}, 1)))
	d, err := conn.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := d.Find(sdk.KindSink, "vault")
	if a, ok := vc.Action("report"); !ok || a.Summary != "what the instance holds" || len(vc.Actions) != 9 {
		t.Fatalf("the description lists actions %+v", vc.Actions)
	}
	configureVault(t, conn, "sink.vault.a", "alpha")
	configureVault(t, conn, "sink.vault.b", "beta")
	tests := []struct {
		instance, action string
		want             string // result JSON, or the error's text
		kind             sdk.ActionErrorKind
		plainErr, panics bool
	}{
		{instance: "sink.vault.a", action: "report", want: `{"actor":"ops","args":"{\"x\":1}","name":"alpha","started":false}`},
		{instance: "sink.vault.b", action: "report", want: `{"actor":"ops","args":"{\"x\":1}","name":"beta","started":false}`},
		{instance: "sink.vault.a", action: "report.started", want: `{"actor":"ops","args":"{\"x\":1}","name":"alpha","started":true}`},
		{instance: "sink.vault.a", action: "fail.invalid", want: `checking: argument "to" is missing`, kind: sdk.ActionErrInvalid},
		{instance: "sink.vault.a", action: "fail.not_found", want: `no snapshot "s-1"`, kind: sdk.ActionErrNotFound},
		{instance: "sink.vault.a", action: "fail.conflict", want: `database "x" exists`, kind: sdk.ActionErrConflict},
		{instance: "sink.vault.a", action: "fail.unavailable", want: "the API answers 503", kind: sdk.ActionErrUnavailable},
		{instance: "sink.vault.a", action: "fail.plain", want: "disk full", plainErr: true},
		{instance: "sink.vault.a", action: "nope", want: `sink vault has no action "nope"; it serves: fail.conflict,`, kind: sdk.ActionErrNotFound},
		{instance: "sink.vault.a", action: "panic", want: "boom", panics: true},
		{instance: "sink.vault.zzz", action: "report", want: `instance "sink.vault.zzz" is not configured`, plainErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.instance+"/"+tc.action, func(t *testing.T) {
			var lines []string
			out, err := conn.ForInstance(tc.instance).CallAction(context.Background(), tc.action, []byte(`{"x":1}`), "ops",
				func(l string) { lines = append(lines, l) })
			switch {
			case tc.kind == "" && !tc.plainErr && !tc.panics:
				if err != nil || string(out) != tc.want {
					t.Fatalf("got %s, %v; want %s", out, err, tc.want)
				}
				if want := "working on " + map[string]string{"sink.vault.a": "alpha", "sink.vault.b": "beta"}[tc.instance]; fmt.Sprint(lines) != "["+want+"]" {
					t.Fatalf("progress %q, want %q", lines, want)
				}
			case err == nil:
				t.Fatalf("no error, result %s", out)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			case sdk.ActionErrorKindOf(err) != tc.kind:
				t.Fatalf("error kind %q, want %q (%v)", sdk.ActionErrorKindOf(err), tc.kind, err)
			case sdk.IsPanic(err) != tc.panics:
				t.Fatalf("IsPanic %v, want %v (%v)", sdk.IsPanic(err), tc.panics, err)
			}
			var te *host.TransportError
			if errors.As(err, &te) {
				t.Fatalf("an answer of the plugin reads as a transport failure: %v", err)
			}
		})
	}
}

// A Start that fails is the action's failure, of kind unavailable, and says which instance.
func TestActionStartFails(t *testing.T) {
	conn := actionConn(t, vaultComponent(make(chan struct{}, 1)))
	configureVault(t, conn, "sink.vault.broken", "broken")
	_, err := conn.ForInstance("sink.vault.broken").CallAction(context.Background(), "report.started", nil, "ops", nil)
	if sdk.ActionErrorKindOf(err) != sdk.ActionErrUnavailable || !strings.Contains(err.Error(), "start sink.vault.broken: cannot reach the database") {
		t.Fatalf("got %v (kind %q)", err, sdk.ActionErrorKindOf(err))
	}
}

// Cancelling the call cancels the action's context in the plugin, and the host gets ctx's
// error, not a transport failure; closing the instance then waits until the action has
// returned (it cleans up before the process may be stopped).
func TestActionCancelled(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	conn := actionConn(t, vaultComponent(cancelled))
	sink := configureVault(t, conn, "sink.vault.a", "alpha")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := conn.ForInstance("sink.vault.a").CallAction(ctx, "wait", nil, "ops", func(string) { cancel() })
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	default:
		t.Fatal("the instance closed before its cancelled action returned")
	}
}
