// goworker is the program a user would write instead of a Ferry Integration, the peer of the
// pipeline benchmark (bench/pipeline.bench.ts, issue 11 goal 2): it reads a JetStream durable
// pull consumer (nats.go's jetstream package, Consume), validates each event against a JSON
// Schema compiled once (santhosh-tekuri/jsonschema, formats asserted), maps six fields by hand,
// POSTs the result with net/http and an Idempotency-Key header, and acks after a 2xx.
//
// Outcomes: 2xx → Ack; a schema or JSON failure, or a 4xx other than 408/429 → Term (retrying
// cannot help); any other answer or a transport error → NakWithDelay(1s).
//
// Protocol with the bench: after `-warmup` + `-count` messages it prints one JSON line of stats
// on stdout (the first line, `{"event":"ready"}`, is printed once consuming has started), then
// stays until stdin closes, so that its CPU time stays readable in /proc. GOMAXPROCS is Go's
// default (every core), as a user would run it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

type config struct {
	natsURL     string
	stream      string
	consumer    string
	target      string
	schema      string
	concurrency int
	connections int
	warmup      int
	count       int
	timeout     time.Duration
	keyScope    string
	doubleAck   bool
	cpuProfile  string
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.natsURL, "nats", nats.DefaultURL, "NATS server URL(s), comma-separated")
	flag.StringVar(&c.stream, "stream", "", "stream name")
	flag.StringVar(&c.consumer, "consumer", "", "durable consumer name (it must exist)")
	flag.StringVar(&c.target, "url", "", "target URL to POST each event to")
	flag.StringVar(&c.schema, "schema", "", "the events' JSON Schema (2020-12), as JSON text")
	flag.IntVar(&c.concurrency, "concurrency", 64, "events in flight at most")
	flag.IntVar(&c.connections, "connections", 32, "HTTP connections to the target at most")
	flag.IntVar(&c.warmup, "warmup", 0, "messages processed before the measured ones")
	flag.IntVar(&c.count, "count", 0, "measured messages; the stats are printed after warmup + count")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of one POST")
	flag.StringVar(&c.keyScope, "key-scope", "", "prefix of the Idempotency-Key, before the event's Nats-Msg-Id")
	flag.BoolVar(&c.doubleAck, "double-ack", false, "wait for the server to confirm each ack")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured messages to this file")
	flag.Parse()
	if c.stream == "" || c.consumer == "" || c.target == "" || c.schema == "" || c.count < 1 || c.concurrency < 1 || c.connections < 1 {
		fmt.Fprintln(os.Stderr, "goworker: -stream, -consumer, -url, -schema, -count, -concurrency and -connections are required")
		os.Exit(2)
	}
	return c
}

func compileSchema(text string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("event.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("event.json")
}

// outBody is the mapping of the bench's Integration (pipeline-common.ts MAPPING), by hand.
type outBody struct {
	ExternalID any `json:"externalId"`
	Total      any `json:"total"`
	Currency   any `json:"currency"`
	Customer   any `json:"customer"`
	Email      any `json:"email"`
	CreatedAt  any `json:"createdAt"`
}

// transform maps a validated event (decoded with json.Number, so amounts keep their text).
func transform(event any) ([]byte, error) {
	e, ok := event.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("event is not an object")
	}
	customer, _ := e["customer"].(map[string]any)
	return json.Marshal(outBody{
		ExternalID: e["id"],
		Total:      e["amount"],
		Currency:   e["currency"],
		Customer:   customer["id"],
		Email:      customer["email"],
		CreatedAt:  e["createdAt"],
	})
}

type stats struct {
	processed atomic.Int64
	delivered atomic.Int64
	errors    atomic.Int64
	invalid   atomic.Int64
}

type worker struct {
	cfg    config
	schema *jsonschema.Schema
	client *http.Client
	stats  *stats
}

