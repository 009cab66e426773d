package main

import (
	"context"
	"io"
)

func runChaos(ctx context.Context, co clusterOptions, o flags, out io.Writer) error { return nil }
