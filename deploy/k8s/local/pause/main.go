// Command pause is the pod sandbox of the local test cluster (see
// deploy/k8s/local/up.sh): the process that holds a pod's namespaces while
// its containers come and go. It waits for SIGTERM or SIGINT and exits 0,
// and reaps the children it inherits as a pod's PID 1 (when the pod shares
// its process namespace), as the upstream pause image does.
//
// It is built static into an image FROM scratch, so the cluster pulls
// nothing.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
