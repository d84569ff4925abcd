package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/rafka/rafka/client"
	"github.com/rafka/rafka/node"
	"github.com/rafka/rafka/quicnet"
)

// PollBatch reads a partition's records in place: no allocation or copy per
// record. Each batch is released once its records are done with; copy what
// must outlive it.
func ExampleConsumer_PollBatch() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, ca, stop := exampleBroker()
	defer stop()

	c, err := client.New(ctx, client.WithBrokers(addr), client.WithCAFile(ca))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.CreateTopic(ctx, "events", 1, nil); err != nil {
		log.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range []string{"one", "two", "three"} {
		if err := p.ProduceSync(ctx, &client.Record{Topic: "events", Partition: 0, Value: []byte(v)}); err != nil {
			log.Fatal(err)
		}
	}
	p.Close(ctx)

	cs, err := c.NewConsumer()
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()
	if err := cs.Assign(ctx, client.Assignment{Topic: "events", Partition: 0, Start: client.Earliest()}); err != nil {
		log.Fatal(err)
	}
	for seen := 0; seen < 3; {
		b, err := cs.PollBatch(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range b.Records() {
			fmt.Printf("%s/%d@%d: %s\n", b.Topic, b.Partition, r.Offset, r.Value)
		}
		seen += b.Len()
		b.Release() // the records' bytes are not to be used after this
	}
	// Output:
	// events/0@0: one
	// events/0@1: two
	// events/0@2: three
}

// exampleBroker starts an in-process broker in a temporary directory and
// returns its address, the CA file that verifies it, and how to stop it.
func exampleBroker() (addr, ca string, stop func()) {
	dir, err := os.MkdirTemp("", "rafka-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := node.Config{DataDir: dir, Listen: "127.0.0.1:0"}
	cfg.TopicDefaults.SegmentBytes = 4 << 20
	b, err := node.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Start(); err != nil {
		log.Fatal(err)
	}
	return b.Addr(), quicnet.SelfSignedCertPath(dir), func() {
		b.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}
