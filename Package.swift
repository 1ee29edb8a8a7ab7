// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("InternalImportsByDefault"),
  .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
  name: "Redress",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "RedressSchemas", targets: ["RedressSchemas"]),
    .library(name: "RedressWire", targets: ["RedressWire"]),
    .library(name: "RedressPKI", targets: ["RedressPKI"]),
    .library(name: "RedressService", targets: ["RedressService"]),
    // MARK: products: intake
    .library(name: "RedressIntake", targets: ["RedressIntake"]),
    .executable(name: "redress-intake", targets: ["redress-intake"]),

    // MARK: products: remediation
    .library(name: "RedressRemediation", targets: ["RedressRemediation"]),
    .executable(name: "redress-remediation", targets: ["redress-remediation"]),

    // MARK: products: client and CLI
    .library(name: "RedressClient", targets: ["RedressClient"]),

  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
    .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
    .package(url: "https://github.com/grpc/grpc-swift-2.git", exact: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", exact: "2.9.2"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", exact: "1.46.0"),
    .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
    .package(url: "https://github.com/apple/swift-crypto.git", exact: "3.12.3"),
    .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
    .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
    .package(url: "https://github.com/adam-fowler/compress-nio.git", exact: "1.5.0"),
    .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
    .package(url: "https://github.com/apple/swift-configuration.git", exact: "1.4.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
    .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    // Metrics (issue 15): swift-metrics, exported in Prometheus' text format on an HTTPS endpoint (Hummingbird).
    .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
    // Tests only (RedressTestSupport): scraping the metrics endpoint over HTTPS.
    .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
    // Traces: spans per RPC, context across the outbox and webhooks, OTLP export when configured.
    .package(url: "https://github.com/apple/swift-distributed-tracing.git", exact: "1.7.3"),
    .package(url: "https://github.com/swift-otel/swift-otel.git", exact: "1.6.0"),
    // Tests only: parses the Kubernetes manifests in Deployment/.
    .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
  ],
  targets: [
    // Code generated from Protos/ by tools/generate-protos.sh; never edited by hand.
    .target(
      name: "RedressSchemas",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: strictSettings
    ),
    // The Redress wire: grpc-swift-2 client and server transports over our own framing on TLS.
    .target(
      name: "RedressWire",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "CompressNIO", package: "compress-nio"),
        // The connection fuzz entry point (Fuzzing/) runs a connection on an embedded channel.
        .product(name: "NIOEmbedded", package: "swift-nio"),
      ],
      swiftSettings: strictSettings
    ),
    // Certificates for development and deployment (a CA, server and client leaves), minted in-process.
    .target(
      name: "RedressPKI",
      dependencies: [
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
      ],
      swiftSettings: strictSettings
    ),
    // What both services share: who the caller is, tenants and roles, rate limiting, health, the SQLite store
    // setup, configuration and running a Redress server under swift-service-lifecycle.
    .target(
      name: "RedressService",
      dependencies: [
        "RedressTracing",
        "RedressWire",
        "RedressSchemas",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        // Standard gRPC over HTTP/2 next to the wire (GRPCHTTP2Listener), for clients in other languages.
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        // PostgreSQL for several replicas (issue 14): connection settings and versioned migrations.
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Configuration", package: "swift-configuration"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        // RedressMetrics and the /metrics endpoint.
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "CoreMetrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdCore", package: "hummingbird"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        // Traces: a span per RPC (TracingInterceptors), OTLP export when configured (ServiceTracing).
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        .product(name: "OTel", package: "swift-otel"),
      ],
      swiftSettings: strictSettings
    ),
    // Trace context in gRPC metadata and a client span per RPC: shared by the services and the client library,
    // which does not depend on RedressService.
    .target(
      name: "RedressTracing",
      dependencies: [
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
      ],
      swiftSettings: strictSettings
    ),
    // Helpers the test targets share (bounded waits); not a product.
    .target(
      name: "RedressTestSupport",
      dependencies: [
        // TCPProxy: cutting a test's connections to PostgreSQL.
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        // ServiceGroup.boundedForTests: a test's services that cannot shut down fail the test instead of hanging it.
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Logging", package: "swift-log"),
        // MetricsScrape: GET /metrics over HTTPS.
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        // WebhookReceiver: a real HTTPS receiver for webhook tests.
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdCore", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "RedressServiceTests",
      dependencies: [
        .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        "RedressService",
        "RedressTestSupport",
        "RedressPKI",
        "RedressWire",
        "RedressSchemas",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
      ],
      swiftSettings: strictSettings
    ),
    // MARK: targets: intake
    // The intake service: validation, triage, the durable store with group commit, and the hand-off outbox.
    .target(
      name: "RedressIntake",
      dependencies: [
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        "RedressTracing",
        "RedressService",
        "RedressSchemas",
        "RedressWire",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Configuration", package: "swift-configuration"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "redress-intake",
      dependencies: [
        "RedressIntake",
        "RedressService",
        "RedressWire",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Configuration", package: "swift-configuration"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      path: "Sources/redress-intake",
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "RedressIntakeTests",
      dependencies: [
        .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        "RedressTestSupport",
        "RedressIntake",
        "RedressService",
        "RedressPKI",
        "RedressWire",
        "RedressSchemas",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: strictSettings
    ),

    // MARK: targets: remediation
    // The remediation service: the playbook of making amends as a state machine, its store, timers and RPCs.
    .target(
      name: "RedressRemediation",
      dependencies: [
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        "RedressTracing",
        "RedressService",
        "RedressSchemas",
        "RedressWire",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Metrics", package: "swift-metrics"),
        // Webhook delivery (Webhooks/).
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: strictSettings
    ),
    .executableTarget(
      name: "redress-remediation",
      dependencies: [
        "RedressRemediation",
        "RedressService",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Configuration", package: "swift-configuration"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      path: "Sources/redress-remediation",
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "RedressRemediationTests",
      dependencies: [
        "RedressIntake",
        "RedressTracing",
        .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        "RedressTestSupport",
        "RedressRemediation",
        "RedressService",
        "RedressPKI",
        "RedressWire",
        "RedressSchemas",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ],
      swiftSettings: strictSettings
    ),

    // MARK: targets: client and CLI
    // The client library tools use to submit incidents and follow remedies.
    .target(
      name: "RedressClient",
      dependencies: [
        .product(name: "Tracing", package: "swift-distributed-tracing"),
        "RedressTracing",
        "RedressWire",
        "RedressSchemas",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),
    // The `redress` command line: submit, read, act on and watch; `redress dev` and `redress certs`.
    .executableTarget(
      name: "redress",
      dependencies: [
        "RedressClient",
        "RedressIntake",
        "RedressRemediation",
        "RedressPKI",
        "RedressService",
        "RedressSchemas",
        "RedressWire",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Sources/redress",
      swiftSettings: strictSettings
    ),
    // Drives the built executables: the dev stack and the CLI end to end, and the deployment files' flags.
    .testTarget(
      name: "RedressCLITests",
      dependencies: [
        "RedressTestSupport",
        .product(name: "Yams", package: "Yams"),
      ],
      swiftSettings: strictSettings
    ),
    .testTarget(
      name: "RedressClientTests",
      dependencies: [
        "RedressClient",
        "RedressService",
        "RedressPKI",
        "RedressSchemas",
        "RedressWire",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),

    .testTarget(
      name: "RedressWireTests",
      dependencies: [
        "RedressTestSupport",
        "RedressWire",
        "RedressPKI",
        "RedressSchemas",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: strictSettings
    ),

    // MARK: fuzz targets (Fuzz/README.md): libFuzzer with tools/fuzz.sh, corpus replay otherwise.
    .target(name: "FuzzSupport", path: "Fuzz/FuzzSupport", swiftSettings: strictSettings),
    .executableTarget(name: "fuzz-frames", dependencies: ["FuzzSupport", "RedressWire"], path: "Fuzz/FuzzFrames", swiftSettings: strictSettings),
    .executableTarget(name: "fuzz-metadata", dependencies: ["FuzzSupport", "RedressWire"], path: "Fuzz/FuzzMetadata", swiftSettings: strictSettings),
    .executableTarget(name: "fuzz-decompress", dependencies: ["FuzzSupport", "RedressWire"], path: "Fuzz/FuzzDecompress", swiftSettings: strictSettings),
    .executableTarget(name: "fuzz-connection", dependencies: ["FuzzSupport", "RedressWire"], path: "Fuzz/FuzzConnection", swiftSettings: strictSettings),
    .executableTarget(name: "fuzz-playbook", dependencies: ["FuzzSupport", "RedressRemediation"], path: "Fuzz/FuzzPlaybook", swiftSettings: strictSettings),
  ]
)
