package main

import "io"

func ctlCmd(args []string, stdout, stderr io.Writer) int { return 2 }
