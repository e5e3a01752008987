// Command upstream is the benchmark's stand-in application: it answers every
// request with 200 "ok". It binds loopback only.
package main
