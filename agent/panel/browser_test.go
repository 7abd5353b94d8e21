package panel

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium binary, or skips the test without one (fails when
// TDA_REQUIRE_INTEGRATION=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("TDA_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and TDA_REQUIRE_INTEGRATION=1")
	}
	t.Skip("chromium is not installed: the browser tests need it (apt-get install chromium)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns its chromedp context;
// everything is torn down when the test ends.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1400, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first call starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshot saves a PNG of the page into docs/img when TDA_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("TDA_SCREENSHOTS") != "1" {
		return
	}
	png := get(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "docs", "img")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote docs/img/%s", name)
}

// do runs steps within 30 seconds and fails the test, quoting the page's messages, on error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v (page says: %s)", what, err, pageMessages(ctx))
	}
}

// get runs an action that reads something.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v (page says: %s)", what, err, pageMessages(ctx))
	}
	return v
}

func pageMessages(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	msg, err := chromedp.Run(c, chromedp.Evaluate[string](
		`document.getElementById("error").textContent + " | " + document.getElementById("notice").textContent + " | " + (document.getElementById("signin-error")||{}).textContent`))
	if err != nil {
		return err.Error()
	}
	if os.Getenv("TDA_DEBUG_PAGE") == "1" {
		html, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		msg += "\n" + html
	}
	return msg
}

// css is a CSS selector for chromedp.
func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }
