// Package client is the Go SDK of Rafka: a Client holds the QUIC connections
// to the brokers and a metadata cache, and makes Producers, Consumers and
// admin calls. It speaks the protocol of package wire only.
//
// Contract in short:
//   - Every blocking call takes a context; Close methods are idempotent and
//     return once their goroutines are gone.
//   - New reaches a broker or fails within WithControlTimeout (or ctx's
//     earlier deadline), dials and retries included; its error then matches
//     ErrNoBrokers and the last cause (context.DeadlineExceeded when nothing
//     answered).
//   - Broker errors come back as *wire.Error; test them with errors.Is
//     against the sentinels below (errors.Is(err, client.ErrNotLeader)).
//     Only retriable codes, timeouts and transport failures are retried.
//     Errors name the package once ("client: op: cause").
//   - Each partition's requests go to its leader's broker (one connection per
//     broker address). A NOT_LEADER answer that names the new leader
//     updates the metadata cache at once and the retry goes there; one
//     without a hint refreshes metadata first.
//   - A partition the metadata reports offline fails Produce at once with
//     ErrPartitionOffline; a Consumer reports it and keeps it assigned,
//     resuming when the metadata shows it back.
//   - A request that gets no answer in time marks its connection suspect:
//     later requests to that broker dial a new connection, so a broker that
//     died without closing its connections (killed, restarted) costs about
//     one request timeout, not the connection's idle timeout.
//   - A Producer batches per partition (linger, max batch bytes), pipelines
//     requests on one stream per broker and keeps produce order per
//     partition through retries (see Producer). It is idempotent by default
//     (WithIdempotence): batches carry a random producer id and
//     per-partition sequence numbers, a retry resends the same bytes, and
//     the leader stores each batch once, so an acknowledged record is
//     stored exactly once; without idempotence delivery is at least once.
//     While answers are late (WithLeaderProbe) it asks another broker who
//     leads, and sends what is outstanding to a new leader at once.
//     Producer.Close sends everything it holds and, whatever the acks level,
//     returns nil only once each broker has read its stream to the end.
//   - A Consumer reads assigned partitions over subscribe streams with byte
//     credit, in offset order per partition. A batch it cannot decode is
//     reported by Poll as a *CorruptBatchError after the records before it;
//     Consumer.Seek skips it.
//   - Consumer.Poll returns Records that own their bytes. Consumer.PollBatch
//     is the cheap way to read: a Batch of one partition's records, decoded
//     and checked once on arrival into a reusable index of RecordViews that
//     point into the received buffer (no allocation or copy per record). Its
//     records are valid until Batch.Release, which also grants the bytes
//     back as credit: unreleased batches count against WithCreditBytes.
//
// Usage:
//
//	c, err := client.New(ctx,
//		client.WithBrokers("127.0.0.1:9092"),
//		client.WithCAFile("/var/lib/rafka/tls/cert.pem"))
//	if err != nil { ... }
//	defer c.Close()
//	if err := c.CreateTopic(ctx, "events", 4, nil); err != nil && !errors.Is(err, client.ErrTopicAlreadyExists) { ... }
//
//	p, err := c.NewProducer(client.WithLinger(5*time.Millisecond), client.WithCompression(client.CompressionLZ4))
//	if err != nil { ... }
//	err = p.Produce(ctx, &client.Record{Topic: "events", Partition: client.AnyPartition, Key: []byte("user-1"), Value: v},
//		func(r *client.Record, err error) { /* stored at r.Partition/r.Offset, or failed */ })
//	err = p.Close(ctx) // flushes
//
//	cs, err := c.NewConsumer()
//	if err != nil { ... }
//	defer cs.Close()
//	err = cs.Assign(ctx, client.Assignment{Topic: "events", Partition: 0, Start: client.Earliest()})
//	for {
//		recs, err := cs.Poll(ctx)
//		if err != nil { ... }
//		for _, r := range recs { ... }
//	}
//
//	// Or, without an allocation per record (see ExampleConsumer_PollBatch):
//	for {
//		b, err := cs.PollBatch(ctx)
//		if err != nil { ... }
//		for _, r := range b.Records() { ... } // r.Value valid until Release
//		b.Release()
//	}
package client
