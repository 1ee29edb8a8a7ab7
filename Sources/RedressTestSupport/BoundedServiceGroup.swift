public import Logging
public import ServiceLifecycle

extension ServiceGroup {
  /// How long a test's services may take to shut down gracefully before they are cancelled, and then to finish
  /// after cancellation before the test process stops with a fatal error.
  public static let testShutdownBound: Duration = .seconds(30)

  /// A group for a test's services whose shutdown is bounded: a graceful shutdown that has not finished after
  /// ``testShutdownBound`` turns into cancellation, and a cancellation that has not finished after another
  /// ``testShutdownBound`` stops the test process (ServiceLifecycle's `maximumCancellationDuration`). A service
  /// that cannot stop then fails the run within a minute, and its name is logged as an error, instead of the run
  /// hanging until CI's own limit with nothing said about why.
  public static func boundedForTests(services: [any Service], logger: Logger) -> ServiceGroup {
    var configuration = ServiceGroupConfiguration(
      services: services.map { .init(service: ShutdownWatch(service: $0, logger: logger)) },
      logger: logger
    )
    configuration.maximumGracefulShutdownDuration = Self.testShutdownBound
    configuration.maximumCancellationDuration = Self.testShutdownBound
    return ServiceGroup(configuration: configuration)
  }
}

/// Runs `service` and logs an error naming it when it is still running 20 s after graceful shutdown began.
private struct ShutdownWatch: Service, CustomStringConvertible {
  let service: any Service
  let logger: Logger

  var description: String { "\(type(of: self.service))" }

  func run() async throws {
    // Each child says whether it was the service; the watch never ends the group, only the service does.
    try await withThrowingTaskGroup(of: Bool.self) { group in
      group.addTask {
        try await self.service.run()
        return true
      }
      group.addTask {
        try await gracefulShutdown()
        try await Task.sleep(for: .seconds(20))
        self.logger.error(
          "a service has not finished 20 s after graceful shutdown began", metadata: ["service": "\(self)"])
        return false
      }
      defer { group.cancelAll() }
      while let wasService = try await group.next(), !wasService {}
    }
  }
}
