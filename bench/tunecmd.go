package main

import (
	"context"
	"errors"
	"io"
)

func runTune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("tune: not yet")
}
