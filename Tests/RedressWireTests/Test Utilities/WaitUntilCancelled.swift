/// Suspends until the current task is cancelled, then throws `CancellationError`.
///
/// For request producers that must stay open until the test cancels the RPC; it waits on
/// cancellation itself, not on time.
func waitUntilCancelled() async throws {
  let (never, continuation) = AsyncStream.makeStream(of: Void.self)
  for await _ in never {}
  withExtendedLifetime(continuation) {}
  throw CancellationError()
}
