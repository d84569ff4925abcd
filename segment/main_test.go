package segment

import (
	"flag"
	"os"
	"testing"

	"go.uber.org/goleak"
)

var stress = flag.Bool("stress", false, "run the crash tests for hundreds of iterations")

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(runCrashChild(dir))
	}
	goleak.VerifyTestMain(m)
}
