package spool_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/aqualoop/aqualoop/collector"
	"github.com/aqualoop/aqualoop/collector/spool"
)

// The edge appends from its pollers and delivers from one forward loop: Peek a batch, publish
// it, Ack the last one the broker acknowledged.
func Example() {
	dir, err := os.MkdirTemp("", "spool-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := spool.Open(spool.Config{Dir: dir}, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	for i := range 3 {
		r, err := q.Append(collector.Reading{
			Site: "demo", Meter: "M01", Edge: "edge-1",
			Time:       time.Date(2026, 11, 28, 0, i, 0, 0, time.UTC),
			TimeSource: collector.TimeSourceCollector,
			Points:     []collector.Point{{Name: collector.PointTotal, Value: 100 + float64(i), Unit: "m3"}},
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("appended seq", r.Seq)
	}

	batch, err := q.Peek(context.Background(), 100)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range batch {
		fmt.Println("publish", e.ID, e.Reading.Meter, e.Reading.Seq) // publisher.Publish(ctx, e.Reading)
	}
	if err := q.Ack(batch[len(batch)-1].ID); err != nil {
		log.Fatal(err)
	}
	fmt.Println("left", q.Len())
	// Output:
	// appended seq 1
	// appended seq 2
	// appended seq 3
	// publish 1 M01 1
	// publish 2 M01 2
	// publish 3 M01 3
	// left 0
}
