package main

func (b *bench) agentVsVaultAgent() ([]row, error) { return nil, nil }
func (b *bench) reloadCost() ([]row, error)        { return nil, nil }
func (b *bench) fleet(n int) ([]row, error)        { return nil, nil }
func (b *bench) growth() ([]row, error)            { return nil, nil }
func growthSizesString() string                    { return "" }
