// Package storetest owns the one conformance suite every store.Store backend
// must pass (in the spirit of dex's storage/conformance): Run checks each
// method's contract, including concurrent single-use consumption of codes and
// refresh tokens and serialised signing-key rotation. It also holds shared
// benchmarks and RoundRobin, which spreads calls over several handles on one
// database so the suite can play several instances at once.
package storetest
