// cron is one run of the cron scheduler's CollectRecommendations: mark, collect,
// persist, and (deferred) clear, whatever mark returned.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"gomarker/marker"
)

func main() {
	store := flag.String("store", "legacy", "legacy or token")
	flag.Parse()
	ctx := context.Background()
	s, conn, err := marker.Open(ctx, *store)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cron:", err)
		os.Exit(1)
	}
	defer conn.Close(ctx)
	if err := run(ctx, s, *store); err != nil {
		fmt.Fprintln(os.Stderr, "cron:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, s marker.Store, store string) (err error) {
	token, ok, err := s.Mark(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// The legacy run clears whatever mark said; the fixed one clears only its own.
		if store == "legacy" || token != "" {
			if cerr := s.Clear(ctx, token); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	fmt.Printf("cron: mark ok=%v\n", ok)
	// collect: no database work; then persist.
	if err := s.UpsertRecommendations(ctx); err != nil {
		return err
	}
	fmt.Println("cron: collected")
	return nil
}
