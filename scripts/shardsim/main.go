// Command shardsim is docs/SCALING.md's simulation: how evenly tenants
// spread over PostgreSQL shards when their traffic is skewed (Zipf), with
// placement by hash and by a directory that places the heaviest tenants
// first (greedy, least-loaded shard). It prints the busiest shard's load
// against the mean, which is what sizes every shard.
//
//	go run ./scripts/shardsim
package main

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

func main() {
	const tenants = 10_000
	fmt.Println("tenants  zipf s  shards  hash: max/mean  directory: max/mean  heaviest tenant share")
	for _, s := range []float64{0.8, 1.0, 1.2} {
		load := traffic(tenants, s)
		for _, shards := range []int{2, 4, 8, 16, 32} {
			fmt.Printf("%7d  %6.1f  %6d  %15.2f  %20.2f  %20.1f%%\n", tenants, s, shards,
				ratio(byHash(load, shards)), ratio(byDirectory(load, shards)), 100*slices.Max(load))
		}
	}
}

// traffic gives tenant i a share proportional to 1/(i+1)^s, shuffled so
// that tenant ids carry no order; the shares sum to 1.
func traffic(n int, s float64) []float64 {
	load := make([]float64, n)
	var sum float64
	for i := range load {
		load[i] = 1 / math.Pow(float64(i+1), s)
		sum += load[i]
	}
	for i := range load {
		load[i] /= sum
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(n, func(i, j int) { load[i], load[j] = load[j], load[i] })
	return load
}

func byHash(load []float64, shards int) []float64 {
	out := make([]float64, shards)
	for id, l := range load {
		h := fnv.New32a()
		h.Write([]byte(strconv.Itoa(id)))
		out[h.Sum32()%uint32(shards)] += l
	}
	return out
}

// byDirectory places tenants heaviest first on the least-loaded shard:
// what a directory table (tenant → shard) allows and a hash does not.
func byDirectory(load []float64, shards int) []float64 {
	sorted := slices.Clone(load)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	out := make([]float64, shards)
	for _, l := range sorted {
		out[slices.Index(out, slices.Min(out))] += l
	}
	return out
}

func ratio(shards []float64) float64 {
	var sum float64
	for _, l := range shards {
		sum += l
	}
	return slices.Max(shards) / (sum / float64(len(shards)))
}
