package deadletter

import (
	"context"
	_ "embed"

	"example.com/platform/shared/app"
	"example.com/platform/shared/events"
	"example.com/platform/shared/handler"
	"example.com/platform/shared/retry"
)

//go:embed function.yaml
var manifestYAML []byte

// handlerConfig: whole Pub/Sub messages (up to its 10 MB limit), room for
// two inserts in the manifest's handler_timeout.
var handlerConfig = handler.Config{Retry: retry.Policy{MaxAttempts: 2}, MaxBody: events.MaxMessageBytes}

// function is the registered function: a raw consumer of every
// dead-letter topic (it archives what is not a valid event too, and never
// dead-letters to itself).
var function = app.Register(app.Function{
	Manifest: manifestYAML,
	Vars:     sinkEnv.Vars(),
	Handler:  handlerConfig,
	Consumer: app.Raw(newArchiver, (*archiver).archive),
})

func newArchiver(ctx context.Context, d *app.Deps) (*archiver, error) {
	sink, closer, err := sinkEnv.Open(ctx, d.Env, Tables(), d.Logger)
	if err != nil {
		return nil, err
	}
	d.OnClose(func() { closer.Close() })
	return &archiver{Service: &Service{Sink: sink}, logger: d.Logger}, nil
}