// handle takes one message to its final outcome for this attempt: ack, term or nak.
func (w *worker) handle(msg jetstream.Msg) {
	event, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg.Data()))
	if err == nil {
		err = w.schema.Validate(event)
	}
	var body []byte
	if err == nil {
		body, err = transform(event)
	}
	if err != nil {
		w.stats.invalid.Add(1)
		_ = msg.TermWithReason("invalid event")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.target, bytes.NewReader(body))
	if err != nil {
		w.stats.errors.Add(1)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", w.cfg.keyScope+msg.Headers().Get(jetstream.MsgIDHeader))
	req.Header.Set("User-Agent", "ferry-bench-goworker")
	resp, err := w.client.Do(req)
	if err != nil {
		w.stats.errors.Add(1)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	// Read to the end so that the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if w.cfg.doubleAck {
			err = msg.DoubleAck(ctx)
		} else {
			err = msg.Ack()
		}
		if err == nil {
			w.stats.delivered.Add(1)
		} else {
			w.stats.errors.Add(1)
		}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		w.stats.errors.Add(1)
		_ = msg.TermWithReason(fmt.Sprintf("target answered %d", resp.StatusCode))
	default:
		w.stats.errors.Add(1)
		_ = msg.NakWithDelay(time.Second)
	}
}

func emit(v any) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func main() {
	cfg := parseFlags()
	// The parent closes stdin to end the worker (or dies, which closes it too).
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "goworker:", err)
		os.Exit(1)
	}
	// Stay until then: the parent reads this process's CPU time from /proc first.
	select {}
}

func run(cfg config) error {
	schema, err := compileSchema(cfg.schema)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxConnsPerHost = cfg.connections
	transport.MaxIdleConnsPerHost = cfg.connections
	transport.MaxIdleConns = cfg.connections
	transport.IdleConnTimeout = 4 * time.Second
	transport.ForceAttemptHTTP2 = false
	w := &worker{cfg: cfg, schema: schema, client: &http.Client{Transport: transport}, stats: &stats{}}

	nc, err := nats.Connect(cfg.natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cons, err := js.Consumer(ctx, cfg.stream, cfg.consumer)
	if err != nil {
		return err
	}

	total := int64(cfg.warmup + cfg.count)
	var (
		started  time.Time
		finished = make(chan time.Duration, 1)
		profile  *os.File
	)
	// A fixed pool of `concurrency` goroutines: the handler blocks while all are busy, which
	// bounds the events in flight (the consumer buffers at most `concurrency` more).
	jobs := make(chan jetstream.Msg)
	for range cfg.concurrency {
		go func() {
			for msg := range jobs {
				w.handle(msg)
				if n := w.stats.processed.Add(1); n == total {
					finished <- time.Since(started)
				}
			}
		}()
	}
	var received int64
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		received++
		if received == int64(cfg.warmup)+1 {
			started = time.Now()
			if cfg.cpuProfile != "" {
				// pprof's 100 Hz: at 1 kHz the runtime dropped about 3 samples in 4 here (the
				// profile summed to a quarter of the CPU time /proc counted).
				if f, err := os.Create(cfg.cpuProfile); err == nil && pprof.StartCPUProfile(f) == nil {
					profile = f
				}
			}
		}
		jobs <- msg
	},
		jetstream.PullMaxMessages(cfg.concurrency),
		jetstream.PullHeartbeat(5*time.Second),
		jetstream.PullExpiry(30*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			fmt.Fprintln(os.Stderr, "goworker: consume:", err)
		}),
	)
	if err != nil {
		return err
	}
	emit(map[string]any{"event": "ready"})
	span := <-finished
	if profile != nil {
		pprof.StopCPUProfile()
		_ = profile.Close()
	}
	// Every message is final by now; the workers stay idle until the process exits.
	cc.Stop()
	<-cc.Closed()
	if err := nc.Flush(); err != nil {
		return err
	}
	emit(map[string]any{
		"event":     "done",
		"processed": w.stats.processed.Load(),
		"delivered": w.stats.delivered.Load(),
		"errors":    w.stats.errors.Load(),
		"invalid":   w.stats.invalid.Load(),
		"spanMs":    float64(span.Microseconds()) / 1000,
	})
	return nil
}
