package main

func (b *bench) fleet(n int) ([]row, error) { return nil, nil }
func (b *bench) growth() ([]row, error)     { return nil, nil }
func growthSizesString() string             { return "" }
func maxSecrets() int                       { return 100 }
