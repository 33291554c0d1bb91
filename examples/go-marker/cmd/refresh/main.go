// refresh is the user's POST /api/recommendations/refresh, synchronous: mark; on
// ok=false answer 409; else collect, persist, and clear with its own token.
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
		fmt.Fprintln(os.Stderr, "refresh:", err)
		os.Exit(1)
	}
	defer conn.Close(ctx)
	token, ok, err := s.Mark(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "refresh:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Println("409 collection already in progress")
		os.Exit(9)
	}
	if err := s.UpsertRecommendations(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "refresh:", err)
		os.Exit(1)
	}
	if err := s.Clear(ctx, token); err != nil {
		fmt.Fprintln(os.Stderr, "refresh:", err)
		os.Exit(1)
	}
	fmt.Println("202 refreshed")
}
