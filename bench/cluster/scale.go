package main

import (
	"context"
	"io"
)

func runScale(ctx context.Context, co clusterOptions, o flags, out io.Writer) error { return nil }
