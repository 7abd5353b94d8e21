package logfile_test

import (
	"fmt"
	"testing"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"

	"github.com/tda-dev/tda/plugins/logfile"
)

// BenchmarkWriteBatch writes batches of 1,000 positioned lines, in runs of one origin as a
// source batches them, over origins files: fsync and the record of acknowledged writes
// included.
func BenchmarkWriteBatch(b *testing.B) {
	for _, origins := range []int{1, 10} {
		b.Run(fmt.Sprintf("origins=%d", origins), func(b *testing.B) {
			s := sdktest.NewSink(b, logfile.Component(), "dir = \""+b.TempDir()+"\"", sdktest.WithMode(sdktest.Direct))
			batch := make([]sdk.Event, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range batch {
					batch[j] = line(fmt.Sprint("c", j*origins/len(batch)), "s", i*1000+j+1)
				}
				if err := s.WriteBatch(sdk.Batch{ID: uint64(i + 1), Events: batch}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
