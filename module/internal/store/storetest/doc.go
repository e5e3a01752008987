// Package storetest owns the one conformance suite of store.Store (in the
// spirit of dex's storage/conformance), run against each dialect of the SQL
// store: Run checks each method's contract, including concurrent single-use
// consumption of codes and refresh tokens, serialised signing-key rotation,
// and the directory's optimistic concurrency and uniqueness under racing
// writers. It also holds shared benchmarks, the data the migration tests
// fill older schemas with, and RoundRobin, which spreads calls over several
// handles on one database so the suite can play several instances at once.
package storetest
