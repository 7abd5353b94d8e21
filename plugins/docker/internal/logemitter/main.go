// Command logemitter writes numbered log lines to stdout and stderr at a configurable rate. It
// is the workload of the Docker source's integration tests: built as a static binary into a
// FROM scratch image, it needs no registry. Every line carries a random run id and a sequence
// number, so lines from different runs of the same container never look alike:
//
//	logemitter run=3f9a0c1d seq=000042 stream=stdout
//
// With -long-every N, every Nth line is padded to -long-bytes bytes (to exercise Docker's
// 16 KiB partial messages). In a TTY container stdout and stderr share the terminal.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		count     = flag.Int("count", 0, "lines to write before exiting (0: until stopped)")
		rate      = flag.Float64("rate", 100, "lines per second (0: as fast as possible)")
		stderrN   = flag.Int("stderr-every", 0, "write every Nth line to stderr (0: stdout only)")
		longN     = flag.Int("long-every", 0, "pad every Nth line to -long-bytes (0: never)")
		longBytes = flag.Int("long-bytes", 100<<10, "length of the padded lines, in bytes")
		tag       = flag.String("tag", "logemitter", "first word of every line")
		linger    = flag.Bool("linger", false, "after -count lines, stay alive until stopped")
	)
	flag.Parse()
	if err := run(*count, *rate, *stderrN, *longN, *longBytes, *tag, *linger); err != nil {
		fmt.Fprintln(os.Stderr, "logemitter:", err)
		os.Exit(1)
	}
}

func run(count int, rate float64, stderrN, longN, longBytes int, tag string, linger bool) error {
	var idb [4]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return err
	}
	runID := hex.EncodeToString(idb[:])

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	errw := bufio.NewWriterSize(os.Stderr, 64<<10)
	flush := func() {
		_ = out.Flush()
		_ = errw.Flush()
	}
	defer flush()

	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	var line []byte
	for seq := 1; count == 0 || seq <= count; seq++ {
		if tick != nil {
			// Paced: every line is flushed on its own, as a service logging requests would.
			select {
			case <-tick:
			case <-stop:
				return nil
			}
		} else {
			select {
			case <-stop:
				return nil
			default:
			}
		}
		stream, w := "stdout", out
		if stderrN > 0 && seq%stderrN == 0 {
			stream, w = "stderr", errw
		}
		line = fmt.Appendf(line[:0], "%s run=%s seq=%06d stream=%s", tag, runID, seq, stream)
		if longN > 0 && seq%longN == 0 && len(line) < longBytes {
			line = append(line, ' ')
			line = append(line, strings.Repeat("x", longBytes-len(line)-1)...)
			line = append(line, '.')
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
		if tick != nil {
			flush()
		}
	}
	flush()
	if linger {
		<-stop
	}
	return nil
}
